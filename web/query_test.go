package web_test

import (
	"net/http"
	"strings"
	"testing"
)

// A page address whose query Go cannot read in full gets a 400 page that
// says what is wrong, instead of the page without the unreadable filter:
// before, "status=denied;since=2999-01-01" exported every decision.
func TestUnreadableQueryIsRefusedOnPages(t *testing.T) {
	e := newEnv(t)
	seedQueue(t, e, 10)
	b, _ := e.login("ada")
	for _, path := range []string{
		"/export/download?format=csv&status=denied;since=2999-01-01",
		"/export/download?format=csv&status=%zz",
		"/?status=denied;order=oldest",
		"/audit?since=2026-01-01;request=x",
		"/dashboard?a=%4",
	} {
		p := b.get(path)
		if p.resp.StatusCode != http.StatusBadRequest {
			t.Errorf("%s: %d, want 400", path, p.resp.StatusCode)
			continue
		}
		if p.resp.Header.Get("Content-Disposition") != "" || p.doc == nil {
			t.Errorf("%s: not an error page: %v", path, p.resp.Header)
			continue
		}
		if !strings.Contains(p.body, "query parameter") {
			t.Errorf("%s: the page does not say what is wrong:\n%s", path, p.body)
		}
	}
	if p := b.get("/export/download?format=csv&status=denied&since=2999-01-01"); p.resp.StatusCode != http.StatusOK {
		t.Errorf("a readable export: %d", p.resp.StatusCode)
	}
}
