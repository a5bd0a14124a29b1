package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/web"
)

// startSignIn takes b through the provider's page as user and returns the
// callback URL the provider sends the browser to, unfollowed.
func startSignIn(t *testing.T, b *browser, next, user string) string {
	t.Helper()
	p := b.noRedirects().loginAt("/auth/login?next="+url.QueryEscape(next), user, nil)
	callback := p.resp.Header.Get("Location")
	if p.resp.StatusCode != http.StatusFound || !strings.Contains(callback, "/auth/callback?") {
		t.Fatalf("the provider answered %d, Location %q; want a redirect to the callback", p.resp.StatusCode, callback)
	}
	return callback
}

// finishSignIn follows the callback and returns where it sends b.
func finishSignIn(t *testing.T, b *browser, callback string) (int, string, *page) {
	t.Helper()
	p := b.noRedirects().get(callback)
	return p.resp.StatusCode, p.resp.Header.Get("Location"), p
}

func loginCookies(b *browser, e *env) []*http.Cookie {
	u, _ := url.Parse(e.srv.URL)
	var out []*http.Cookie
	for _, c := range b.client.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, "approvals_login_") {
			out = append(out, c)
		}
	}
	return out
}

func TestLoginFloodDoesNotEvictASignInInProgress(t *testing.T) {
	e := newEnv(t)
	rob := e.browser()
	callback := startSignIn(t, rob, "/dashboard", "rob")
	e.clock.Advance(time.Second)

	// Another client starts 10,000 sign-ins while Rob is at the provider.
	var wg sync.WaitGroup
	var mu sync.Mutex
	bad := 0
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 2500 {
				rec := httptest.NewRecorder()
				e.ui.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/auth/login", nil))
				if rec.Code != http.StatusFound {
					mu.Lock()
					bad++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if bad != 0 {
		t.Fatalf("%d of the flood's sign-ins were refused", bad)
	}
	if status, loc, p := finishSignIn(t, rob, callback); status != http.StatusSeeOther || loc != "/dashboard" {
		t.Fatalf("Rob's callback after the flood: %d to %q: %s", status, loc, textOf(queryOne(t, p.doc, "main")))
	}
	if p := rob.noRedirects().get("/dashboard"); p.resp.StatusCode != http.StatusOK {
		t.Errorf("Rob is not signed in: GET /dashboard = %d", p.resp.StatusCode)
	}
}

func TestLoginCookieSealsTheSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser().noRedirects()
	p := b.get("/auth/login?next=/dashboard")
	loc, _ := url.Parse(p.resp.Header.Get("Location"))
	cks := loginCookies(b, e)
	if len(cks) != 1 {
		t.Fatalf("login cookies %v", cks)
	}
	// Nothing of the sign-in is readable in the cookie.
	for _, secret := range []string{loc.Query().Get("state"), loc.Query().Get("nonce"), "dashboard"} {
		if strings.Contains(cks[0].Value, secret) || strings.Contains(cks[0].Name, secret) {
			t.Errorf("the login cookie shows %q", secret)
		}
	}
	if len(cks[0].Value) > 600 {
		t.Errorf("login cookie of %d bytes", len(cks[0].Value))
	}
}

func TestCallbackRefusesBadLoginCookies(t *testing.T) {
	const expired = "Sign-in expired"
	for _, tc := range []struct {
		name   string
		break_ func(t *testing.T, e *env, b *browser)
	}{
		{"tampered", func(t *testing.T, e *env, b *browser) {
			u, _ := url.Parse(e.srv.URL)
			c := loginCookies(b, e)[0]
			v := []byte(c.Value)
			if v[len(v)/2] == 'x' {
				v[len(v)/2] = 'y'
			} else {
				v[len(v)/2] = 'x'
			}
			b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: string(v), Path: "/"}})
		}},
		{"expired", func(t *testing.T, e *env, b *browser) { e.clock.Advance(10*time.Minute + time.Second) }},
		{"renamed", func(t *testing.T, e *env, b *browser) {
			// The same sealed value under another cookie name does not open.
			u, _ := url.Parse(e.srv.URL)
			c := loginCookies(b, e)[0]
			b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: "", Path: "/", MaxAge: -1}, {Name: "approvals_login_other", Value: c.Value, Path: "/"}})
		}},
		{"from another server", func(t *testing.T, e *env, b *browser) {
			// Another installation's sign-in cookie, under the same name.
			other := newEnv(t)
			ob := other.browser().noRedirects()
			ob.get("/auth/login")
			oc := loginCookies(ob, other)[0]
			u, _ := url.Parse(e.srv.URL)
			c := loginCookies(b, e)[0]
			b.client.Jar.SetCookies(u, []*http.Cookie{{Name: c.Name, Value: "", Path: "/", MaxAge: -1}, {Name: oc.Name, Value: oc.Value, Path: "/"}})
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			callback := startSignIn(t, b, "/", "rob")
			tc.break_(t, e, b)
			status, _, p := finishSignIn(t, b, callback)
			if status != http.StatusBadRequest || textOf(queryOne(t, p.doc, "h1")) != expired ||
				!strings.Contains(textOf(queryOne(t, p.doc, "main")), "sign in again") {
				t.Fatalf("callback = %d %q: %s", status, textOf(queryOne(t, p.doc, "h1")), textOf(queryOne(t, p.doc, "main")))
			}
			if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
				t.Errorf("a refused sign-in left a session: GET / = %d", p.resp.StatusCode)
			}
			// The unusable cookie is gone; a new sign-in works.
			if n := len(loginCookies(b, e)); n != 0 {
				t.Errorf("%d login cookies left after the refusal", n)
			}
			if status, loc, _ := finishSignIn(t, b, startSignIn(t, b, "/dashboard", "rob")); status != http.StatusSeeOther || loc != "/dashboard" {
				t.Errorf("the next sign-in: %d to %q", status, loc)
			}
		})
	}
}

func TestTwoTabsSignInAtOnce(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	first := startSignIn(t, b, "/dashboard", "rob")
	second := startSignIn(t, b, "/?status=all", "rob")
	if status, loc, _ := finishSignIn(t, b, second); status != http.StatusSeeOther || loc != "/?status=all" {
		t.Fatalf("second tab: %d to %q", status, loc)
	}
	if status, loc, _ := finishSignIn(t, b, first); status != http.StatusSeeOther || loc != "/dashboard" {
		t.Fatalf("first tab: %d to %q", status, loc)
	}
	if n := len(loginCookies(b, e)); n != 0 {
		t.Errorf("%d login cookies left", n)
	}
	if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusOK {
		t.Errorf("GET / = %d", p.resp.StatusCode)
	}
}

func TestSignInsInProgressPerBrowserAreBounded(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	var callbacks []string
	for i := range 5 {
		callbacks = append(callbacks, startSignIn(t, b, "/", "rob"))
		e.clock.Advance(time.Second * time.Duration(i+1))
	}
	if n := len(loginCookies(b, e)); n != 3 {
		t.Errorf("%d login cookies kept; want 3", n)
	}
	// The two oldest gave way; the newest three work.
	for i, cb := range callbacks {
		status, _, _ := finishSignIn(t, b, cb)
		if want := map[bool]int{true: http.StatusSeeOther, false: http.StatusBadRequest}[i >= 2]; status != want {
			t.Errorf("sign-in %d: %d, want %d", i, status, want)
		}
	}
}

func TestRestartKeepsReviewersSignedIn(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	st, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var cfg web.Config
	e := newEnv(t, func(c *web.Config) {
		c.Service = &approvals.Service{Store: st, Clock: c.Clock}
		c.Store = st
		cfg = *c
	})
	rob, _ := e.login("rob")
	e.clock.Advance(2 * time.Minute) // Rob's last use is on file
	if p := rob.noRedirects().get("/"); p.resp.StatusCode != http.StatusOK {
		t.Fatalf("before the restart GET / = %d", p.resp.StatusCode)
	}
	ada := e.browser()
	callback := startSignIn(t, ada, "/audit", "ada") // at the provider during the restart

	// The restart: the store closes, a new UI opens the same file.
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	st2, err := bolt.Open(path, bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st2.Close()
	cfg.Store, cfg.Service = st2, &approvals.Service{Store: st2, Clock: cfg.Clock}
	ui, err := web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.handler.set(ui)

	// A sign-in begun before the restart finishes after it (within the
	// provider's one-minute code lifetime).
	e.clock.Advance(30 * time.Second)
	if status, loc, _ := finishSignIn(t, ada, callback); status != http.StatusSeeOther || loc != "/audit" {
		t.Errorf("Ada's sign-in across the restart: %d to %q", status, loc)
	}
	e.clock.Advance(time.Hour)
	p := rob.noRedirects().get("/")
	if p.resp.StatusCode != http.StatusOK || textOf(queryOne(t, p.doc, ".who-name")) != "Rob Reviewer" {
		t.Fatalf("after the restart GET / = %d", p.resp.StatusCode)
	}
	// His form token still holds: signing out works, and ends the session.
	if out := rob.post("/auth/logout", nil); out.resp.Request.URL.Path != "/auth/signed-out" {
		t.Errorf("sign-out after the restart landed on %s (%d)", out.resp.Request.URL, out.resp.StatusCode)
	}
	if p := rob.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out GET / = %d", p.resp.StatusCode)
	}
}
