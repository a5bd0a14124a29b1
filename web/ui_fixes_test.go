package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
)

// The reason of a decision is limited in characters, not bytes, with the
// same limit as the admin API, and is never stored as invalid UTF-8.
func TestReasonLimitIsInCharacters(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("ada")
	ctx := context.Background()

	// 600 "é" are 1,200 bytes and 600 characters: accepted.
	ann := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	p := b.get("/requests/" + ann.ID)
	if got := attr(queryOne(t, p.doc, "textarea#deny-reason"), "maxlength"); got != "2000" {
		t.Errorf("the deny field allows %s characters, want 2000", got)
	}
	e600 := strings.Repeat("é", 600)
	b.submit(p, `form[action="/requests/`+ann.ID+`/deny"]`, url.Values{"reason": {e600}})
	if got := e.get(ann.ID); got.Status != approvals.StatusDenied || got.Decision.Reason != e600 {
		t.Fatalf("600 é: status %s", got.Status)
	}

	// One character over the limit: refused, the reason kept in the form.
	bob := e.signUp(t0.Add(-time.Hour), "bob@fabrikam.com", "Bob", nil, nil)
	long := strings.Repeat("é", approvals.MaxReasonLength+1)
	p = b.post("/requests/"+bob.ID+"/deny", url.Values{"reason": {long}})
	if p.resp.StatusCode != http.StatusUnprocessableEntity || e.get(bob.ID).Status != approvals.StatusPending {
		t.Fatalf("2,001 characters: %d, status %s", p.resp.StatusCode, e.get(bob.ID).Status)
	}
	if msg := textOf(queryOne(t, p.doc, "#deny-error")); !strings.Contains(msg, "2001 characters") || !strings.Contains(msg, "at most 2000") || !strings.HasPrefix(msg, "The reason") {
		t.Errorf("error %q", msg)
	}
	if got := textOf(queryOne(t, p.doc, "textarea#deny-reason")); got != long {
		t.Errorf("the form kept %d characters", utf8.RuneCountInString(got))
	}
	// Invalid UTF-8 is refused, not stored.
	p = b.post("/requests/"+bob.ID+"/deny", url.Values{"reason": {"no \xff\xfe"}})
	if p.resp.StatusCode != http.StatusUnprocessableEntity || e.get(bob.ID).Status != approvals.StatusPending {
		t.Fatalf("invalid UTF-8: %d, status %s", p.resp.StatusCode, e.get(bob.ID).Status)
	}
	// Approve and bulk have the same limit.
	b.post("/requests/"+bob.ID+"/approve", url.Values{"reason": {long}})
	if e.get(bob.ID).Status != approvals.StatusPending {
		t.Fatal("approved with 2,001 characters")
	}
	p = b.post("/requests/bulk", url.Values{"id": {bob.ID}, "action": {"deny"}, "reason": {long}})
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "at most 2000") || e.get(bob.ID).Status != approvals.StatusPending {
		t.Errorf("bulk with 2,001 characters: %q, status %s", f, e.get(bob.ID).Status)
	}
	b.post("/requests/"+bob.ID+"/approve", url.Values{"reason": {strings.Repeat("€", approvals.MaxReasonLength)}})
	if e.get(bob.ID).Status != approvals.StatusApproved {
		t.Fatal("2,000 characters of 3 bytes each were refused")
	}

	// Reopen refuses a reason over the limit instead of cutting it (inside
	// a character, before).
	p = b.post("/requests/"+ann.ID+"/reopen", url.Values{"reason": {long}})
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "Not reopened") || e.get(ann.ID).Status != approvals.StatusDenied {
		t.Errorf("reopen with 2,001 characters: %q, status %s", f, e.get(ann.ID).Status)
	}
	odd := strings.Repeat("a", 999) + "é" // cut at 1,000 bytes, the é was split
	b.post("/requests/"+ann.ID+"/reopen", url.Values{"reason": {odd}})
	events, _, _ := e.store.Audit(ctx, approvals.AuditQuery{RequestID: ann.ID})
	last := events[len(events)-1]
	if last.Type != approvals.EventReopened || last.Details["reason"] != odd || !utf8.ValidString(last.Details["reason"]) {
		t.Errorf("reopen stored %q (%v)", last.Details["reason"], last.Type)
	}
}

func TestQueueWording(t *testing.T) {
	e := newEnv(t)
	e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	b, _ := e.login("rob")
	p := b.get("/?q=nobody-here")
	if note := textOf(queryOne(t, p.doc, ".search-note")); !strings.HasPrefix(note, "0 matches for") {
		t.Errorf("search note %q", note)
	}
	p = b.get("/?q=ann")
	if note := textOf(queryOne(t, p.doc, ".search-note")); !strings.HasPrefix(note, "1 match for") {
		t.Errorf("search note %q", note)
	}
	// The order is applied by a button, not by the dropdown on its own.
	if sel := queryOne(t, p.doc, "select#order"); attr(sel, "data-autosubmit") != "" || len(queryAll(t, p.doc, "select[data-autosubmit]")) != 0 {
		t.Error("the order dropdown submits on change")
	}
	queryOne(t, p.doc, `form.toolbar button[type=submit]`)
}

func TestDeniedListShowsTheReason(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	long := strings.Repeat("Not a supplier we work with. ", 20)
	if _, err := e.svc.Deny(ctx, r.ID, reviewer, strings.TrimSpace(long)); err != nil {
		t.Fatal(err)
	}
	b, _ := e.login("rob")
	p := b.get("/?status=denied")
	got := textOf(queryOne(t, p.doc, "tr.row-denied .outcome-reason"))
	if !strings.Contains(got, "Reason:") || !strings.Contains(got, "Not a supplier we work with.") || !strings.HasSuffix(got, "…”") || utf8.RuneCountInString(got) > 160 {
		t.Errorf("the denied row says %q", got)
	}
}

func TestRequestNotFoundPage(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	p := b.get("/requests/000000000000000000000000")
	if p.resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP %d", p.resp.StatusCode)
	}
	if h := textOf(queryOne(t, p.doc, "h1")); h != "Request not found" {
		t.Errorf("heading %q", h)
	}
	if msg := textOf(queryOne(t, p.doc, ".message-card")); !strings.Contains(msg, "There is no request with the id 000000000000000000000000.") || strings.Contains(msg, "request not found") {
		t.Errorf("message %q", msg)
	}
}

func TestRequestPageNavigation(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	b, _ := e.login("ada")
	for _, tt := range []struct{ back, nav, crumb string }{
		{"", "Queue", "← Back to the queue"},
		{"/?status=denied", "Queue", "← Back to the queue"},
		{"/invite", "Invite", "← Back to Invite"},
		{"/audit?since=2026-01-01", "Audit", "← Back to the audit trail"},
	} {
		path := "/requests/" + r.ID
		if tt.back != "" {
			path += "?back=" + url.QueryEscape(tt.back)
		}
		p := b.get(path)
		if cur := queryAll(t, p.doc, `.mainnav a[aria-current=page]`); len(cur) != 1 || textOf(cur[0]) != tt.nav {
			t.Errorf("back=%q: the navigation highlights %d items, want %s", tt.back, len(cur), tt.nav)
		}
		if crumb := queryOne(t, p.doc, ".breadcrumb a"); textOf(crumb) != tt.crumb {
			t.Errorf("back=%q: breadcrumb %q", tt.back, textOf(crumb))
		}
	}
}

// Times are written in UTC with a machine-readable datetime for app.js to
// show in the browser's time zone.
func TestTimesCarryDatetime(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	b, _ := e.login("ada")
	p := b.get("/requests/" + r.ID)
	times := queryAll(t, p.doc, "time[data-local]")
	if len(times) == 0 {
		t.Fatal("no local times on the request page")
	}
	for _, tm := range times {
		at, err := time.Parse(time.RFC3339, attr(tm, "datetime"))
		if err != nil || textOf(tm) != at.UTC().Format("2 Jan 2006 15:04 UTC") {
			t.Errorf("time %q datetime %q", textOf(tm), attr(tm, "datetime"))
		}
	}
	// The deny button asks in the page's dialog, which every signed-in page
	// carries.
	queryOne(t, p.doc, `dialog#confirm-dialog[aria-labelledby=confirm-title]`)
	if btn := queryOne(t, p.doc, `form[action$="/deny"] button[data-confirm]`); attr(btn, "data-confirm-label") != "Deny" {
		t.Errorf("deny button %s", renderNode(btn))
	}
}
