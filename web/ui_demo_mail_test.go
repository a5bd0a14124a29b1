package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/web"
)

func TestDemoMailPage(t *testing.T) {
	mails := []web.DemoMail{
		{To: []string{"rev@contoso.com"}, Subject: "Sign-up request to review: Ann", At: t0, HTML: `<p>first</p>`, Text: "first text"},
		{To: []string{"ann@fabrikam.com"}, Subject: "Your account is <ready>", At: t0.Add(time.Minute), HTML: `<table><tr><td>second</td></tr></table>`, Text: "second <text>"},
	}
	e := newEnv(t, func(c *web.Config) { c.DemoMail = func() []web.DemoMail { return mails } })
	b, queue := e.login("rob")
	if attr(queryOne(t, queue.doc, `nav a[href="/demo/mail"]`), "href") == "" {
		t.Fatal("no Mail item in the navigation")
	}
	p := b.get("/demo/mail")
	rows := queryAll(t, p.doc, "#demo-mails tbody tr")
	if len(rows) != 2 || !strings.Contains(textOf(rows[0]), "Your account is <ready>") || !strings.Contains(textOf(rows[0]), "ann@fabrikam.com") {
		t.Fatalf("rows %d, first %q", len(rows), textOf(rows[0]))
	}
	p = b.get("/demo/mail?n=0")
	frame := queryOne(t, p.doc, "iframe#demo-mail-html")
	if _, ok := attrOf(frame, "sandbox"); !ok || attr(frame, "src") != "/demo/mail/0/html" {
		t.Errorf("frame sandbox/src: %q", attr(frame, "src"))
	}
	if got := textOf(queryOne(t, p.doc, "#demo-mail-text")); got != "second <text>" {
		t.Errorf("text part %q", got)
	}
	h := b.get("/demo/mail/0/html")
	if h.resp.StatusCode != http.StatusOK || h.body != mails[1].HTML {
		t.Errorf("html: %d %q", h.resp.StatusCode, h.body)
	}
	if csp := h.resp.Header.Get("Content-Security-Policy"); !strings.HasPrefix(csp, "sandbox;") || !strings.Contains(csp, "default-src 'none'") {
		t.Errorf("html CSP %q", csp)
	}
	if p := b.get("/demo/mail?n=7"); p.resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown email: %d", p.resp.StatusCode)
	}
}

func TestDemoMailPageOnlyInTheDemo(t *testing.T) {
	e := newEnv(t)
	b, queue := e.login("rob")
	if len(queryAll(t, queue.doc, `nav a[href="/demo/mail"]`)) != 0 {
		t.Error("Mail item outside the demo")
	}
	if p := b.get("/demo/mail"); p.resp.StatusCode != http.StatusNotFound {
		t.Errorf("/demo/mail outside the demo: %d", p.resp.StatusCode)
	}
}
