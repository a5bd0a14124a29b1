package provisioner_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/store/memory"
)

func TestProvisionIdentityKinds(t *testing.T) {
	h := newHarness(t)
	h.start()
	google := h.approve(person{"ann+news@gmail.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-1001"},
		map[string]any{"displayName": "Ann Example", "givenName": "Ann", "lastName": "Example", "city": "Oslo", ext: "supplier", "ui_locales": "nb-NO"}})
	facebook := h.approve(person{"Bob@Example.com", &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "0123456789"},
		map[string]any{"givenName": "Bob", "surname": "Builder"}})
	otp := h.approve(person{"chloé@example.fr", &approvals.Identity{Issuer: "mail", IssuerAssignedID: "chloé@example.fr"},
		map[string]any{"displayName": "Chloé", ext: "partner"}})
	entra := h.approve(person{"dan@contractor.example", nil,
		map[string]any{"displayName": "Dan Contractor", "jobTitle": "Engineer", "country": "NO", ext: "contractor", "step": "x", "client_id": "y"}})

	for _, r := range []*approvals.Request{google, facebook, otp, entra} {
		r = h.wait(r.ID, approvals.ProvisioningSucceeded, 20*time.Second)
		u := h.checkProvisioned(r)
		switch r.ID {
		case google.ID:
			want := map[string]any{"userType": "Guest", "accountEnabled": true, "displayName": "Ann Example", "givenName": "Ann", "surname": "Example", "city": "Oslo", ext: "supplier"}
			for k, v := range want {
				if u.Properties[k] != v {
					t.Errorf("google user %s = %v, want %v", k, u.Properties[k], v)
				}
			}
			wantUPN, _ := provisioner.GuestUPN("ann+news@gmail.com", h.srv.TenantDomain())
			if u.UserPrincipalName != wantUPN || u.Source != "users" || len(u.Identities) != 1 || u.Identities[0] != (graphtest.Identity{SignInType: "federated", Issuer: "google.com", IssuerAssignedID: "g-1001"}) {
				t.Errorf("google user = %+v", u)
			}
			if r.Provisioning.Method != approvals.MethodCreateUser {
				t.Errorf("method %s", r.Provisioning.Method)
			}
		case facebook.ID:
			if u.Identities[0].Issuer != "facebook.com" || u.Properties["surname"] != "Builder" || u.DisplayName != "Bob Builder" {
				t.Errorf("facebook user = %+v", u)
			}
		case otp.ID:
			if u.Identities[0].Issuer != "mail" || !strings.Contains(u.UserPrincipalName, "~") || u.Properties[ext] != "partner" {
				t.Errorf("email OTP user = %+v", u)
			}
		case entra.ID:
			if u.Source != "invitation" || u.Properties["jobTitle"] != "Engineer" || u.Properties["country"] != "NO" || u.Properties[ext] != "contractor" {
				t.Errorf("invited user = %+v", u)
			}
			if r.Provisioning.Method != approvals.MethodInvitation || r.Provisioning.RedeemURL == "" {
				t.Errorf("invitation record = %+v", r.Provisioning)
			}
			invs := h.srv.Invitations()
			if len(invs) != 1 || invs[0].DisplayName != "Dan Contractor" || invs[0].RedirectURL != "https://apps.example.com/welcome" || !invs[0].SendMessage {
				t.Errorf("invitations = %+v", invs)
			}
		}
	}

	calls := h.srv.Calls()
	count := map[string]int{}
	for _, c := range calls {
		count[c.Route]++
		if !c.Authorized || c.ContentEncoding != "" || c.Status >= 300 {
			t.Errorf("call %s %s: authorized %v, encoding %q, status %d", c.Method, c.Path, c.Authorized, c.ContentEncoding, c.Status)
		}
		if c.Route == "POST /users" && strings.Contains(string(c.Body), "ui_locales") {
			t.Errorf("POST /users sent ui_locales: %s", c.Body)
		}
		if c.Route == "PATCH /users/{id}" && (strings.Contains(string(c.Body), "\"step\"") || strings.Contains(string(c.Body), "client_id")) {
			t.Errorf("PATCH sent a non-user property: %s", c.Body)
		}
	}
	want := map[string]int{"POST /users": 3, "POST /invitations": 1, "PATCH /users/{id}": 1, "POST /groups/{id}/members/$ref": 8}
	for route, n := range want {
		if count[route] != n {
			t.Errorf("%s called %d times, want %d (all: %v)", route, count[route], n, count)
		}
	}
	if h.srv.TokensIssued() != 1 {
		t.Errorf("%d tokens issued, want 1 (cached by azidentity)", h.srv.TokensIssued())
	}

	// Metrics and logs.
	if got := h.counter("approvals_provisioning_jobs_finished_total", "state", "succeeded"); got != 4 {
		t.Errorf("succeeded jobs metric = %v", got)
	}
	if got := h.counter("approvals_graph_requests_total"); int(got) != len(calls) {
		t.Errorf("graph requests metric = %v, fake saw %d", got, len(calls))
	}
	if got := h.counter("approvals_graph_requests_total", "route", "POST /invitations", "status", "201"); got != 1 {
		t.Errorf("POST /invitations 201 metric = %v", got)
	}
	if got := h.counter("approvals_graph_request_duration_seconds", "route", "PATCH /users/{id}"); got != 1 {
		t.Errorf("PATCH latency samples = %v", got)
	}
	logs := h.logs.String()
	if !strings.Contains(logs, `"request_id":"`+calls[len(calls)-1].RequestID+`"`) {
		t.Errorf("the log does not carry Graph's request-id %s", calls[len(calls)-1].RequestID)
	}

	// The audit trail tells the story.
	evs, _, err := h.store.Audit(context.Background(), approvals.AuditQuery{RequestID: entra.ID})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, e := range evs {
		if e.Type == approvals.EventProvisioningStep {
			steps = append(steps, e.Details["step"])
		}
	}
	if strings.Join(steps, ",") != "looked_up,created,attributes,groups,groups" || evs[len(evs)-1].Type != approvals.EventProvisioningSucceeded {
		t.Errorf("audit steps = %v", steps)
	}
}

func TestExistingAccountIsLinked(t *testing.T) {
	h := newHarness(t)
	byIdentity := h.srv.AddUser(graphtest.User{Mail: "old-address@example.com", Identities: []graphtest.Identity{{SignInType: "federated", Issuer: "google.com", IssuerAssignedID: "g-77"}}})
	byMail := h.srv.AddUser(graphtest.User{Mail: "eve@example.com"})
	byOther := h.srv.AddUser(graphtest.User{Mail: "frank.primary@example.com", OtherMails: []string{"frank@example.org"}})
	h.start()
	tests := []struct {
		p    person
		want string
	}{
		{person{"new-address@example.com", &approvals.Identity{Issuer: "google", IssuerAssignedID: "g-77"}, map[string]any{"city": "Bergen"}}, byIdentity},
		{person{"EVE@example.com", &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "fb-5"}, map[string]any{"city": "Tromsø"}}, byMail},
		{person{"frank@example.org", nil, map[string]any{"city": "Bodø", ext: "x"}}, byOther},
	}
	for _, tt := range tests {
		r := h.wait(h.approve(tt.p).ID, approvals.ProvisioningSucceeded, 20*time.Second)
		if r.Provisioning.UserID != tt.want {
			t.Errorf("%s linked to %s, want %s", tt.p.email, r.Provisioning.UserID, tt.want)
		}
		u, _ := h.srv.User(tt.want)
		if u.Properties["city"] != tt.p.claims["city"] {
			t.Errorf("%s: attributes not written on the linked account: %v", tt.p.email, u.Properties)
		}
		if got := h.srv.GroupsOf(tt.want); len(got) != len(h.groups) {
			t.Errorf("%s: groups %v", tt.p.email, got)
		}
	}
	if n := len(h.srv.CallsTo("POST /users")) + len(h.srv.CallsTo("POST /invitations")); n != 0 {
		t.Errorf("%d creates for people already in the directory", n)
	}
	if n := len(h.srv.Users()); n != 3 {
		t.Errorf("%d users, want 3", n)
	}
}

// A create whose answer was lost, while the directory's search has not
// caught up: the retry collides (duplicate userPrincipalName), the
// look-up after the conflict finds nothing yet, and a later attempt links
// the account. One account in the end.
func TestDuplicateUPNConflictIsResolvedByLinking(t *testing.T) {
	h := newHarness(t)
	h.srv.SearchLag(1500 * time.Millisecond)
	h.srv.Fault("POST /users", graphtest.FaultSpec{Reset: true, AfterEffect: true, Count: 1})
	r := h.provision(person{"gina@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-9"}, nil}, approvals.ProvisioningSucceeded)
	h.checkProvisioned(r)
	posts := h.srv.CallsTo("POST /users")
	if len(posts) < 2 || posts[1].Status != 400 || posts[1].ErrorCode != "Request_BadRequest" {
		t.Errorf("POST /users calls: %+v", posts)
	}
	evs, _, _ := h.store.Audit(context.Background(), approvals.AuditQuery{RequestID: r.ID})
	linked := false
	for _, e := range evs {
		linked = linked || strings.HasPrefix(e.Details["note"], "linked existing account")
	}
	if !linked {
		t.Error("no audit event says the account was linked")
	}
}

// A look-up answered 200 without a user collection (here with no body at
// all, as a call abandoned at its timeout may still be answered) found
// nobody only in appearance: the job retries the look-up rather than
// invite a person who is in the directory.
func TestLookUpWithoutAnswerIsRetried(t *testing.T) {
	var lookUps atomic.Int32
	h := newHarness(t, withTransport(func(rt http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if err == nil && req.Method == http.MethodGet && strings.HasSuffix(req.URL.Path, "/users") && lookUps.Add(1) == 1 {
				resp.Body.Close()
				resp = &http.Response{Status: "200 OK", StatusCode: http.StatusOK, Proto: resp.Proto, ProtoMajor: resp.ProtoMajor, ProtoMinor: resp.ProtoMinor,
					Header: http.Header{}, Body: http.NoBody, Request: req}
			}
			return resp, err
		})
	}))
	existing := h.srv.AddUser(graphtest.User{Mail: "kim@example.com"})
	r := h.provision(person{"kim@example.com", nil, map[string]any{"city": "Oslo"}}, approvals.ProvisioningSucceeded)
	h.checkProvisioned(r)
	if r.Provisioning.UserID != existing {
		t.Errorf("linked to %s, want %s", r.Provisioning.UserID, existing)
	}
	if n := len(h.srv.CallsTo("POST /invitations")) + len(h.srv.CallsTo("POST /users")); n != 0 {
		t.Errorf("%d creates for a person already in the directory", n)
	}
	if r.Provisioning.Attempts < 2 {
		t.Errorf("attempts = %d, want a retry", r.Provisioning.Attempts)
	}
	if got := h.counter("approvals_provisioning_retries_total", "reason", "200"); got != 1 {
		t.Errorf("retries{reason=200} = %v", got)
	}
}

func TestTransientFaultsAreRetried(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*graphtest.Server)
		p     person
		// reason is the retries metric label expected
		reason string
	}{
		{"429 on invitation", func(s *graphtest.Server) {
			s.Fault("POST /invitations", graphtest.FaultSpec{Status: 429, Count: 2})
		}, person{"t1@example.com", nil, map[string]any{"city": "A"}}, "429"},
		{"503 on create", func(s *graphtest.Server) {
			s.Fault("POST /users", graphtest.FaultSpec{Status: 503, Count: 2})
		}, person{"t2@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "t2"}, nil}, "503"},
		{"504 on PATCH", func(s *graphtest.Server) {
			s.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 504, Count: 1})
		}, person{"t3@example.com", nil, map[string]any{"city": "C"}}, "504"},
		{"timeout on look-up", func(s *graphtest.Server) {
			s.Fault("GET /users", graphtest.FaultSpec{Latency: 2 * time.Second, Count: 1})
		}, person{"t4@example.com", nil, nil}, "error"},
		{"reset on invitation", func(s *graphtest.Server) {
			s.Fault("POST /invitations", graphtest.FaultSpec{Reset: true, Count: 1})
		}, person{"t5@example.com", nil, nil}, "error"},
		{"reset after the invitation took effect", func(s *graphtest.Server) {
			s.Fault("POST /invitations", graphtest.FaultSpec{Reset: true, AfterEffect: true, Count: 1})
		}, person{"t6@example.com", nil, nil}, "error"},
		{"reset after the create took effect", func(s *graphtest.Server) {
			s.Fault("POST /users", graphtest.FaultSpec{Reset: true, AfterEffect: true, Count: 1})
		}, person{"t7@example.com", &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "t7"}, nil}, "error"},
		{"reset on group add", func(s *graphtest.Server) {
			s.Fault("POST /groups/{id}/members/$ref", graphtest.FaultSpec{Reset: true, AfterEffect: true, Count: 1})
		}, person{"t8@example.com", nil, nil}, "error"},
		{"503 after the group add took effect", func(s *graphtest.Server) {
			s.Fault("POST /groups/{id}/members/$ref", graphtest.FaultSpec{Status: 503, AfterEffect: true, Count: 1})
		}, person{"t9@example.com", nil, nil}, "503"},
		{"replication lag: 404 on PATCH, 400 on group add", func(s *graphtest.Server) {
			s.ReplicationLag(time.Second)
		}, person{"t10@example.com", nil, map[string]any{"city": "J"}}, "404"},
		{"replication lag of a created guest: 400 on group add", func(s *graphtest.Server) {
			s.ReplicationLag(time.Second)
		}, person{"t11@example.com", &approvals.Identity{Issuer: "mail", IssuerAssignedID: "t11@example.com"}, nil}, "400"},
		{"scoped replication lag: 403", func(s *graphtest.Server) {
			s.ScopedReplicationLag(time.Second)
		}, person{"t12@example.com", nil, map[string]any{"city": "L"}}, "403"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *provisioner.Config) { c.Graph.Timeout = 500 * time.Millisecond }))
			tt.setup(h.srv)
			r := h.provision(tt.p, approvals.ProvisioningSucceeded)
			h.checkProvisioned(r)
			if r.Provisioning.Attempts < 2 {
				t.Errorf("attempts = %d, want a retry", r.Provisioning.Attempts)
			}
			if got := h.counter("approvals_provisioning_retries_total", "reason", tt.reason); got < 1 {
				t.Errorf("retries{reason=%s} = %v", tt.reason, got)
			}
			if n := len(h.srv.Invitations()); tt.p.identity == nil && len(h.usersWithMail(tt.p.email)) != 1 {
				t.Errorf("%d invitations", n)
			}
		})
	}
}

func TestRetryAfterIsRespected(t *testing.T) {
	h := newHarness(t)
	h.srv.Fault("POST /invitations", graphtest.FaultSpec{Status: 429, RetryAfter: time.Second, Count: 2})
	h.srv.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 503, RetryAfter: time.Second, Count: 1})
	r := h.provision(person{"ra@example.com", nil, map[string]any{"city": "X"}}, approvals.ProvisioningSucceeded)
	h.checkProvisioned(r)
	calls := h.srv.Calls()
	throttled := 0
	for i, c := range calls {
		if c.Status != 429 && c.Status != 503 {
			continue
		}
		throttled++
		if i+1 == len(calls) {
			t.Fatal("no call after the throttled one")
		}
		next := calls[i+1]
		if gap := next.Start.Sub(c.End); gap < time.Second {
			t.Errorf("%s %s came %s after a %d with Retry-After: 1", next.Method, next.Route, gap, c.Status)
		}
	}
	if throttled != 3 {
		t.Errorf("%d throttled calls, want 3", throttled)
	}
	// The SDK's own retry handler is out of the pipeline: each throttled
	// call is retried once, by the provisioner.
	if n := len(h.srv.CallsTo("POST /invitations")); n != 3 {
		t.Errorf("POST /invitations called %d times, want 3", n)
	}
}

func TestBackoffDoesNotBusyLoopAndGivesUpAtTheDeadline(t *testing.T) {
	cs := &countingStore{}
	h := newHarness(t, withConfig(func(c *provisioner.Config) {
		c.Retry = provisioner.RetryPolicy{Base: 50 * time.Millisecond, Max: 200 * time.Millisecond}
	}))
	cs.Store = h.store
	h.store = cs
	h.svc.Store = cs
	h.svc.ProvisioningDeadline = 1500 * time.Millisecond
	h.srv.Fault("GET /users", graphtest.FaultSpec{Status: 503})
	h.start()
	start := time.Now()
	r := h.wait(h.approve(person{"busy@example.com", nil, nil}).ID, approvals.ProvisioningFailed, 10*time.Second)
	elapsed := time.Since(start)

	// Delays of 25-50, 50-100, then 100-200 ms: about 10 attempts in 1.5 s.
	calls := len(h.srv.CallsTo("GET /users"))
	if calls < 4 || calls > 20 {
		t.Errorf("%d look-ups in %s; backoff is off", calls, elapsed)
	}
	if claims, reads := cs.claims.Load(), cs.nextJobAt.Load(); claims > int64(4*calls+10) || reads > int64(8*calls+20) {
		t.Errorf("the queue was claimed from %d times and read %d times for %d attempts", claims, reads, calls)
	}
	if elapsed < 1200*time.Millisecond {
		t.Errorf("gave up after %s, before the deadline", elapsed)
	}
	last := h.srv.CallsTo("GET /users")[calls-1]
	for _, want := range []string{"Graph serviceNotAvailable:", "(request-id " + last.RequestID + ")", "gave up retrying at the deadline"} {
		if !strings.Contains(r.Provisioning.LastError, want) {
			t.Errorf("last_error %q lacks %q", r.Provisioning.LastError, want)
		}
	}
	if r.Provisioning.RequestID != last.RequestID {
		t.Errorf("graph request id %q, want %q", r.Provisioning.RequestID, last.RequestID)
	}
	// Idle: no job, no reads beyond the poll.
	before := cs.claims.Load() + cs.nextJobAt.Load()
	time.Sleep(300 * time.Millisecond)
	if idle := cs.claims.Load() + cs.nextJobAt.Load() - before; idle > 1 {
		t.Errorf("%d queue reads while idle", idle)
	}
}

func TestPermanentFailureThenRetry(t *testing.T) {
	h := newHarness(t)
	h.srv.RestrictInvitations(true)
	r := h.provision(person{"gus@example.com", nil, map[string]any{"city": "Oslo"}}, approvals.ProvisioningFailed)
	call := h.srv.CallsTo("POST /invitations")[0]
	want := "invite gus@example.com: Graph Authorization_RequestDenied: Guest invitations not allowed for your company. Contact your company administrator for more details. (request-id " + call.RequestID + ") Check that the app has User.Invite.All"
	if !strings.HasPrefix(r.Provisioning.LastError, want) || r.Provisioning.RequestID != call.RequestID || r.Provisioning.Attempts != 1 {
		t.Errorf("failed record = %+v\nwant last_error %q", r.Provisioning, want)
	}
	if got := h.counter("approvals_provisioning_jobs_finished_total", "state", "failed"); got != 1 {
		t.Errorf("failed metric = %v", got)
	}

	h.srv.RestrictInvitations(false)
	if _, err := h.svc.RetryProvisioning(context.Background(), r.ID, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "ops"}); err != nil {
		t.Fatal(err)
	}
	r = h.wait(r.ID, approvals.ProvisioningSucceeded, 20*time.Second)
	h.checkProvisioned(r)
	if r.Provisioning.Attempts != 2 {
		t.Errorf("attempts = %d, want 2", r.Provisioning.Attempts)
	}
}

func TestPermanentFailures(t *testing.T) {
	tests := []struct {
		name  string
		setup func(*graphtest.Server)
		p     person
		want  []string
	}{
		{"invitation of an address Graph rejects", func(*graphtest.Server) {},
			person{"a+b@example.com", nil, nil}, []string{"invite a+b@example.com: Graph BadRequest: The specified invitedUserEmailAddress", "(request-id "}},
		{"missing permission to create users", func(s *graphtest.Server) { s.SetPermissions(graphtest.PermUserInviteAll, "User.Read.All") },
			person{"p@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "p"}, nil}, []string{"Graph Authorization_RequestDenied: Insufficient privileges"}},
		{"validation 400", func(s *graphtest.Server) {
			s.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 400, Code: "Request_BadRequest", Message: "Invalid value specified for property 'country' of resource 'User'."})
		}, person{"v@example.com", nil, map[string]any{"country": "Narnia"}}, []string{"update user", "Invalid value specified for property 'country'"}},
		{"missing group permission, past the lag window", func(s *graphtest.Server) { s.SetPermissions(graphtest.PermUserReadWriteAll) },
			person{"g@example.com", nil, nil}, []string{"Authorization_RequestDenied", "still failing after 300ms", "GroupMember.ReadWrite.All"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, withConfig(func(c *provisioner.Config) { c.Retry.LagWindow = 300 * time.Millisecond }))
			tt.setup(h.srv)
			r := h.provision(tt.p, approvals.ProvisioningFailed)
			for _, w := range tt.want {
				if !strings.Contains(r.Provisioning.LastError, w) {
					t.Errorf("last_error %q lacks %q", r.Provisioning.LastError, w)
				}
			}
		})
	}
}

// openBolt opens the bbolt data file at path.
func openBolt(t *testing.T, path string) approvals.Store {
	t.Helper()
	s, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// crash stops the provisioner, abandoning the Graph call in flight after
// the grace, closes the data file, and reopens it as a restarted server
// would.
func (h *harness) crash(path string) {
	h.t.Helper()
	h.stop()
	if err := h.store.Close(); err != nil {
		h.t.Fatal(err)
	}
	h.store = openBolt(h.t, path)
	h.svc.Store = h.store
	h.t.Cleanup(func() { h.store.Close() })
}

func (h *harness) waitArrival(route string, n int) {
	h.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for h.srv.Arrivals(route) < n {
		if time.Now().After(deadline) {
			h.t.Fatalf("%s: %d calls arrived, want %d", route, h.srv.Arrivals(route), n)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// The server stops between the invitation and the PATCH; restarted on the
// same data file, it finishes the job without inviting again.
func TestCrashBetweenInvitationAndPatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	h := newHarness(t, withStore(openBolt(t, path)), withConfig(func(c *provisioner.Config) { c.ShutdownGrace = 50 * time.Millisecond }))
	h.srv.Fault("PATCH /users/{id}", graphtest.FaultSpec{Latency: 30 * time.Second})
	h.start()
	r := h.approve(person{"ivy@example.com", nil, map[string]any{"displayName": "Ivy", "city": "Trondheim", ext: "auditor"}})
	h.waitArrival("PATCH /users/{id}", 1)
	h.crash(path) // the PATCH is in flight

	mid, err := h.store.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if mid.Provisioning.State != approvals.ProvisioningInProgress || mid.Provisioning.Step != approvals.StepCreated || mid.Provisioning.UserID == "" {
		t.Fatalf("after the crash: %+v", mid.Provisioning)
	}
	if u, _ := h.srv.User(mid.Provisioning.UserID); u.Properties["city"] != nil {
		t.Fatalf("the PATCH took effect: %v", u.Properties)
	}

	h.srv.ClearFaults()
	h.start()
	r = h.wait(r.ID, approvals.ProvisioningSucceeded, 20*time.Second)
	u := h.checkProvisioned(r)
	if u.Properties["city"] != "Trondheim" || u.Properties[ext] != "auditor" {
		t.Errorf("attributes: %v", u.Properties)
	}
	if n := len(h.srv.CallsTo("POST /invitations")); n != 1 {
		t.Errorf("%d invitations, want 1", n)
	}
	if n := len(h.srv.CallsTo("GET /users")); n != 2 {
		t.Errorf("%d look-ups, want 2 (mail and otherMails, before the crash only)", n)
	}
}

// The server stops while adding the user to the second group; restarted,
// it adds the second group only.
func TestCrashBetweenGroups(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	h := newHarness(t, withStore(openBolt(t, path)), withConfig(func(c *provisioner.Config) { c.ShutdownGrace = 50 * time.Millisecond }))
	h.srv.Fault("POST /groups/{id}/members/$ref", graphtest.FaultSpec{Count: 1, Latency: 10 * time.Millisecond})
	h.srv.Fault("POST /groups/{id}/members/$ref", graphtest.FaultSpec{Count: 1, Latency: 30 * time.Second})
	h.start()
	r := h.approve(person{"jay@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "j"}, nil})
	h.waitArrival("POST /groups/{id}/members/$ref", 2)
	h.crash(path)

	mid, _ := h.store.Get(context.Background(), r.ID)
	if mid.Provisioning.State != approvals.ProvisioningInProgress || len(mid.Provisioning.GroupsDone) != 1 || mid.Provisioning.GroupsDone[0] != h.groups[0] {
		t.Fatalf("after the crash: %+v", mid.Provisioning)
	}
	h.srv.ClearFaults()
	h.start()
	h.checkProvisioned(h.wait(r.ID, approvals.ProvisioningSucceeded, 20*time.Second))
	if n := len(h.srv.CallsTo("POST /users")); n != 1 {
		t.Errorf("%d creates, want 1", n)
	}
	if n := len(h.srv.CallsTo("POST /groups/{id}/members/$ref")); n != 3 {
		t.Errorf("%d group adds, want 3 (first, abandoned second, second again)", n)
	}
}

func TestWorkersAreBounded(t *testing.T) {
	h := newHarness(t, withConfig(func(c *provisioner.Config) { c.Workers = 2; c.GroupIDs = nil }))
	h.groups = nil
	h.srv.Fault("*", graphtest.FaultSpec{Latency: 30 * time.Millisecond})
	h.start()
	var ids []string
	for i := range 8 {
		ids = append(ids, h.approve(person{fmt.Sprintf("w%d@example.com", i), nil, nil}).ID)
	}
	for _, id := range ids {
		h.checkProvisioned(h.wait(id, approvals.ProvisioningSucceeded, 20*time.Second))
	}
	calls := h.srv.Calls()
	most := 0
	for _, a := range calls {
		n := 0
		for _, b := range calls {
			if !b.Start.After(a.Start) && b.End.After(a.Start) {
				n++
			}
		}
		most = max(most, n)
	}
	if most > 2 {
		t.Errorf("%d Graph calls in flight at once with 2 workers", most)
	}
}

func TestManyApprovalsWithTransientFaults(t *testing.T) {
	n := 300
	if testing.Short() {
		n = 60
	}
	h := newHarness(t, withConfig(func(c *provisioner.Config) {
		c.Workers = 16
		c.Retry = provisioner.RetryPolicy{Base: 5 * time.Millisecond, Max: 80 * time.Millisecond, LagWindow: 10 * time.Second}
	}))
	// About one call in five fails, in every transient way.
	for _, f := range []graphtest.FaultSpec{
		{Status: 503, Probability: 0.05},
		{Status: 429, Probability: 0.04},
		{Status: 504, Probability: 0.03},
		{Reset: true, Probability: 0.03},
		{Reset: true, AfterEffect: true, Probability: 0.03},
		{Status: 503, AfterEffect: true, Probability: 0.03},
	} {
		h.srv.Fault("*", f)
	}
	h.srv.ReplicationLag(20 * time.Millisecond)
	h.start()
	start := time.Now()
	var reqs []*approvals.Request
	for i := range n {
		p := person{email: fmt.Sprintf("load%03d@example.com", i), claims: map[string]any{"city": "C", ext: fmt.Sprint(i)}}
		if i%2 == 0 {
			p.identity = &approvals.Identity{Issuer: []string{"google.com", "facebook", "mail"}[i%3], IssuerAssignedID: fmt.Sprint("id-", i)}
		}
		reqs = append(reqs, h.approve(p))
	}
	for _, r := range reqs {
		r = h.wait(r.ID, approvals.ProvisioningSucceeded, 60*time.Second)
		u := h.checkProvisioned(r)
		if u.Properties[ext] != r.Claims[ext] {
			t.Errorf("%s: %s = %v", r.Email, ext, u.Properties[ext])
		}
	}
	if got := len(h.srv.Users()); got != n {
		t.Errorf("%d directory objects for %d approvals", got, n)
	}
	faults := 0
	for _, c := range h.srv.Calls() {
		if c.Fault != "" {
			faults++
		}
	}
	t.Logf("%d approvals provisioned in %s: %d Graph calls, %d faults injected, %.0f retries",
		n, time.Since(start).Round(time.Millisecond), len(h.srv.Calls()), faults, h.counter("approvals_provisioning_retries_total"))
	if faults < n/2 {
		t.Errorf("only %d faults injected", faults)
	}
}

func TestConfigValidate(t *testing.T) {
	cred, err := provisioner.NewCredential(provisioner.CredentialConfig{TenantID: "t", ClientID: "c", ClientSecret: "s"})
	if err != nil {
		t.Fatal(err)
	}
	good := provisioner.Config{Store: memory.New(nil), TenantDomain: "contoso.onmicrosoft.com", Graph: provisioner.GraphConfig{Credential: cred}}
	tests := []struct {
		name string
		mod  func(*provisioner.Config)
		want string
	}{
		{"ok", func(*provisioner.Config) {}, ""},
		{"no store", func(c *provisioner.Config) { c.Store = nil }, "store"},
		{"no credential", func(c *provisioner.Config) { c.Graph.Credential = nil }, "credential"},
		{"no tenant domain", func(c *provisioner.Config) { c.TenantDomain = "" }, "APPROVALS_TENANT_DOMAIN"},
		{"too many workers", func(c *provisioner.Config) { c.Workers = 65 }, "workers"},
		{"bad group", func(c *provisioner.Config) { c.GroupIDs = []string{"a/b"} }, "APPROVALS_GROUP_IDS"},
		{"bad Graph URL", func(c *provisioner.Config) { c.Graph.URL = "graph.microsoft.com" }, "Graph URL"},
	}
	for _, tt := range tests {
		c := good
		tt.mod(&c)
		_, err := provisioner.New(c)
		if (err == nil) != (tt.want == "") || (err != nil && !strings.Contains(err.Error(), tt.want)) {
			t.Errorf("%s: %v", tt.name, err)
		}
	}
}

// The API shapes a request shows: the provisioning record is JSON the
// admin API serves as is.
func TestProvisioningRecordJSON(t *testing.T) {
	h := newHarness(t)
	r := h.provision(person{"json@example.com", nil, nil}, approvals.ProvisioningSucceeded)
	b, _ := json.Marshal(r.Provisioning)
	for _, want := range []string{`"state":"succeeded"`, `"method":"invitation"`, `"user_id":"` + r.Provisioning.UserID + `"`} {
		if !strings.Contains(string(b), want) {
			t.Errorf("%s lacks %s", b, want)
		}
	}
}
