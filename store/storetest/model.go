package storetest

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// model is what a store must hold after a sequence of operations, kept
// independently of the store: the requests by id, and how many events each
// request (and no request, "") has. The indexes a store keeps are checked
// against listings derived from it.
type model struct {
	byID   map[string]*approvals.Request
	ids    []string // in creation order, to pick from
	events map[string]int
	total  int
}

func newModel() *model {
	return &model{byID: map[string]*approvals.Request{}, events: map[string]int{}}
}

// The transitions random operations choose from.
var transitions = []struct {
	name string
	m    func(rng *rand.Rand, now time.Time) approvals.Mutation
}{
	{"approve", func(_ *rand.Rand, now time.Time) approvals.Mutation { return approve(now) }},
	{"deny", func(_ *rand.Rand, now time.Time) approvals.Mutation { return deny(now, "spam") }},
	{"denyWithoutReason", func(_ *rand.Rand, now time.Time) approvals.Mutation { return deny(now, "") }},
	{"reopen", func(_ *rand.Rand, now time.Time) approvals.Mutation { return reopen(now) }},
	{"startAttempt", func(_ *rand.Rand, now time.Time) approvals.Mutation { return startAttempt(now) }},
	{"created", func(rng *rand.Rand, now time.Time) approvals.Mutation {
		return completeStep(approvals.StepCreated, approvals.StepResult{UserID: fmt.Sprintf("user-%d", rng.IntN(1000))}, now)
	}},
	{"group", func(rng *rand.Rand, now time.Time) approvals.Mutation {
		return completeStep(approvals.StepGroups, approvals.StepResult{Group: fmt.Sprintf("group-%d", rng.IntN(3))}, now)
	}},
	{"scheduleRetry", func(rng *rand.Rand, now time.Time) approvals.Mutation {
		return scheduleRetry(now.Add(time.Duration(rng.IntN(7200)-600)*time.Second), now)
	}},
	{"fail", func(_ *rand.Rand, now time.Time) approvals.Mutation { return fail(now) }},
	{"succeed", func(_ *rand.Rand, now time.Time) approvals.Mutation { return succeed(now) }},
	{"retry", func(_ *rand.Rand, now time.Time) approvals.Mutation { return retry(now) }},
	{"rename", func(rng *rand.Rand, _ time.Time) approvals.Mutation {
		name := fmt.Sprintf("Renamed %d", rng.IntN(100)) // chosen once: a store may run a mutation more than once
		return func(r *approvals.Request) ([]approvals.Event, error) {
			r.DisplayName = name
			return nil, nil
		}
	}},
	{"refuse", func(_ *rand.Rand, _ time.Time) approvals.Mutation {
		return func(r *approvals.Request) ([]approvals.Event, error) {
			r.Status = approvals.StatusDenied
			return nil, approvals.Errorf(approvals.EForbidden, "no")
		}
	}},
}

// step runs one random operation on s and the model and fails the test
// when the store's answer differs from the model's.
func (m *model) step(t *testing.T, s approvals.Store, rng *rand.Rand, c *Clock, people int) {
	t.Helper()
	ctx := context.Background()
	now := c.Advance(time.Duration(rng.IntN(3000)) * time.Millisecond)
	switch op := rng.IntN(100); {
	case op < 25 || len(m.ids) == 0:
		r := person(rng.IntN(people), now)
		events := received(now)
		if rng.IntN(10) == 0 {
			r.Status = approvals.StatusApproved
			if rng.IntN(2) == 0 {
				r.Status = approvals.StatusDenied
			}
			r.Decision = &approvals.Decision{By: "policy:rule", ByID: "rule", ActorKind: approvals.ActorPolicy, At: now, Automatic: true}
			r.Provisioning.State = approvals.ProvisioningByEntra
			events = append(events, approvals.Event{At: now, Type: approvals.EventAutoApproved, Actor: approvals.Actor{Kind: approvals.ActorPolicy, ID: "rule"}})
		}
		got, created, err := s.Create(ctx, r, events)
		if err != nil {
			t.Fatalf("Create(%s) = %v", r.Email, err)
		}
		var existing *approvals.Request
		for _, id := range m.ids {
			if m.byID[id].Key() == r.Key() {
				existing = m.byID[id]
			}
		}
		if existing != nil {
			if created {
				t.Fatalf("Create(%s) created a second request for one person", r.Email)
			}
			checkSame(t, "Create of an existing person", got, existing)
			return
		}
		if !created {
			t.Fatalf("Create(%s) = created false for a new person", r.Email)
		}
		want := r.Clone()
		want.ID, want.Version, want.UpdatedAt = got.ID, 1, r.CreatedAt
		checkSame(t, "created request", got, want)
		m.byID[got.ID] = got
		m.ids = append(m.ids, got.ID)
		m.events[got.ID] += len(events)
		m.total += len(events)
	case op < 30:
		var evs []approvals.Event
		for range 1 + rng.IntN(3) {
			id := ""
			if rng.IntN(2) == 0 {
				id = m.ids[rng.IntN(len(m.ids))]
			}
			evs = append(evs, approvals.Event{At: now, Type: approvals.EventBlockedAtCheck, RequestID: id, Actor: approvals.ConnectorActor})
			m.events[id]++
			m.total++
		}
		if err := s.AppendEvents(ctx, evs); err != nil {
			t.Fatal(err)
		}
	default:
		id := m.ids[rng.IntN(len(m.ids))]
		tr := transitions[rng.IntN(len(transitions))]
		mut := tr.m(rng, now)
		cur := m.byID[id]
		want := cur.Clone()
		evs, werr := mut(want)
		got, err := s.Update(ctx, id, mut)
		switch {
		case errors.Is(werr, approvals.ErrUnchanged):
			if !errors.Is(err, approvals.ErrUnchanged) {
				t.Fatalf("%s(%s) = %v; want ErrUnchanged", tr.name, id, err)
			}
			checkSame(t, tr.name+" with ErrUnchanged", got, cur)
		case werr != nil:
			if approvals.Code(err) != approvals.Code(werr) {
				t.Fatalf("%s(%s) = %v; want %v", tr.name, id, err, werr)
			}
		default:
			if err != nil {
				t.Fatalf("%s(%s) = %v", tr.name, id, err)
			}
			want.Version, want.UpdatedAt = cur.Version+1, now
			checkSame(t, tr.name+" result", got, want)
			m.byID[id] = got
			m.events[id] += len(evs)
			m.total += len(evs)
		}
	}
}

// verify compares everything s answers with the model.
func (m *model) verify(t *testing.T, s approvals.Store, c *Clock) {
	t.Helper()
	ctx := context.Background()
	all := make([]*approvals.Request, 0, len(m.ids))
	counts := map[approvals.Status]int{approvals.StatusPending: 0, approvals.StatusApproved: 0, approvals.StatusDenied: 0}
	for _, id := range m.ids {
		want := m.byID[id]
		all = append(all, want)
		counts[want.Status]++
		got, err := s.Get(ctx, id)
		if err != nil {
			t.Fatalf("Get(%s) = %v", id, err)
		}
		checkSame(t, "Get", got, want)
		got, err = s.FindByPerson(ctx, want.Key())
		if err != nil {
			t.Fatalf("FindByPerson(%q) = %v", want.Key(), err)
		}
		checkSame(t, "FindByPerson", got, want)
		if st, err := s.FindStanding(ctx, want.Key()); err != nil || st != want.Standing() {
			t.Fatalf("FindStanding(%q) = %+v, %v; want %+v", want.Key(), st, err, want.Standing())
		}
	}
	if _, err := s.FindByPerson(ctx, "nobody@example.com"); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("FindByPerson(nobody) = %v; want not found", err)
	}
	if _, err := s.FindStanding(ctx, "nobody@example.com"); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("FindStanding(nobody) = %v; want not found", err)
	}
	gotCounts, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	checkSame(t, "Count", gotCounts, counts)

	for _, status := range []approvals.Status{"", approvals.StatusPending, approvals.StatusApproved, approvals.StatusDenied} {
		for _, order := range []approvals.Order{approvals.NewestFirst, approvals.OldestFirst} {
			got := slices.Concat(listAll(t, s, approvals.ListQuery{Status: status, Order: order, Limit: 23}, 23)...)
			if want := expectedList(all, status, order); !slices.Equal(got, want) {
				t.Errorf("List(%s, %s) has %d requests; want %d (first difference at %s)", status, order, len(got), len(want), firstDiff(got, want))
			}
		}
	}

	var jobs []*approvals.Request
	for _, r := range all {
		if r.Status == approvals.StatusApproved && r.Provisioning.State == approvals.ProvisioningInProgress {
			jobs = append(jobs, r)
		}
	}
	slices.SortFunc(jobs, func(a, b *approvals.Request) int {
		return cmp.Or(a.Provisioning.NextAttemptAt.Compare(b.Provisioning.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	next, ok, err := s.NextJobAt(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok != (len(jobs) > 0) || (ok && !next.Equal(jobs[0].Provisioning.NextAttemptAt)) {
		t.Errorf("NextJobAt = %v, %v; want the first of %d jobs", next, ok, len(jobs))
	}
	for _, now := range []time.Time{base, c.Now().Add(-time.Hour), c.Now(), c.Now().Add(time.Hour), c.Now().Add(1000 * time.Hour)} {
		var due []string
		for _, j := range jobs {
			if !j.Provisioning.NextAttemptAt.After(now) {
				due = append(due, j.ID)
			}
		}
		for _, limit := range []int{3, len(jobs) + 1} {
			got, err := s.DueJobs(ctx, now, limit)
			if err != nil {
				t.Fatal(err)
			}
			if want := due[:min(limit, len(due))]; !slices.Equal(ids(got), want) {
				t.Errorf("DueJobs(%v, %d) = %v; want %v", now, limit, ids(got), want)
			}
		}
	}

	mid := base.Add(c.Now().Sub(base) / 2)
	for _, q := range []approvals.DecisionQuery{
		{}, {Status: approvals.StatusApproved}, {Status: approvals.StatusDenied}, {Since: mid}, {Until: mid},
		{Status: approvals.StatusDenied, Since: base.Add(c.Now().Sub(base) / 3), Until: mid},
	} {
		var want []*approvals.Request
		for _, r := range all {
			if r.Decision == nil || r.Status == approvals.StatusPending || (q.Status != "" && r.Status != q.Status) {
				continue
			}
			if (!q.Since.IsZero() && r.Decision.At.Before(q.Since)) || (!q.Until.IsZero() && !r.Decision.At.Before(q.Until)) {
				continue
			}
			want = append(want, r)
		}
		slices.SortFunc(want, func(a, b *approvals.Request) int {
			return cmp.Or(a.Decision.At.Compare(b.Decision.At), strings.Compare(a.ID, b.ID))
		})
		var got []string
		if err := s.Decisions(ctx, q, func(r approvals.DecisionRecord) error {
			got = append(got, r.ID)
			if m, ok := m.byID[r.ID]; ok {
				checkRecord(t, r, m)
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, ids(want)) {
			t.Errorf("Decisions(%+v) has %d requests; want %d (first difference at %s)", q, len(got), len(want), firstDiff(got, ids(want)))
		}
	}

	if n := len(auditOf(t, s, "")); n != m.total {
		t.Errorf("audit has %d events; want %d", n, m.total)
	}
	for i, id := range m.ids {
		if i%17 != 0 {
			continue
		}
		if n := len(auditOf(t, s, id)); n != m.events[id] {
			t.Errorf("request %s has %d events; want %d", id, n, m.events[id])
		}
	}
	if ch, ok := s.(interface{ Check() error }); ok {
		if err := ch.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
	}
}

func testRandomOperations(t *testing.T, s approvals.Store, c *Clock) {
	ops := 3000
	if testing.Short() {
		ops = 600
	}
	rng := rand.New(rand.NewPCG(1, 2))
	m := newModel()
	for i := range ops {
		m.step(t, s, rng, c, 400)
		if i%1000 == 999 {
			m.verify(t, s, c)
		}
	}
	m.verify(t, s, c)
}
