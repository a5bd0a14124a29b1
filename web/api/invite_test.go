package api

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/provisioner/provisionertest"
)

const (
	groupA    = "3f2504e0-4f89-41d3-9a0c-0305e82c3301"
	groupB    = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
	extension = "extension_b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2_SupplierId"
)

// graphEnv is an API whose invitations go through the real provisioner
// and Graph client to a fake Graph (provisioner/graphtest) that holds the
// Graph contract.
type graphEnv struct {
	*env
	graph *graphtest.Server
}

// inviteEnv starts a fake Graph with groupA and groupB, a provisioner on
// the env's store, and the API with invitations on.
func inviteEnv(t *testing.T, configure ...func(*Config)) *graphEnv {
	t.Helper()
	srv := graphtest.New(graphtest.Options{})
	t.Cleanup(srv.Close)
	srv.AddGroup(groupA)
	srv.AddGroup(groupB)
	// The provisioner runs on the system clock: the fake one moves only
	// when read.
	e := newEnv(t, append([]func(*Config){func(c *Config) { c.Service.Clock = approvals.SystemClock }}, configure...)...)
	provisionertest.Start(t, e.svc, e.store, srv, "https://apps.contoso.example/welcome")
	e.svc.InviteRedirectURL, e.svc.SendInvitationMessage = "https://apps.contoso.example/welcome", true
	return &graphEnv{env: e, graph: srv}
}

func TestInviteValidation(t *testing.T) {
	e := inviteEnv(t)
	tests := []struct {
		name, body, fragment string
	}{
		{"no body", ``, "body is required"},
		{"no email", `{"display_name":"Pat"}`, "email is required"},
		{"not an email", `{"email":"pat.example.com"}`, "not a valid email"},
		{"display name in email", `{"email":"Pat <pat@example.com>"}`, "not a valid email"},
		{"plus", `{"email":"pat+tag@example.com"}`, "contains '+', which Microsoft Graph invitations refuse"},
		{"hash", `{"email":"pat#1@example.com"}`, "Graph invitations refuse"},
		{"bang", `{"email":"pat!@example.com"}`, "Graph invitations refuse"},
		{"dollar", `{"email":"pat$@example.com"}`, "Graph invitations refuse"},
		{"percent", `{"email":"pat%@example.com"}`, "Graph invitations refuse"},
		{"ampersand", `{"email":"pat&co@example.com"}`, "Graph invitations refuse"},
		{"asterisk", `{"email":"pat*@example.com"}`, "Graph invitations refuse"},
		{"http redirect", `{"email":"pat@example.com","redirect_url":"http://apps.example"}`, "absolute https URL"},
		{"relative redirect", `{"email":"pat@example.com","redirect_url":"/welcome"}`, "absolute https URL"},
		{"group not a guid", `{"email":"pat@example.com","group_ids":["Sales"]}`, "group_ids[0]"},
		{"group twice", `{"email":"pat@example.com","group_ids":["` + groupA + `","` + groupA + `"]}`, "twice"},
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
	if calls := e.graph.Calls(); len(calls) != 0 {
		t.Errorf("invalid calls reached the directory: %v", calls)
	}
	newEnv(t).do("POST", "/api/v1/invitations", `{"email":"pat@example.com"}`).wantError(t, 501, "not_implemented")
	e.doAuth("POST", "/api/v1/invitations", "Bearer nope", `{"email":"pat@example.com"}`).wantError(t, 401, "unauthorized")
}

type inviteAnswerJSON struct {
	UserID       string `json:"user_id"`
	RedeemURL    string `json:"redeem_url"`
	RequestID    string `json:"request_id"`
	ExistingUser bool   `json:"existing_user"`
	Provisioning string `json:"provisioning"`
}

func TestInviteExistingMatch(t *testing.T) {
	e := inviteEnv(t)
	id := e.graph.AddUser(graphtest.User{Mail: "Pat@Example.com", UserType: "Guest", DisplayName: "Pat"})
	var ex struct {
		Existing []approvals.DirectoryUser `json:"existing"`
	}
	e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com"}`).want(t, 200).json(t, &ex)
	if len(ex.Existing) != 1 || ex.Existing[0].ID != id {
		t.Fatalf("existing %+v, want %s", ex.Existing, id)
	}
	if n, _ := e.store.Count(context.Background()); n[approvals.StatusApproved] != 0 {
		t.Fatalf("a look-up recorded a request: %v", n)
	}
	if len(e.graph.Invitations()) != 0 {
		t.Fatal("a look-up invited")
	}
	// Using the existing user writes the attributes and adds the groups.
	var ans inviteAnswerJSON
	e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com","use_existing_id":"`+strings.ToUpper(id)+`","group_ids":["`+groupA+`"],"attributes":{"jobTitle":"Auditor"}}`).
		want(t, 200).json(t, &ans)
	if !ans.ExistingUser || ans.UserID != id || ans.RequestID == "" || ans.Provisioning != "succeeded" {
		t.Fatalf("answer %+v", ans)
	}
	if u, _ := e.graph.User(id); u.Properties["jobTitle"] != "Auditor" || !slices.Contains(e.graph.Members(groupA), id) {
		t.Fatalf("user %+v, members %v", u, e.graph.Members(groupA))
	}
	if len(e.graph.Invitations()) != 0 {
		t.Fatal("an existing user was invited")
	}
	e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com","use_existing_id":"aaaaaaaa-0000-4000-8000-000000000009"}`).
		wantError(t, 400, "invalid", "not one of the directory users")
}

func TestInviteNew(t *testing.T) {
	e := inviteEnv(t)
	body := `{"email":"sam@fabrikam.example","display_name":"Sam Supplier","group_ids":["` + groupA + `"],
		"attributes":{"companyName":"Fabrikam","usageLocation":"NO","` + extension + `":"S-42"}}`
	var ans inviteAnswerJSON
	e.do("POST", "/api/v1/invitations", body).want(t, 201).json(t, &ans)
	if ans.UserID == "" || ans.RedeemURL == "" || ans.RequestID == "" || ans.Provisioning != "succeeded" {
		t.Fatalf("answer %+v", ans)
	}
	u, ok := e.graph.User(ans.UserID)
	if !ok || u.Properties["companyName"] != "Fabrikam" || u.Properties["usageLocation"] != "NO" || u.Properties[extension] != "S-42" {
		t.Fatalf("directory user %+v", u)
	}
	if !slices.Equal(e.graph.Members(groupA), []string{ans.UserID}) || len(e.graph.Members(groupB)) != 0 {
		t.Fatalf("members A %v B %v", e.graph.Members(groupA), e.graph.Members(groupB))
	}
	var v struct {
		Source   string `json:"source"`
		Status   string `json:"status"`
		Decision struct {
			By string `json:"by"`
		} `json:"decision"`
		Provisioning struct {
			Method    string `json:"method"`
			UserID    string `json:"user_id"`
			RedeemURL string `json:"redeem_url"`
		} `json:"provisioning"`
		History []struct {
			Type  string `json:"type"`
			Actor struct {
				Kind string `json:"kind"`
			} `json:"actor"`
		} `json:"history"`
	}
	e.do("GET", "/api/v1/requests/"+ans.RequestID, "").want(t, 200).json(t, &v)
	if v.Source != "invitation" || v.Status != "approved" || v.Provisioning.Method != "invitation" || v.Provisioning.UserID != ans.UserID {
		t.Fatalf("request %+v", v)
	}
	var types []string
	for _, h := range v.History {
		types = append(types, h.Type)
	}
	if len(types) < 3 || types[0] != "invitation.created" || types[1] != "request.approved" || types[len(types)-1] != "provisioning.succeeded" {
		t.Errorf("history %v", types)
	}
	invs := e.graph.Invitations()
	if len(invs) != 1 || invs[0].RedirectURL != "https://apps.contoso.example/welcome" || !invs[0].SendMessage || invs[0].DisplayName != "Sam Supplier" {
		t.Fatalf("invitations %+v", invs)
	}
	// The person has a request now.
	e.do("POST", "/api/v1/invitations", `{"email":"lee@fabrikam.example","send_invitation_message":false,"redirect_url":"https://portal.fabrikam.example/start"}`).want(t, 201)
	if invs := e.graph.Invitations(); len(invs) != 2 || invs[1].SendMessage || invs[1].RedirectURL != "https://portal.fabrikam.example/start" {
		t.Fatalf("second invitation %+v", invs)
	}
}

func TestInvitePartialFailures(t *testing.T) {
	t.Run("attributes", func(t *testing.T) {
		e := inviteEnv(t)
		e.graph.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 400, Code: "Request_BadRequest", Message: "Invalid value specified for property 'department'.", Count: 1})
		var got struct {
			RequestID string `json:"request_id"`
			UserID    string `json:"user_id"`
			Completed []string
			Failed    failedStepOut
		}
		a := e.do("POST", "/api/v1/invitations", `{"email":"ana@fabrikam.example","group_ids":["`+groupA+`"],"attributes":{"department":"Sales"}}`)
		a.wantError(t, 502, "provisioning_incomplete", "was invited", "writing the attributes", "Request_BadRequest", "retry-provisioning")
		a.json(t, &got)
		if got.UserID == "" || got.RequestID == "" || !slices.Equal(got.Completed, []string{"invite"}) || got.Failed.Step != "attributes" || got.Failed.GraphStatus != 400 {
			t.Fatalf("answer %+v", got)
		}
		e.do("POST", "/api/v1/requests/"+got.RequestID+"/retry-provisioning", "").want(t, 200)
		waitProvisioning(t, e.env, got.RequestID, approvals.ProvisioningSucceeded)
		if u, _ := e.graph.User(got.UserID); u.Properties["department"] != "Sales" || !slices.Contains(e.graph.Members(groupA), got.UserID) {
			t.Fatalf("after the retry: %+v", u)
		}
		if n := len(e.graph.Invitations()); n != 1 {
			t.Fatalf("%d invitations, want 1", n)
		}
	})
	t.Run("group", func(t *testing.T) {
		e := inviteEnv(t)
		missing := "00000000-0000-4000-8000-000000000000"
		a := e.do("POST", "/api/v1/invitations", `{"email":"bo@fabrikam.example","group_ids":["`+groupA+`","`+missing+`"],"attributes":{"city":"Oslo"}}`)
		a.wantError(t, 502, "provisioning_incomplete", "adding the user to group "+missing, "Request_ResourceNotFound")
		var got struct {
			Completed []string
			Failed    failedStepOut
		}
		a.json(t, &got)
		if !slices.Equal(got.Completed, []string{"invite", "attributes", "group:" + groupA}) || got.Failed.GroupID != missing {
			t.Fatalf("answer %+v", got)
		}
	})
}

func TestInviteRefused(t *testing.T) {
	t.Run("invitations restricted", func(t *testing.T) {
		e := inviteEnv(t)
		e.graph.RestrictInvitations(true)
		var got struct {
			RequestID string `json:"request_id"`
		}
		a := e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`)
		a.wantError(t, 502, "graph_error", "the invitation failed", "nobody was invited", "User.Invite.All", "retry-provisioning")
		a.json(t, &got)
		r, err := e.store.Get(context.Background(), got.RequestID)
		if err != nil || r.Provisioning.State != approvals.ProvisioningFailed || r.Provisioning.UserID != "" {
			t.Fatalf("recorded %+v, %v", r, err)
		}
	})
	t.Run("slow Graph answers 202", func(t *testing.T) {
		e := inviteEnv(t, func(c *Config) { c.InviteTimeout = 300 * time.Millisecond })
		e.graph.Fault("POST /invitations", graphtest.FaultSpec{Status: 503, Count: 1000})
		var ans inviteAnswerJSON
		e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`).want(t, 202).json(t, &ans)
		if ans.RequestID == "" || ans.Provisioning != "in_progress" || ans.UserID != "" {
			t.Fatalf("answer %+v", ans)
		}
		e.graph.ClearFaults()
		waitProvisioning(t, e.env, ans.RequestID, approvals.ProvisioningSucceeded)
	})
	t.Run("lookup unavailable", func(t *testing.T) {
		e := inviteEnv(t, func(c *Config) { c.InviteTimeout = 300 * time.Millisecond })
		e.graph.Fault("GET /users", graphtest.FaultSpec{Status: 503, RetryAfter: 2 * time.Second, Count: 1000})
		a := e.do("POST", "/api/v1/invitations", `{"email":"eve@fabrikam.example"}`)
		a.wantError(t, 503, "unavailable", "looking the person up", "nothing was recorded")
		if a.header.Get("Retry-After") != "2" {
			t.Errorf("Retry-After %q, want 2", a.header.Get("Retry-After"))
		}
	})
	t.Run("already recorded", func(t *testing.T) {
		e := inviteEnv(t)
		r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "fay@fabrikam.example"})
		if err != nil {
			t.Fatal(err)
		}
		e.do("POST", "/api/v1/invitations", `{"email":"Fay@Fabrikam.example"}`).wantError(t, 409, "conflict", r.ID, "pending")
	})
	// One person is one request whichever door they came in by: a pending
	// Google or email-passcode sign-up is a conflict too, and nothing is
	// recorded.
	for _, id := range []*approvals.Identity{{Issuer: "google.com", IssuerAssignedID: "g-7"}, {Issuer: "mail", IssuerAssignedID: "gus@fabrikam.example"}} {
		t.Run("already signed up with "+id.Issuer, func(t *testing.T) {
			e := inviteEnv(t)
			r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "gus@fabrikam.example", Identity: id})
			if err != nil {
				t.Fatal(err)
			}
			e.do("POST", "/api/v1/invitations", `{"email":"Gus@fabrikam.example"}`).wantError(t, 409, "conflict", r.ID, "pending", id.Issuer)
			if n, _ := e.store.Count(context.Background()); n[approvals.StatusApproved] != 0 || n[approvals.StatusPending] != 1 {
				t.Errorf("counts after the refused invitation: %v", n)
			}
		})
	}
}

// waitProvisioning waits for a request's provisioning to reach state.
func waitProvisioning(t *testing.T, e *env, id string, state approvals.ProvisioningState) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		r, err := e.store.Get(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if r.Provisioning.State == state {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioning of %s is %s (%s), want %s", id, r.Provisioning.State, r.Provisioning.LastError, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
