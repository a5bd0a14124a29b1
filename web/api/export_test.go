package api

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
)

// decided makes an env with decisions: an approval, a denial whose reason
// and display name are spreadsheet formulas, an auto-denial, and a pending
// request (not exported).
func decided(t *testing.T, configure ...func(*Config)) (*env, []string) {
	e := newEnv(t, configure...)
	ctx := context.Background()
	a := e.signUp("ann@example.com")
	e.do("POST", "/api/v1/requests/"+a.ID+"/approve", `{"reason":"supplier, \"tier 1\""}`).want(t, 200)
	e.clock.Advance(time.Hour)
	evil, _, err := e.svc.RequestApproval(ctx, approvals.SignUp{Email: "mallory@example.com", DisplayName: `=HYPERLINK("http://evil.example","click")`})
	if err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/api/v1/requests/"+evil.ID+"/deny", `{"reason":"@SUM(1+1)*cmd|' /C calc'!A0"}`).want(t, 200)
	e.clock.Advance(time.Hour)
	auto, _, err := e.svc.RequestApproval(ctx, approvals.SignUp{Email: "bot@spam.example", DisplayName: "+1 555 0100"})
	if err != nil {
		t.Fatal(err)
	}
	e.signUp("pending@example.com")
	return e, []string{a.ID, evil.ID, auto.ID}
}

func TestExportCSV(t *testing.T) {
	e, ids := decided(t)
	a := e.do("GET", "/api/v1/decisions/export?format=csv", "").want(t, 200)
	if ct := a.header.Get("Content-Type"); ct != "text/csv; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := a.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="decisions-`) || !strings.HasSuffix(cd, `.csv"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	rows, err := csv.NewReader(bytes.NewReader(a.body)).ReadAll()
	if err != nil {
		t.Fatalf("not RFC 4180 CSV: %v\n%s", err, a.body)
	}
	header := "id,email,display_name,issuer,status,automatic,decided_by,decided_at,reason,created_at,provisioning_state,user_id,decided_by_id,source"
	if got := strings.Join(rows[0], ","); got != header {
		t.Errorf("header %s\nwant   %s", got, header)
	}
	if len(rows) != 4 {
		t.Fatalf("%d rows, want header + 3 decisions:\n%s", len(rows), a.body)
	}
	col := func(row []string, name string) string { return row[slices.Index(rows[0], name)] }
	for i, id := range ids {
		if rows[i+1][0] != id {
			t.Errorf("row %d is %s, want %s (decision order)", i+1, rows[i+1][0], id)
		}
	}
	if got := col(rows[1], "reason"); got != `supplier, "tier 1"` {
		t.Errorf("quoted reason %q", got)
	}
	if got := col(rows[1], "source"); got != "signup" {
		t.Errorf("source %q, want signup", got)
	}
	if got := col(rows[1], "decided_by_id"); got != "ops" {
		t.Errorf("decided_by_id %q, want the API key's name ops", got)
	}
	if got := col(rows[1], "decided_by"); got != "api_key:ops" {
		t.Errorf("decided_by %q", got)
	}
	// Formula injection: cells starting with = + - @ are defused.
	if got := col(rows[2], "display_name"); got != `'=HYPERLINK("http://evil.example","click")` {
		t.Errorf("display_name %q not neutralised", got)
	}
	if got := col(rows[2], "reason"); got != `'@SUM(1+1)*cmd|' /C calc'!A0` {
		t.Errorf("reason %q not neutralised", got)
	}
	if got := col(rows[3], "display_name"); got != "'+1 555 0100" {
		t.Errorf("display_name %q not neutralised", got)
	}
	if col(rows[3], "automatic") != "true" || col(rows[3], "status") != "denied" {
		t.Errorf("auto-denial row %v", rows[3])
	}

	// The export is an admin action on the audit trail.
	evs := e.eventsOf(approvals.EventDecisionsExported)
	if len(evs) != 1 || evs[0].Actor.ID != "ops" || evs[0].Details["rows"] != "3" || evs[0].Details["format"] != "csv" {
		t.Errorf("export events %+v", evs)
	}
}

func TestExportJSONAndNDJSON(t *testing.T) {
	e, ids := decided(t)
	var arr []map[string]any
	a := e.do("GET", "/api/v1/decisions/export?format=json", "").want(t, 200)
	if a.header.Get("Content-Type") != "application/json" || !strings.HasSuffix(a.header.Get("Content-Disposition"), `.json"`) {
		t.Errorf("headers %v", a.header)
	}
	a.json(t, &arr)
	if len(arr) != 3 || arr[0]["id"] != ids[0] {
		t.Fatalf("json export %v", arr)
	}
	var keys []string
	for k := range arr[0] {
		keys = append(keys, k)
	}
	want := export.Columns()
	slices.Sort(want)
	slices.Sort(keys)
	if !slices.Equal(keys, want) {
		t.Errorf("json keys %v, want %v", keys, want)
	}
	// JSON is data, not a spreadsheet: values are kept as they are.
	if arr[1]["display_name"] != `=HYPERLINK("http://evil.example","click")` {
		t.Errorf("json display_name %v", arr[1]["display_name"])
	}

	a = e.do("GET", "/api/v1/decisions/export?format=ndjson&status=denied", "").want(t, 200)
	if a.header.Get("Content-Type") != "application/x-ndjson" {
		t.Errorf("Content-Type %q", a.header.Get("Content-Type"))
	}
	sc := bufio.NewScanner(bytes.NewReader(a.body))
	var got []string
	for sc.Scan() {
		var rec approvals.DecisionRecord
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatalf("line %q: %v", sc.Text(), err)
		}
		if rec.Status != approvals.StatusDenied {
			t.Errorf("status filter let %+v through", rec)
		}
		got = append(got, rec.ID)
	}
	if !slices.Equal(got, ids[1:]) {
		t.Errorf("denied %v, want %v", got, ids[1:])
	}
	// An empty export is valid JSON.
	var none []any
	e.do("GET", "/api/v1/decisions/export?format=json&since=2030-01-01", "").want(t, 200).json(t, &none)
	if len(none) != 0 {
		t.Errorf("empty export %v", none)
	}
}

func TestExportFilters(t *testing.T) {
	e, ids := decided(t)
	count := func(query string) []string {
		t.Helper()
		var recs []approvals.DecisionRecord
		e.do("GET", "/api/v1/decisions/export?format=json&"+query, "").want(t, 200).json(t, &recs)
		var out []string
		for _, r := range recs {
			out = append(out, r.ID)
		}
		return out
	}
	tests := []struct {
		query string
		want  []string
	}{
		{"", ids},
		{"status=approved", ids[:1]},
		{"since=2026-11-21T09:30:00Z", ids[1:]},
		{"until=2026-11-21T09:30:00Z", ids[:1]},
		{"since=2026-11-21T09:30:00Z&until=2026-11-21T10:30:00Z", ids[1:2]},
		{"since=2026-11-21T10:30:00%2B01:00", ids[1:]}, // 09:30Z
		{"since=2026-11-21T10:30:00+01:00", ids[1:]},   // an unencoded + arrives as a space
		{"since=2026-11-21", ids},
		{"until=2026-11-21", nil},
	}
	for _, tt := range tests {
		if got := count(tt.query); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %v, want %v", tt.query, got, tt.want)
		}
	}

	bad := []struct{ query, fragment string }{
		{"format=xlsx", "csv, json or ndjson"},
		{"status=pending", "approved or denied"},
		{"status=bogus", "approved or denied"},
		{"since=yesterday", "RFC 3339"},
		{"until=21/11/2026", "RFC 3339"},
		{"since=2026-11-22&until=2026-11-21", "later than since"},
		{"from=2026-11-21", `unknown query parameter "from"`},
	}
	for _, b := range bad {
		a := e.do("GET", "/api/v1/decisions/export?"+b.query, "")
		a.wantError(t, 400, "invalid", b.fragment)
		if a.header.Get("Content-Disposition") != "" {
			t.Errorf("%s: a 400 offered as a download", b.query)
		}
	}
}

// newFailingExportEnv returns a server holding n approved decisions
// whose store fails the export after the first after rows.
func newFailingExportEnv(t *testing.T, n, after int) *env {
	t.Helper()
	e := newEnv(t, func(c *Config) { c.Store = failingDecisions{Store: c.Service.Store, after: after} })
	for i := range n {
		r := e.signUp(fmt.Sprintf("person%04d@example.com", i))
		if _, err := e.svc.Approve(context.Background(), r.ID, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "ops"}, "bulk"); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// failingDecisions fails the export after n rows.
type failingDecisions struct {
	approvals.Store
	after int
}

func (f failingDecisions) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error {
	i := 0
	return f.Store.Decisions(ctx, q, func(r approvals.DecisionRecord) error {
		if i == f.after {
			return errors.New("bucket read: input/output error")
		}
		i++
		return fn(r)
	})
}

// A store failure before the first byte is a JSON 500; after it, the
// download is cut off so that nobody mistakes it for a complete file.
func TestExportFailure(t *testing.T) {
	t.Run("before the first byte", func(t *testing.T) {
		e := newEnv(t, func(c *Config) { c.Store = failingDecisions{Store: c.Service.Store} })
		a := e.signUp("a@example.com")
		e.do("POST", "/api/v1/requests/"+a.ID+"/approve", "").want(t, 200)
		r := e.do("GET", "/api/v1/decisions/export", "")
		r.wantError(t, 500, "internal", "export failed")
		if r.header.Get("Content-Disposition") != "" || strings.Contains(string(r.body), "input/output") {
			t.Errorf("failed export: %v %s", r.header, r.body)
		}
		if !strings.Contains(e.log(), "input/output error") {
			t.Error("cause not logged")
		}
	})
	t.Run("halfway", func(t *testing.T) {
		// Enough rows to fill the export's 64 KiB buffer before the failure.
		e := newFailingExportEnv(t, 1600, 1500)
		srv := httptest.NewServer(e.handler)
		defer srv.Close()
		req, _ := http.NewRequest("GET", srv.URL+"/api/v1/decisions/export?format=ndjson", nil)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("status %d", resp.StatusCode)
		}
		body, err := io.ReadAll(resp.Body)
		if err == nil {
			t.Fatalf("a failed export read as complete (%d bytes)", len(body))
		}
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Logf("read error: %v", err)
		}
		if !strings.Contains(e.log(), "cutting the connection") {
			t.Error("the failure was not logged")
		}
		if n := len(e.eventsOf(approvals.EventDecisionsExported)); n != 0 {
			t.Errorf("a failed export recorded %d export events", n)
		}
	})
}
