package web_test

import (
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/web"
)

var reviewer = approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-r", Name: "Rita Reviewer"}

// seedQueue creates n requests a minute apart, ending an hour before t0;
// every third is approved and every fifth denied.
func seedQueue(t *testing.T, e *env, n int) (pending, approved, denied []*approvals.Request) {
	t.Helper()
	ctx := context.Background()
	for i := range n {
		r := e.signUp(t0.Add(-time.Hour-time.Duration(n-i)*time.Minute), fmt.Sprintf("user%03d@example.com", i), fmt.Sprintf("User %03d", i), nil, nil)
		var err error
		switch {
		case i%3 == 0:
			r, err = e.svc.Approve(ctx, r.ID, reviewer, "")
			approved = append(approved, r)
		case i%5 == 0:
			r, err = e.svc.Deny(ctx, r.ID, reviewer, "no")
			denied = append(denied, r)
		default:
			pending = append(pending, r)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	return pending, approved, denied
}

func rowEmails(t *testing.T, p *page) []string {
	var out []string
	for _, n := range queryAll(t, p.doc, "table.queue-table tr.row .person-email") {
		out = append(out, textOf(n))
	}
	return out
}

func tabCounts(t *testing.T, p *page) map[string]string {
	out := map[string]string{}
	for _, tab := range queryAll(t, p.doc, "nav.tabs a.tab") {
		out[strings.TrimSpace(strings.TrimSuffix(textOf(tab), textOf(queryOne(t, tab, ".count"))))] = textOf(queryOne(t, tab, ".count"))
	}
	return out
}

func TestQueuePage(t *testing.T) {
	e := newEnv(t)
	pending, approved, denied := seedQueue(t, e, 130)
	b, p := e.login("rob")

	want := map[string]string{"Pending": fmt.Sprint(len(pending)), "Approved": fmt.Sprint(len(approved)), "Denied": fmt.Sprint(len(denied)), "All": "130"}
	if got := tabCounts(t, p); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("tabs %v, want %v", got, want)
	}
	if cur := queryOne(t, p.doc, `nav.tabs a[aria-current=page]`); !strings.HasPrefix(textOf(cur), "Pending") {
		t.Errorf("current tab %q", textOf(cur))
	}

	// The pending tab is worked oldest first, page by page.
	var seen []string
	for page := 0; ; page++ {
		emails := rowEmails(t, p)
		if len(emails) > 50 {
			t.Fatalf("page of %d rows", len(emails))
		}
		seen = append(seen, emails...)
		for _, pill := range queryAll(t, p.doc, "tr.row .pill") {
			if attr(pill, "class") != "pill pill-pending" {
				t.Fatalf("non-pending row on the pending tab: %s", attr(pill, "class"))
			}
		}
		next := queryAll(t, p.doc, `nav.pager a[rel=next]`)
		if len(next) == 0 {
			break
		}
		if page > 5 {
			t.Fatal("too many pages")
		}
		p = b.get(attr(next[0], "href"))
		queryOne(t, p.doc, `nav.pager a[href="/"]`) // back to the first page
	}
	if len(seen) != len(pending) {
		t.Fatalf("paged through %d pending, want %d", len(seen), len(pending))
	}
	for i, r := range pending {
		if seen[i] != r.Email {
			t.Fatalf("row %d: %s, want %s (oldest first)", i, seen[i], r.Email)
		}
	}

	// Newest first, and the approved tab.
	p = b.get("/?order=newest")
	if got := rowEmails(t, p); got[0] != pending[len(pending)-1].Email {
		t.Errorf("newest first starts with %s", got[0])
	}
	p = b.get("/?status=approved")
	if got := rowEmails(t, p); len(got) != len(approved) || got[0] != approved[len(approved)-1].Email {
		t.Errorf("approved tab: %d rows starting %v", len(got), got[:1])
	}
	if n := len(queryAll(t, p.doc, `input[name=id]`)); n != 0 {
		t.Errorf("%d selectable decided rows", n)
	}
	for _, cell := range queryAll(t, p.doc, "tr.row td.col-outcome") {
		if got := textOf(cell); !strings.HasPrefix(got, "Rita Reviewer") || !strings.HasSuffix(got, "just now · In progress") {
			t.Errorf("decision cell %q", got)
		}
	}

	// "All" shows pending first, under headings, then decided ones.
	p = b.get("/?status=all&limit=200")
	var groups []string
	for _, g := range queryAll(t, p.doc, "tr.group-row") {
		groups = append(groups, textOf(g))
	}
	if strings.Join(groups, ",") != "Pending,Decided" {
		t.Errorf("groups %v", groups)
	}
	all := rowEmails(t, p)
	if len(all) != 130 {
		t.Fatalf("all: %d rows", len(all))
	}
	for i, pill := range queryAll(t, p.doc, "tr.row td[data-label=Status] .pill") {
		if (i < len(pending)) != (attr(pill, "class") == "pill pill-pending") {
			t.Fatalf("row %d out of the pending-first order: %s", i, attr(pill, "class"))
		}
	}
	// Paging through "all" with small pages gives every request once.
	got := map[string]bool{}
	p = b.get("/?status=all&limit=10")
	for range 20 {
		for _, em := range rowEmails(t, p) {
			if got[em] {
				t.Fatalf("%s shown twice", em)
			}
			got[em] = true
		}
		next := queryAll(t, p.doc, `nav.pager a[rel=next]`)
		if len(next) == 0 {
			break
		}
		p = b.get(attr(next[0], "href"))
	}
	if len(got) != 130 {
		t.Errorf("paged through %d of 130", len(got))
	}

	if p := b.get("/?status=bogus"); p.resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad status: %d", p.resp.StatusCode)
	}
	if p := b.get("/?cursor=zzz"); p.resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad cursor: %d", p.resp.StatusCode)
	}
}

func TestQueueSearch(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.SearchScanLimit = 40 })
	pending, _, _ := seedQueue(t, e, 100)
	b, _ := e.login("rob")

	// By part of a name, in the tab's status.
	p := b.get("/?order=newest&q=" + url.QueryEscape("user 09"))
	var names []string
	for _, n := range queryAll(t, p.doc, "tr.row a.person-name") {
		names = append(names, textOf(n))
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "User 09") {
			t.Errorf("match %q", n)
		}
	}
	if len(names) == 0 {
		t.Fatal("no matches")
	}
	// The search reads a bounded slice and says so, with a link to go on.
	note := textOf(queryOne(t, p.doc, ".search-note"))
	if !strings.Contains(note, "among the 40 most recent requests searched") || !strings.Contains(note, "at most 40") {
		t.Errorf("note %q", note)
	}
	more := queryOne(t, p.doc, `nav.pager a[rel=next]`)
	if textOf(more) != "Search further →" {
		t.Errorf("next link %q", textOf(more))
	}
	total := len(names)
	for range 10 {
		p = b.get(attr(more, "href"))
		total += len(queryAll(t, p.doc, "tr.row"))
		next := queryAll(t, p.doc, `nav.pager a[rel=next]`)
		if len(next) == 0 {
			break
		}
		more = next[0]
	}
	want := 0
	for _, r := range pending {
		if strings.HasPrefix(r.DisplayName, "User 09") {
			want++
		}
	}
	if total != want {
		t.Errorf("found %d in all, want %d", total, want)
	}
	if !strings.Contains(textOf(queryOne(t, p.doc, ".search-note")), "was searched") {
		t.Errorf("last note %q", textOf(queryOne(t, p.doc, ".search-note")))
	}

	// An exact email is found directly, even beyond the scan bound.
	target := pending[len(pending)-1]
	p = b.get("/?order=oldest&q=" + url.QueryEscape(strings.ToUpper(target.Email)))
	if got := rowEmails(t, p); len(got) == 0 || got[0] != target.Email {
		t.Errorf("exact email: %v", got)
	}
	// So is a request id.
	p = b.get("/?status=all&q=" + target.ID)
	if got := rowEmails(t, p); len(got) != 1 || got[0] != target.Email {
		t.Errorf("request id: %v", got)
	}
	// Nothing found.
	p = b.get("/?q=nobody-at-all")
	if !strings.Contains(textOf(queryOne(t, p.doc, ".empty")), "No matches") {
		t.Error("no empty state")
	}
	// Clear goes back to the tab.
	if attr(queryOne(t, p.doc, "form.toolbar a.btn"), "href") != "/" {
		t.Error("clear link")
	}
}

// TestQueueReadsBoundedSlices checks that a queue page costs one page of
// the store whatever its size, and a search at most the scan limit.
func TestQueueReadsBoundedSlices(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	for i := range 1200 {
		if _, _, err := e.store.Create(ctx, &approvals.Request{Email: fmt.Sprintf("p%d@example.com", i), Status: approvals.StatusPending,
			CreatedAt: t0.Add(-time.Duration(i) * time.Second), Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}}, nil); err != nil {
			t.Fatal(err)
		}
	}
	b, _ := e.login("rob")
	for _, path := range []string{"/", "/?order=newest", "/?status=all", "/?status=approved"} {
		e.store.reset()
		b.get(path)
		listed, _, decisions := e.store.counts()
		if listed > 50 || decisions != 0 {
			t.Errorf("GET %s read %d rows and made %d decision scans", path, listed, decisions)
		}
	}
	e.store.reset()
	b.get("/?q=nobody")
	if listed, _, _ := e.store.counts(); listed > web.DefaultSearchScanLimit+approvals.MaxPageSize {
		t.Errorf("search read %d rows", listed)
	}
}

func TestRequestPage(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-26*time.Hour), "johnsmith@outlook.com", "John Smith", map[string]any{
		"givenName": "John", "surname": "Smith", "city": "Redmond", "country": "United States",
		"extension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Role":  "supplier",
		"extension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Terms": true,
		"extension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Seats": float64(12),
	}, &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "0123456789"})
	b, _ := e.login("rob")
	p := b.get("/requests/" + r.ID + "?back=" + url.QueryEscape("/?order=newest"))
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", p.resp.StatusCode)
	}
	if got := textOf(queryOne(t, p.doc, "h1")); got != "John Smith" {
		t.Errorf("h1 %q", got)
	}
	if got := attr(queryOne(t, p.doc, ".breadcrumb a"), "href"); got != "/?order=newest" {
		t.Errorf("back link %q", got)
	}
	props := map[string]string{}
	for _, d := range queryAll(t, p.doc, "dl.props > div") {
		props[textOf(queryOne(t, d, "dt"))] = textOf(queryOne(t, d, "dd"))
	}
	for k, want := range map[string]string{"Email": "johnsmith@outlook.com", "Identity provider": "Facebook · id 0123456789",
		"Locale": "en-US", "Source": "Self-service sign-up", "Request id": r.ID} {
		if props[k] != want {
			t.Errorf("%s = %q, want %q", k, props[k], want)
		}
	}
	claims := map[string]string{}
	var order []string
	for _, row := range queryAll(t, p.doc, "table.claims tbody tr") {
		label := textOf(queryOne(t, row, ".claim-label"))
		claims[label] = textOf(queryOne(t, row, "td"))
		order = append(order, label)
		if strings.Contains(attr(row, "class"), "claim-extension") {
			if textOf(queryOne(t, row, ".badge")) != "extension" || !strings.HasPrefix(textOf(queryOne(t, row, ".claim-key")), "extension_2d3a8b0e") {
				t.Errorf("extension row %q", textOf(row))
			}
		}
	}
	for k, want := range map[string]string{"Given name": "John", "Surname": "Smith", "City": "Redmond", "Role": "supplier", "Terms": "Yes", "Seats": "12"} {
		if claims[k] != want {
			t.Errorf("claim %s = %q, want %q", k, claims[k], want)
		}
	}
	if strings.Join(order, ",") != "City,Country or region,Given name,Surname,Role,Seats,Terms" {
		t.Errorf("claim order %v", order)
	}
	if got := textOf(queryOne(t, p.doc, "ol.timeline li")); !strings.Contains(got, "Request received") || !strings.Contains(got, "by Entra sign-up") {
		t.Errorf("timeline %q", got)
	}
	queryOne(t, p.doc, `form[action="/requests/`+r.ID+`/approve"] input[name=return][value="/?order=newest"]`)
	queryOne(t, p.doc, `form[action="/requests/`+r.ID+`/deny"] textarea[name=reason][required]`)

	// After approval, the decision and the provisioning show, and the
	// timeline grows.
	if _, err := e.svc.Approve(context.Background(), r.ID, reviewer, "ok"); err != nil {
		t.Fatal(err)
	}
	p = b.get("/requests/" + r.ID)
	if got := textOf(queryOne(t, p.doc, "section[aria-labelledby=h-decision]")); !strings.Contains(got, "Rita Reviewer") || !strings.Contains(got, "ok") {
		t.Errorf("decision %q", got)
	}
	if got := textOf(queryOne(t, p.doc, "section[aria-labelledby=h-prov]")); !strings.Contains(got, "In progress") || !strings.Contains(got, "Create guest user") {
		t.Errorf("provisioning %q", got)
	}
	if n := len(queryAll(t, p.doc, "ol.timeline li")); n != 2 {
		t.Errorf("%d timeline events", n)
	}
	if len(queryAll(t, p.doc, `form[action$="/approve"]`)) != 0 {
		t.Error("approve offered on a decided request")
	}
}

func TestDashboard(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// Ten requests over ten days; decisions two hours after each.
	for i := range 10 {
		at := t0.AddDate(0, 0, -i).Add(-3 * time.Hour)
		r := e.signUp(at, fmt.Sprintf("d%d@example.com", i), "D", nil, nil)
		if i%4 == 3 {
			continue // stays pending
		}
		e.clock.Set(at.Add(2 * time.Hour))
		var err error
		if i%2 == 0 {
			_, err = e.svc.Approve(ctx, r.ID, reviewer, "")
		} else {
			_, err = e.svc.Deny(ctx, r.ID, reviewer, "no")
		}
		e.clock.Set(t0)
		if err != nil {
			t.Fatal(err)
		}
	}
	b, _ := e.login("rob")
	e.store.reset()
	p := b.get("/dashboard")
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", p.resp.StatusCode)
	}
	stats := map[string]string{}
	for _, s := range queryAll(t, p.doc, ".stat") {
		stats[textOf(queryOne(t, s, ".stat-label"))] = textOf(queryOne(t, s, ".stat-value")) + " | " + textOf(queryOne(t, s, ".stat-sub"))
	}
	for k, want := range map[string]string{
		"Waiting for review":      "2 | oldest has waited 7 days",
		"Median time to decision": "2 h | reviewer decisions, last 30 days",
		"Decisions":               "8 | 63% approved · 0 automatic",
		"Requests received":       "10 | last 30 days · 10 stored in all",
	} {
		if stats[k] != want {
			t.Errorf("stat %s = %q, want %q", k, stats[k], want)
		}
	}
	charts := queryAll(t, p.doc, "figure.chart svg.svg-chart")
	if len(charts) != 4 {
		t.Fatalf("%d charts", len(charts))
	}
	for _, svg := range charts {
		title := queryOne(t, svg, "title")
		if attr(svg, "role") != "img" || !strings.Contains(attr(svg, "aria-labelledby"), attr(title, "id")) || textOf(title) == "" {
			t.Errorf("chart without an accessible name: %s", renderNode(svg)[:120])
		}
	}
	if n := len(queryAll(t, charts[0], "rect.bar")); n != 10 {
		t.Errorf("requests chart: %d bars, want 10", n)
	}
	if n := len(queryAll(t, charts[1], "rect.bar.s-denied")); n != 3 {
		t.Errorf("decisions chart: %d denied bars, want 3", n)
	}
	if n := len(queryAll(t, charts[3], "circle.point")); n != 8 {
		t.Errorf("median chart: %d points, want 8", n)
	}
	queryOne(t, charts[3], "path.line")
	// The numbers are there for screen readers.
	rows := queryAll(t, p.doc, "figure.chart details table tbody tr")
	if len(rows) != 30+30+6+30 {
		t.Errorf("%d data rows", len(rows))
	}
	if listed, _, decisions := e.store.counts(); decisions != 1 || listed > 20 {
		t.Errorf("dashboard read %d listed rows and %d decision scans", listed, decisions)
	}
}

func TestAuditPage(t *testing.T) {
	e := newEnv(t)
	pending, approved, denied := seedQueue(t, e, 80)
	b, _ := e.login("ada")
	p := b.get("/audit")
	rows := queryAll(t, p.doc, "table.audit-table tbody tr")
	if len(rows) != 100 {
		t.Fatalf("%d rows on the first page", len(rows))
	}
	if got := textOf(queryOne(t, rows[0], "td[data-label=Event]")); got != "Request received request.received" {
		t.Errorf("first event %q", got)
	}
	next := queryOne(t, p.doc, `nav.pager a[rel=next]`)
	p = b.get(attr(next, "href"))
	if n := len(queryAll(t, p.doc, "table.audit-table tbody tr")); n != 80+len(approved)+len(denied)-100 {
		t.Errorf("%d rows on the second page", n)
	}
	// Filtered by request.
	p = b.get("/audit?request=" + pending[0].ID)
	rows = queryAll(t, p.doc, "table.audit-table tbody tr")
	if len(rows) != 1 {
		t.Fatalf("filtered: %d rows", len(rows))
	}
	// The event names the person, linked to the request page, which links
	// back to this page.
	link := queryOne(t, rows[0], "td[data-label=Person] a.person-name")
	if textOf(link) != pending[0].DisplayName || !strings.HasPrefix(attr(link, "href"), "/requests/"+pending[0].ID+"?back=%2Faudit%3F") {
		t.Errorf("filtered: the person is %q linked to %q", textOf(link), attr(link, "href"))
	}
	if email := textOf(queryOne(t, rows[0], "td[data-label=Person] .person-email")); email != pending[0].Email {
		t.Errorf("filtered: the email is %q, want %q", email, pending[0].Email)
	}
	if n := len(queryAll(t, p.doc, "table.audit-table code")); n != 0 {
		t.Errorf("the audit page shows %d request ids instead of people", n)
	}
	req := b.get(attr(link, "href"))
	if cur := textOf(queryOne(t, req.doc, `.mainnav a[aria-current=page]`)); cur != "Audit" {
		t.Errorf("a request opened from the audit trail highlights %q", cur)
	}
	if back := queryOne(t, req.doc, ".breadcrumb a"); textOf(back) != "← Back to the audit trail" || !strings.HasPrefix(attr(back, "href"), "/audit?") {
		t.Errorf("breadcrumb %q to %q", textOf(back), attr(back, "href"))
	}

	// Admin events have labels; an event of a request that is gone shows
	// its id.
	later := t0.Add(48 * time.Hour)
	if err := e.store.AppendEvents(context.Background(), []approvals.Event{
		{At: later, Type: "admin.decisions_exported", Actor: reviewer, Details: map[string]string{"format": "csv"}},
		{At: later, Type: "admin.backup_downloaded", Actor: reviewer},
		{At: later, Type: approvals.EventProvisioningStep, RequestID: "0123456789abcdef01234567", Actor: approvals.ProvisionerActor},
	}); err != nil {
		t.Fatal(err)
	}
	p = b.get("/audit?since=" + later.Format("2006-01-02"))
	var labels []string
	for _, l := range queryAll(t, p.doc, ".audit-table .event-label") {
		labels = append(labels, textOf(l))
	}
	for _, want := range []string{"Decisions exported", "Backup downloaded", "Provisioning step done"} {
		if !slices.Contains(labels, want) {
			t.Errorf("audit labels %q, want %q among them", labels, want)
		}
	}
	if gone := textOf(queryOne(t, p.doc, "td[data-label=Person] a code")); gone != "0123456789abcdef01234567" {
		t.Errorf("an event of a missing request shows %q", gone)
	}
	// Since a later day: nothing.
	p = b.get("/audit?since=2030-01-01")
	queryOne(t, p.doc, ".empty")
	if p := b.get("/audit?since=yesterday"); p.resp.StatusCode != http.StatusBadRequest {
		t.Errorf("bad date: %d", p.resp.StatusCode)
	}
}

func TestExport(t *testing.T) {
	e := newEnv(t)
	_, approved, denied := seedQueue(t, e, 30)
	b, _ := e.login("ada")
	p := b.get("/export")
	form := queryOne(t, p.doc, `form[action="/export/download"][method=get]`)
	for _, sel := range []string{`select[name=status]`, `input[name=since][type=date]`, `input[name=until][type=date]`, `input[name=format][value=ndjson]`} {
		queryOne(t, form, sel)
	}

	p = b.get("/export/download?format=csv&status=")
	if ct := p.resp.Header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := p.resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="decisions-`) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	recs, err := csv.NewReader(strings.NewReader(p.body)).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Join(recs[0], ",") != "id,email,display_name,issuer,status,automatic,decided_by,decided_at,reason,created_at,provisioning_state,user_id,decided_by_id,source" {
		t.Errorf("header %v", recs[0])
	}
	if len(recs) != 1+len(approved)+len(denied) {
		t.Errorf("%d rows", len(recs)-1)
	}

	p = b.get("/export/download?format=json&status=denied&since=2026-01-01&until=" + t0.Format("2006-01-02"))
	var rows []map[string]any
	if err := json.Unmarshal([]byte(p.body), &rows); err != nil || p.resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("json: %v %q", err, p.resp.Header.Get("Content-Type"))
	}
	if len(rows) != len(denied) || rows[0]["status"] != "denied" {
		t.Errorf("%d denied rows", len(rows))
	}
	p = b.get("/export/download?format=ndjson&until=2020-01-01")
	if p.resp.Header.Get("Content-Type") != "application/x-ndjson" || p.body != "" {
		t.Errorf("ndjson: %q %q", p.resp.Header.Get("Content-Type"), p.body)
	}

	for _, q := range []string{"format=xml", "status=pending", "since=21/11/2026", "since=2026-11-21&until=2026-11-20"} {
		p := b.get("/export/download?" + q)
		if p.resp.StatusCode != http.StatusBadRequest || p.doc == nil {
			t.Errorf("%s: %d", q, p.resp.StatusCode)
			continue
		}
		queryOne(t, p.doc, ".flash-error")
	}
}

func TestInvitePage(t *testing.T) {
	e := newEnv(t)
	e.startProvisioner()
	const knownID = "6f1b9c2e-3a4d-4b5c-8d7e-9f0a1b2c3d4e"
	groupA, groupB := e.graph.AddGroup("0f8fad5b-d9cb-469f-a165-70867728950e"), e.graph.AddGroup("7c9e6679-7425-40de-944b-e07fc1f90ae7")
	e.graph.AddUser(graphtest.User{ID: knownID, DisplayName: "Known Person", Mail: "known@fabrikam.com", UserType: "Guest"})
	b, _ := e.login("ada")
	p := b.get("/invite")
	form := queryOne(t, p.doc, `form.form-card[action="/invite"][method=post]`)
	if v := attr(queryOne(t, form, "input[name=redirect_url]"), "value"); v != defaultRedirectURL {
		t.Errorf("redirect URL default %q", v)
	}

	// A person already in the directory: the matches are offered.
	p = b.submit(p, "form.form-card", url.Values{"email": {"known@fabrikam.com"}, "display_name": {"Known"}, "groups": {groupA}})
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("lookup: %d", p.resp.StatusCode)
	}
	match := queryOne(t, p.doc, "tr.match")
	if !strings.Contains(textOf(match), "Known Person") || !strings.Contains(textOf(match), "Guest") {
		t.Errorf("match %q", textOf(match))
	}
	if len(e.graph.Invitations()) != 0 {
		t.Fatal("invited although the person exists")
	}
	// Picking it records the person, decided by Ada, and adds the group.
	p = b.submit(p, "tr.match form", nil)
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "Recorded Known (known@fabrikam.com) as existing directory user "+knownID) {
		t.Errorf("flash %q", f)
	}
	if !strings.HasPrefix(p.resp.Request.URL.Path, "/requests/") {
		t.Fatalf("landed on %s", p.resp.Request.URL)
	}
	r := e.get(strings.TrimPrefix(p.resp.Request.URL.Path, "/requests/"))
	if r.Source != approvals.SourceInvitation || r.Status != approvals.StatusApproved || r.Decision.ByID != adaOID() || r.Provisioning.UserID != knownID {
		t.Errorf("recorded %+v %+v", r, r.Decision)
	}
	if m := e.graph.Members(groupA); len(m) != 1 || m[0] != knownID || len(e.graph.Invitations()) != 0 {
		t.Errorf("members %v, invitations %v", m, e.graph.Invitations())
	}
	if got := textOf(queryOne(t, p.doc, "ol.timeline")); !strings.Contains(got, "Existing directory user linked by Ada Reviewer") {
		t.Errorf("timeline %q", got)
	}

	// A new person is invited straight away, with groups and attributes.
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{
		"email": {"jane@fabrikam.com"}, "display_name": {"Jane Roe"},
		"groups":     {strings.ToUpper(groupA) + ", " + groupB},
		"attributes": {"jobTitle = Supplier\nextension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Role=supplier\n"},
		"message":    {"Welcome"},
	})
	invs := e.graph.Invitations()
	if len(invs) != 1 || invs[0].Email != "jane@fabrikam.com" || invs[0].DisplayName != "Jane Roe" || invs[0].RedirectURL != defaultRedirectURL ||
		!invs[0].SendMessage || invs[0].Message != "Welcome" {
		t.Fatalf("invitations %+v", invs)
	}
	jane, _ := e.graph.User(invs[0].UserID)
	if jane.Properties["jobTitle"] != "Supplier" || jane.Properties["extension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Role"] != "supplier" ||
		!slices.Contains(e.graph.Members(groupA), jane.ID) || !slices.Contains(e.graph.Members(groupB), jane.ID) {
		t.Errorf("directory user %+v", jane)
	}
	f := queryOne(t, p.doc, ".flash-success")
	if !strings.Contains(textOf(f), "Invited Jane Roe (jane@fabrikam.com). Directory object id: "+jane.ID) || attr(queryOne(t, f, "a"), "href") != invs[0].RedeemURL {
		t.Errorf("flash %s", renderNode(f))
	}
	claims := textOf(queryOne(t, p.doc, "table.claims"))
	if !strings.Contains(claims, "Job title jobTitle Supplier") || !strings.Contains(claims, "Role extension") {
		t.Errorf("claims of the invited person %q", claims)
	}
	// Inviting her again lists her: she is in the directory now.
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"jane@fabrikam.com"}})
	if p.resp.StatusCode != http.StatusOK || len(queryAll(t, p.doc, "tr.match")) != 1 {
		t.Errorf("second invitation: %d", p.resp.StatusCode)
	}
	// A person with a request here (a sign-up) is refused.
	if _, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "sid@fabrikam.com"}); err != nil {
		t.Fatal(err)
	}
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"sid@fabrikam.com"}})
	if p.resp.StatusCode != http.StatusUnprocessableEntity || !strings.Contains(textOf(queryOne(t, p.doc, ".flash-error")), "already has request") {
		t.Errorf("invitation of a recorded person: %d", p.resp.StatusCode)
	}

	// Mistakes come back as field errors, all at once; nothing is invited.
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"not an email"}, "groups": {"sales"}, "attributes": {"no equals sign"}, "redirect_url": {"myapps"}})
	if p.resp.StatusCode != http.StatusUnprocessableEntity {
		t.Fatalf("invalid form: %d", p.resp.StatusCode)
	}
	for _, id := range []string{"email-error", "groups-error", "attributes-error", "redirect_url-error"} {
		queryOne(t, p.doc, "#"+id)
	}
	if attr(queryOne(t, p.doc, "input#email"), "value") != "not an email" {
		t.Error("the form was not refilled")
	}
	// Addresses invitations refuse, and a message without the email.
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"a+b@fabrikam.com"}, "send_message": nil, "message": {"hi"}})
	if !strings.Contains(textOf(queryOne(t, p.doc, "#email-error")), "invitations refuse") || len(queryAll(t, p.doc, ".has-error textarea#message")) != 1 {
		t.Errorf("refused address / message: %d", p.resp.StatusCode)
	}
	if n := len(e.graph.Invitations()); n != 1 {
		t.Errorf("%d directory invitations after refused forms", n)
	}

	// Graph refusing the invitation: the request page shows it as Graph
	// said it, with the retry.
	e.graph.RestrictInvitations(true)
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"new@fabrikam.com"}})
	if !strings.HasPrefix(p.resp.Request.URL.Path, "/requests/") || !strings.Contains(textOf(queryOne(t, p.doc, ".flash-error")), "Guest invitations not allowed") {
		t.Errorf("refused invitation landed on %s: %s", p.resp.Request.URL, textOf(queryOne(t, p.doc, "main")))
	}
	e.graph.RestrictInvitations(false)

	// Invited, but adding a group failed: the request page takes over,
	// with the failure and the retry.
	missing := "1b4e28ba-2fa1-41d2-883f-0016d3cca427"
	p = b.submit(b.get("/invite"), "form.form-card", url.Values{"email": {"half@fabrikam.com"}, "groups": {missing}})
	if !strings.HasPrefix(p.resp.Request.URL.Path, "/requests/") {
		t.Fatalf("partial invite landed on %s: %s", p.resp.Request.URL, textOf(queryOne(t, p.doc, "main")))
	}
	if got := textOf(queryOne(t, p.doc, ".flash-error")); !strings.Contains(got, "The invitation of half@fabrikam.com failed") || !strings.Contains(got, "retry the provisioning") {
		t.Errorf("flash %q", got)
	}
	if box := textOf(queryOne(t, p.doc, ".error-box")); !strings.Contains(box, "Request_ResourceNotFound") {
		t.Errorf("error box %q", box)
	}
	queryOne(t, p.doc, `form[action$="/retry"]`)
}

func TestInvitePageWithoutInviter(t *testing.T) {
	e := newEnv(t) // no provisioner, no directory
	b, _ := e.login("ada")
	p := b.get("/invite")
	if !strings.Contains(textOf(queryOne(t, p.doc, ".flash-info")), "not configured") {
		t.Error("no notice")
	}
	if _, ok := attrOf(queryOne(t, p.doc, "form.form-card fieldset"), "disabled"); !ok {
		t.Error("the form is usable")
	}
	if p := b.post("/invite", url.Values{"email": {"a@b.com"}}); p.resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("POST: %d", p.resp.StatusCode)
	}
}

// walk calls fn for every element of doc.
func walk(n *html.Node, fn func(*html.Node)) {
	if n.Type == html.ElementNode {
		fn(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, fn)
	}
}

// TestRequestPageCards checks what the decision and provisioning cards
// leave out: no provisioning card for a denied request, no retry schedule
// once the account exists, rules named for people.
func TestRequestPageCards(t *testing.T) {
	e := newEnv(t)
	e.svc.Policy = approvals.Policy{AutoDenyDomains: []string{"spam.example"}}
	ctx := context.Background()
	b, _ := e.login("rob")
	card := func(p *page, id string) string {
		t.Helper()
		nodes := queryAll(t, p.doc, "section[aria-labelledby="+id+"]")
		if len(nodes) == 0 {
			return ""
		}
		return textOf(nodes[0])
	}

	denied := e.signUp(t0.Add(-time.Hour), "dee@fabrikam.com", "Dee", nil, nil)
	if _, err := e.svc.Deny(ctx, denied.ID, reviewer, "not a partner"); err != nil {
		t.Fatal(err)
	}
	p := b.get("/requests/" + denied.ID)
	if got := card(p, "h-prov"); got != "" {
		t.Errorf("a denied request shows provisioning: %q", got)
	}
	if got := card(p, "h-decision"); !strings.Contains(got, "Rita Reviewer") || !strings.Contains(got, reviewer.ID) {
		t.Errorf("decision card %q", got)
	}

	bot := e.signUp(t0.Add(-time.Hour), "bot@spam.example", "Bot", nil, nil)
	p = b.get("/requests/" + bot.ID)
	if got := card(p, "h-decision"); !strings.Contains(got, "Auto-deny domain spam.example") || strings.Contains(got, "policy:") {
		t.Errorf("decision card of a rule %q", got)
	}
	p = b.get("/?status=denied")
	var cells []string
	for _, c := range queryAll(t, p.doc, `tr.row td.col-outcome`) {
		cells = append(cells, textOf(c))
	}
	if got := strings.Join(cells, " | "); !strings.Contains(got, "rule Auto-deny domain spam.example") || strings.Contains(got, "policy:") {
		t.Errorf("queue decision cells %q", got)
	}

	ok := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	if _, err := e.svc.Approve(ctx, ok.ID, reviewer, ""); err != nil {
		t.Fatal(err)
	}
	p = b.get("/requests/" + ok.ID)
	if got := card(p, "h-prov"); !strings.Contains(got, "Retries until") {
		t.Errorf("in progress, the provisioning card has no retry deadline: %q", got)
	}
	if _, err := e.store.Update(ctx, ok.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		if _, err := r.CompleteStep(approvals.StepGroups, approvals.StepResult{UserID: "u-1", Method: approvals.MethodCreateUser}, t0); err != nil {
			return nil, err
		}
		ev, err := r.SucceedProvisioning(t0)
		return []approvals.Event{ev}, err
	}); err != nil {
		t.Fatal(err)
	}
	p = b.get("/requests/" + ok.ID)
	if got := card(p, "h-prov"); !strings.Contains(got, "Provisioned") || strings.Contains(got, "Retries until") || strings.Contains(got, "Last step") {
		t.Errorf("provisioned card %q", got)
	}
}
