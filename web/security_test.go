package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/approvals-dev/approvals/approvals"
)

const wantCSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; font-src 'self'; connect-src 'self'; " +
	"object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

// checkPageSafety fails when a page has inline script, inline event
// handlers, inline styles, javascript: URLs or assets from elsewhere, or
// lacks the security headers.
func checkPageSafety(t *testing.T, name string, p *page) {
	t.Helper()
	h := p.resp.Header
	for k, want := range map[string]string{
		"Content-Security-Policy": wantCSP,
		"X-Content-Type-Options":  "nosniff",
		"X-Frame-Options":         "DENY",
		"Referrer-Policy":         "same-origin",
		"Cache-Control":           "no-store",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s: %s = %q, want %q", name, k, got, want)
		}
	}
	if h.Get("Strict-Transport-Security") != "" {
		t.Errorf("%s: HSTS over plain http", name)
	}
	if p.doc == nil {
		t.Fatalf("%s: not HTML (%s)", name, h.Get("Content-Type"))
	}
	walk(p.doc, func(n *html.Node) {
		for _, a := range n.Attr {
			k := strings.ToLower(a.Key)
			switch {
			case strings.HasPrefix(k, "on"):
				t.Errorf("%s: inline event handler %s on <%s>", name, k, n.Data)
			case k == "style":
				t.Errorf("%s: inline style on <%s>", name, n.Data)
			case (k == "href" || k == "src" || k == "action") && strings.HasPrefix(strings.ToLower(strings.TrimSpace(a.Val)), "javascript:"):
				t.Errorf("%s: javascript: URL", name)
			}
		}
		switch n.Data {
		case "script":
			src := attr(n, "src")
			if src == "" || n.FirstChild != nil {
				t.Errorf("%s: inline <script>", name)
			}
			if !strings.HasPrefix(src, "/static/") {
				t.Errorf("%s: script from %q", name, src)
			}
		case "style":
			t.Errorf("%s: <style> element", name)
		case "link":
			if href := attr(n, "href"); !strings.HasPrefix(href, "/static/") {
				t.Errorf("%s: <link> to %q", name, href)
			}
		case "img", "iframe", "object", "embed":
			if n.Data != "img" || !strings.HasPrefix(attr(n, "src"), "/static/") {
				t.Errorf("%s: <%s>", name, n.Data)
			}
		case "form":
			if attr(n, "method") == "post" && len(queryAll(t, n, `input[name=csrf_token]`)) != 1 {
				t.Errorf("%s: post form to %s without a CSRF token", name, attr(n, "action"))
			}
		}
	})
	// Every id is unique and every form control has a label.
	ids := map[string]bool{}
	walk(p.doc, func(n *html.Node) {
		if id := attr(n, "id"); id != "" {
			if ids[id] {
				t.Errorf("%s: duplicate id %q", name, id)
			}
			ids[id] = true
		}
	})
	labelled := map[string]bool{}
	for _, l := range queryAll(t, p.doc, "label[for]") {
		labelled[attr(l, "for")] = true
	}
	walk(p.doc, func(n *html.Node) {
		if n.Data != "input" && n.Data != "select" && n.Data != "textarea" {
			return
		}
		switch attr(n, "type") {
		case "hidden", "submit", "button":
			return
		}
		inLabel := false
		for a := n.Parent; a != nil; a = a.Parent {
			inLabel = inLabel || a.Data == "label"
		}
		if !labelled[attr(n, "id")] && attr(n, "aria-label") == "" && !inLabel {
			t.Errorf("%s: unlabelled <%s name=%q>", name, n.Data, attr(n, "name"))
		}
	})
}

// TestEveryPageIsSafe renders every page with real data as an admin and a
// reviewer and checks headers and markup.
func TestEveryPageIsSafe(t *testing.T) {
	e := newEnv(t)
	pending, approved, denied := seedQueue(t, e, 20)
	ext := e.signUp(t0.Add(-2*time.Hour), "ext@example.com", "Ext <script>alert(1)</script>", map[string]any{
		"extension_00000000000000000000000000000001_Role": `"><img src=x onerror=alert(1)>`,
	}, &approvals.Identity{Issuer: "mail", IssuerAssignedID: "ext@example.com"})
	e.failProvisioning(approved[0].ID, approvals.Failure{Cause: "Request_BadRequest: <b>bad</b>", GraphRequestID: "rid-1"})
	ada, first := e.login("ada")
	checkPageSafety(t, "queue after sign-in", first)
	paths := []string{
		"/", "/?status=all", "/?status=approved&order=oldest", "/?q=user", "/?q=nobody",
		"/requests/" + pending[0].ID, "/requests/" + approved[0].ID, "/requests/" + denied[0].ID, "/requests/" + ext.ID,
		"/dashboard", "/invite", "/export", "/audit", "/audit?since=2000-01-01",
		"/export/download?format=xml", "/no-such-page", "/requests/000000000000000000000000", "/?status=nope",
	}
	for _, path := range paths {
		checkPageSafety(t, "admin "+path, ada.get(path))
	}
	p := ada.get("/requests/" + ext.ID)
	if strings.Contains(p.body, "<script>alert") || strings.Contains(p.body, "<img src=x") {
		t.Error("user data rendered as markup")
	}
	// Pages after a form: the deny error, the invite matches and errors.
	checkPageSafety(t, "deny error", ada.post("/requests/"+pending[1].ID+"/deny", url.Values{"reason": {""}}))
	checkPageSafety(t, "invite errors", ada.post("/invite", url.Values{"email": {"bad"}}))
	checkPageSafety(t, "forged post", ada.post("/requests/"+pending[1].ID+"/approve", url.Values{"csrf_token": {"x"}}))

	rob, _ := e.login("rob")
	checkPageSafety(t, "reviewer 403", rob.get("/audit"))
	nora, p := e.login("nora")
	checkPageSafety(t, "no role 403", p)
	checkPageSafety(t, "signed out", nora.post("/auth/logout", nil))
}

func TestStaticAssets(t *testing.T) {
	e := newEnv(t)
	b, p := e.login("rob")
	css := attr(queryOne(t, p.doc, `link[rel=stylesheet]`), "href")
	js := attr(queryOne(t, p.doc, `script[src]`), "src")
	for path, ctype := range map[string]string{css: "text/css; charset=utf-8", js: "text/javascript; charset=utf-8"} {
		r := b.noRedirects().get(path)
		if r.resp.StatusCode != http.StatusOK || r.resp.Header.Get("Content-Type") != ctype {
			t.Errorf("%s: %d %q", path, r.resp.StatusCode, r.resp.Header.Get("Content-Type"))
		}
		if cc := r.resp.Header.Get("Cache-Control"); !strings.Contains(cc, "immutable") {
			t.Errorf("%s: Cache-Control %q", path, cc)
		}
		if r.resp.Header.Get("Content-Security-Policy") != wantCSP {
			t.Errorf("%s: no CSP", path)
		}
	}
	// Assets need no session (the sign-in error pages use them).
	anon := e.browser().noRedirects()
	if r := anon.get(css); r.resp.StatusCode != http.StatusOK {
		t.Errorf("anonymous css: %d", r.resp.StatusCode)
	}
	if r := anon.get("/static/app.css?v=old"); r.resp.Header.Get("Cache-Control") != "no-cache" {
		t.Errorf("stale version cached: %q", r.resp.Header.Get("Cache-Control"))
	}
	for _, path := range []string{"/static/", "/static/nope.js", "/static/../web.go"} {
		if r := anon.get(path); r.resp.StatusCode != http.StatusNotFound {
			t.Errorf("%s: %d", path, r.resp.StatusCode)
		}
	}
}

func TestHSTSOverTLS(t *testing.T) {
	e := newEnv(t)
	srv := httptest.NewTLSServer(e.ui)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/auth/signed-out")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if h := resp.Header.Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("HSTS %q", h)
	}
}
