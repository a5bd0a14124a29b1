package approvals

import (
	"errors"
	"testing"
	"time"
)

func TestTransitions(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	reviewer := Actor{Kind: ActorReviewer, ID: "oid", Name: "Rev"}
	admin := Actor{Kind: ActorReviewer, ID: "oid-admin", Name: "Adm", Admin: true}
	pending := func() *Request {
		return &Request{ID: "r1", Email: "a@b.test", Status: StatusPending, Provisioning: Provisioning{State: ProvisioningNotStarted}}
	}
	approved := func() *Request {
		r := pending()
		if _, err := r.Approve(reviewer, "", now, time.Hour); err != nil {
			t.Fatal(err)
		}
		return r
	}
	denied := func() *Request {
		r := pending()
		if _, err := r.Deny(reviewer, "no", now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	failed := func() *Request {
		r := approved()
		if _, err := r.FailProvisioning(Failure{Cause: "Graph Request_BadRequest: nope", GraphRequestID: "rid"}, now); err != nil {
			t.Fatal(err)
		}
		return r
	}
	tests := []struct {
		name  string
		start func() *Request
		do    func(r *Request) (Event, error)
		code  ErrorCode // "" success; "unchanged" for ErrUnchanged
		want  Status
		event EventType
	}{
		{"approve pending", pending, func(r *Request) (Event, error) { return r.Approve(reviewer, "ok", now, time.Hour) }, "", StatusApproved, EventApproved},
		{"approve approved is a no-op", approved, func(r *Request) (Event, error) { return r.Approve(reviewer, "again", now, time.Hour) }, "unchanged", StatusApproved, ""},
		{"approve denied needs reopen", denied, func(r *Request) (Event, error) { return r.Approve(reviewer, "", now, time.Hour) }, EConflict, StatusDenied, ""},
		{"deny pending", pending, func(r *Request) (Event, error) { return r.Deny(reviewer, "spam", now) }, "", StatusDenied, EventDenied},
		{"deny needs a reason", pending, func(r *Request) (Event, error) { return r.Deny(reviewer, "", now) }, EInvalid, StatusPending, ""},
		{"deny denied is a no-op", denied, func(r *Request) (Event, error) { return r.Deny(reviewer, "again", now) }, "unchanged", StatusDenied, ""},
		{"deny approved refused", approved, func(r *Request) (Event, error) { return r.Deny(reviewer, "late", now) }, EConflict, StatusApproved, ""},
		{"reopen needs admin", denied, func(r *Request) (Event, error) { return r.Reopen(reviewer, "", now) }, EForbidden, StatusDenied, ""},
		{"admin reopens denied", denied, func(r *Request) (Event, error) { return r.Reopen(admin, "mistake", now) }, "", StatusPending, EventReopened},
		{"reopen approved refused", approved, func(r *Request) (Event, error) { return r.Reopen(admin, "", now) }, EConflict, StatusApproved, ""},
		{"retry failed provisioning", failed, func(r *Request) (Event, error) { return r.RetryProvisioning(admin, now, time.Hour) }, "", StatusApproved, EventProvisioningRequeued},
		{"retry in-progress is a no-op", approved, func(r *Request) (Event, error) { return r.RetryProvisioning(admin, now, time.Hour) }, "unchanged", StatusApproved, ""},
		{"retry pending refused", pending, func(r *Request) (Event, error) { return r.RetryProvisioning(admin, now, time.Hour) }, EConflict, StatusPending, ""},
		{"succeed needs a user id", approved, func(r *Request) (Event, error) { return r.SucceedProvisioning(now) }, EInternal, StatusApproved, ""},
		{"step on failed job refused", failed, func(r *Request) (Event, error) {
			return r.CompleteStep(StepCreated, StepResult{UserID: "u"}, now)
		}, EConflict, StatusApproved, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.start()
			ev, err := r.do(tt.do)
			switch {
			case tt.code == "unchanged":
				if !errors.Is(err, ErrUnchanged) {
					t.Fatalf("err = %v, want ErrUnchanged", err)
				}
			case tt.code != "":
				if Code(err) != tt.code {
					t.Fatalf("err = %v, want code %s", err, tt.code)
				}
			case err != nil:
				t.Fatal(err)
			case ev.Type != tt.event || ev.RequestID != "r1" || !ev.At.Equal(now):
				t.Fatalf("event %+v, want type %s", ev, tt.event)
			}
			if r.Status != tt.want {
				t.Fatalf("status %s, want %s", r.Status, tt.want)
			}
		})
	}
}

// do lets the table call a transition on r.
func (r *Request) do(f func(*Request) (Event, error)) (Event, error) { return f(r) }

func TestProvisioningJobLifecycle(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	r := &Request{ID: "r", Email: "x@y.test", Status: StatusPending, Identity: &Identity{Issuer: "Facebook", IssuerAssignedID: "1"}}
	if _, err := r.Approve(Actor{Kind: ActorAPIKey, ID: "ops"}, "", now, time.Hour); err != nil {
		t.Fatal(err)
	}
	if r.Provisioning.Method != MethodCreateUser || !r.Provisioning.Pending() || !r.Provisioning.Deadline.Equal(now.Add(time.Hour)) {
		t.Fatalf("after approve: %+v", r.Provisioning)
	}
	if r.Decision.By != "api_key:ops" {
		t.Fatalf("decision by %q", r.Decision.By)
	}
	must := func(_ Event, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := r.StartAttempt(); err != nil {
		t.Fatal(err)
	}
	must(r.CompleteStep(StepCreated, StepResult{UserID: "u1"}, now))
	must(r.ScheduleRetry(now.Add(time.Minute), Failure{Cause: "Graph 429", GraphRequestID: "rid-1"}, now))
	must(r.CompleteStep(StepGroups, StepResult{Group: "g1"}, now))
	must(r.CompleteStep(StepGroups, StepResult{Group: "g1"}, now))
	must(r.SucceedProvisioning(now))
	p := r.Provisioning
	if p.State != ProvisioningSucceeded || p.UserID != "u1" || p.Attempts != 1 || len(p.GroupsDone) != 1 || p.LastError != "" {
		t.Fatalf("final %+v", p)
	}
}

func TestPersonKeyAndIssuers(t *testing.T) {
	a := PersonKey(" John@Outlook.com ", &Identity{Issuer: "facebook", IssuerAssignedID: "1"})
	b := PersonKey("john@outlook.com", &Identity{Issuer: "facebook.com", IssuerAssignedID: "1"})
	if a != b {
		t.Fatalf("%q != %q", a, b)
	}
	if PersonKey("john@outlook.com", nil) == b {
		t.Fatal("an identity must make a different key")
	}
	for in, want := range map[string]bool{"google": true, "Google.com": true, "facebook": true, "mail": true, "login.microsoftonline.com": false, "": false} {
		if got := (&Identity{Issuer: in}).CreatesUserDirectly(); got != want {
			t.Errorf("%q: %v", in, got)
		}
	}
	if (*Identity)(nil).CreatesUserDirectly() {
		t.Error("nil identity must be invited")
	}
}

func TestPolicyAndEmail(t *testing.T) {
	p := Policy{AutoApproveDomains: []string{"contoso.com", "evil.com"}, AutoDenyDomains: []string{"evil.com"}}
	for email, want := range map[string]Status{
		"a@contoso.com": StatusApproved, "a@eu.contoso.com": StatusApproved, "a@notcontoso.com": StatusPending,
		"a@evil.com": StatusDenied, "a@Contoso.COM": StatusApproved,
	} {
		if got, _ := p.Decide(email); got != want {
			t.Errorf("%s: %s, want %s", email, got, want)
		}
	}
	for email, ok := range map[string]bool{"a@b.test": true, "": false, "nope": false, "A <a@b.test>": false, "a@b.test, c@d.test": false} {
		if err := ValidateEmail(email); (err == nil) != ok {
			t.Errorf("%q: %v", email, err)
		}
	}
}
