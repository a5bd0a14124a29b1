package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/store/postgres"
)

// TestMigrate fills a bbolt file (pending, approved with a job in
// progress, denied, audit events, a session and cookie keys), copies it
// with `approvals migrate`, and compares every request, every event (seqs
// kept), the session and the keys; a second run is refused because the
// database is not empty; `approvals export --database-url` reads the copy.
func TestMigrate(t *testing.T) {
	dbURL := pgtest.NewDatabase(t)
	file := filepath.Join(t.TempDir(), "approvals.db")
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 9, 0, 0, 123456789, time.UTC)
	src, err := bolt.Open(file, bolt.Options{Clock: approvals.ClockFunc(func() time.Time { return at })})
	if err != nil {
		t.Fatal(err)
	}
	rev := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}
	const n = 250
	for i := range n {
		r := &approvals.Request{Source: approvals.SourceSignUp, Email: fmt.Sprintf("m%d@example.com", i), Status: approvals.StatusPending,
			CreatedAt: at.Add(time.Duration(i) * time.Second), Claims: map[string]any{"city": "Leeds\x00", "n": float64(i)},
			Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}}
		if i%2 == 0 {
			r.Identity = &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprint(i)}
		}
		stored, _, err := src.Create(ctx, r, []approvals.Event{{At: r.CreatedAt, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}})
		if err != nil {
			t.Fatal(err)
		}
		switch i % 3 {
		case 1:
			_, err = src.Update(ctx, stored.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Approve(rev, "ok", at, time.Hour)
				return []approvals.Event{ev}, err
			})
		case 2:
			_, err = src.Update(ctx, stored.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Deny(rev, "no", at)
				return []approvals.Event{ev}, err
			})
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := src.AppendEvents(ctx, []approvals.Event{{At: at, Type: approvals.EventBlockedAtCheck}}); err != nil {
		t.Fatal(err)
	}
	sess := &approvals.Session{IDHash: "abc", User: approvals.SessionUser{OID: "oid-1", Name: "Ada"}, CSRF: "x", CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(time.Hour)}
	if err := src.CreateSession(ctx, sess, 0); err != nil {
		t.Fatal(err)
	}
	keys, err := src.CookieKeys(ctx, at, time.Hour, approvals.CookieKey{Secret: bytes.Repeat([]byte{7}, approvals.CookieKeySize)})
	if err != nil {
		t.Fatal(err)
	}
	if err := src.Close(); err != nil {
		t.Fatal(err)
	}

	var out, errb bytes.Buffer
	if code := run(ctx, []string{"migrate", "--db", file, "--database-url", dbURL}, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("migrate: exit %d: %s", code, errb.String())
	}
	if !strings.Contains(out.String(), fmt.Sprintf("copied %d requests", n)) || !strings.Contains(out.String(), "counts verified") {
		t.Errorf("migrate said %q", out.String())
	}

	src, err = bolt.Open(file, bolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	dst, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer dst.Close()
	wantAll, gotAll := listAll(t, src), listAll(t, dst)
	if len(gotAll) != n || !sameJSONValue(wantAll, gotAll) {
		t.Errorf("the database's requests differ from the file's (%d vs %d)", len(gotAll), len(wantAll))
	}
	wantEv, gotEv := auditAll(t, src), auditAll(t, dst)
	if len(gotEv) != len(wantEv) || !sameJSONValue(wantEv, gotEv) {
		t.Errorf("the database's audit trail differs from the file's (%d vs %d events)", len(gotEv), len(wantEv))
	}
	if jobs, _ := dst.DueJobs(ctx, at.Add(time.Minute), 1000); len(jobs) != (n+1)/3 {
		t.Errorf("%d jobs due in the database; want %d", len(jobs), (n+1)/3)
	}
	// The announcements bbolt enqueued with each change are copied as they are.
	wantDel, _, err := src.ListDeliveries(ctx, approvals.DeliveryQuery{Limit: approvals.MaxPageSize})
	if err != nil {
		t.Fatal(err)
	}
	gotDel, _, err := dst.ListDeliveries(ctx, approvals.DeliveryQuery{Limit: approvals.MaxPageSize})
	if err != nil || len(wantDel) == 0 || !sameJSONValue(wantDel, gotDel) {
		t.Errorf("the outbox after migrate differs: %d deliveries, want %d (%v)", len(gotDel), len(wantDel), err)
	}
	if got, err := dst.Session(ctx, "abc", at); err != nil || got.User.Name != "Ada" {
		t.Errorf("session after migrate: %+v, %v", got, err)
	}
	if got, err := dst.CookieKeys(ctx, at, time.Hour, approvals.CookieKey{}); err != nil || !sameJSONValue(got, keys) {
		t.Errorf("cookie keys after migrate: %v, %v; want %v", got, err, keys)
	}
	// New events continue the copied seqs.
	if err := dst.AppendEvents(ctx, []approvals.Event{{At: at, Type: approvals.EventBlockedAtCheck}}); err != nil {
		t.Fatal(err)
	}
	if evs := auditAll(t, dst); evs[len(evs)-1].Seq != wantEv[len(wantEv)-1].Seq+1 {
		t.Errorf("the next seq after migrate is %d; want %d", evs[len(evs)-1].Seq, wantEv[len(wantEv)-1].Seq+1)
	}

	out.Reset()
	errb.Reset()
	if code := run(ctx, []string{"migrate", "--db", file, "--database-url", dbURL}, &out, &errb, func(string) string { return "" }); code != 1 || !strings.Contains(errb.String(), "not empty") {
		t.Errorf("second migrate: exit %d, %q; want a refusal of the non-empty database", code, errb.String())
	}

	exported := filepath.Join(t.TempDir(), "decisions.csv")
	if code := run(ctx, []string{"export", "--database-url", dbURL, "--out", exported}, &out, &errb, func(string) string { return "" }); code != 0 {
		t.Fatalf("export: exit %d: %s", code, errb.String())
	}
	b, _ := os.ReadFile(exported)
	if lines := strings.Count(string(b), "\n"); lines != 1+(n+1)/3+n/3 {
		t.Errorf("export has %d lines; want a header and %d decisions", lines, (n+1)/3+n/3)
	}
}

func auditAll(t *testing.T, s approvals.Store) []approvals.Event {
	t.Helper()
	var out []approvals.Event
	q := approvals.AuditQuery{Limit: approvals.MaxPageSize}
	for {
		evs, next, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, evs...)
		if next == 0 {
			return out
		}
		q.AfterSeq = next
	}
}

// sameJSONValue reports whether a and b encode to the same JSON.
func sameJSONValue(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}
