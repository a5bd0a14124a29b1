package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The emails' Approve and Deny links open the request page with the
// decision ready to confirm; the GET changes nothing, the POST of the
// form (with its CSRF token) decides.
func TestEmailDecisionLinks(t *testing.T) {
	e := newEnv(t)
	ann := e.signUp(t0.Add(-3*time.Hour), "ann@fabrikam.com", "Ann Lee", nil, nil)
	bob := e.signUp(t0.Add(-2*time.Hour), "bob@fabrikam.com", "Bob Ray", nil, nil)
	b, _ := e.login("rob")

	p := b.get("/requests/" + ann.ID + "?decision=approve")
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("GET: %d", p.resp.StatusCode)
	}
	if e.get(ann.ID).Status != approvals.StatusPending {
		t.Fatal("a GET decided")
	}
	if msg := textOf(queryOne(t, p.doc, "#proposed-decision")); !strings.Contains(msg, "Approve link") {
		t.Errorf("proposal %q", msg)
	}
	if _, ok := attrOf(queryOne(t, p.doc, `form[action="/requests/`+ann.ID+`/approve"] button`), "autofocus"); !ok {
		t.Error("the Approve button is not ready (autofocus)")
	}
	p = b.submit(p, `form[action="/requests/`+ann.ID+`/approve"]`, nil)
	if p.resp.StatusCode != http.StatusOK || e.get(ann.ID).Status != approvals.StatusApproved {
		t.Fatalf("confirm: %d, %s", p.resp.StatusCode, e.get(ann.ID).Status)
	}

	p = b.get("/requests/" + bob.ID + "?decision=deny")
	if msg := textOf(queryOne(t, p.doc, "#proposed-decision")); !strings.Contains(msg, "Deny link") {
		t.Errorf("proposal %q", msg)
	}
	if _, ok := attrOf(queryOne(t, p.doc, "textarea#deny-reason"), "autofocus"); !ok {
		t.Error("the reason field is not ready (autofocus)")
	}
	if p := b.get("/requests/" + bob.ID + "?decision=<script>"); strings.Contains(p.body, "proposed-decision") {
		t.Error("an unknown decision is proposed")
	}
	p = b.submit(p, `form[action="/requests/`+bob.ID+`/deny"]`, url.Values{"reason": {"not a partner"}, "share_reason": {"1"}})
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("deny: %d", p.resp.StatusCode)
	}
	got := e.get(bob.ID)
	if got.Status != approvals.StatusDenied || !got.Decision.ShareReason || got.Decision.Reason != "not a partner" {
		t.Errorf("decision %+v", got.Decision)
	}
}
