package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// claim calls ClaimJobs and fails the test on an error.
func claim(t *testing.T, s approvals.Store, now time.Time, lease time.Duration, limit int) []*approvals.Request {
	t.Helper()
	return claimed(t, "ClaimJobs", s.ClaimJobs, now, lease, limit)
}

// claimed calls op, a claim of leased work (ClaimJobs, ClaimDeliveries),
// and fails the test on an error.
func claimed[T any](t *testing.T, op string, claim func(context.Context, time.Time, time.Duration, int) ([]T, error), now time.Time, lease time.Duration, limit int) []T {
	t.Helper()
	got, err := claim(context.Background(), now, lease, limit)
	if err != nil {
		t.Fatalf("%s(%v, %s, %d) = %v", op, now.Format(time.TimeOnly), lease, limit, err)
	}
	return got
}

// checkClaimed fails unless jobs are the requests with the given ids, in
// that order, each leased until until under a token of its own, and stored
// as returned.
func checkClaimed(t *testing.T, s approvals.Store, what string, jobs []*approvals.Request, until time.Time, want ...string) {
	t.Helper()
	if got := ids(jobs); !slices.Equal(got, want) {
		t.Errorf("%s claimed %v; want %v", what, got, want)
	}
	for _, j := range jobs {
		l := j.Provisioning.Lease
		if l == nil || l.Owner == "" || !l.Until.Equal(until) {
			t.Errorf("%s: job %s has lease %+v; want a token, until %v", what, j.ID, l, until)
			continue
		}
		stored, err := s.Get(context.Background(), j.ID)
		if err != nil {
			t.Fatal(err)
		}
		checkSame(t, what+": claimed job as stored", j, stored)
	}
}

func checkNextJobAt(t *testing.T, s approvals.Store, what string, want time.Time) {
	t.Helper()
	checkNextAt(t, what, "NextJobAt", s.NextJobAt, want)
}

// checkNextAt fails unless op, which says when leased work is next
// claimable (NextJobAt, NextDeliveryAt), answers want (zero for never).
func checkNextAt(t *testing.T, what, op string, next func(context.Context) (time.Time, bool, error), want time.Time) {
	t.Helper()
	at, ok, err := next(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if ok != !want.IsZero() || !at.Equal(want) {
		t.Errorf("%s: %s = %v, %v; want %v, %v", what, op, at, ok, want, !want.IsZero())
	}
}

func checkCounts(t *testing.T, s approvals.Store, what string, now time.Time, want approvals.JobCounts) {
	t.Helper()
	got, err := s.CountJobs(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("%s: CountJobs(%v) = %+v; want %+v", what, now.Format(time.TimeOnly), got, want)
	}
}

// leased returns a mutation that fails with EConflict unless the request's
// lease is the one with token owner, as a worker's writes must, then
// applies m.
func leased(owner string, m approvals.Mutation) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		if !r.Provisioning.Lease.HeldBy(owner) {
			return nil, approvals.Errorf(approvals.EConflict, "lease %s of request %s was lost", owner, r.ID)
		}
		return m(r)
	}
}

// testClaims checks ClaimJobs on one claimer: what is claimable, the limit,
// the lease stored with the job, its expiry, renewal and release, and how
// DueJobs, NextJobAt and CountJobs see leased jobs.
func testClaims(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	const lease = 5 * time.Minute
	rs := createMany(t, s, 0, 7, c)
	// rs[0..3] due at 1, 2, 3 and 4; rs[4] rescheduled to 100; rs[5]
	// pending; rs[6] denied.
	for i := range 5 {
		rs[i] = update(t, s, rs[i].ID, approve(at(i+1)))
	}
	rs[4] = update(t, s, rs[4].ID, scheduleRetry(at(100), at(6)))
	rs[6] = update(t, s, rs[6].ID, deny(at(1), "spam"))
	id := func(i int) string { return rs[i].ID }

	if _, err := s.ClaimJobs(ctx, at(10), 0, 10); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("ClaimJobs with no lease = %v; want an EInvalid error", err)
	}
	if jobs := claim(t, s, at(10), lease, 0); len(jobs) != 0 {
		t.Errorf("ClaimJobs(limit 0) claimed %v", ids(jobs))
	}
	if jobs := claim(t, s, at(0), lease, 10); len(jobs) != 0 {
		t.Errorf("ClaimJobs before any job is due claimed %v", ids(jobs))
	}
	checkCounts(t, s, "before claims", at(10), approvals.JobCounts{Due: 4, Scheduled: 1})
	eventsBefore := len(auditOf(t, s, ""))

	// The limit, soonest first; then the rest, never a leased job twice.
	first := claim(t, s, at(10), lease, 2)
	checkClaimed(t, s, "first claim (limit 2)", first, at(15), id(0), id(1))
	if len(first) == 2 && first[0].Provisioning.Lease.Owner == first[1].Provisioning.Lease.Owner {
		t.Errorf("two claimed jobs share the lease token %s", first[0].Provisioning.Lease.Owner)
	}
	if len(first) > 0 && first[0].Version != rs[0].Version+1 {
		t.Errorf("claimed job has version %d; want %d (one more than before)", first[0].Version, rs[0].Version+1)
	}
	if due, err := s.DueJobs(ctx, at(10), 10); err != nil || !slices.Equal(ids(due), []string{id(2), id(3)}) {
		t.Errorf("DueJobs with two jobs leased = %v, %v; want the two others", ids(due), err)
	}
	checkCounts(t, s, "two leased", at(10), approvals.JobCounts{Due: 2, Leased: 2, Scheduled: 1})
	second := claim(t, s, at(11), lease, 10)
	checkClaimed(t, s, "second claim", second, at(16), id(2), id(3))
	if jobs := claim(t, s, at(14), lease, 10); len(jobs) != 0 {
		t.Errorf("ClaimJobs with every due job leased claimed %v", ids(jobs))
	}
	if n := len(auditOf(t, s, "")); n != eventsBefore {
		t.Errorf("claims appended %d audit events; want none", n-eventsBefore)
	}
	checkNextJobAt(t, s, "all leased", at(15))
	checkCounts(t, s, "all leased", at(14), approvals.JobCounts{Leased: 4, Scheduled: 1})
	if len(first) != 2 || len(second) != 2 {
		t.FailNow()
	}
	owner := func(r *approvals.Request) string { return r.Provisioning.Lease.Owner }

	// A worker's write under its lease goes through; the lease stays.
	r := update(t, s, id(0), leased(owner(first[0]), completeStep(approvals.StepLookedUp, approvals.StepResult{}, at(12))))
	if !r.Provisioning.Lease.HeldBy(owner(first[0])) {
		t.Errorf("a step write lost the lease: %+v", r.Provisioning.Lease)
	}

	// Renewal: a later Until keeps the job from being claimed at its
	// first expiry.
	update(t, s, id(1), leased(owner(first[1]), func(r *approvals.Request) ([]approvals.Event, error) {
		r.Provisioning.Lease.Until = at(30)
		return nil, nil
	}))

	// Release by rescheduling: claimable again at the new time, not
	// before, whatever the old lease said.
	r = update(t, s, id(2), leased(owner(second[0]), scheduleRetry(at(13), at(12))))
	if r.Provisioning.Lease != nil {
		t.Errorf("ScheduleRetry left the lease %+v", r.Provisioning.Lease)
	}
	checkNextJobAt(t, s, "one rescheduled", at(13))
	checkClaimed(t, s, "rescheduled, before its time", claim(t, s, at(12), lease, 10), time.Time{})
	checkClaimed(t, s, "rescheduled, at its time", claim(t, s, at(13), lease, 10), at(18), id(2))

	// Release by finishing: no longer a job at all.
	update(t, s, id(3), leased(owner(second[1]), completeStep(approvals.StepCreated, approvals.StepResult{UserID: "u3"}, at(13))))
	r = update(t, s, id(3), leased(owner(second[1]), succeed(at(13))))
	if r.Provisioning.Lease != nil {
		t.Errorf("SucceedProvisioning left the lease %+v", r.Provisioning.Lease)
	}

	// Expiry: at 15 the first claim's lease on rs[0] has expired and the
	// job is claimed again under a new token; rs[1]'s renewed one holds.
	checkNextJobAt(t, s, "before the expiry", at(15))
	checkCounts(t, s, "at the expiry", at(15), approvals.JobCounts{Due: 1, Leased: 2, Scheduled: 1})
	again := claim(t, s, at(15), lease, 10)
	checkClaimed(t, s, "after the expiry", again, at(20), id(0))
	if len(again) != 1 {
		t.FailNow()
	}
	if owner(again[0]) == owner(first[0]) {
		t.Errorf("the job was claimed again under the same token %s", owner(again[0]))
	}
	if again[0].Provisioning.Step != approvals.StepLookedUp {
		t.Errorf("the claim lost the job's step: %+v", again[0].Provisioning)
	}
	// The first claimer's writes are refused now, and change nothing.
	_, err := s.Update(ctx, id(0), leased(owner(first[0]), fail(at(16))))
	checkCode(t, "a write under an expired and retaken lease", err, approvals.EConflict)
	stored, _ := s.Get(ctx, id(0))
	checkSame(t, "job after a refused write", stored, again[0])

	// Failing releases too.
	r = update(t, s, id(0), leased(owner(again[0]), fail(at(16))))
	if r.Provisioning.Lease != nil {
		t.Errorf("FailProvisioning left the lease %+v", r.Provisioning.Lease)
	}
	// An admin's retry makes it a job again, unleased, due at once.
	update(t, s, id(0), retry(at(17)))
	checkCounts(t, s, "after the retry", at(17), approvals.JobCounts{Due: 1, Leased: 2, Scheduled: 1})
	checkClaimed(t, s, "after the retry", claim(t, s, at(17), lease, 10), at(22), id(0))

	// rs[2] and rs[0] have expired leases at 29; the renewed lease of
	// rs[1] expires at 30; rs[4] is due at 100.
	checkNextJobAt(t, s, "renewed lease", at(18))
	checkClaimed(t, s, "renewed lease, before it expires", claim(t, s, at(29), lease, 10), at(34), id(2), id(0))
	checkClaimed(t, s, "renewed lease, expired", claim(t, s, at(30), lease, 10), at(35), id(1))
	checkClaimed(t, s, "not due", claim(t, s, at(99), lease, 10), at(104), id(1), id(2), id(0))
	checkClaimed(t, s, "due", claim(t, s, at(100), lease, 10), at(105), id(4))
	checkStore(t, s)
}

// checkStore runs the store's own consistency check, if it has one.
func checkStore(t *testing.T, s approvals.Store) {
	t.Helper()
	if ch, ok := s.(interface{ Check() error }); ok {
		if err := ch.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
}

// testClaimsConcurrent races claimers for jobs (see claimRace).
func testClaimsConcurrent(t *testing.T, s approvals.Store, c *Clock) {
	const n = 60
	rs := createMany(t, s, 0, n, c)
	var all []string
	for i, r := range rs {
		update(t, s, r.ID, approve(base.Add(time.Duration(i)*time.Second)))
		all = append(all, r.ID)
	}
	claimRace[*approvals.Request]{
		op:    "ClaimJobs",
		claim: s.ClaimJobs,
		lease: func(j *approvals.Request) (string, *approvals.Lease) { return j.ID, j.Provisioning.Lease },
		allLeased: func(now time.Time) {
			checkCounts(t, s, "after the race", now, approvals.JobCounts{Leased: n})
		},
		nextAt: func(want time.Time) { checkNextJobAt(t, s, "every job leased", want) },
	}.run(t, all, base.Add(time.Hour), time.Minute)
	checkStore(t, s)
}

// claimRace runs two claimers on one store, each in its own goroutines
// as two workers would, competing for the same leased work (jobs,
// deliveries): every item is claimed by exactly one of them while the
// leases hold, and once the leases have expired every item is claimed
// again, once.
type claimRace[T any] struct {
	// op names the claim in messages; claim is it.
	op    string
	claim func(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]T, error)
	// lease returns a claimed item's id and lease.
	lease func(item T) (string, *approvals.Lease)
	// allLeased checks the counts after a round at now: every item
	// leased.
	allLeased func(now time.Time)
	// nextAt checks that the next claimable time is want.
	nextAt func(want time.Time)
}

// run races the claimers for the items with the ids all at now, checks
// that the next claimable time is the leases' end, and races them again
// then.
func (r claimRace[T]) run(t *testing.T, all []string, now time.Time, lease time.Duration) {
	t.Helper()
	r.round(t, all, now, lease)
	r.nextAt(now.Add(lease))
	r.round(t, all, now.Add(lease), lease)
}

func (r claimRace[T]) round(t *testing.T, all []string, now time.Time, lease time.Duration) {
	t.Helper()
	n := len(all)
	var mu sync.Mutex
	claims := map[string][]string{} // item id -> claimer names
	tokens := map[string]bool{}
	total := 0
	var wg sync.WaitGroup
	errs := make(chan error, 4)
	for w := range 4 { // two claimers, two workers each
		name := fmt.Sprintf("claimer-%d", w%2)
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				got, err := r.claim(context.Background(), now, lease, 1+w)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				mu.Lock()
				total += len(got)
				stop := total > 2*n // a store that claims items twice would never stop
				for _, item := range got {
					id, l := r.lease(item)
					claims[id] = append(claims[id], name)
					if l != nil {
						tokens[l.Owner] = true
					}
				}
				mu.Unlock()
				if stop {
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("%s: %v", r.op, err)
	}
	var got []string
	per := map[string]int{}
	for id, by := range claims {
		got = append(got, id)
		if len(by) != 1 {
			t.Errorf("%s: %s claimed %d times, by %v", r.op, id, len(by), by)
		}
		per[by[0]]++
	}
	slices.Sort(got)
	if want := slices.Sorted(slices.Values(all)); !slices.Equal(got, want) {
		t.Errorf("%s claimed %d distinct items of %d", r.op, len(got), n)
	}
	if len(tokens) != n {
		t.Errorf("%s: %d distinct lease tokens for %d claims", r.op, len(tokens), n)
	}
	t.Logf("%s: claims per claimer: %v", r.op, per)
	r.allLeased(now)
}
