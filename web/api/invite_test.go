package api

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

const (
	groupA    = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	groupB    = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	extension = "extension_b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2_SupplierId"
)

func inviteEnv(t *testing.T, d *fakeDirectory) *env {
	return newEnv(t, func(c *Config) {
		c.Inviter = d
		c.InviteRedirectURL = "https://apps.contoso.example/welcome"
		c.SendInvitationMessage = true
	})
}

func TestInviteValidation(t *testing.T) {
	d := newFakeDirectory(groupA)
	e := inviteEnv(t, d)
	tests := []struct {
		name, body, fragment string
	}{
		{"no body", ``, "body is required"},
		{"no email", `{"display_name":"Pat"}`, "email is required"},
		{"not an email", `{"email":"pat.example.com"}`, "not a valid email"},
		{"display name in email", `{"email":"Pat <pat@example.com>"}`, "not a valid email"},
		{"plus", `{"email":"pat+tag@example.com"}`, "one of + # ! $ % & *"},
		{"hash", `{"email":"pat#1@example.com"}`, "Graph invitations refuse"},
		{"bang", `{"email":"pat!@example.com"}`, "Graph invitations refuse"},
		{"dollar", `{"email":"pat$@example.com"}`, "Graph invitations refuse"},
		{"percent", `{"email":"pat%@example.com"}`, "Graph invitations refuse"},
		{"ampersand", `{"email":"pat&co@example.com"}`, "Graph invitations refuse"},
		{"asterisk", `{"email":"pat*@example.com"}`, "Graph invitations refuse"},
		{"http redirect", `{"email":"pat@example.com","redirect_url":"http://apps.example"}`, "absolute https URL"},
		{"relative redirect", `{"email":"pat@example.com","redirect_url":"/welcome"}`, "absolute https URL"},
		{"group not a guid", `{"email":"pat@example.com","group_ids":["Sales"]}`, "group_ids[0]"},
		{"group twice", `{"email":"pat@example.com","group_ids":["` + groupA + `","` + groupA + `"]}`, "same id twice"},
		{"connector claim name", `{"email":"pat@example.com","attributes":{"lastName":"Smith"}}`, `"lastName" is neither`},
		{"reserved property", `{"email":"pat@example.com","attributes":{"userPrincipalName":"x"}}`, "set by the invitation"},
		{"short extension app id", `{"email":"pat@example.com","attributes":{"extension_b7d8_SupplierId":"1"}}`, "extension_<app id"},
		{"object value", `{"email":"pat@example.com","attributes":{"city":{"name":"Oslo"}}}`, "attributes.city must be"},
		{"null value", `{"email":"pat@example.com","attributes":{"city":null}}`, "attributes.city must be"},
		{"list value", `{"email":"pat@example.com","attributes":{"` + extension + `":["a","b"]}}`, "string, number or boolean"},
		{"collection property", `{"email":"pat@example.com","attributes":{"businessPhones":"+1 555 0100"}}`, `"businessPhones" is neither`},
		{"message without Microsoft's email", `{"email":"pat@example.com","send_invitation_message":false,"message":"Welcome"}`, "send_invitation_message"},
		{"existing id not a guid", `{"email":"pat@example.com","use_existing_id":"pat"}`, "use_existing_id"},
		{"unknown field", `{"email":"pat@example.com","groups":["` + groupA + `"]}`, `unknown field "groups"`},
		{"wrong type", `{"email":"pat@example.com","send_invitation_message":"yes"}`, "send_invitation_message"},
		{"long display name", `{"email":"pat@example.com","display_name":"` + strings.Repeat("P", 257) + `"}`, "longer than 256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do("POST", "/api/v1/invitations", tt.body).wantError(t, 400, "invalid", tt.fragment)
		})
	}
	if calls := d.callLog(); len(calls) != 0 {
		t.Errorf("invalid calls reached the directory: %v", calls)
	}
	newEnv(t).do("POST", "/api/v1/invitations", `{"email":"pat@example.com"}`).wantError(t, 501, "not_implemented")
	e.doAuth("POST", "/api/v1/invitations", "Bearer nope", `{"email":"pat@example.com"}`).wantError(t, 401, "unauthorized")
}

func TestInviteExistingMatch(t *testing.T) {
	d := newFakeDirectory(groupA)
	d.addUser("aaaaaaaa-0000-4000-8000-000000000001", "Pat@Example.com", "Guest")
	d.addUser("aaaaaaaa-0000-4000-8000-000000000002", "pat.work@contoso.example", "Member", "pat@example.com")
	d.addUser("aaaaaaaa-0000-4000-8000-000000000003", "someone@example.com", "Guest")
	e := inviteEnv(t, d)

	var got existingAnswer
	e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com","group_ids":["`+groupA+`"]}`).want(t, 200).json(t, &got)
	if len(got.Existing) != 2 || got.Existing[0].ID != "aaaaaaaa-0000-4000-8000-000000000001" || got.Existing[1].UserType != "Member" ||
		got.Existing[0].UserPrincipalName == "" || got.Existing[0].DisplayName == "" || got.Existing[0].Mail != "Pat@Example.com" {
		t.Errorf("existing %+v", got.Existing)
	}
	if calls := d.callLog(); !slices.Equal(calls, []string{"lookup pat@example.com"}) {
		t.Errorf("directory calls %v, want only the lookup", calls)
	}
	if len(d.members(groupA)) != 0 {
		t.Error("a lookup added group members")
	}
	if l := listAll(t, e); len(l) != 0 {
		t.Errorf("a lookup recorded requests: %+v", l)
	}

	// Told which one to use, it writes attributes and groups to it and
	// records it.
	body := `{"email":"pat@example.com","use_existing_id":"AAAAAAAA-0000-4000-8000-000000000002","group_ids":["` + groupA + `"],"attributes":{"jobTitle":"Buyer"}}`
	var ans inviteAnswer
	e.do("POST", "/api/v1/invitations", body).want(t, 200).json(t, &ans)
	if ans.UserID != "aaaaaaaa-0000-4000-8000-000000000002" || ans.RedeemURL != "" || ans.RequestID == "" || !ans.ExistingUser {
		t.Errorf("answer %+v", ans)
	}
	if m := d.members(groupA); !slices.Equal(m, []string{ans.UserID}) {
		t.Errorf("group members %v", m)
	}
	r, err := e.store.Get(context.Background(), ans.RequestID)
	if err != nil {
		t.Fatal(err)
	}
	if r.Source != approvals.SourceInvitation || r.Status != approvals.StatusApproved || r.Provisioning.State != approvals.ProvisioningSucceeded ||
		r.Provisioning.UserID != ans.UserID || r.Decision == nil || r.Decision.By != "api_key:ops" {
		t.Errorf("recorded %+v %+v", r, r.Provisioning)
	}
	if evs := e.eventsOf(approvals.EventInvitationLinked); len(evs) != 1 || evs[0].RequestID != r.ID || evs[0].Actor.ID != "ops" {
		t.Errorf("linked events %+v", evs)
	}
	if n := len(e.eventsOf(approvals.EventInvitationCreated)); n != 0 {
		t.Errorf("%d invitation.created events for an existing user", n)
	}

	// An id that is not one of the matches is refused before any write.
	e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com","use_existing_id":"aaaaaaaa-0000-4000-8000-000000000003"}`).
		wantError(t, 400, "invalid", "not one of the directory users")
	// With the person recorded, using the existing user again adds to the
	// same request.
	var again inviteAnswer
	e.do("POST", "/api/v1/invitations", body).want(t, 200).json(t, &again)
	if again.RequestID != ans.RequestID {
		t.Errorf("second link recorded %s, want %s", again.RequestID, ans.RequestID)
	}
}

func listAll(t *testing.T, e *env) []requestView {
	t.Helper()
	var l requestList
	e.do("GET", "/api/v1/requests?limit=500", "").want(t, 200).json(t, &l)
	return l.Requests
}

func TestInviteNew(t *testing.T) {
	d := newFakeDirectory(groupA, groupB)
	e := inviteEnv(t, d)
	body := `{"email":"sam@fabrikam.example","display_name":"Sam Supplier","group_ids":["` + groupA + `","` + strings.ToUpper(groupB) + `"],` +
		`"message":"Welcome to the supplier portal","attributes":{"companyName":"Fabrikam","mobilePhone":"+1 555 0100","` + extension + `":"S-42"}}`
	a := e.do("POST", "/api/v1/invitations", body).want(t, 201)
	var ans inviteAnswer
	a.json(t, &ans)
	if ans.UserID == "" || !strings.HasPrefix(ans.RedeemURL, "https://login.microsoftonline.com/redeem") || ans.RequestID == "" || ans.ExistingUser {
		t.Fatalf("answer %s", a.body)
	}
	if calls := d.callLog(); !slices.Equal(calls, []string{"lookup sam@fabrikam.example", "invite sam@fabrikam.example", "patch " + ans.UserID, "group " + groupA, "group " + groupB}) {
		t.Errorf("directory calls %v", calls)
	}
	d.mu.Lock()
	u := d.users[ans.UserID]
	d.mu.Unlock()
	if u.Attributes["companyName"] != "Fabrikam" || u.Attributes[extension] != "S-42" || u.DisplayName != "Sam Supplier" {
		t.Errorf("directory user %+v", u)
	}
	if !slices.Contains(d.members(groupB), ans.UserID) {
		t.Error("upper-case group id not added")
	}

	// Recorded as an approved request provisioned by invitation.
	var v requestView
	e.do("GET", "/api/v1/requests/"+ans.RequestID, "").want(t, 200).json(t, &v)
	if v.Source != approvals.SourceInvitation || v.Status != approvals.StatusApproved || v.Email != "sam@fabrikam.example" || v.DisplayName != "Sam Supplier" ||
		v.Decision == nil || v.Decision.By != "api_key:ops" || v.Decision.Automatic ||
		v.Provisioning.State != approvals.ProvisioningSucceeded || v.Provisioning.Method != approvals.MethodInvitation ||
		v.Provisioning.UserID != ans.UserID || v.Provisioning.RedeemURL != ans.RedeemURL || v.Claims["companyName"] != "Fabrikam" {
		t.Errorf("recorded %+v", v)
	}
	var types []string
	for _, h := range v.History {
		types = append(types, h.Type)
		if h.Actor.ID != "ops" {
			t.Errorf("event %s by %+v, want the API key", h.Type, h.Actor)
		}
	}
	want := []string{"invitation.created", "provisioning.step", "provisioning.step", "provisioning.step", "provisioning.succeeded"}
	if !slices.Equal(types, want) {
		t.Errorf("history %v, want %v", types, want)
	}
	created := v.History[0].Details
	if created["redirect_url"] != "https://apps.contoso.example/welcome" || created["send_invitation_message"] != "true" || created["user_id"] != ans.UserID {
		t.Errorf("invitation.created details %v", created)
	}

	// Inviting the same person again finds them in the directory.
	var ex existingAnswer
	e.do("POST", "/api/v1/invitations", `{"email":"SAM@fabrikam.example"}`).want(t, 200).json(t, &ex)
	if len(ex.Existing) != 1 || ex.Existing[0].ID != ans.UserID {
		t.Errorf("second invite: %+v", ex)
	}

	// Our own email: Microsoft sends none; the caller gets the redeem URL.
	e.do("POST", "/api/v1/invitations", `{"email":"lee@fabrikam.example","send_invitation_message":false,"redirect_url":"https://portal.fabrikam.example/start"}`).want(t, 201).json(t, &ans)
	if ans.RedeemURL == "" {
		t.Error("no redeem URL to send")
	}
	var r2 requestView
	e.do("GET", "/api/v1/requests/"+ans.RequestID, "").want(t, 200).json(t, &r2)
	if d := r2.History[0].Details; d["send_invitation_message"] != "false" || d["redirect_url"] != "https://portal.fabrikam.example/start" {
		t.Errorf("details %v", d)
	}
}

func TestInvitePartialFailures(t *testing.T) {
	t.Run("attributes", func(t *testing.T) {
		d := newFakeDirectory(groupA)
		d.failPatch = graphErr(InviteStepAttributes, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
		e := inviteEnv(t, d)
		var got incompleteAnswer
		e.do("POST", "/api/v1/invitations", `{"email":"ana@fabrikam.example","group_ids":["`+groupA+`"],"attributes":{"department":"Sales"}}`).
			wantError(t, 502, "provisioning_incomplete", "was invited", "writing the attributes", "Authorization_RequestDenied", "req-attributes-403", "retry-provisioning")
		e.do("POST", "/api/v1/invitations", `{"email":"ana2@fabrikam.example","attributes":{"department":"Sales"}}`).json(t, &got)
		if got.UserID == "" || got.RedeemURL == "" || got.RequestID == "" || !slices.Equal(got.Completed, []string{"invite"}) ||
			got.Failed.Step != InviteStepAttributes || got.Failed.GraphStatus != 403 || got.Failed.GraphCode != "Authorization_RequestDenied" ||
			got.Failed.GraphRequestID != "req-attributes-403" || got.Failed.GraphMessage == "" {
			t.Errorf("incomplete answer %+v", got)
		}
		r, err := e.store.Get(context.Background(), got.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		p := r.Provisioning
		if r.Status != approvals.StatusApproved || p.State != approvals.ProvisioningFailed || p.UserID != got.UserID || p.RedeemURL != got.RedeemURL ||
			p.Step != approvals.StepCreated || !strings.Contains(p.LastError, "Authorization_RequestDenied") || p.RequestID != "req-attributes-403" ||
			r.Claims["department"] != "Sales" {
			t.Errorf("recorded %+v", p)
		}
		if evs := e.eventsOf(approvals.EventProvisioningFailed); len(evs) != 2 || evs[1].Details["graph_request_id"] != "req-attributes-403" {
			t.Errorf("failed events %+v", evs)
		}
		// retry-provisioning hands it to the provisioner.
		var v requestView
		e.do("POST", "/api/v1/requests/"+got.RequestID+"/retry-provisioning", "").want(t, 200).json(t, &v)
		if v.Provisioning.State != approvals.ProvisioningInProgress || v.Provisioning.UserID != got.UserID {
			t.Errorf("after retry %+v", v.Provisioning)
		}
	})

	t.Run("groups", func(t *testing.T) {
		d := newFakeDirectory(groupA, groupB)
		d.failGroupID = groupB
		e := inviteEnv(t, d)
		var got incompleteAnswer
		a := e.do("POST", "/api/v1/invitations", `{"email":"bo@fabrikam.example","group_ids":["`+groupA+`","`+groupB+`"],"attributes":{"city":"Oslo"}}`)
		a.wantError(t, 502, "provisioning_incomplete", "adding the user to group "+groupB, "Authorization_RequestDenied")
		a.json(t, &got)
		if !slices.Equal(got.Completed, []string{"invite", "attributes", "group:" + groupA}) || got.Failed.Step != InviteStepGroups || got.Failed.GroupID != groupB {
			t.Errorf("incomplete answer %+v", got)
		}
		r, err := e.store.Get(context.Background(), got.RequestID)
		if err != nil {
			t.Fatal(err)
		}
		if p := r.Provisioning; p.State != approvals.ProvisioningFailed || p.Step != approvals.StepAttributes || !slices.Equal(p.GroupsDone, []string{groupA}) {
			t.Errorf("recorded %+v", p)
		}
		// An unknown group fails the same way, as Graph's 404.
		e.do("POST", "/api/v1/invitations", `{"email":"cy@fabrikam.example","group_ids":["00000000-0000-4000-8000-000000000000"]}`).
			wantError(t, 502, "provisioning_incomplete", "Request_ResourceNotFound")
	})

	t.Run("existing user, groups", func(t *testing.T) {
		d := newFakeDirectory(groupA)
		d.failGroupID = groupA
		d.addUser("aaaaaaaa-0000-4000-8000-000000000009", "dee@fabrikam.example", "Guest")
		e := inviteEnv(t, d)
		var got incompleteAnswer
		a := e.do("POST", "/api/v1/invitations", `{"email":"dee@fabrikam.example","use_existing_id":"aaaaaaaa-0000-4000-8000-000000000009","group_ids":["`+groupA+`"]}`)
		a.wantError(t, 502, "provisioning_incomplete", "existing user", "linked")
		a.json(t, &got)
		if !got.ExistingUser || got.UserID != "aaaaaaaa-0000-4000-8000-000000000009" || slices.Contains(got.Completed, "invite") {
			t.Errorf("incomplete answer %+v", got)
		}
	})
}

func TestInviteRefused(t *testing.T) {
	t.Run("permanent", func(t *testing.T) {
		d := newFakeDirectory()
		d.failInvite = graphErr(InviteStepInvite, 403, "Authorization_RequestDenied", "Guest invitations are not allowed in this tenant.")
		e := inviteEnv(t, d)
		var got incompleteAnswer
		a := e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`)
		a.wantError(t, 502, "graph_error", "the invitation failed", "Guest invitations are not allowed", "nothing was created", "User.Invite.All")
		a.json(t, &got)
		if got.UserID != "" || got.RequestID != "" || got.Failed.Step != InviteStepInvite || got.Failed.GraphCode != "Authorization_RequestDenied" {
			t.Errorf("answer %+v", got)
		}
		if l := listAll(t, e); len(l) != 0 {
			t.Errorf("a refused invitation was recorded: %+v", l)
		}
		evs := e.eventsOf(approvals.EventInvitationFailed)
		if len(evs) != 1 || evs[0].Actor.ID != "ops" || evs[0].Details["email"] != "eve@fabrikam.example" || !strings.Contains(evs[0].Details["error"], "Authorization_RequestDenied") {
			t.Errorf("failure events %+v", evs)
		}
	})
	t.Run("throttled", func(t *testing.T) {
		d := newFakeDirectory()
		d.failInvite = &InviteError{Step: InviteStepInvite, Status: 429, Code: "TooManyRequests", Message: "Too many requests", Transient: true, RetryAfter: 1500 * time.Millisecond}
		e := inviteEnv(t, d)
		a := e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`)
		a.wantError(t, 503, "unavailable", "try again later")
		if a.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2", a.header.Get("Retry-After"))
		}
	})
	t.Run("no answer", func(t *testing.T) {
		d := newFakeDirectory()
		d.failInvite = context.DeadlineExceeded
		e := inviteEnv(t, d)
		e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`).wantError(t, 503, "unavailable", "may or may not have been made", "send the same call again")
		if l := listAll(t, e); len(l) != 0 {
			t.Errorf("recorded %+v", l)
		}
	})
	t.Run("lookup", func(t *testing.T) {
		d := newFakeDirectory()
		d.failLookup = &InviteError{Step: InviteStepLookup, Status: 503, Code: "ServiceUnavailable", Transient: true}
		e := inviteEnv(t, d)
		e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`).wantError(t, 503, "unavailable", "looking the person up")
		if calls := d.callLog(); len(calls) != 1 {
			t.Errorf("calls after a failed lookup: %v", calls)
		}
	})
	t.Run("a sign-up is recorded", func(t *testing.T) {
		d := newFakeDirectory()
		e := inviteEnv(t, d)
		r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "fay@fabrikam.example"})
		if err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/api/v1/invitations", `{"email":"Fay@Fabrikam.example"}`).wantError(t, 409, "conflict", r.ID, "pending")
		if calls := d.callLog(); slices.Contains(calls, "invite Fay@Fabrikam.example") {
			t.Errorf("invited despite the recorded request: %v", calls)
		}
	})
}

// The flow runs without HTTP too, as the reviewer UI's Invite page uses
// it: domain errors, not HTTP answers.
func TestInviteFlowWithoutHTTP(t *testing.T) {
	d := newFakeDirectory(groupA)
	d.addUser("aaaaaaaa-0000-4000-8000-000000000001", "pat@example.com", "Guest")
	e := newEnv(t)
	flow, err := NewInviteFlow(InviteFlowConfig{Inviter: d, Store: e.store, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ada := approvals.Actor{Kind: approvals.ActorReviewer, ID: testOID, Name: "Ada Admin", Admin: true}

	if _, err := flow.Invite(ctx, InviteInput{Email: "a+b@example.com"}, ada); approvals.Code(err) != approvals.EInvalid || !strings.Contains(approvals.Message(err), "+ # ! $") {
		t.Errorf("bad email: %v", err)
	}
	if _, err := flow.Invite(ctx, InviteInput{Email: "x@example.com", Attributes: map[string]any{"lastName": "X"}}, ada); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("bad attribute: %v", err)
	}
	if _, err := flow.Invite(ctx, InviteInput{Email: "pat@example.com", ExistingUserID: "aaaaaaaa-0000-4000-8000-000000000009"}, ada); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("existing id not among the matches: %v", err)
	}
	out, err := flow.Invite(ctx, InviteInput{Email: "new@example.com", GroupIDs: []string{strings.ToUpper(groupA)}}, ada)
	if err != nil || out.UserID == "" || out.RedeemURL == "" || out.RequestID == "" || out.ExistingUser {
		t.Fatalf("invite: %+v, %v", out, err)
	}
	r, err := e.store.Get(ctx, out.RequestID)
	if err != nil || r.Decision.By != "Ada Admin" || r.Decision.ByID != testOID || r.Provisioning.RedeemURL != out.RedeemURL {
		t.Errorf("recorded %+v, %v", r, err)
	}
	if in := d.callLog(); !slices.Contains(in, "group "+groupA) {
		t.Errorf("group id not normalised: %v", in)
	}
	// With the guest gone from the directory (deleted, say) but still
	// recorded, inviting again is a conflict naming the request.
	d.mu.Lock()
	delete(d.users, out.UserID)
	d.mu.Unlock()
	if _, err := flow.Invite(ctx, InviteInput{Email: "NEW@example.com"}, ada); approvals.Code(err) != approvals.EConflict || !strings.Contains(approvals.Message(err), out.RequestID) {
		t.Errorf("second invite: %v", err)
	}
	if _, err := NewInviteFlow(InviteFlowConfig{Store: e.store}); err == nil {
		t.Error("a flow without an Inviter")
	}
}
