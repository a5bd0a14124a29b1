package api

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

func TestRequestShape(t *testing.T) {
	e := newEnv(t)
	r := e.signUp("pat@example.com")
	e.do("POST", "/api/v1/requests/"+r.ID+"/approve", `{"reason":"known supplier"}`).want(t, 200)

	var got map[string]any
	e.do("GET", "/api/v1/requests/"+r.ID, "").want(t, 200).json(t, &got)
	// Every key SPEC shows, under SPEC's names.
	for _, k := range []string{"id", "email", "display_name", "identity", "claims", "locale", "status", "created_at", "decision", "provisioning", "history"} {
		if _, ok := got[k]; !ok {
			t.Errorf("request has no %q: %v", k, got)
		}
	}
	id := got["identity"].(map[string]any)
	if id["issuer"] != "facebook.com" || id["issuer_assigned_id"] != "fb-pat@example.com" {
		t.Errorf("identity %v", id)
	}
	if c := got["claims"].(map[string]any); c["givenName"] != "Pat" || c["city"] != "Redmond" {
		t.Errorf("claims %v", c)
	}
	d := got["decision"].(map[string]any)
	for _, k := range []string{"by", "at", "reason", "automatic"} {
		if _, ok := d[k]; !ok {
			t.Errorf("decision has no %q: %v", k, d)
		}
	}
	if d["by"] != "api_key:ops" || d["reason"] != "known supplier" || d["automatic"] != false {
		t.Errorf("decision %v", d)
	}
	p := got["provisioning"].(map[string]any)
	if p["state"] != "in_progress" || p["method"] != "create_user" || p["attempts"] != float64(0) {
		t.Errorf("provisioning %v", p)
	}
	for _, hidden := range []string{"step", "groups_done", "deadline"} {
		if _, ok := p[hidden]; ok {
			t.Errorf("provisioning shows internal %q", hidden)
		}
	}
	var types []string
	for _, h := range got["history"].([]any) {
		ev := h.(map[string]any)
		types = append(types, ev["type"].(string))
		if ev["request_id"] != r.ID || ev["at"] == "" || ev["actor"] == nil {
			t.Errorf("history event %v", ev)
		}
	}
	if want := []string{"request.received", "request.approved"}; !slices.Equal(types, want) {
		t.Errorf("history %v, want %v", types, want)
	}

	// A pending request has a null decision, and an Entra ID person no
	// identity.
	r2, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "sam@contoso.example"})
	if err != nil {
		t.Fatal(err)
	}
	var pending map[string]any
	e.do("GET", "/api/v1/requests/"+r2.ID, "").want(t, 200).json(t, &pending)
	if pending["decision"] != nil || pending["identity"] != nil || pending["status"] != "pending" {
		t.Errorf("pending request %v", pending)
	}
	if p := pending["provisioning"].(map[string]any); p["state"] != "not_started" {
		t.Errorf("pending provisioning %v", p)
	}

	e.do("GET", "/api/v1/requests/00000000000000000000dead", "").wantError(t, 404, "not_found")
}

func TestListRequests(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 7 {
		ids = append(ids, e.signUp(fmt.Sprintf("p%d@example.com", i)).ID)
	}
	e.signUp("someone@spam.example") // auto-denied
	e.do("POST", "/api/v1/requests/"+ids[1]+"/approve", "").want(t, 200)

	list := func(query string) requestList {
		t.Helper()
		var l requestList
		e.do("GET", "/api/v1/requests"+query, "").want(t, 200).json(t, &l)
		return l
	}
	// Newest first, paged, no next_cursor on the last page.
	var seen []string
	cursor := ""
	for pages := 0; ; pages++ {
		q := "?status=pending&limit=4"
		if cursor != "" {
			q += "&cursor=" + cursor
		}
		var raw map[string]json.RawMessage
		e.do("GET", "/api/v1/requests"+q, "").want(t, 200).json(t, &raw)
		l := list(q)
		for _, r := range l.Requests {
			seen = append(seen, r.ID)
			if r.Status != approvals.StatusPending {
				t.Errorf("status filter let %s (%s) through", r.ID, r.Status)
			}
		}
		if l.NextCursor == "" {
			if _, ok := raw["next_cursor"]; ok {
				t.Errorf("last page has a next_cursor key: %s", raw["next_cursor"])
			}
			break
		}
		cursor = l.NextCursor
		if pages > 5 {
			t.Fatal("paging does not end")
		}
	}
	want := slices.Clone(ids)
	want = slices.Delete(want, 1, 2)
	slices.Reverse(want)
	if !slices.Equal(seen, want) {
		t.Errorf("pending pages %v, want %v", seen, want)
	}
	if l := list("?status=denied"); len(l.Requests) != 1 || l.Requests[0].Decision == nil || !l.Requests[0].Decision.Automatic {
		t.Errorf("denied %+v", l.Requests)
	}
	if l := list(""); len(l.Requests) != 8 {
		t.Errorf("all: %d requests, want 8", len(l.Requests))
	}
	var empty map[string]any
	newEnv(t).do("GET", "/api/v1/requests", "").want(t, 200).json(t, &empty)
	if r, ok := empty["requests"].([]any); !ok || len(r) != 0 {
		t.Errorf("empty page: %v, want requests: []", empty)
	}

	bad := []struct{ query, fragment string }{
		{"?status=waiting", `status "waiting"`},
		{"?status=PENDING", "pending, approved, denied"},
		{"?limit=0", "1 to 500"},
		{"?limit=501", "1 to 500"},
		{"?limit=-1", "1 to 500"},
		{"?limit=ten", "1 to 500"},
		{"?cursor=%21%21%21", "cursor"},
		{"?sort=oldest", `unknown query parameter "sort"`},
		{"?status=pending&status=denied", "more than once"},
	}
	for _, b := range bad {
		t.Run(b.query, func(t *testing.T) {
			e.do("GET", "/api/v1/requests"+b.query, "").wantError(t, 400, "invalid", b.fragment)
		})
	}
	if l := list("?limit=500"); len(l.Requests) != 8 {
		t.Errorf("limit=500: %d", len(l.Requests))
	}
}

// Paging while sign-ups keep arriving shows no request twice and misses
// none that existed when paging began.
func TestListPagingUnderConcurrentInserts(t *testing.T) {
	e := newEnv(t)
	before := map[string]bool{}
	for i := range 60 {
		before[e.signUp(fmt.Sprintf("before%d@example.com", i)).ID] = true
	}
	srv := httptest.NewServer(e.handler)
	defer srv.Close()

	// After each page the inserter adds a few sign-ups while the next page
	// is being read.
	pageDone := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	inserted := 0
	go func() {
		defer wg.Done()
		for range pageDone {
			for range 5 {
				if _, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: fmt.Sprintf("during%d@example.com", inserted)}); err != nil {
					t.Error(err)
				}
				inserted++
			}
		}
	}()

	seen := map[string]int{}
	cursor := ""
	for page := 0; ; page++ {
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/requests?limit=7&cursor="+cursor, nil)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var l requestList
		err = json.NewDecoder(resp.Body).Decode(&l)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("page %d: %d %v", page, resp.StatusCode, err)
		}
		for _, r := range l.Requests {
			seen[r.ID]++
		}
		if l.NextCursor == "" {
			break
		}
		pageDone <- struct{}{}
		cursor = l.NextCursor
		if page > 1000 {
			t.Fatal("paging does not end")
		}
	}
	close(pageDone)
	wg.Wait()
	for id, n := range seen {
		if n > 1 {
			t.Errorf("request %s shown %d times", id, n)
		}
	}
	for id := range before {
		if seen[id] == 0 {
			t.Errorf("request %s, present before paging, was missed", id)
		}
	}
	t.Logf("paged %d requests while %d were inserted", len(seen), inserted)
}

func TestDecisions(t *testing.T) {
	e := newEnv(t)
	approveOf := func(r *approvals.Request) string { return "/api/v1/requests/" + r.ID + "/approve" }
	denyOf := func(r *approvals.Request) string { return "/api/v1/requests/" + r.ID + "/deny" }

	t.Run("approve is idempotent", func(t *testing.T) {
		r := e.signUp("twice@example.com")
		var first, second requestView
		e.do("POST", approveOf(r), `{"reason":"ok"}`).want(t, 200).json(t, &first)
		e.do("POST", approveOf(r), `{"reason":"ok again"}`).want(t, 200).json(t, &second)
		if first.Status != approvals.StatusApproved || second.Version != first.Version || second.Decision.Reason != "ok" {
			t.Errorf("second approve changed the request: %+v then %+v", first, second)
		}
		n := 0
		for _, ev := range e.eventsOf(approvals.EventApproved) {
			if ev.RequestID == r.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d approved events, want 1", n)
		}
		jobs, err := e.store.DueJobs(context.Background(), e.clock.Now(), 100)
		if err != nil {
			t.Fatal(err)
		}
		n = 0
		for _, j := range jobs {
			if j.ID == r.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d provisioning jobs, want 1", n)
		}
		// Concurrent approvals also make one decision.
		r2 := e.signUp("race@example.com")
		var wg sync.WaitGroup
		for range 8 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if a := e.do("POST", approveOf(r2), ""); a.status != 200 {
					t.Errorf("concurrent approve: %d %s", a.status, a.body)
				}
			}()
		}
		wg.Wait()
		n = 0
		for _, ev := range e.eventsOf(approvals.EventApproved) {
			if ev.RequestID == r2.ID {
				n++
			}
		}
		if n != 1 {
			t.Errorf("%d approved events after concurrent approvals, want 1", n)
		}
	})

	t.Run("deny needs a reason", func(t *testing.T) {
		r := e.signUp("deny@example.com")
		for _, body := range []string{"", "{}", `{"reason":""}`, `{"reason":"   "}`} {
			e.do("POST", denyOf(r), body).wantError(t, 400, "invalid", "reason")
		}
		var v requestView
		e.do("POST", denyOf(r), `{"reason":"unknown company"}`).want(t, 200).json(t, &v)
		if v.Status != approvals.StatusDenied || v.Decision.Reason != "unknown company" {
			t.Errorf("denied %+v", v)
		}
		// Denying again is a no-op; approving a denied request a conflict.
		e.do("POST", denyOf(r), `{"reason":"again"}`).want(t, 200)
		e.do("POST", approveOf(r), "").wantError(t, 409, "conflict", "reopen")
		if n := len(e.eventsOf(approvals.EventDenied)); n != 1 {
			t.Errorf("%d denied events, want 1", n)
		}
	})

	t.Run("deny an approved request", func(t *testing.T) {
		r := e.signUp("approved@example.com")
		e.do("POST", approveOf(r), "").want(t, 200)
		e.do("POST", denyOf(r), `{"reason":"changed my mind"}`).wantError(t, 409, "conflict", "already approved")
	})

	t.Run("reopen", func(t *testing.T) {
		r := e.signUp("reopen@example.com")
		e.do("POST", denyOf(r), `{"reason":"no"}`).want(t, 200)
		var v requestView
		e.do("POST", "/api/v1/requests/"+r.ID+"/reopen", `{"reason":"appeal upheld"}`).want(t, 200).json(t, &v)
		if v.Status != approvals.StatusPending || v.Decision != nil {
			t.Errorf("reopened %+v", v)
		}
		e.do("POST", "/api/v1/requests/"+r.ID+"/reopen", "").want(t, 200) // pending: no-op
		e.do("POST", approveOf(r), "").want(t, 200)
		e.do("POST", "/api/v1/requests/"+r.ID+"/reopen", "").wantError(t, 409, "conflict", "only denied")
	})

	t.Run("retry provisioning", func(t *testing.T) {
		r := e.signUp("retry@example.com")
		e.do("POST", "/api/v1/requests/"+r.ID+"/retry-provisioning", "").wantError(t, 409, "conflict", "only approved")
		e.do("POST", approveOf(r), "").want(t, 200)
		// In progress: retrying changes nothing.
		e.do("POST", "/api/v1/requests/"+r.ID+"/retry-provisioning", "").want(t, 200)
		_, err := e.store.Update(context.Background(), r.ID, func(x *approvals.Request) ([]approvals.Event, error) {
			ev, err := x.FailProvisioning(approvals.Failure{Cause: "Graph 403 Authorization_RequestDenied", GraphRequestID: "req-1"}, e.clock.Now())
			return []approvals.Event{ev}, err
		})
		if err != nil {
			t.Fatal(err)
		}
		wakes := e.wakes.n.Load()
		var v requestView
		e.do("POST", "/api/v1/requests/"+r.ID+"/retry-provisioning", "").want(t, 200).json(t, &v)
		if v.Provisioning.State != approvals.ProvisioningInProgress {
			t.Errorf("after retry: %+v", v.Provisioning)
		}
		if e.wakes.n.Load() != wakes+1 {
			t.Error("retry did not wake the provisioner")
		}
		evs := e.eventsOf(approvals.EventProvisioningRequeued)
		if len(evs) != 1 || evs[0].Actor.ID != "ops" || evs[0].Details["previous_error"] == "" {
			t.Errorf("requeued events %+v", evs)
		}
		e.do("POST", "/api/v1/requests/"+r.ID+"/retry-provisioning", `{"force":true}`).wantError(t, 400, "invalid", "unknown field")
	})

	t.Run("unknown request", func(t *testing.T) {
		for _, action := range []string{"approve", "reopen", "retry-provisioning"} {
			e.do("POST", "/api/v1/requests/00000000000000000000dead/"+action, "").wantError(t, 404, "not_found")
		}
		e.do("POST", "/api/v1/requests/00000000000000000000dead/deny", `{"reason":"x"}`).wantError(t, 404, "not_found")
	})

	t.Run("bad bodies", func(t *testing.T) {
		r := e.signUp("bodies@example.com")
		tests := []struct{ body, fragment string }{
			{`{"reason":`, "not valid JSON"},
			{`{"reason":42}`, `"reason" must be a string`},
			{`{"reson":"typo"}`, `unknown field "reson"`},
			{`{"reason":"a"} {"reason":"b"}`, "unexpected data"},
			{`[]`, "must be a JSON object, not an array"},
			{`{"reason":"` + strings.Repeat("x", maxReason+1) + `"}`, "longer than"},
		}
		for _, tt := range tests {
			e.do("POST", approveOf(r), tt.body).wantError(t, 400, "invalid", tt.fragment)
		}
		e.do("POST", approveOf(r), `{"reason":"`+strings.Repeat("x", maxBody)+`"}`).wantError(t, 413, "too_large", "KiB")
	})
}

// Unknown routes, wrong methods and panics answer JSON too.
func TestJSONErrorsEverywhere(t *testing.T) {
	e := newEnv(t, func(c *Config) { c.Store = panicStore{c.Service.Store} })
	e.do("GET", "/api/v1/nothing-here", "").wantError(t, 404, "not_found", "no such route")
	e.do("GET", "/api/v1/requests/x/y/z", "").wantError(t, 404, "not_found")
	e.do("GET", "/elsewhere", "").wantError(t, 404, "not_found")
	a := e.do("DELETE", "/api/v1/requests", "")
	a.wantError(t, 405, "method_not_allowed", "DELETE")
	if a.header.Get("Allow") == "" {
		t.Error("405 without Allow")
	}
	e.do("GET", "/api/v1/requests/abc/approve", "").wantError(t, 405, "method_not_allowed")
	e.do("PUT", "/api/v1/invitations", "").wantError(t, 405, "method_not_allowed")

	a = e.do("GET", "/api/v1/requests/boom", "")
	a.wantError(t, 500, "internal", "internal error")
	if strings.Contains(string(a.body), "goroutine") || strings.Contains(string(a.body), "kaboom") {
		t.Errorf("panic detail leaked: %s", a.body)
	}
	if !strings.Contains(e.log(), "kaboom") {
		t.Error("the panic was not logged")
	}
	// Internal errors are logged and not shown.
	a = e.do("GET", "/api/v1/requests/broken", "")
	a.wantError(t, 500, "internal", "internal error")
	if strings.Contains(string(a.body), "disk on fire") || !strings.Contains(e.log(), "disk on fire") {
		t.Errorf("internal error: body %s", a.body)
	}
	if a.header.Get("Cache-Control") != "no-store" {
		t.Errorf("Cache-Control %q", a.header.Get("Cache-Control"))
	}
}

// panicStore panics on Get("boom") and fails on Get("broken").
type panicStore struct{ approvals.Store }

func (p panicStore) Get(ctx context.Context, id string) (*approvals.Request, error) {
	switch id {
	case "boom":
		panic("kaboom")
	case "broken":
		return nil, fmt.Errorf("reading bucket: disk on fire")
	}
	return p.Store.Get(ctx, id)
}
