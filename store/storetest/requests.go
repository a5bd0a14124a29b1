package storetest

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

func testLookups(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	google := create(t, s, person(0, base))
	plain := create(t, s, person(1, base.Add(time.Second)))
	if !regexp.MustCompile(`^[0-9a-f]{24}$`).MatchString(google.ID) {
		t.Errorf("Create gave id %q; want approvals.NewID's 24 hex digits", google.ID)
	}

	tests := []struct {
		name string
		get  func() (*approvals.Request, error)
		want *approvals.Request // nil: ENotFound
	}{
		{"Get", func() (*approvals.Request, error) { return s.Get(ctx, google.ID) }, google},
		{"GetOther", func() (*approvals.Request, error) { return s.Get(ctx, plain.ID) }, plain},
		{"GetUnknown", func() (*approvals.Request, error) { return s.Get(ctx, "000000000000000000000000") }, nil},
		{"GetEmpty", func() (*approvals.Request, error) { return s.Get(ctx, "") }, nil},
		{"FindByPerson", func() (*approvals.Request, error) {
			return s.FindByPerson(ctx, approvals.PersonKey(google.Email, google.Identity))
		}, google},
		{"FindByPersonOtherSpelling", func() (*approvals.Request, error) {
			return s.FindByPerson(ctx, approvals.PersonKey(" PERSON00000@Example.com ", &approvals.Identity{Issuer: "Google", IssuerAssignedID: "g-0"}))
		}, google},
		{"FindByPersonNoIdentity", func() (*approvals.Request, error) {
			return s.FindByPerson(ctx, approvals.PersonKey(plain.Email, nil))
		}, plain},
		{"FindByPersonEmailOnlyOfFederated", func() (*approvals.Request, error) {
			return s.FindByPerson(ctx, approvals.PersonKey(google.Email, nil))
		}, nil},
		{"FindByPersonOtherIssuer", func() (*approvals.Request, error) {
			return s.FindByPerson(ctx, approvals.PersonKey(google.Email, &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "g-0"}))
		}, nil},
		{"FindByPersonUnknown", func() (*approvals.Request, error) { return s.FindByPerson(ctx, "nobody@example.com") }, nil},
		{"FindByPersonEmpty", func() (*approvals.Request, error) { return s.FindByPerson(ctx, "") }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.get()
			if tt.want == nil {
				checkCode(t, "lookup of a missing request", err, approvals.ENotFound)
				if got != nil {
					t.Errorf("lookup of a missing request returned %+v", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("lookup = %v", err)
			}
			checkSame(t, "lookup", got, tt.want)
		})
	}
}

func testCreateStoresCopy(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	tests := []struct {
		name string
		in   func() *approvals.Request
	}{
		{"NewID", func() *approvals.Request { return person(0, base) }},
		{"GivenID", func() *approvals.Request { r := person(1, base); r.ID = "given-id-1"; return r }},
		{"GivenVersionIgnored", func() *approvals.Request {
			r := person(2, base)
			r.Version, r.UpdatedAt = 7, base.Add(time.Hour)
			return r
		}},
		{"AutoApproved", func() *approvals.Request {
			r := person(3, base)
			r.Status = approvals.StatusApproved
			r.Decision = &approvals.Decision{By: "policy:auto-approve-domain:example.com", ByID: "auto-approve-domain:example.com",
				ActorKind: approvals.ActorPolicy, At: base, Reason: "matched", Automatic: true}
			r.Provisioning = approvals.Provisioning{State: approvals.ProvisioningByEntra}
			return r
		}},
		{"Minimal", func() *approvals.Request {
			return &approvals.Request{Email: "min@example.com", Status: approvals.StatusPending, CreatedAt: base}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in()
			want := in.Clone()
			got, created, err := s.Create(ctx, in, nil)
			if err != nil || !created {
				t.Fatalf("Create = created %v, %v", created, err)
			}
			if in.ID != "" && got.ID != in.ID {
				t.Errorf("Create changed the given id %q to %q", in.ID, got.ID)
			}
			if got.ID == "" {
				t.Fatal("Create stored no id")
			}
			want.ID, want.Version, want.UpdatedAt = got.ID, 1, want.CreatedAt
			checkSame(t, "Create result", got, want)

			// Neither the caller's value nor the result aliases the stored one.
			if in.Claims != nil {
				in.Claims["city"] = "changed"
			}
			in.DisplayName = "changed"
			got.Status = approvals.StatusDenied
			if got.Claims != nil {
				got.Claims["city"] = "changed too"
			}
			stored, err := s.Get(ctx, want.ID)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, "stored request after the caller changed its copies", stored, want)
			stored.Claims = map[string]any{"x": "y"}
			again, _ := s.Get(ctx, want.ID)
			checkSame(t, "stored request after the caller changed a Get result", again, want)
		})
	}
}

func testCreateIdempotent(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	first := create(t, s, person(0, base))
	before := auditOf(t, s, "")

	tests := []struct {
		name    string
		in      *approvals.Request
		created bool
	}{
		{"SamePerson", person(0, base.Add(time.Minute)), false},
		{"OtherSpelling", func() *approvals.Request {
			r := person(0, base.Add(time.Minute))
			r.Email = "Person00000@EXAMPLE.com"
			r.Identity = &approvals.Identity{Issuer: "google", IssuerAssignedID: "g-0"}
			r.DisplayName = "someone else"
			r.Status = approvals.StatusApproved
			return r
		}(), false},
		{"GivenOtherID", func() *approvals.Request { r := person(0, base); r.ID = "another-id"; return r }(), false},
		{"SameEmailOtherIdentity", func() *approvals.Request {
			r := person(0, base.Add(time.Minute))
			r.Identity.IssuerAssignedID = "g-other"
			return r
		}(), true},
		{"SameEmailNoIdentity", func() *approvals.Request {
			r := person(0, base.Add(time.Minute))
			r.Identity = nil
			return r
		}(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs := received(c.Now())
			got, created, err := s.Create(ctx, tt.in, evs)
			if err != nil {
				t.Fatal(err)
			}
			if created != tt.created {
				t.Fatalf("Create = created %v; want %v", created, tt.created)
			}
			after := auditOf(t, s, "")
			if !created {
				checkSame(t, "Create of an existing person", got, first)
				if len(after) != len(before) {
					t.Errorf("Create of an existing person appended %d events", len(after)-len(before))
				}
				stored, _ := s.Get(ctx, first.ID)
				checkSame(t, "stored request", stored, first)
				if _, err := s.Get(ctx, "another-id"); approvals.Code(err) != approvals.ENotFound {
					t.Errorf("Get(another-id) = %v; the duplicate must store nothing", err)
				}
				return
			}
			if got.ID == first.ID {
				t.Errorf("a different person got the first person's request")
			}
			if len(after) != len(before)+1 || after[len(after)-1].RequestID != got.ID {
				t.Errorf("Create of a new person appended %d events; want one for %s", len(after)-len(before), got.ID)
			}
			before = after
		})
	}
}

func testCreateConcurrentSamePerson(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	const n = 50
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		gotIDs  = map[string]int{}
		created int
		errs    []error
	)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := person(7, base.Add(time.Duration(i)*time.Millisecond))
			got, c, err := s.Create(ctx, r, received(r.CreatedAt))
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			gotIDs[got.ID]++
			if c {
				created++
			}
		}()
	}
	// Other people created at the same time must not be merged with them.
	for i := range 10 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := person(100+i, base)
			if _, c, err := s.Create(ctx, r, received(base)); err != nil || !c {
				mu.Lock()
				errs = append(errs, fmt.Errorf("Create(%s) = created %v, %v", r.Email, c, err))
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		t.Fatalf("concurrent Creates failed: %v", errors.Join(errs...))
	}
	if len(gotIDs) != 1 || created != 1 {
		t.Fatalf("%d concurrent Creates of one person gave ids %v and created=true %d times; want one id, created once", n, gotIDs, created)
	}
	var id string
	for id = range gotIDs {
	}
	if evs := auditOf(t, s, id); len(evs) != 1 || evs[0].Type != approvals.EventReceived {
		t.Errorf("the person's events = %v; want one %s", eventTypes(evs), approvals.EventReceived)
	}
	counts, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if counts[approvals.StatusPending] != 11 {
		t.Errorf("Count = %v; want 11 pending", counts)
	}
}

func testCreateRefusals(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	first := person(0, base)
	first.ID = "dup-id"
	create(t, s, first)

	tests := []struct {
		name string
		in   *approvals.Request
		code approvals.ErrorCode
	}{
		{"DuplicateID", func() *approvals.Request { r := person(1, base); r.ID = "dup-id"; return r }(), approvals.EConflict},
		{"UnknownStatus", func() *approvals.Request { r := person(2, base); r.Status = "maybe"; return r }(), approvals.EInvalid},
		{"NoStatus", func() *approvals.Request { r := person(3, base); r.Status = ""; return r }(), approvals.EInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, created, err := s.Create(ctx, tt.in, received(base))
			checkCode(t, "Create", err, tt.code)
			if created || got != nil {
				t.Errorf("refused Create returned created=%v, %+v", created, got)
			}
			if _, err := s.FindByPerson(ctx, tt.in.Key()); approvals.Code(err) != approvals.ENotFound {
				t.Errorf("FindByPerson after a refused Create = %v; want not found", err)
			}
		})
	}
	if evs := auditOf(t, s, ""); len(evs) != 1 {
		t.Errorf("refused Creates appended events: %v", eventTypes(evs))
	}
	counts, _ := s.Count(ctx)
	if counts[approvals.StatusPending] != 1 {
		t.Errorf("Count after refused Creates = %v; want 1 pending", counts)
	}
}

// step is one transition applied to a request in a table test.
type step func(now time.Time) approvals.Mutation

func testUpdateTransitions(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	withUser := func(now time.Time) approvals.Mutation {
		return completeStep(approvals.StepCreated, approvals.StepResult{UserID: "user-1", Method: approvals.MethodCreateUser}, now)
	}
	approveThenAttempt := []step{approve, startAttempt}
	tests := []struct {
		name      string
		setup     []step
		m         step
		code      approvals.ErrorCode // "" for success
		unchanged bool                // ErrUnchanged
		event     approvals.EventType // appended on success, if any
		check     func(t *testing.T, r *approvals.Request)
	}{
		{name: "Approve", m: approve, event: approvals.EventApproved, check: func(t *testing.T, r *approvals.Request) {
			if r.Status != approvals.StatusApproved || r.Provisioning.State != approvals.ProvisioningInProgress || r.Decision == nil {
				t.Errorf("approved request = %s/%s, decision %v", r.Status, r.Provisioning.State, r.Decision)
			}
		}},
		{name: "ApproveApproved", setup: []step{approve}, m: approve, unchanged: true},
		{name: "ApproveDenied", setup: []step{func(now time.Time) approvals.Mutation { return deny(now, "spam") }}, m: approve, code: approvals.EConflict},
		{name: "Deny", m: func(now time.Time) approvals.Mutation { return deny(now, "spam") }, event: approvals.EventDenied,
			check: func(t *testing.T, r *approvals.Request) {
				if r.Status != approvals.StatusDenied || r.Decision.Reason != "spam" {
					t.Errorf("denied request = %s, decision %+v", r.Status, r.Decision)
				}
			}},
		{name: "DenyWithoutReason", m: func(now time.Time) approvals.Mutation { return deny(now, "") }, code: approvals.EInvalid},
		{name: "DenyDenied", setup: []step{func(now time.Time) approvals.Mutation { return deny(now, "spam") }},
			m: func(now time.Time) approvals.Mutation { return deny(now, "again") }, unchanged: true},
		{name: "DenyApproved", setup: []step{approve}, m: func(now time.Time) approvals.Mutation { return deny(now, "oops") }, code: approvals.EConflict},
		{name: "Reopen", setup: []step{func(now time.Time) approvals.Mutation { return deny(now, "spam") }}, m: reopen, event: approvals.EventReopened,
			check: func(t *testing.T, r *approvals.Request) {
				if r.Status != approvals.StatusPending || r.Decision != nil {
					t.Errorf("reopened request = %s, decision %+v", r.Status, r.Decision)
				}
			}},
		{name: "ReopenPending", m: reopen, unchanged: true},
		{name: "StartAttempt", setup: []step{approve}, m: startAttempt, check: func(t *testing.T, r *approvals.Request) {
			if r.Provisioning.Attempts != 1 {
				t.Errorf("attempts = %d; want 1", r.Provisioning.Attempts)
			}
		}},
		{name: "StartAttemptPending", m: startAttempt, code: approvals.EConflict},
		{name: "CompleteStep", setup: approveThenAttempt, m: withUser, event: approvals.EventProvisioningStep,
			check: func(t *testing.T, r *approvals.Request) {
				if r.Provisioning.Step != approvals.StepCreated || r.Provisioning.UserID != "user-1" {
					t.Errorf("provisioning = %+v", r.Provisioning)
				}
			}},
		{name: "CompleteGroupStep", setup: []step{approve, withUser},
			m: func(now time.Time) approvals.Mutation {
				return completeStep(approvals.StepGroups, approvals.StepResult{Group: "group-1"}, now)
			}, event: approvals.EventProvisioningStep,
			check: func(t *testing.T, r *approvals.Request) {
				if !slices.Equal(r.Provisioning.GroupsDone, []string{"group-1"}) {
					t.Errorf("groups done = %v", r.Provisioning.GroupsDone)
				}
			}},
		{name: "ScheduleRetry", setup: approveThenAttempt, m: func(now time.Time) approvals.Mutation { return scheduleRetry(now.Add(time.Minute), now) },
			event: approvals.EventProvisioningRetry, check: func(t *testing.T, r *approvals.Request) {
				if r.Provisioning.LastError == "" || r.Provisioning.State != approvals.ProvisioningInProgress {
					t.Errorf("provisioning = %+v", r.Provisioning)
				}
			}},
		{name: "Succeed", setup: []step{approve, startAttempt, withUser}, m: succeed, event: approvals.EventProvisioningSucceeded,
			check: func(t *testing.T, r *approvals.Request) {
				if r.Provisioning.State != approvals.ProvisioningSucceeded {
					t.Errorf("provisioning = %+v", r.Provisioning)
				}
			}},
		{name: "SucceedWithoutUser", setup: approveThenAttempt, m: succeed, code: approvals.EInternal},
		{name: "Fail", setup: approveThenAttempt, m: fail, event: approvals.EventProvisioningFailed},
		{name: "FailSucceeded", setup: []step{approve, withUser, succeed}, m: fail, code: approvals.EConflict},
		{name: "Retry", setup: []step{approve, fail}, m: retry, event: approvals.EventProvisioningRequeued,
			check: func(t *testing.T, r *approvals.Request) {
				if r.Provisioning.State != approvals.ProvisioningInProgress {
					t.Errorf("provisioning = %+v", r.Provisioning)
				}
			}},
		{name: "RetryInProgress", setup: []step{approve}, m: retry, unchanged: true},
		{name: "NoEvents", m: func(time.Time) approvals.Mutation {
			return func(r *approvals.Request) ([]approvals.Event, error) {
				r.DisplayName = "Renamed"
				return nil, nil
			}
		}, check: func(t *testing.T, r *approvals.Request) {
			if r.DisplayName != "Renamed" {
				t.Errorf("display name = %q", r.DisplayName)
			}
		}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := create(t, s, person(i, c.Now()))
			for _, st := range tt.setup {
				r = update(t, s, r.ID, st(c.Advance(time.Second)))
			}
			before := r
			eventsBefore := auditOf(t, s, r.ID)
			now := c.Advance(time.Second)

			got, err := s.Update(ctx, r.ID, tt.m(now))
			stored, gerr := s.Get(ctx, r.ID)
			if gerr != nil {
				t.Fatal(gerr)
			}
			eventsAfter := auditOf(t, s, r.ID)
			switch {
			case tt.unchanged:
				if !errors.Is(err, approvals.ErrUnchanged) {
					t.Fatalf("Update = %v; want ErrUnchanged", err)
				}
				checkSame(t, "Update result with ErrUnchanged", got, before)
				checkSame(t, "stored request after ErrUnchanged", stored, before)
			case tt.code != "":
				checkCode(t, "Update", err, tt.code)
				checkSame(t, "stored request after a failed mutation", stored, before)
			default:
				if err != nil {
					t.Fatalf("Update = %v", err)
				}
				if got.Version != before.Version+1 || !got.UpdatedAt.Equal(now) {
					t.Errorf("Update result has version %d, updated %v; want %d, %v", got.Version, got.UpdatedAt, before.Version+1, now)
				}
				checkSame(t, "stored request", stored, got)
				if tt.check != nil {
					tt.check(t, got)
				}
			}
			var appended []approvals.EventType
			if tt.code == "" && !tt.unchanged && tt.event != "" {
				appended = []approvals.EventType{tt.event}
			}
			if got := eventTypes(eventsAfter[len(eventsBefore):]); !slices.Equal(got, appended) {
				t.Errorf("Update appended events %v; want %v", got, appended)
			}
			for _, ev := range eventsAfter[len(eventsBefore):] {
				if ev.RequestID != r.ID || !ev.At.Equal(now) {
					t.Errorf("appended event %+v; want request %s at %v", ev, r.ID, now)
				}
			}
		})
	}
}

func testUpdateMutationErrors(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	bad := errors.New("mutation failed")
	tests := []struct {
		name  string
		m     approvals.Mutation
		check func(t *testing.T, err error)
	}{
		{"ErrorAfterChanges", func(r *approvals.Request) ([]approvals.Event, error) {
			r.Status = approvals.StatusApproved
			r.Provisioning.State = approvals.ProvisioningInProgress
			r.Decision = &approvals.Decision{By: "x", At: base}
			r.Claims["city"] = "changed"
			return []approvals.Event{{Type: approvals.EventApproved, At: base}}, bad
		}, func(t *testing.T, err error) {
			if !errors.Is(err, bad) {
				t.Errorf("Update = %v; want the mutation's error", err)
			}
		}},
		{"UnchangedAfterChanges", func(r *approvals.Request) ([]approvals.Event, error) {
			r.DisplayName = "changed"
			return []approvals.Event{{Type: approvals.EventApproved, At: base}}, approvals.ErrUnchanged
		}, func(t *testing.T, err error) {
			if !errors.Is(err, approvals.ErrUnchanged) {
				t.Errorf("Update = %v; want ErrUnchanged", err)
			}
		}},
		{"ChangesEmail", func(r *approvals.Request) ([]approvals.Event, error) {
			r.Email = "other@example.com"
			return nil, nil
		}, nil},
		{"ChangesIdentity", func(r *approvals.Request) ([]approvals.Event, error) {
			r.Identity = &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "1"}
			return nil, nil
		}, nil},
		{"ChangesID", func(r *approvals.Request) ([]approvals.Event, error) {
			r.ID = "other-id"
			return nil, nil
		}, nil},
		{"ChangesCreatedAt", func(r *approvals.Request) ([]approvals.Event, error) {
			r.CreatedAt = r.CreatedAt.Add(time.Hour)
			return nil, nil
		}, nil},
		{"UnknownStatus", func(r *approvals.Request) ([]approvals.Event, error) {
			r.Status = "maybe"
			return nil, nil
		}, func(t *testing.T, err error) { checkCode(t, "Update", err, approvals.EInvalid) }},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := create(t, s, person(i*2, c.Advance(time.Second)))
			countsBefore, _ := s.Count(ctx)
			eventsBefore := auditOf(t, s, "")
			c.Advance(time.Second)
			got, err := s.Update(ctx, r.ID, tt.m)
			if err == nil {
				t.Fatalf("Update = %+v, nil; want an error", got)
			}
			if tt.check != nil {
				tt.check(t, err)
			}
			stored, _ := s.Get(ctx, r.ID)
			checkSame(t, "stored request", stored, r)
			if errors.Is(err, approvals.ErrUnchanged) {
				checkSame(t, "Update result with ErrUnchanged", got, r)
			}
			if _, err := s.Get(ctx, "other-id"); approvals.Code(err) != approvals.ENotFound {
				t.Errorf("Get(other-id) = %v; want not found", err)
			}
			if n := len(auditOf(t, s, "")) - len(eventsBefore); n != 0 {
				t.Errorf("failed mutation appended %d events", n)
			}
			counts, _ := s.Count(ctx)
			checkSame(t, "Count", counts, countsBefore)
			if jobs, _ := s.DueJobs(ctx, base.Add(1000*time.Hour), 10); len(jobs) != 0 {
				t.Errorf("DueJobs after failed mutations = %v", ids(jobs))
			}
		})
	}
	t.Run("NotFound", func(t *testing.T) {
		called := false
		_, err := s.Update(ctx, "000000000000000000000000", func(*approvals.Request) ([]approvals.Event, error) {
			called = true
			return nil, nil
		})
		checkCode(t, "Update of a missing request", err, approvals.ENotFound)
		if called {
			t.Error("Update called the mutation for a missing request")
		}
	})
}

func testUpdateVersions(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	r := create(t, s, person(0, c.Now()))
	if r.Version != 1 || !r.UpdatedAt.Equal(r.CreatedAt) {
		t.Fatalf("new request has version %d, updated %v; want 1, %v", r.Version, r.UpdatedAt, r.CreatedAt)
	}
	for i := 2; i <= 6; i++ {
		now := c.Advance(time.Duration(i) * time.Second)
		var seen uint64
		got := update(t, s, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
			seen = r.Version
			r.Claims["step"] = float64(i)
			return nil, nil
		})
		if seen != uint64(i-1) {
			t.Errorf("mutation %d saw version %d; want %d", i, seen, i-1)
		}
		if got.Version != uint64(i) || !got.UpdatedAt.Equal(now) || !got.CreatedAt.Equal(r.CreatedAt) {
			t.Errorf("update %d: version %d, updated %v, created %v; want %d, %v, %v", i, got.Version, got.UpdatedAt, got.CreatedAt, i, now, r.CreatedAt)
		}
	}
	// A mutation that leaves Version or UpdatedAt changed does not set them.
	now := c.Advance(time.Second)
	got := update(t, s, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		r.Version = 100
		r.UpdatedAt = base
		return nil, nil
	})
	if got.Version != 7 || !got.UpdatedAt.Equal(now) {
		t.Errorf("store kept the mutation's version %d and time %v; want 7, %v", got.Version, got.UpdatedAt, now)
	}
	// ErrUnchanged keeps both.
	c.Advance(time.Second)
	got, err := s.Update(ctx, r.ID, func(*approvals.Request) ([]approvals.Event, error) { return nil, approvals.ErrUnchanged })
	if !errors.Is(err, approvals.ErrUnchanged) || got.Version != 7 || !got.UpdatedAt.Equal(now) {
		t.Errorf("Update with ErrUnchanged = version %d, updated %v, %v; want 7, %v, ErrUnchanged", got.Version, got.UpdatedAt, err, now)
	}
}

func testUpdateConcurrent(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	const requests, workers, rounds = 3, 8, 5
	var rs []*approvals.Request
	for i := range requests {
		r := create(t, s, person(i, c.Now()))
		rs = append(rs, update(t, s, r.ID, approve(c.Now())))
	}
	var wg sync.WaitGroup
	errs := make(chan error, requests*workers*rounds)
	for _, r := range rs {
		for range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range rounds {
					_, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
						if err := r.StartAttempt(); err != nil {
							return nil, err
						}
						return []approvals.Event{{At: c.Now(), Type: approvals.EventProvisioningStep, Actor: approvals.ProvisionerActor}}, nil
					})
					if err != nil {
						errs <- err
					}
					// Repeated decisions in between must not disturb anything.
					if _, err := s.Update(ctx, r.ID, approve(c.Now())); !errors.Is(err, approvals.ErrUnchanged) {
						errs <- fmt.Errorf("repeated approve = %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for _, r := range rs {
		got, err := s.Get(ctx, r.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.Provisioning.Attempts != workers*rounds || got.Version != r.Version+workers*rounds {
			t.Errorf("after %d concurrent updates: attempts %d, version %d; want %d, %d (lost updates)",
				workers*rounds, got.Provisioning.Attempts, got.Version, workers*rounds, r.Version+workers*rounds)
		}
		if n := len(auditOf(t, s, r.ID)); n != 2+workers*rounds {
			t.Errorf("request has %d events; want %d", n, 2+workers*rounds)
		}
	}
}
