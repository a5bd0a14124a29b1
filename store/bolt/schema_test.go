package bolt

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The upgrade tests. testdata/vN.db is a small file written by schema
// version N: every version of the code must open each of them and answer
// from them exactly as the version that wrote it did. When the schema
// changes, bump schemaVersion, add the migration, and create the new
// version's file with
//
//	go test ./store/bolt -run 'TestSchema/v2' -update
//
// Never rewrite the file of an older version: it stands for the data files
// out in the field.

var v1Time = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

func v1At(m int) time.Time { return v1Time.Add(time.Duration(m) * time.Minute) }

// writeV1 fills a version 1 file: one request in each state, with events.
func writeV1(t *testing.T, s *Store) {
	ctx := context.Background()
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada Reviewer"}
	admin := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-2", Name: "Grace Admin", Admin: true}
	steps := []struct {
		id    string
		email string
		ident *approvals.Identity
		muts  []func(r *approvals.Request) (approvals.Event, error)
	}{
		{"000000000000000000000001", "pending@example.com", &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "0123456789"}, nil},
		{"000000000000000000000002", "approved@example.com", nil, []func(r *approvals.Request) (approvals.Event, error){
			func(r *approvals.Request) (approvals.Event, error) {
				return r.Approve(reviewer, "known supplier", v1At(10), 24*time.Hour)
			},
			func(r *approvals.Request) (approvals.Event, error) {
				return r.ScheduleRetry(v1At(30), "Graph answered 503", "graph-1", v1At(11))
			},
		}},
		{"000000000000000000000003", "denied@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-3"}, []func(r *approvals.Request) (approvals.Event, error){
			func(r *approvals.Request) (approvals.Event, error) { return r.Deny(reviewer, "spam", v1At(12)) },
		}},
		{"000000000000000000000004", "done@example.com", &approvals.Identity{Issuer: "mail", IssuerAssignedID: "done@example.com"}, []func(r *approvals.Request) (approvals.Event, error){
			func(r *approvals.Request) (approvals.Event, error) {
				return r.Approve(reviewer, "", v1At(13), 24*time.Hour)
			},
			func(r *approvals.Request) (approvals.Event, error) {
				return r.CompleteStep(approvals.StepCreated, approvals.StepResult{UserID: "user-4"}, v1At(14))
			},
			func(r *approvals.Request) (approvals.Event, error) { return r.SucceedProvisioning(v1At(15)) },
		}},
		{"000000000000000000000005", "reopened@example.com", nil, []func(r *approvals.Request) (approvals.Event, error){
			func(r *approvals.Request) (approvals.Event, error) { return r.Deny(reviewer, "unsure", v1At(16)) },
			func(r *approvals.Request) (approvals.Event, error) { return r.Reopen(admin, "asked again", v1At(17)) },
		}},
	}
	for i, st := range steps {
		r, _, err := s.Create(ctx, &approvals.Request{
			ID: st.id, Source: approvals.SourceSignUp, Email: st.email, DisplayName: "Person " + st.id[23:],
			Identity: st.ident, Claims: map[string]any{"city": "Redmond", "extension_0123_Role": "supplier"},
			Locale: "en-US", Status: approvals.StatusPending, CreatedAt: v1At(i),
			Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
		}, []approvals.Event{{At: v1At(i), Type: approvals.EventReceived, Actor: approvals.ConnectorActor, Details: map[string]string{"source": "signup"}}})
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range st.muts {
			if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := m(r)
				return []approvals.Event{ev}, err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := s.AppendEvents(ctx, []approvals.Event{{At: v1At(20), Type: approvals.EventBlockedAtCheck, Actor: approvals.ConnectorActor,
		Details: map[string]string{"email": "blocked@example.com"}}}); err != nil {
		t.Fatal(err)
	}
}

// checkV1 checks that s answers what writeV1 stored.
func checkV1(t *testing.T, s *Store) {
	ctx := context.Background()
	id := func(n int) string { return "00000000000000000000000" + string(rune('0'+n)) }
	if err := s.Check(); err != nil {
		t.Fatalf("Check: %v", err)
	}
	want := []struct {
		status  approvals.Status
		prov    approvals.ProvisioningState
		version uint64
		updated time.Time
	}{
		{approvals.StatusPending, approvals.ProvisioningNotStarted, 1, v1At(0)},
		{approvals.StatusApproved, approvals.ProvisioningInProgress, 3, clockTime},
		{approvals.StatusDenied, approvals.ProvisioningNotStarted, 2, clockTime},
		{approvals.StatusApproved, approvals.ProvisioningSucceeded, 4, clockTime},
		{approvals.StatusPending, approvals.ProvisioningNotStarted, 3, clockTime},
	}
	for i, w := range want {
		r, err := s.Get(ctx, id(i+1))
		if err != nil {
			t.Fatalf("Get(%s): %v", id(i+1), err)
		}
		if r.Status != w.status || r.Provisioning.State != w.prov || r.Version != w.version || !r.UpdatedAt.Equal(w.updated) ||
			!r.CreatedAt.Equal(v1At(i)) || r.Claims["extension_0123_Role"] != "supplier" {
			t.Errorf("request %d = %+v; want %+v", i+1, r, w)
		}
		byPerson, err := s.FindByPerson(ctx, r.Key())
		if err != nil || byPerson.ID != r.ID {
			t.Errorf("FindByPerson(%q) = %v, %v", r.Key(), byPerson, err)
		}
	}
	if r, _ := s.Get(ctx, id(2)); r.Provisioning.LastError != "Graph answered 503" || r.Decision.Reason != "known supplier" {
		t.Errorf("approved request = %+v", r)
	}
	if r, _ := s.FindByPerson(ctx, approvals.PersonKey("Pending@Example.com", &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "0123456789"})); r == nil || r.ID != id(1) {
		t.Errorf("FindByPerson(pending, facebook) = %+v", r)
	}

	counts, _ := s.Count(ctx)
	if !equalCounts(counts, map[approvals.Status]int{approvals.StatusPending: 2, approvals.StatusApproved: 2, approvals.StatusDenied: 1}) {
		t.Errorf("Count = %v", counts)
	}
	for _, tt := range []struct {
		q    approvals.ListQuery
		want []string
	}{
		{approvals.ListQuery{}, []string{id(5), id(4), id(3), id(2), id(1)}},
		{approvals.ListQuery{Order: approvals.OldestFirst, Status: approvals.StatusPending}, []string{id(1), id(5)}},
		{approvals.ListQuery{Status: approvals.StatusApproved, Limit: 1}, []string{id(4)}},
	} {
		p, err := s.List(ctx, tt.q)
		var got []string
		for _, r := range p.Requests {
			got = append(got, r.ID)
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("List(%+v) = %v, %v; want %v", tt.q, got, err, tt.want)
		}
	}
	if next, ok, _ := s.NextJobAt(ctx); !ok || !next.Equal(v1At(30)) {
		t.Errorf("NextJobAt = %v, %v; want %v", next, ok, v1At(30))
	}
	if jobs, _ := s.DueJobs(ctx, v1At(30), 10); len(jobs) != 1 || jobs[0].ID != id(2) {
		t.Errorf("DueJobs = %v", jobs)
	}
	var decided []string
	if err := s.Decisions(ctx, approvals.DecisionQuery{}, func(r approvals.DecisionRecord) error {
		decided = append(decided, r.ID)
		return nil
	}); err != nil || !slices.Equal(decided, []string{id(2), id(3), id(4)}) {
		t.Errorf("Decisions = %v, %v", decided, err)
	}
	evs, next, err := s.Audit(ctx, approvals.AuditQuery{Limit: 100})
	if err != nil || next != 0 || len(evs) != 14 {
		t.Fatalf("Audit = %d events, %d, %v; want 14", len(evs), next, err)
	}
	if last := evs[13]; last.Type != approvals.EventBlockedAtCheck || last.Seq != 14 || last.Details["email"] != "blocked@example.com" {
		t.Errorf("last event = %+v", last)
	}
	if evs, _, _ := s.Audit(ctx, approvals.AuditQuery{RequestID: id(4)}); len(evs) != 4 {
		t.Errorf("request 4 has %d events; want 4", len(evs))
	}
	if evs, _, _ := s.Audit(ctx, approvals.AuditQuery{Since: v1At(16)}); len(evs) != 3 {
		t.Errorf("Audit(since 16m) = %d events; want 3", len(evs))
	}
}

// clockTime is the fixed clock the files are written with: UpdatedAt.
var clockTime = time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)

func TestSchema(t *testing.T) {
	clock := approvals.ClockFunc(func() time.Time { return clockTime })
	versions := []struct {
		name    string
		version uint64
		write   func(t *testing.T, s *Store)
		check   func(t *testing.T, s *Store)
	}{
		{"v1", 1, writeV1, checkV1},
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			golden := filepath.Join("testdata", v.name+".db")
			if *update {
				if err := os.Remove(golden); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				s := open(t, golden, Options{Clock: clock})
				v.write(t, s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			path := filepath.Join(t.TempDir(), "approvals.db")
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}

			// Read-only first: it reads a current file and refuses an old one,
			// which it cannot upgrade.
			if v.version == schemaVersion {
				ro := open(t, path, Options{ReadOnly: true, Clock: clock})
				v.check(t, ro)
				ro.Close()
			} else if ro, err := Open(path, Options{ReadOnly: true}); err == nil {
				ro.Close()
				t.Errorf("read-only Open of a version %d file succeeded", v.version)
			}
			s := open(t, path, Options{Clock: clock})
			defer s.Close()
			v.check(t, s)
			// The upgraded file takes new writes.
			if _, created, err := s.Create(context.Background(), &approvals.Request{Email: "new@example.com", Status: approvals.StatusPending, CreatedAt: v1At(100)}, nil); err != nil || !created {
				t.Errorf("Create after opening %s = %v, %v", v.name, created, err)
			}
			if err := s.Check(); err != nil {
				t.Errorf("Check after a write: %v", err)
			}
		})
	}
}
