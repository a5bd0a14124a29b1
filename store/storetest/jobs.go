package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

func testJobs(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	rs := createMany(t, s, 0, 8, c)
	// rs[0..3] are approved out of order; rs[4] equals rs[1]'s time; rs[5]
	// stays pending, rs[6] is denied, rs[7] is auto-approved (by Entra).
	for i, m := range map[int]int{0: 30, 1: 10, 2: 20, 3: 40, 4: 10} {
		rs[i] = update(t, s, rs[i].ID, approve(at(m)))
	}
	rs[6] = update(t, s, rs[6].ID, deny(at(1), "spam"))
	rs[7] = update(t, s, rs[7].ID, func(r *approvals.Request) ([]approvals.Event, error) {
		r.Status = approvals.StatusApproved
		r.Decision = &approvals.Decision{By: "policy:auto", At: at(1), Automatic: true}
		r.Provisioning = approvals.Provisioning{State: approvals.ProvisioningByEntra}
		return nil, nil
	})
	tie := []string{rs[1].ID, rs[4].ID}
	slices.Sort(tie)

	type check struct {
		now   time.Time
		limit int
		want  []string
	}
	tests := []struct {
		name   string
		change func()
		next   time.Time // zero: no job
		checks []check
	}{
		{"Approved", func() {}, at(10), []check{
			{at(0), 10, nil},
			{at(10), 10, tie},
			{at(10), 1, tie[:1]},
			{at(25), 10, append(slices.Clone(tie), rs[2].ID)},
			{at(1000), 10, append(slices.Clone(tie), rs[2].ID, rs[0].ID, rs[3].ID)},
			{at(1000), 4, append(slices.Clone(tie), rs[2].ID, rs[0].ID)},
			{at(1000), 0, nil},
		}},
		{"Rescheduled", func() {
			update(t, s, rs[1].ID, scheduleRetry(at(35), at(11)))
			update(t, s, rs[4].ID, scheduleRetry(at(5), at(11)))
		}, at(5), []check{
			{at(20), 10, []string{rs[4].ID, rs[2].ID}},
			{at(35), 10, []string{rs[4].ID, rs[2].ID, rs[0].ID, rs[1].ID}},
		}},
		{"SucceededAndFailed", func() {
			update(t, s, rs[4].ID, completeStep(approvals.StepCreated, approvals.StepResult{UserID: "u4"}, at(12)))
			update(t, s, rs[4].ID, succeed(at(12)))
			update(t, s, rs[2].ID, fail(at(12)))
		}, at(30), []check{
			{at(1000), 10, []string{rs[0].ID, rs[1].ID, rs[3].ID}},
		}},
		{"Retried", func() {
			update(t, s, rs[2].ID, retry(at(31)))
		}, at(30), []check{
			{at(31), 10, []string{rs[0].ID, rs[2].ID}},
		}},
		{"FailedMutationKeepsJob", func() {
			_, err := s.Update(ctx, rs[0].ID, func(r *approvals.Request) ([]approvals.Event, error) {
				r.Provisioning.State = approvals.ProvisioningSucceeded
				return nil, errors.New("refused")
			})
			if err == nil {
				t.Error("Update with a refused mutation succeeded")
			}
		}, at(30), []check{
			{at(30), 10, []string{rs[0].ID}},
		}},
		{"AllDone", func() {
			for _, i := range []int{0, 1, 2, 3} {
				update(t, s, rs[i].ID, fail(at(50)))
			}
		}, time.Time{}, []check{
			{at(1000), 10, nil},
		}},
		{"ImportedInProgress", func() {
			r := person(100, at(60))
			r.ID = "imported-1"
			r.Status = approvals.StatusApproved
			r.Decision = &approvals.Decision{By: "reviewer", At: at(60)}
			r.Provisioning = approvals.Provisioning{State: approvals.ProvisioningInProgress, NextAttemptAt: at(61)}
			create(t, s, r)
		}, at(61), []check{
			{at(60), 10, nil},
			{at(61), 10, []string{"imported-1"}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.change()
			next, ok, err := s.NextJobAt(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if ok != !tt.next.IsZero() || !next.Equal(tt.next) {
				t.Errorf("NextJobAt = %v, %v; want %v, %v", next, ok, tt.next, !tt.next.IsZero())
			}
			for _, ch := range tt.checks {
				jobs, err := s.DueJobs(ctx, ch.now, ch.limit)
				if err != nil {
					t.Fatal(err)
				}
				if got := ids(jobs); !slices.Equal(got, ch.want) {
					t.Errorf("DueJobs(%v, %d) = %v; want %v", ch.now.Format(time.TimeOnly), ch.limit, got, ch.want)
				}
				for _, j := range jobs {
					stored, _ := s.Get(ctx, j.ID)
					checkSame(t, "due job", j, stored)
				}
			}
		})
	}
}

func testDecisions(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	rs := createMany(t, s, 0, 7, c)
	// Decision times: rs[0] approved at 3, rs[1] denied at 1, rs[2] approved
	// at 3 (ties order by id), rs[3] pending, rs[4] denied at 2 then
	// reopened (no decision), rs[5] denied at 4, reopened, approved at 6,
	// rs[6] auto-denied at its creation (5).
	rs[0] = update(t, s, rs[0].ID, approve(at(3)))
	rs[1] = update(t, s, rs[1].ID, deny(at(1), "spam"))
	rs[2] = update(t, s, rs[2].ID, approve(at(3)))
	update(t, s, rs[4].ID, deny(at(2), "spam"))
	rs[4] = update(t, s, rs[4].ID, reopen(at(2)))
	update(t, s, rs[5].ID, deny(at(4), "spam"))
	update(t, s, rs[5].ID, reopen(at(5)))
	rs[5] = update(t, s, rs[5].ID, approve(at(6)))
	auto := person(6+100, at(5))
	auto.Status = approvals.StatusDenied
	auto.Decision = &approvals.Decision{By: "policy:auto-deny-domain:example.com", At: at(5), Automatic: true}
	rs[6] = create(t, s, auto)

	three := []string{rs[0].ID, rs[2].ID}
	slices.Sort(three)
	all := slices.Concat([]string{rs[1].ID}, three, []string{rs[6].ID, rs[5].ID})

	tests := []struct {
		name string
		q    approvals.DecisionQuery
		want []string
	}{
		{"All", approvals.DecisionQuery{}, all},
		{"Approved", approvals.DecisionQuery{Status: approvals.StatusApproved}, slices.Concat(three, []string{rs[5].ID})},
		{"Denied", approvals.DecisionQuery{Status: approvals.StatusDenied}, []string{rs[1].ID, rs[6].ID}},
		{"Since", approvals.DecisionQuery{Since: at(3)}, all[1:]},
		{"SinceBetween", approvals.DecisionQuery{Since: at(3).Add(time.Nanosecond)}, all[3:]},
		{"Until", approvals.DecisionQuery{Until: at(3)}, all[:1]},
		{"UntilAfter", approvals.DecisionQuery{Until: at(3).Add(time.Nanosecond)}, all[:3]},
		{"SinceUntil", approvals.DecisionQuery{Since: at(2), Until: at(6)}, all[1:4]},
		{"DeniedSinceUntil", approvals.DecisionQuery{Status: approvals.StatusDenied, Since: at(2), Until: at(6)}, []string{rs[6].ID}},
		{"Empty", approvals.DecisionQuery{Since: at(7)}, nil},
		{"Backwards", approvals.DecisionQuery{Since: at(6), Until: at(1)}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []approvals.DecisionRecord
			err := s.Decisions(ctx, tt.q, func(r approvals.DecisionRecord) error {
				got = append(got, r)
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(recordIDs(got), tt.want) {
				t.Errorf("Decisions(%+v) = %v\nwant %v", tt.q, recordIDs(got), tt.want)
			}
			for _, r := range got {
				stored, _ := s.Get(ctx, r.ID)
				checkRecord(t, r, stored)
			}
		})
	}
	t.Run("PendingRefused", func(t *testing.T) {
		err := s.Decisions(ctx, approvals.DecisionQuery{Status: approvals.StatusPending}, func(approvals.DecisionRecord) error { return nil })
		checkCode(t, "Decisions(pending)", err, approvals.EInvalid)
		err = s.Decisions(ctx, approvals.DecisionQuery{Status: "maybe"}, func(approvals.DecisionRecord) error { return nil })
		checkCode(t, "Decisions(maybe)", err, approvals.EInvalid)
	})
	t.Run("StopsAtError", func(t *testing.T) {
		stop := errors.New("client went away")
		calls := 0
		err := s.Decisions(ctx, approvals.DecisionQuery{}, func(approvals.DecisionRecord) error {
			calls++
			if calls == 2 {
				return stop
			}
			return nil
		})
		if !errors.Is(err, stop) || calls != 2 {
			t.Errorf("Decisions = %v after %d calls; want fn's error after 2", err, calls)
		}
	})
	t.Run("Canceled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(ctx)
		calls := 0
		err := s.Decisions(ctx, approvals.DecisionQuery{}, func(approvals.DecisionRecord) error {
			calls++
			cancel()
			return nil
		})
		if err == nil || calls > 1 {
			t.Errorf("Decisions with a canceled context = %v after %d calls; want an error after at most 1", err, calls)
		}
	})
	t.Run("Many", func(t *testing.T) {
		// Enough decisions to cross any internal batch boundary.
		more := createMany(t, s, 1000, 700, c)
		want := slices.Clone(all)
		for i, r := range more {
			if i%2 == 0 {
				update(t, s, r.ID, approve(at(100+i)))
			} else {
				update(t, s, r.ID, deny(at(100+i), "spam"))
			}
			want = append(want, r.ID)
		}
		var got []string
		if err := s.Decisions(ctx, approvals.DecisionQuery{}, func(r approvals.DecisionRecord) error {
			got = append(got, r.ID)
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("Decisions over %d requests: got %d ids, want %d (first difference at %s)", len(want), len(got), len(want), firstDiff(got, want))
		}
	})
}

func firstDiff(a, b []string) string {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return fmt.Sprint(i)
		}
	}
	return fmt.Sprint(min(len(a), len(b)))
}

// recordIDs returns the ids of export rows.
func recordIDs(recs []approvals.DecisionRecord) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.ID
	}
	return out
}

// checkRecord fails unless rec is the export row of the stored request as
// it is now: a store that keeps rows beside its index must rewrite them
// when provisioning changes the request.
func checkRecord(t *testing.T, rec approvals.DecisionRecord, stored *approvals.Request) {
	t.Helper()
	if stored == nil {
		t.Errorf("export row %s: no such request", rec.ID)
		return
	}
	want := approvals.NewDecisionRecord(stored)
	if !rec.DecidedAt.Equal(want.DecidedAt) || !rec.CreatedAt.Equal(want.CreatedAt) {
		t.Errorf("export row %s times = %v, %v; want %v, %v", rec.ID, rec.DecidedAt, rec.CreatedAt, want.DecidedAt, want.CreatedAt)
	}
	rec.DecidedAt, rec.CreatedAt, want.DecidedAt, want.CreatedAt = time.Time{}, time.Time{}, time.Time{}, time.Time{}
	if rec != want {
		t.Errorf("export row = %+v\nwant %+v", rec, want)
	}
}
