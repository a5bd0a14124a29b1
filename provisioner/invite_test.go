package provisioner_test

import (
	"context"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// startInvites starts the harness's provisioner and lets its Service
// invite through the same Graph client.
func (h *harness) startInvites() {
	h.t.Helper()
	h.start()
	h.svc.Directory = h.prov.Directory()
	h.svc.InviteRedirectURL = "https://apps.example.com/welcome"
	h.svc.SendInvitationMessage = true
}

// TestInvitationRetryWritesEveryAttribute: an invitation whose attribute
// write fails is recorded with failed provisioning; retry-provisioning
// writes every attribute the invitation asked for, including the ones the
// sign-up claim mapping once dropped (usageLocation, ageGroup,
// employeeHireDate, mailNickname, consentProvidedForMinor).
func TestInvitationRetryWritesEveryAttribute(t *testing.T) {
	h := newHarness(t)
	h.startInvites()
	ctx := context.Background()
	attrs := map[string]any{
		"usageLocation": "PL", "ageGroup": "Adult", "employeeHireDate": "2026-01-05T00:00:00Z",
		"mailNickname": "sam.supplier", "consentProvidedForMinor": "NotRequired", "jobTitle": "Supplier", ext: "supplier",
	}
	h.srv.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 400, Code: "Request_BadRequest", Message: "Invalid value specified for property 'usageLocation'.", Count: 1})
	wait, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	group := h.srv.AddGroup("")
	out, err := h.svc.Invite(wait, approvals.Invitation{Email: "sam@fabrikam.example", DisplayName: "Sam Supplier", Attributes: attrs, GroupIDs: []string{group}},
		approvals.Actor{Kind: approvals.ActorAPIKey, ID: "lob-app"})
	if err != nil {
		t.Fatal(err)
	}
	r := out.Request
	if r == nil || r.Provisioning.State != approvals.ProvisioningFailed || r.Provisioning.UserID == "" || r.Provisioning.GraphStatus != 400 {
		t.Fatalf("after a failed attribute write: %+v", r)
	}
	if r.Source != approvals.SourceInvitation || r.Status != approvals.StatusApproved || r.Decision == nil || r.Decision.ByID != "lob-app" {
		t.Fatalf("recorded request %+v decision %+v", r, r.Decision)
	}

	if _, err := h.svc.RetryProvisioning(ctx, r.ID, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "ops"}); err != nil {
		t.Fatal(err)
	}
	r = h.wait(r.ID, approvals.ProvisioningSucceeded, 20*time.Second)
	u, ok := h.srv.User(r.Provisioning.UserID)
	if !ok {
		t.Fatalf("user %s not in the directory", r.Provisioning.UserID)
	}
	for k, v := range attrs {
		if u.Properties[k] != v {
			t.Errorf("after the retry, %s = %v, want %v", k, u.Properties[k], v)
		}
	}
	if m := h.srv.Members(group); len(m) != 1 || m[0] != u.ID {
		t.Errorf("group members %v, want [%s]", m, u.ID)
	}
	for _, g := range h.groups {
		if len(h.srv.Members(g)) != 0 {
			t.Errorf("the sign-up group %s got members from an invitation", g)
		}
	}
	invs := h.srv.Invitations()
	if len(invs) != 1 || invs[0].RedirectURL != "https://apps.example.com/welcome" || !invs[0].SendMessage {
		t.Fatalf("invitations %+v", invs)
	}
}

// TestInvitationOptionsReachGraph: the redirect URL, the message and
// send_invitation_message an invitation asks for are what Graph gets; an
// invited person is not invited twice.
func TestInvitationOptionsReachGraph(t *testing.T) {
	h := newHarness(t)
	h.startInvites()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	send := true
	out, err := h.svc.Invite(ctx, approvals.Invitation{Email: "kim@fabrikam.example", RedirectURL: "https://portal.example/in",
		SendInvitationMessage: &send, Message: "Welcome, Kim."}, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "lob"})
	if err != nil {
		t.Fatal(err)
	}
	if p := out.Request.Provisioning; p.State != approvals.ProvisioningSucceeded || p.RedeemURL == "" || p.Method != approvals.MethodInvitation {
		t.Fatalf("provisioning %+v", p)
	}
	invs := h.srv.Invitations()
	if len(invs) != 1 || invs[0].RedirectURL != "https://portal.example/in" || invs[0].Message != "Welcome, Kim." || !invs[0].SendMessage {
		t.Fatalf("invitations %+v", invs)
	}
	// The person is in the directory now: a second invitation lists them
	// and records nothing.
	again, err := h.svc.Invite(ctx, approvals.Invitation{Email: "kim@fabrikam.example"}, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "lob"})
	if err != nil || again.Request != nil || len(again.Existing) != 1 || again.Existing[0].ID != out.Request.Provisioning.UserID {
		t.Fatalf("second invitation: %+v, %v", again, err)
	}
}
