// Package storetest is the conformance suite every approvals.Store runs: the
// doc comments of approvals.Store are the contract, and each test here
// checks one clause of it. A backend calls Run from its own tests, or
// RunPersistent when its data outlives Close.
package storetest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Opener returns a new, empty store for one test. The store must take the
// time it stamps on changes (UpdatedAt) from clock. The suite closes it.
type Opener func(t *testing.T, clock approvals.Clock) approvals.Store

// PathOpener opens the store kept at path, creating it when the file does
// not exist; opening the same path again after Close must give back the
// same data. The store must take the time it stamps on changes from clock.
type PathOpener func(t *testing.T, path string, clock approvals.Clock) approvals.Store

// Run runs the conformance suite against the stores open returns, one new
// store per test. Tests run in parallel.
func Run(t *testing.T, open Opener) {
	t.Helper()
	tests := []struct {
		name string
		fn   func(t *testing.T, s approvals.Store, c *Clock)
	}{
		{"Lookups", testLookups},
		{"CreateStoresCopy", testCreateStoresCopy},
		{"CreateIdempotent", testCreateIdempotent},
		{"CreateConcurrentSamePerson", testCreateConcurrentSamePerson},
		{"CreateRefusals", testCreateRefusals},
		{"UpdateTransitions", testUpdateTransitions},
		{"UpdateMutationErrors", testUpdateMutationErrors},
		{"UpdateVersions", testUpdateVersions},
		{"UpdateConcurrent", testUpdateConcurrent},
		{"ListPaging", testListPaging},
		{"ListLimits", testListLimits},
		{"ListBadQueries", testListBadQueries},
		{"ListStableUnderInserts", testListStableUnderInserts},
		{"Count", testCount},
		{"Jobs", testJobs},
		{"Claims", testClaims},
		{"ClaimsConcurrent", testClaimsConcurrent},
		{"Audit", testAudit},
		{"AuditStragglers", testAuditStragglers},
		{"AuditPaging", testAuditPaging},
		{"AppendEvents", testAppendEvents},
		{"Decisions", testDecisions},
		{"RandomOperations", testRandomOperations},
		{"OutboxEnqueue", testOutboxEnqueue}, {"OutboxAnnounce", testOutboxAnnounce}, {"OutboxClaims", testOutboxClaims},
		{"OutboxClaimsConcurrent", testOutboxClaimsConcurrent}, {"OutboxList", testOutboxList}, {"OutboxPurge", testOutboxPurge},
		{"Sessions", testSessions}, {"SessionsPurge", testSessionsPurge}, {"SessionsBounded", testSessionsBounded}, {"CookieKeys", testCookieKeys},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			c := NewClock(base)
			s := open(t, c)
			t.Cleanup(func() {
				if err := s.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			tt.fn(t, s, c)
		})
	}
}

// RunPersistent runs Run on stores kept in a new file each, and the tests
// that close a store and open its file again.
func RunPersistent(t *testing.T, open PathOpener) {
	t.Helper()
	Run(t, func(t *testing.T, c approvals.Clock) approvals.Store {
		return open(t, filepath.Join(t.TempDir(), "approvals.db"), c)
	})
	t.Run("Reopen", func(t *testing.T) {
		t.Parallel()
		testReopen(t, open)
	})
	t.Run("SessionsReopen", func(t *testing.T) { t.Parallel(); testSessionsReopen(t, open) })
}

// Clock is a fake approvals.Clock that moves only when told to. It is safe
// for concurrent use.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a Clock showing t.
func NewClock(t time.Time) *Clock { return &Clock{now: t} }

// Now implements approvals.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// base is when every test starts: a fixed instant in UTC, so that times
// compare equal after a store encodes and decodes them.
var base = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

var (
	reviewer = approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-reviewer", Name: "Ada Reviewer"}
	admin    = approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-admin", Name: "Grace Admin", Admin: true}
)

const deadline = 24 * time.Hour

// person returns the sign-up request of the i-th test person, created at
// at. Even people come with a federated identity, odd ones without.
func person(i int, at time.Time) *approvals.Request {
	r := &approvals.Request{
		Source:      approvals.SourceSignUp,
		Email:       fmt.Sprintf("person%05d@example.com", i),
		DisplayName: fmt.Sprintf("Person %d", i),
		Claims: map[string]any{
			"city":                        "Redmond",
			"extension_0123abcd_Role":     "supplier",
			"extension_0123abcd_Number":   float64(i),
			"extension_0123abcd_Verified": i%3 == 0,
		},
		Locale:       "en-US",
		Status:       approvals.StatusPending,
		CreatedAt:    at,
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
	}
	if i%2 == 0 {
		r.Identity = &approvals.Identity{Issuer: approvals.IssuerGoogle, IssuerAssignedID: fmt.Sprintf("g-%d", i)}
	}
	return r
}

func received(at time.Time) []approvals.Event {
	return []approvals.Event{{At: at, Type: approvals.EventReceived, Actor: approvals.ConnectorActor,
		Details: map[string]string{"source": "signup"}}}
}

// create stores r with a "received" event and fails the test unless the
// store created it.
func create(t *testing.T, s approvals.Store, r *approvals.Request) *approvals.Request {
	t.Helper()
	got, created, err := s.Create(context.Background(), r, received(r.CreatedAt))
	if err != nil || !created {
		t.Fatalf("Create(%s) = created %v, %v; want a new request", r.Email, created, err)
	}
	return got
}

// update applies m and fails the test on any error.
func update(t *testing.T, s approvals.Store, id string, m approvals.Mutation) *approvals.Request {
	t.Helper()
	got, err := s.Update(context.Background(), id, m)
	if err != nil {
		t.Fatalf("Update(%s) = %v", id, err)
	}
	return got
}

// The mutations the tests apply: each runs one state-machine transition.

func approve(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Approve(reviewer, "known supplier", now, deadline)
		return []approvals.Event{ev}, err
	}
}

func deny(now time.Time, reason string) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Deny(reviewer, reason, now)
		return []approvals.Event{ev}, err
	}
}

func reopen(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Reopen(admin, "asked again", now)
		return []approvals.Event{ev}, err
	}
}

func startAttempt(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		return nil, r.StartAttempt()
	}
}

func completeStep(step approvals.ProvisioningStep, res approvals.StepResult, now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.CompleteStep(step, res, now)
		return []approvals.Event{ev}, err
	}
}

func scheduleRetry(at, now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.ScheduleRetry(at, approvals.Failure{Cause: "Graph answered 503", GraphRequestID: "graph-req-1"}, now)
		return []approvals.Event{ev}, err
	}
}

func fail(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.FailProvisioning(approvals.Failure{Cause: "Graph answered 400", GraphRequestID: "graph-req-2"}, now)
		return []approvals.Event{ev}, err
	}
}

func succeed(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.SucceedProvisioning(now)
		return []approvals.Event{ev}, err
	}
}

func retry(now time.Time) approvals.Mutation {
	return func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.RetryProvisioning(admin, now, deadline)
		return []approvals.Event{ev}, err
	}
}

// sameJSON reports whether a and b encode to the same JSON: the form every
// store may keep, so that times compare by instant and nil equals empty.
func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<%v>", err)
	}
	return string(b)
}

// checkSame fails the test when got and want differ in their JSON form.
func checkSame(t *testing.T, what string, got, want any) {
	t.Helper()
	if !sameJSON(got, want) {
		t.Errorf("%s:\n got %s\nwant %s", what, mustJSON(got), mustJSON(want))
	}
}

// checkCode fails the test unless err carries the given code.
func checkCode(t *testing.T, what string, err error, want approvals.ErrorCode) {
	t.Helper()
	if got := approvals.Code(err); got != want {
		t.Errorf("%s: error %v has code %q; want %q", what, err, got, want)
	}
}

// auditOf returns every event of the request with the given id (all events
// when id is empty).
func auditOf(t *testing.T, s approvals.Store, id string) []approvals.Event {
	t.Helper()
	var all []approvals.Event
	q := approvals.AuditQuery{RequestID: id, Limit: approvals.MaxPageSize}
	for {
		evs, next, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatalf("Audit(%+v) = %v", q, err)
		}
		all = append(all, evs...)
		if next == 0 {
			return all
		}
		q.AfterSeq = next
	}
}

func eventTypes(evs []approvals.Event) []approvals.EventType {
	out := make([]approvals.EventType, 0, len(evs))
	for _, ev := range evs {
		out = append(out, ev.Type)
	}
	return out
}

func ids(rs []*approvals.Request) []string {
	out := make([]string, 0, len(rs))
	for _, r := range rs {
		out = append(out, r.ID)
	}
	return out
}
