package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/web/oidctest"
)

func robOID() string { return oidctest.DefaultUsers()[1].OID }
func adaOID() string { return oidctest.DefaultUsers()[0].OID }

func flashes(t *testing.T, p *page) []string {
	var out []string
	for _, f := range queryAll(t, p.doc, ".flash") {
		out = append(out, attr(f, "class")+": "+textOf(f))
	}
	return out
}

func TestCSRFRejection(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	b, _ := e.login("rob")
	for _, tc := range []struct {
		name   string
		form   url.Values
		header []string
	}{
		{"no token", url.Values{"csrf_token": {""}}, nil},
		{"wrong token", url.Values{"csrf_token": {"forged"}}, nil},
		{"cross-site fetch metadata", nil, []string{"Sec-Fetch-Site", "cross-site"}},
		{"foreign origin", nil, []string{"Origin", "https://evil.example"}},
		{"null origin", nil, []string{"Origin", "null"}},
	} {
		p := b.post("/requests/"+r.ID+"/approve", tc.form, tc.header...)
		if p.resp.StatusCode != http.StatusForbidden {
			t.Errorf("%s: status %d, want 403", tc.name, p.resp.StatusCode)
			continue
		}
		if got := textOf(queryOne(t, p.doc, "h1")); got != "This form has expired" {
			t.Errorf("%s: page %q", tc.name, got)
		}
	}
	if got := e.get(r.ID).Status; got != approvals.StatusPending {
		t.Fatalf("a forged request changed the status to %s", got)
	}
	// Sign-out is a state change too.
	if p := b.post("/auth/logout", url.Values{"csrf_token": {"forged"}}); p.resp.StatusCode != http.StatusForbidden {
		t.Errorf("forged sign-out: %d", p.resp.StatusCode)
	}
	// The token in a header (for fetch) and a same-origin Origin pass.
	p := b.post("/requests/"+r.ID+"/approve", url.Values{"csrf_token": {""}}, "X-CSRF-Token", b.csrf, "Origin", e.srv.URL, "Sec-Fetch-Site", "same-origin")
	if p.resp.StatusCode != http.StatusOK || e.get(r.ID).Status != approvals.StatusApproved {
		t.Fatalf("genuine request: %d, status %s", p.resp.StatusCode, e.get(r.ID).Status)
	}
	// Another session's token is no good.
	other, _ := e.login("ada")
	r2 := e.signUp(t0.Add(-time.Hour), "bob@fabrikam.com", "Bob", nil, nil)
	if p := b.post("/requests/"+r2.ID+"/approve", url.Values{"csrf_token": {other.csrf}}); p.resp.StatusCode != http.StatusForbidden {
		t.Errorf("token of another session: %d", p.resp.StatusCode)
	}
}

func TestApproveAndDenyFromTheRequestPage(t *testing.T) {
	e := newEnv(t)
	ann := e.signUp(t0.Add(-3*time.Hour), "ann@fabrikam.com", "Ann Lee", nil, &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-1"})
	bob := e.signUp(t0.Add(-2*time.Hour), "bob@fabrikam.com", "Bob Ray", nil, nil)
	b, queue := e.login("rob")

	// Open Ann from the queue, approve with a note, land back on the queue.
	link := queryOne(t, queue.doc, `a.person-name[href^="/requests/`+ann.ID+`"]`)
	p := b.get(attr(link, "href"))
	p = b.submit(p, `form[action="/requests/`+ann.ID+`/approve"]`, url.Values{"reason": {"known supplier"}})
	if p.resp.StatusCode != http.StatusOK || p.resp.Request.URL.Path != "/" {
		t.Fatalf("after approve: %d at %s", p.resp.StatusCode, p.resp.Request.URL)
	}
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "flash-success") || !strings.Contains(f[0], "Approved Ann Lee (ann@fabrikam.com)") {
		t.Errorf("flash %q", f)
	}
	got := e.get(ann.ID)
	if got.Status != approvals.StatusApproved || got.Decision.ByID != robOID() || got.Decision.By != "Rob Reviewer" ||
		got.Decision.ActorKind != approvals.ActorReviewer || got.Decision.Reason != "known supplier" || got.Provisioning.State != approvals.ProvisioningInProgress {
		t.Errorf("approved request %+v decision %+v", got, got.Decision)
	}
	// The flash is shown once.
	if f := flashes(t, b.get("/")); len(f) != 0 {
		t.Errorf("flash shown twice: %q", f)
	}

	// Deny without a reason: the form comes back with an error.
	p = b.get("/requests/" + bob.ID)
	p = b.submit(p, `form[action="/requests/`+bob.ID+`/deny"]`, url.Values{"reason": {"  "}})
	if p.resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("deny without reason: %d", p.resp.StatusCode)
	}
	if msg := textOf(queryOne(t, p.doc, "#deny-error")); !strings.Contains(msg, "Give a reason") {
		t.Errorf("error %q", msg)
	}
	if attr(queryOne(t, p.doc, "textarea#deny-reason"), "aria-invalid") != "true" {
		t.Error("the reason field is not marked invalid")
	}
	if e.get(bob.ID).Status != approvals.StatusPending {
		t.Fatal("denied without a reason")
	}
	// With a reason it is denied, by Rob.
	p = b.submit(p, `form[action="/requests/`+bob.ID+`/deny"]`, url.Values{"reason": {"not a partner"}})
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("deny: %d", p.resp.StatusCode)
	}
	got = e.get(bob.ID)
	if got.Status != approvals.StatusDenied || got.Decision.ByID != robOID() || got.Decision.By != "Rob Reviewer" || got.Decision.Reason != "not a partner" {
		t.Errorf("denied request %+v", got.Decision)
	}
	// The audit trail records the reviewer too.
	events, _, _ := e.store.Audit(context.Background(), approvals.AuditQuery{RequestID: bob.ID})
	last := events[len(events)-1]
	if last.Type != approvals.EventDenied || last.Actor.ID != robOID() || last.Actor.Name != "Rob Reviewer" || last.Actor.Kind != approvals.ActorReviewer {
		t.Errorf("audit event %+v", last)
	}

	// Denying an approved request is refused with a message, not a crash.
	p = b.post("/requests/"+ann.ID+"/deny", url.Values{"reason": {"changed my mind"}})
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "flash-error") || !strings.Contains(f[0], "already approved") {
		t.Errorf("conflict flash %q", f)
	}
	// An unknown request is a 404 page.
	if p := b.get("/requests/000000000000000000000000"); p.resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown request: %d", p.resp.StatusCode)
	}
}

func TestBulkDecisions(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i, name := range []string{"Ann", "Bob", "Cid", "Dee"} {
		r := e.signUp(t0.Add(time.Duration(i-10)*time.Minute), strings.ToLower(name)+"@fabrikam.com", name, nil, nil)
		ids = append(ids, r.ID)
	}
	b, queue := e.login("rob")
	boxes := queryAll(t, queue.doc, `#bulk-form input[type=checkbox][name=id]`)
	if len(boxes) != 4 {
		t.Fatalf("%d checkboxes", len(boxes))
	}

	// Approve the first two through the queue's form.
	p := b.submit(queue, "#bulk-form", url.Values{"id": {ids[0], ids[1]}, "action": {"approve"}})
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "Approved 2 requests.") {
		t.Errorf("flash %q", f)
	}
	for _, id := range ids[:2] {
		if r := e.get(id); r.Status != approvals.StatusApproved || r.Decision.ByID != robOID() {
			t.Errorf("%s: %s by %+v", id, r.Status, r.Decision)
		}
	}
	// Deny needs a reason: nothing changes without one.
	p = b.submit(p, "#bulk-form", url.Values{"id": {ids[2], ids[3]}, "action": {"deny"}})
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "Give a reason") {
		t.Errorf("flash %q", f)
	}
	if e.get(ids[2]).Status != approvals.StatusPending {
		t.Fatal("bulk deny without a reason denied")
	}
	// With a reason; an already approved request among them is reported.
	p = b.submit(p, "#bulk-form", url.Values{"id": {ids[2], ids[3], ids[0]}, "action": {"deny"}, "reason": {"spam wave"}})
	f := flashes(t, p)
	if len(f) != 2 || !strings.Contains(f[0], "Denied 2 requests.") || !strings.Contains(f[1], "1 request could not be changed") {
		t.Errorf("flashes %q", f)
	}
	for _, id := range ids[2:] {
		if r := e.get(id); r.Status != approvals.StatusDenied || r.Decision.Reason != "spam wave" || r.Decision.By != "Rob Reviewer" {
			t.Errorf("%s: %s %+v", id, r.Status, r.Decision)
		}
	}
	// Nothing selected.
	p = b.post("/requests/bulk", url.Values{"action": {"approve"}, "return": {"/?status=all"}})
	if p.resp.Request.URL.RequestURI() != "/?status=all" || !strings.Contains(strings.Join(flashes(t, p), ""), "Select at least one") {
		t.Errorf("empty bulk: %s %q", p.resp.Request.URL, flashes(t, p))
	}
	// The return address must be on this site.
	p = b.post("/requests/bulk", url.Values{"action": {"approve"}, "return": {"//evil.example/x"}})
	if p.resp.Request.URL.Host != strings.TrimPrefix(e.srv.URL, "http://") || p.resp.Request.URL.Path != "/" {
		t.Errorf("open redirect to %s", p.resp.Request.URL)
	}
}

func TestRetryAndReopenAreForAdmins(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	ctx := context.Background()
	if _, err := e.svc.Approve(ctx, r.ID, approvals.Actor{Kind: approvals.ActorReviewer, ID: "x", Name: "X"}, ""); err != nil {
		t.Fatal(err)
	}
	e.failProvisioning(r.ID, approvals.Failure{Cause: "Authorization_RequestDenied: Insufficient privileges to complete the operation.", GraphRequestID: "req-7f3a"})

	rob, _ := e.login("rob")
	p := rob.get("/requests/" + r.ID)
	box := textOf(queryOne(t, p.doc, ".error-box"))
	if !strings.Contains(box, "Insufficient privileges") || !strings.Contains(box, "req-7f3a") {
		t.Errorf("error box %q", box)
	}
	if len(queryAll(t, p.doc, `form[action$="/retry"]`)) != 0 {
		t.Error("a reviewer is offered the retry")
	}

	ada, _ := e.login("ada")
	p = ada.get("/requests/" + r.ID)
	p = ada.submit(p, `form[action="/requests/`+r.ID+`/retry"]`, nil)
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "will be tried again") {
		t.Errorf("flash %q", f)
	}
	if got := e.get(r.ID).Provisioning.State; got != approvals.ProvisioningInProgress {
		t.Errorf("provisioning %s", got)
	}
	events, _, _ := e.store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID})
	if last := events[len(events)-1]; last.Type != approvals.EventProvisioningRequeued || last.Actor.ID != adaOID() {
		t.Errorf("last event %+v", last)
	}

	// Reopen a denied request.
	d := e.signUp(t0.Add(-time.Hour), "dee@fabrikam.com", "Dee", nil, nil)
	if _, err := e.svc.Deny(ctx, d.ID, approvals.Actor{Kind: approvals.ActorReviewer, ID: "x"}, "no"); err != nil {
		t.Fatal(err)
	}
	if p := rob.get("/requests/" + d.ID); len(queryAll(t, p.doc, `form[action$="/reopen"]`)) != 0 {
		t.Error("a reviewer is offered reopen")
	}
	p = ada.get("/requests/" + d.ID)
	ada.submit(p, `form[action="/requests/`+d.ID+`/reopen"]`, url.Values{"reason": {"appeal accepted"}})
	if got := e.get(d.ID).Status; got != approvals.StatusPending {
		t.Errorf("after reopen: %s", got)
	}
}
