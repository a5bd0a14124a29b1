package api

import (
	"strings"
	"testing"
)

// A query string Go cannot read in full is refused with a 400 on every
// route, instead of losing the unreadable parameter: before, an export
// filtered with "status=denied;since=2999-01-01" sent every decision.
func TestUnreadableQueryIsRefused(t *testing.T) {
	e, _ := decided(t)
	for _, path := range []string{
		"/api/v1/decisions/export?status=denied;since=2999-01-01",
		"/api/v1/decisions/export?format=ndjson&status=%zz",
		"/api/v1/requests?status=pending;limit=1",
		"/api/v1/requests?status=100%",
		"/api/v1/audit?since=2999-01-01;x=1",
		"/api/v1/audit?request_id=%4",
		"/api/v1/requests/x?a;b",
		"/api/v1/backup?a=%zz",
	} {
		a := e.do("GET", path, "")
		msg := a.wantError(t, 400, "invalid").Message
		if !strings.Contains(msg, "query parameter") || !(strings.Contains(msg, `";"`) || strings.Contains(msg, "percent-escape")) {
			t.Errorf("%s: message %q does not say what is wrong", path, msg)
		}
		if a.header.Get("Content-Disposition") != "" {
			t.Errorf("%s: a 400 offered as a download", path)
		}
	}
	e.do("POST", "/api/v1/requests/x/approve?a=%zz", `{}`).wantError(t, 400, "invalid", "percent-escape")
	// Strangers still learn nothing but 401.
	e.doAuth("GET", "/api/v1/decisions/export?status=denied;since=2999-01-01", "", "").wantError(t, 401, "unauthorized")
	// Encoded, the same characters are fine.
	e.do("GET", "/api/v1/requests?status=pending&cursor=a%3Bb%25", "").wantError(t, 400, "invalid", "cursor")
	e.do("GET", "/api/v1/decisions/export?status=denied&since=2999-01-01", "").want(t, 200)
}
