package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// The upgrade tests. testdata/vN.db is a small file written by schema
// version N: every version of the code must open each of them and answer
// from them exactly as the version that wrote it did. When the schema
// changes, bump schemaVersion, add the migration, and create the new
// version's file with
//
//	go test ./store/bolt -run 'TestSchema/v4' -update
//
// -update rewrites only the current version's file: an older version's
// file stands for the data files out in the field.

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
				return r.ScheduleRetry(v1At(30), approvals.Failure{Cause: "Graph answered 503", GraphRequestID: "graph-1"}, v1At(11))
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
		if st, err := s.FindStanding(ctx, r.Key()); err != nil || st != (approvals.Standing{ID: r.ID, Status: w.status, Provisioning: w.prov}) {
			t.Errorf("FindStanding(%q) = %+v, %v", r.Key(), st, err)
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
	if err := s.Decisions(ctx, approvals.DecisionQuery{}, func(rec approvals.DecisionRecord) error {
		decided = append(decided, rec.ID)
		stored, err := s.Get(ctx, rec.ID)
		if err != nil {
			return err
		}
		if want := approvals.NewDecisionRecord(stored); rec != want {
			t.Errorf("export row %+v\nwant %+v", rec, want)
		}
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
		// Version 2 changed only index values: the same requests, written
		// by the new code, which must answer the same.
		{"v2", 2, writeV1, checkV1},
		// Version 3 changed only the export rows (decided_by_id).
		{"v3", 3, writeV1, checkV1},
		// Version 4 changed the person keys (approvals.NewPerson); writeV1's
		// addresses are ASCII, so their keys are the same.
		{"v4", 4, writeV1, checkV1},
	}
	for _, v := range versions {
		t.Run(v.name, func(t *testing.T) {
			golden := filepath.Join("testdata", v.name+".db")
			if *update && v.version == schemaVersion {
				if err := os.Remove(golden); err != nil && !os.IsNotExist(err) {
					t.Fatal(err)
				}
				s := open(t, golden, Options{Clock: clock})
				v.write(t, s)
				if err := s.Close(); err != nil {
					t.Fatal(err)
				}
			}
			path := copyGolden(t, v.name)

			// Read-only first: it reads a current file and refuses an old one,
			// which it cannot upgrade.
			if v.version == schemaVersion {
				ro := open(t, path, Options{ReadOnly: true, Clock: clock})
				v.check(t, ro)
				ro.Close()
			} else if ro, err := Open(path, Options{ReadOnly: true}); err == nil {
				ro.Close()
				t.Errorf("read-only Open of a version %d file succeeded", v.version)
			} else if !strings.Contains(err.Error(), "needs an upgrade") {
				t.Errorf("read-only Open of a version %d file = %v; want it to say it needs an upgrade", v.version, err)
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

// copyGolden copies testdata/NAME.db to a temporary file and returns its
// path.
func copyGolden(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name+".db"))
	if err != nil {
		t.Fatalf("%v (create it with -update)", err)
	}
	path := filepath.Join(t.TempDir(), name+".db")
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// fileContents is every top-level bucket of a data file: its sequence and
// its keys and values.
type fileContents map[string]bucketContents

type bucketContents struct {
	sequence uint64
	entries  map[string]string
}

func contents(t *testing.T, s *Store) fileContents {
	t.Helper()
	out := fileContents{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, b *bbolt.Bucket) error {
			bc := bucketContents{sequence: b.Sequence(), entries: map[string]string{}}
			out[string(name)] = bc
			return b.ForEach(func(k, v []byte) error {
				if v == nil {
					v = []byte("(bucket)")
				}
				bc.entries[string(k)] = string(v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// diffContents lists how got differs from want.
func diffContents(got, want fileContents) []string {
	var diffs []string
	for _, name := range slices.Sorted(maps.Keys(want)) {
		g, ok := got[name]
		w := want[name]
		switch {
		case !ok:
			diffs = append(diffs, fmt.Sprintf("bucket %s is missing", name))
			continue
		case g.sequence != w.sequence:
			diffs = append(diffs, fmt.Sprintf("bucket %s has sequence %d; want %d", name, g.sequence, w.sequence))
		}
		for _, k := range slices.Sorted(maps.Keys(w.entries)) {
			if gv, ok := g.entries[k]; !ok || gv != w.entries[k] {
				diffs = append(diffs, fmt.Sprintf("bucket %s key %x holds %s (present: %v); want %s", name, k, describeValue(name, []byte(gv)), ok, describeValue(name, []byte(w.entries[k]))))
			}
		}
		for k := range g.entries {
			if _, ok := w.entries[k]; !ok {
				diffs = append(diffs, fmt.Sprintf("bucket %s holds stray key %x", name, k))
			}
		}
	}
	for name := range got {
		if _, ok := want[name]; !ok {
			diffs = append(diffs, fmt.Sprintf("stray bucket %s", name))
		}
	}
	return diffs
}

// freshV2 is what the current code writes for writeV1's requests.
func freshV2(t *testing.T) (fileContents, *Store) {
	t.Helper()
	s := open(t, filepath.Join(t.TempDir(), "fresh.db"), Options{Clock: approvals.ClockFunc(func() time.Time { return clockTime })})
	t.Cleanup(func() { s.Close() })
	writeV1(t, s)
	emptyOutbox(t, s)
	return contents(t, s), s
}

// emptyOutbox removes the announcements writeV1's changes enqueued: an
// upgrade announces nothing of the history it rewrites, so the file it
// gives has an empty outbox.
func emptyOutbox(t *testing.T, s *Store) {
	t.Helper()
	err := s.db.Update(func(tx *bbolt.Tx) error {
		for _, name := range outboxBuckets() {
			if err := tx.DeleteBucket(name); err != nil {
				return err
			}
			if _, err := tx.CreateBucket(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// sameAnswers compares the check step's and the export's answers of two
// stores holding writeV1's requests.
func sameAnswers(t *testing.T, got, want *Store) {
	t.Helper()
	ctx := context.Background()
	for _, s := range []*Store{got, want} {
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
	p, err := want.List(ctx, approvals.ListQuery{})
	if err != nil || len(p.Requests) != 5 {
		t.Fatalf("List = %d requests, %v", len(p.Requests), err)
	}
	for _, r := range p.Requests {
		gs, gerr := got.FindStanding(ctx, r.Key())
		ws, werr := want.FindStanding(ctx, r.Key())
		if gs != ws || gerr != nil || werr != nil {
			t.Errorf("FindStanding(%q) = %+v, %v; want %+v, %v", r.Key(), gs, gerr, ws, werr)
		}
	}
	rows := func(s *Store, q approvals.DecisionQuery) []approvals.DecisionRecord {
		var out []approvals.DecisionRecord
		if err := s.Decisions(ctx, q, func(rec approvals.DecisionRecord) error {
			out = append(out, rec)
			return nil
		}); err != nil {
			t.Fatalf("Decisions(%+v): %v", q, err)
		}
		return out
	}
	for _, q := range []approvals.DecisionQuery{{}, {Status: approvals.StatusApproved}, {Since: v1At(12)}, {Until: v1At(12)}} {
		if g, w := rows(got, q), rows(want, q); !slices.Equal(g, w) || len(w) == 0 {
			t.Errorf("Decisions(%+v) = %+v\nwant %+v", q, g, w)
		}
	}
}

// TestUpgradeMatchesFresh checks that upgrading the version 1 file gives,
// bucket for bucket, the file the current code writes for the same
// requests.
func TestUpgradeMatchesFresh(t *testing.T) {
	want, fresh := freshV2(t)
	s := open(t, copyGolden(t, "v1"), Options{Clock: approvals.ClockFunc(func() time.Time { return clockTime })})
	defer s.Close()
	for _, d := range diffContents(contents(t, s), want) {
		t.Error(d)
	}
	sameAnswers(t, s, fresh)
}

// TestUpgradeResumes stops the upgrade of the version 1 file after each of
// its transactions in turn, as a crash would, and checks that the file is
// refused meanwhile and that the next Open finishes the upgrade.
func TestUpgradeResumes(t *testing.T) {
	want, fresh := freshV2(t)
	clock := approvals.ClockFunc(func() time.Time { return clockTime })
	crash := errors.New("crash")
	for stop := 1; ; stop++ {
		path := copyGolden(t, "v1")
		calls := 0
		s, err := Open(path, Options{Clock: clock, upgradeBatch: 2, afterUpgradeBatch: func() error {
			if calls++; calls == stop {
				return crash
			}
			return nil
		}})
		if err == nil {
			// The upgrade has fewer transactions than stop: every stop was
			// tried. 5 requests in batches of 2: the start and 3 batches.
			s.Close()
			if stop != 5 {
				t.Errorf("the upgrade ended after %d transactions; want 4", stop-1)
			}
			return
		}
		if !errors.Is(err, crash) {
			t.Fatalf("Open stopped after transaction %d: %v", stop, err)
		}

		if ro, err := Open(path, Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "needs an upgrade") {
			if ro != nil {
				ro.Close()
			}
			t.Errorf("read-only Open of a half-upgraded file = %v; want it to need an upgrade", err)
		}
		// A version 1 server refuses the file: it lacks by_person.
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		_ = db.View(func(tx *bbolt.Tx) error {
			if tx.Bucket(bucketByPerson) != nil || tx.Bucket(bucketUpgrade) == nil {
				t.Errorf("stop %d: a version 1 server would read the half-upgraded file", stop)
			}
			if v, _ := version(tx.Bucket(bucketMeta)); v != 1 {
				t.Errorf("stop %d: schema version %d before the upgrade ends; want 1", stop, v)
			}
			return nil
		})
		db.Close()

		s = open(t, path, Options{Clock: clock, upgradeBatch: 2})
		for _, d := range diffContents(contents(t, s), want) {
			t.Errorf("stop %d: %s", stop, d)
		}
		sameAnswers(t, s, fresh)
		s.Close()
	}
}

// TestUpgradeLogs checks the log lines of an upgrade, which tell an
// operator why a server takes long to start.
func TestUpgradeLogs(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	s := open(t, copyGolden(t, "v1"), Options{Logger: logger})
	s.Close()
	got := buf.String()
	for _, want := range []string{"upgrading the data file", "from_version=1 to_version=5 requests=5", "upgraded the data file", "requests=5 elapsed="} {
		if !strings.Contains(got, want) {
			t.Errorf("log = %q; want %q in it", got, want)
		}
	}
	buf.Reset()
	s = open(t, filepath.Join(t.TempDir(), "new.db"), Options{Logger: logger})
	s.Close()
	if buf.Len() != 0 {
		t.Errorf("opening a new file logged %q", buf.String())
	}
}

// TestUpgradeCopiesTheFileAside checks that an upgrade first leaves a copy
// of the file as it was, next to it, which the version that wrote it can
// open, and that the next start neither upgrades nor copies again.
func TestUpgradeCopiesTheFileAside(t *testing.T) {
	for _, old := range []struct {
		name    string
		version uint64
	}{{"v1", 1}, {"v2", 2}} {
		t.Run(old.name, func(t *testing.T) {
			var log bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&log, nil))
			path := copyGolden(t, old.name)
			original, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			s := open(t, path, Options{Logger: logger})
			s.Close()
			aside := path + ".v" + old.name[1:] + ".bak"
			if !strings.Contains(log.String(), "copied the data file aside") || !strings.Contains(log.String(), "copy="+aside) {
				t.Errorf("log = %q; want the copy %s in it", log.String(), aside)
			}
			// The copy holds what the file held: bbolt's own copy of every
			// page, under the old version.
			db, err := bbolt.Open(aside, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatalf("open the copy: %v", err)
			}
			orig := filepath.Join(t.TempDir(), "original.db")
			if err := os.WriteFile(orig, original, 0o600); err != nil {
				t.Fatal(err)
			}
			odb, err := bbolt.Open(orig, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			if got, want := dump(t, db), dump(t, odb); got != want {
				t.Errorf("the copy differs from the original:\n%s\nwant\n%s", got, want)
			}
			_ = db.View(func(tx *bbolt.Tx) error {
				if v, _ := version(tx.Bucket(bucketMeta)); v != old.version {
					t.Errorf("the copy has schema version %d; want %d", v, old.version)
				}
				return nil
			})
			db.Close()
			odb.Close()
			if fi, err := os.Stat(aside); err != nil || fi.Mode().Perm() != 0o600 {
				t.Errorf("copy mode %v (%v); want 0600, the data file's", fi.Mode(), err)
			}

			// Upgraded: the next start copies nothing.
			log.Reset()
			s = open(t, path, Options{Logger: logger})
			s.Close()
			if log.Len() != 0 {
				t.Errorf("opening the upgraded file logged %q", log.String())
			}
			// Another old file under the same name (a restore) gets a copy of
			// its own: the first is kept.
			if err := os.WriteFile(path, original, 0o600); err != nil {
				t.Fatal(err)
			}
			s = open(t, path, Options{Logger: logger})
			s.Close()
			if _, err := os.Stat(path + ".v" + old.name[1:] + ".2.bak"); err != nil {
				t.Errorf("second copy: %v; log %q", err, log.String())
			}
		})
	}
}

// dump prints every bucket's keys and values, for comparing two files.
func dump(t *testing.T, db *bbolt.DB) string {
	t.Helper()
	var b strings.Builder
	err := db.View(func(tx *bbolt.Tx) error {
		return tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
			fmt.Fprintf(&b, "%s seq=%d\n", name, bk.Sequence())
			return bk.ForEach(func(k, v []byte) error {
				fmt.Fprintf(&b, "  %x=%x\n", k, v)
				return nil
			})
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return b.String()
}

// TestUpgradeFillsDecidedByID checks that the export rows of a version 2
// file, which lack the decider's id, have it after the upgrade.
func TestUpgradeFillsDecidedByID(t *testing.T) {
	path := copyGolden(t, "v2")
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	_ = db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketDecisions).ForEach(func(k, v []byte) error {
			if rec, err := decodeRow(v); err != nil || v[0] != rowFormatV1 || rec.DecidedByID != "" {
				t.Errorf("version 2 row %x: format %d, %+v, %v", k, v[0], rec, err)
			}
			return nil
		})
	})
	db.Close()
	s := open(t, path, Options{})
	defer s.Close()
	ids := map[string]string{}
	if err := s.Decisions(context.Background(), approvals.DecisionQuery{}, func(rec approvals.DecisionRecord) error {
		ids[rec.ID] = rec.DecidedByID
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(ids) == 0 {
		t.Fatal("no decisions")
	}
	for id, by := range ids {
		if by != "oid-1" {
			t.Errorf("decision %s: decided_by_id %q; want oid-1", id, by)
		}
	}
}
