package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/store/postgres"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// replicas opens n stores, each with its own pool, on one new database:
// what n server processes sharing it see.
func replicas(t *testing.T, n int) []*postgres.Store {
	t.Helper()
	u := pgtest.NewDatabase(t)
	out := make([]*postgres.Store, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { // started together: the migrations must not race
			out[i], errs[i] = postgres.Open(context.Background(), u, postgres.Options{})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open replica %d: %v", i, err)
		}
		t.Cleanup(func() { _ = out[i].Close() })
	}
	return out
}

func signUp(i int) *approvals.Request {
	return &approvals.Request{Source: approvals.SourceSignUp, Email: fmt.Sprintf("p%d@example.com", i),
		Status: approvals.StatusPending, CreatedAt: t0.Add(time.Duration(i) * time.Millisecond),
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}}
}

func received(at time.Time) []approvals.Event {
	return []approvals.Event{{At: at, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}}
}

func TestMigrationsOnceAcrossReplicas(t *testing.T) {
	u := pgtest.NewDatabase(t)
	var wg sync.WaitGroup
	errs := make([]error, 6)
	for i := range errs {
		wg.Go(func() {
			s, err := postgres.Open(context.Background(), u, postgres.Options{})
			if err == nil {
				err = s.Close()
			}
			errs[i] = err
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var n, max int
	if err := conn.QueryRow(context.Background(), "SELECT count(*), max(version) FROM schema_migrations").Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != postgres.SchemaVersion() || max != postgres.SchemaVersion() {
		t.Errorf("schema_migrations has %d rows up to %d; want each of %d migrations once", n, max, postgres.SchemaVersion())
	}
	// A schema newer than the binary is refused.
	if _, err := conn.Exec(context.Background(), "INSERT INTO schema_migrations (version, name) VALUES (999, 'future')"); err != nil {
		t.Fatal(err)
	}
	if s, err := postgres.Open(context.Background(), u, postgres.Options{}); err == nil {
		s.Close()
		t.Error("Open of a database with a newer schema succeeded")
	}
}

// TestReplicaKilledMidMigration plays a replica that dies while it
// applies the first migration: it holds the migration lock and has half
// the schema in an open transaction when its connection drops without a
// goodbye, as when the process is SIGKILLed or its node is lost. A replica
// starting meanwhile waits for the lock, then applies the whole schema
// itself and serves.
func TestReplicaKilledMidMigration(t *testing.T) {
	ctx := context.Background()
	u := pgtest.NewDatabase(t)
	dying, err := pgx.Connect(ctx, u)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(postgres.MigrationLock)); err != nil {
		t.Fatal(err)
	}
	if _, err := dying.Exec(ctx, "BEGIN; CREATE TABLE requests (id text PRIMARY KEY); CREATE TABLE events (seq bigint)"); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		s   *postgres.Store
		err error
	}
	done := make(chan opened, 1)
	go func() {
		s, err := postgres.Open(ctx, u, postgres.Options{})
		done <- opened{s, err}
	}()
	select {
	case o := <-done:
		t.Fatalf("Open returned while another replica held the migration lock: %v", o.err)
	case <-time.After(300 * time.Millisecond):
	}
	// The process dies: its socket closes with no Terminate message and
	// no rollback sent; the server rolls back and drops the lock.
	if err := dying.PgConn().Conn().Close(); err != nil {
		t.Fatal(err)
	}
	died := time.Now()
	var o opened
	select {
	case o = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Open still waiting 30 s after the replica holding the migration lock died")
	}
	if o.err != nil {
		t.Fatalf("Open after the other replica died mid-migration: %v", o.err)
	}
	t.Logf("Open returned %v after the death", time.Since(died).Round(time.Millisecond))
	defer o.s.Close()
	if _, created, err := o.s.Create(ctx, signUp(1), received(t0)); err != nil || !created {
		t.Fatalf("Create on the migrated database: created %v, %v", created, err)
	}
	evs, _, err := o.s.Audit(ctx, approvals.AuditQuery{})
	if err != nil || len(evs) != 1 || evs[0].Seq != 1 {
		t.Fatalf("audit after the first Create: %+v, %v; want one event with seq 1", evs, err)
	}
}

// TestAuditCursorAcrossReplicas tails the audit trail with AfterSeq
// cursors while three replicas append concurrently: the reader must see
// every seq, 1 to n without a gap, each once, though transactions that
// took their seqs commit in any order.
func TestAuditCursorAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	const writers, each = 6, 60
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			s := rs[w%len(rs)]
			for i := range each {
				var err error
				if i%2 == 0 {
					_, _, err = s.Create(ctx, signUp(w*1000+i), received(t0))
				} else {
					err = s.AppendEvents(ctx, []approvals.Event{{At: t0, Type: approvals.EventBlockedAtCheck}, {At: t0, Type: approvals.EventBlockedAtCheck}})
				}
				if err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	var seen []uint64
	var after uint64
	finished := false
	for !finished {
		select {
		case <-done:
			finished = true // one more read after the last commit
		default:
		}
		for {
			evs, _, err := rs[len(seen)%len(rs)].Audit(ctx, approvals.AuditQuery{AfterSeq: after, Limit: 7})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				seen = append(seen, ev.Seq)
				after = ev.Seq
			}
			if len(evs) < 7 {
				break
			}
		}
	}
	want := writers * (each/2 + each/2*2)
	if len(seen) != want {
		t.Fatalf("the cursor reader saw %d events; want %d", len(seen), want)
	}
	for i, s := range seen {
		if s != uint64(i+1) {
			t.Fatalf("event %d has seq %d; want %d (a cursor skipped or repeated an event)", i, s, i+1)
		}
	}
}

func TestOnePersonOneRequestAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := map[string]int{}
	for i := range 30 {
		wg.Go(func() {
			r := signUp(i % 3) // three people, ten sign-ups each
			got, ok, err := rs[i%3].Create(ctx, r, received(r.CreatedAt))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if ok {
				created[got.Email]++
			} else {
				created[got.Email] += 0
			}
		})
	}
	wg.Wait()
	if len(created) != 3 {
		t.Fatalf("people = %v", created)
	}
	for email, n := range created {
		if n != 1 {
			t.Errorf("%s: created %d times; want once", email, n)
		}
	}
}

// TestApproveDenyRace decides each request twice at once, approve on one
// replica, deny on another: exactly one wins and the audit has one
// decision.
func TestApproveDenyRace(t *testing.T) {
	rs := replicas(t, 2)
	ctx := context.Background()
	rev := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}
	for i := range 20 {
		r, _, err := rs[0].Create(ctx, signUp(i), received(t0))
		if err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		var errA, errD error
		wg.Go(func() {
			_, errA = rs[0].Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Approve(rev, "", t0, time.Hour)
				return []approvals.Event{ev}, err
			})
		})
		wg.Go(func() {
			_, errD = rs[1].Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Deny(rev, "no", t0)
				return []approvals.Event{ev}, err
			})
		})
		wg.Wait()
		if (errA == nil) == (errD == nil) {
			t.Fatalf("approve = %v, deny = %v; want exactly one to succeed", errA, errD)
		}
		evs, _, err := rs[1].Audit(ctx, approvals.AuditQuery{RequestID: r.ID})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != 2 {
			t.Errorf("request %d has events %v; want received and one decision", i, evs)
		}
		got, _ := rs[1].Get(ctx, r.ID)
		if (errA == nil && got.Status != approvals.StatusApproved) || (errD == nil && got.Status != approvals.StatusDenied) {
			t.Errorf("stored status %s disagrees with the winner", got.Status)
		}
	}
}

// TestClaimsAcrossReplicas has three replicas claim one queue at once:
// every job is claimed exactly once while the leases hold.
func TestClaimsAcrossReplicas(t *testing.T) {
	rs := replicas(t, 3)
	ctx := context.Background()
	rev := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}
	const jobs = 120
	for i := range jobs {
		r, _, err := rs[i%3].Create(ctx, signUp(i), received(t0))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := rs[i%3].Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
			ev, err := r.Approve(rev, "", t0, time.Hour)
			return []approvals.Event{ev}, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	var mu sync.Mutex
	claimed := map[string]int{}
	var wg sync.WaitGroup
	for w := range 9 {
		wg.Go(func() {
			for {
				got, err := rs[w%3].ClaimJobs(ctx, t0.Add(time.Minute), time.Hour, 5)
				if err != nil {
					t.Error(err)
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				for _, r := range got {
					claimed[r.ID]++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if len(claimed) != jobs {
		t.Errorf("%d jobs claimed; want %d", len(claimed), jobs)
	}
	for id, n := range claimed {
		if n != 1 {
			t.Errorf("job %s claimed %d times", id, n)
		}
	}
	n, err := rs[0].CountJobs(ctx, t0.Add(time.Minute))
	if err != nil || n.Leased != jobs {
		t.Errorf("CountJobs = %+v, %v; want %d leased", n, err, jobs)
	}
	// After the leases expire, the jobs are claimable again (a dead
	// replica's jobs are taken over).
	again, err := rs[1].ClaimJobs(ctx, t0.Add(2*time.Hour), time.Hour, jobs+1)
	if err != nil || len(again) != jobs {
		t.Errorf("claim after expiry = %d jobs, %v; want %d", len(again), err, jobs)
	}
}

// TestAnnouncements checks the outbox holds the announcement of each
// announced event, enqueued with the change, and none for the others.
func TestAnnouncements(t *testing.T) {
	s := replicas(t, 1)[0]
	ctx := context.Background()
	r, _, err := s.Create(ctx, signUp(1), received(t0))
	if err != nil {
		t.Fatal(err)
	}
	rev := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}
	approved, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Approve(rev, "", t0, time.Hour)
		return []approvals.Event{ev, {At: t0, Type: approvals.EventProvisioningStep, Actor: approvals.ProvisionerActor}}, err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.AppendEvents(ctx, []approvals.Event{{At: t0, Type: approvals.EventApproved, RequestID: r.ID}}); err != nil {
		t.Fatal(err)
	}
	ds, next, err := s.ListDeliveries(ctx, approvals.DeliveryQuery{})
	if err != nil || next != "" {
		t.Fatalf("ListDeliveries = %v, %q", err, next)
	}
	if len(ds) != 2 {
		t.Fatalf("deliveries = %d; want the announcements of received and approved", len(ds))
	}
	evs, _, _ := s.Audit(ctx, approvals.AuditQuery{RequestID: r.ID})
	if ds[0].ID != fmt.Sprintf("evt-%d", evs[0].Seq) || ds[0].Kind != string(approvals.EventReceived) || ds[0].Request.Version != 1 {
		t.Errorf("first announcement = %s %s v%d", ds[0].ID, ds[0].Kind, ds[0].Request.Version)
	}
	if ds[1].Kind != string(approvals.EventApproved) || ds[1].Request.Version != approved.Version || ds[1].Event.Seq != evs[1].Seq {
		t.Errorf("second announcement = %s %s v%d", ds[1].ID, ds[1].Kind, ds[1].Request.Version)
	}
	// Claim, lease, and a lost lease refused.
	got, err := s.ClaimDeliveries(ctx, t0, time.Minute, 10)
	if err != nil || len(got) != 2 {
		t.Fatalf("ClaimDeliveries = %d, %v", len(got), err)
	}
	if again, _ := s.ClaimDeliveries(ctx, t0.Add(time.Second), time.Minute, 10); len(again) != 0 {
		t.Errorf("claimed leased deliveries again: %d", len(again))
	}
	owner := got[0].Lease.Owner
	sent, err := s.UpdateDelivery(ctx, got[0].ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
		if !d.Lease.HeldBy(owner) {
			return nil, approvals.Errorf(approvals.EConflict, "lease lost")
		}
		d.MarkSent(t0.Add(time.Second))
		return nil, nil
	})
	if err != nil || sent.State != approvals.DeliverySent || sent.Version != 3 {
		t.Fatalf("UpdateDelivery = %+v, %v", sent, err)
	}
	counts, err := s.CountDeliveries(ctx, t0.Add(time.Second))
	if err != nil || counts[approvals.ChannelAnnouncement] != (approvals.DeliveryCounts{Leased: 1, Sent: 1}) {
		t.Errorf("CountDeliveries = %+v, %v", counts, err)
	}
	if n, err := s.PurgeDeliveries(ctx, t0.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("PurgeDeliveries = %d, %v; want 1", n, err)
	}
}

func TestUnreachable(t *testing.T) {
	_, err := postgres.Open(context.Background(), "postgres://u:secret-pw@127.0.0.1:1/db?connect_timeout=2", postgres.Options{})
	if approvals.Code(err) != approvals.EUnavailable {
		t.Errorf("Open of an unreachable server = %v; want code unavailable", err)
	}
	if err != nil && strings.Contains(err.Error(), "secret-pw") {
		t.Errorf("the error shows the password: %v", err)
	}
	if _, err := postgres.Open(context.Background(), "postgres://u:pw@127.0.0.1:1/db?pool_max_conns=many", postgres.Options{}); approvals.Code(err) != approvals.EInvalid || strings.Contains(err.Error(), ":pw@") {
		t.Errorf("Open with a bad pool setting = %v; want code invalid, no password", err)
	}
}

// TestDatabaseRestart stops the server under an open store: calls fail
// with code unavailable, and succeed again once it is back, without
// reopening the store.
func TestDatabaseRestart(t *testing.T) {
	c := pgtest.StartClusterFor(t)
	s, err := postgres.Open(context.Background(), c.URL("postgres"), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	if _, _, err := s.Create(ctx, signUp(1), received(t0)); err != nil {
		t.Fatal(err)
	}
	if err := c.Stop(); err != nil {
		t.Fatal(err)
	}
	if _, err := s.FindStanding(ctx, signUp(1).Key()); approvals.Code(err) != approvals.EUnavailable {
		t.Errorf("FindStanding while the database is down = %v; want code unavailable", err)
	}
	if _, _, err := s.Create(ctx, signUp(2), received(t0)); approvals.Code(err) != approvals.EUnavailable {
		t.Errorf("Create while the database is down = %v; want code unavailable", err)
	}
	if err := s.Ping(ctx); approvals.Code(err) != approvals.EUnavailable {
		t.Errorf("Ping while the database is down = %v; want code unavailable", err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		_, err := s.FindStanding(ctx, signUp(1).Key())
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the store did not recover after the restart: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, created, err := s.Create(ctx, signUp(2), received(t0)); err != nil || !created {
		t.Errorf("Create after the restart = %v, %v", created, err)
	}
}

func TestRedact(t *testing.T) {
	for in, want := range map[string]string{
		"postgres://app:s3cret@db:5432/approvals?sslmode=require": "postgres://app:xxxxx@db:5432/approvals?sslmode=require",
		"postgres://db/approvals?password=s3cret&user=app":        "postgres://db/approvals?password=xxxxx&user=app",
		"postgres://app@db/approvals":                             "postgres://app@db/approvals",
	} {
		if got := postgres.Redact(in); got != want {
			t.Errorf("Redact(%q) = %q; want %q", in, got, want)
		}
	}
}
