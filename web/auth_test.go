package web_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
	"github.com/approvals-dev/approvals/web"
	"github.com/approvals-dev/approvals/web/oidctest"
)

func TestUnauthenticatedIsSentToSignIn(t *testing.T) {
	e := newEnv(t)
	b := e.browser().noRedirects()
	for path, next := range map[string]string{"/": "/", "/dashboard": "/dashboard", "/?status=all&q=ann": "/?status=all&q=ann", "/requests/abc": "/requests/abc", "/audit": "/audit"} {
		p := b.get(path)
		if p.resp.StatusCode != http.StatusSeeOther {
			t.Fatalf("GET %s: status %d, want 303", path, p.resp.StatusCode)
		}
		if want := "/auth/login?next=" + url.QueryEscape(next); p.resp.Header.Get("Location") != want {
			t.Errorf("GET %s: Location %q, want %q", path, p.resp.Header.Get("Location"), want)
		}
	}
	// A form post without a session changes nothing and says why.
	p := b.post("/requests/abc/approve", url.Values{"csrf_token": {"x"}})
	if p.resp.StatusCode != http.StatusForbidden || !strings.Contains(textOf(queryOne(t, p.doc, "h1")), "session has ended") {
		t.Errorf("POST without session: %d %q", p.resp.StatusCode, textOf(queryOne(t, p.doc, "h1")))
	}
}

func TestLoginStartsAuthorizationCodeFlowWithPKCE(t *testing.T) {
	e := newEnv(t)
	b := e.browser().noRedirects()
	p := b.get("/auth/login?next=/dashboard")
	if p.resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d", p.resp.StatusCode)
	}
	loc, err := url.Parse(p.resp.Header.Get("Location"))
	if err != nil {
		t.Fatal(err)
	}
	q := loc.Query()
	if got := loc.Scheme + "://" + loc.Host + loc.Path; got != e.idp.URL()+"/authorize" {
		t.Errorf("authorize endpoint %q", got)
	}
	checks := map[string]string{
		"response_type": "code", "client_id": clientID, "redirect_uri": e.srv.URL + "/auth/callback",
		"scope": "openid profile email", "code_challenge_method": "S256",
	}
	for k, want := range checks {
		if q.Get(k) != want {
			t.Errorf("%s = %q, want %q", k, q.Get(k), want)
		}
	}
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 32 {
			t.Errorf("%s = %q, want a long random value", k, q.Get(k))
		}
	}
	// One login cookie per sign-in, named by a random suffix.
	var login *http.Cookie
	for _, c := range p.resp.Cookies() {
		if strings.HasPrefix(c.Name, "approvals_login_") && len(c.Name) > len("approvals_login_") {
			login = c
		}
	}
	if login == nil || !login.HttpOnly || login.SameSite != http.SameSiteLaxMode || login.Path != "/" {
		t.Errorf("login cookie %+v", login)
	}
	if strings.Contains(login.Value, q.Get("state")) || strings.Contains(p.resp.Header.Get("Location"), login.Value) {
		t.Error("the login cookie must not carry the state, nor the URL the cookie")
	}
}

func TestLoginRoundTrip(t *testing.T) {
	e := newEnv(t)
	b := e.browser()
	p := b.loginAt("/dashboard?x=1", "rob", nil)
	if p.resp.StatusCode != http.StatusOK || p.resp.Request.URL.RequestURI() != "/dashboard?x=1" {
		t.Fatalf("landed on %s with %d", p.resp.Request.URL, p.resp.StatusCode)
	}
	if got := textOf(queryOne(t, p.doc, ".who-name")); got != "Rob Reviewer" {
		t.Errorf("signed-in name %q", got)
	}
	if got := textOf(queryOne(t, p.doc, ".who-role")); got != "Reviewer" {
		t.Errorf("role %q", got)
	}
	// The session cookie is HttpOnly, SameSite=Lax, host-wide; the login
	// cookie is gone.
	u, _ := url.Parse(e.srv.URL)
	var names []string
	for _, c := range b.client.Jar.Cookies(u) {
		names = append(names, c.Name)
	}
	if strings.Join(names, ",") != "approvals_session" {
		t.Errorf("cookies after sign-in: %v", names)
	}
	// Signing out ends the session on the server.
	out := b.post("/auth/logout", nil)
	if out.resp.Request.URL.Path != "/auth/signed-out" || !strings.Contains(textOf(queryOne(t, out.doc, "h1")), "signed out") {
		t.Fatalf("after sign-out: %s %q", out.resp.Request.URL, textOf(queryOne(t, out.doc, "h1")))
	}
	if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Errorf("after sign-out GET / = %d, want a redirect to sign in", p.resp.StatusCode)
	}
	// Signing out again, without a session, just lands on the same page.
	if again := b.post("/auth/logout", nil); again.resp.Request.URL.Path != "/auth/signed-out" {
		t.Errorf("second sign-out: %d at %s", again.resp.StatusCode, again.resp.Request.URL)
	}
}

func TestSessionCookieAttributes(t *testing.T) {
	e := newEnv(t)
	b := e.browser().noRedirects()
	idp := b.loginAt("/", "rob", nil) // stops at the provider's redirect
	p := b.get(idp.resp.Header.Get("Location"))
	if p.resp.Request.URL.Path != "/auth/callback" || p.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("got %d at %s", p.resp.StatusCode, p.resp.Request.URL)
	}
	var s *http.Cookie
	for _, c := range p.resp.Cookies() {
		if c.Name == "approvals_session" {
			s = c
		}
	}
	if s == nil || !s.HttpOnly || s.SameSite != http.SameSiteLaxMode || s.Path != "/" || s.Secure || len(s.Value) < 43 {
		t.Fatalf("session cookie %+v", s)
	}
}

func TestLoginRejectsTampering(t *testing.T) {
	for _, tc := range []struct {
		name   string
		tamper func(url.Values)
		status int
		title  string
	}{
		{"state", func(v url.Values) { v.Set("state", v.Get("state")+"x") }, http.StatusBadRequest, "Sign-in could not be verified"},
		{"nonce", func(v url.Values) { v.Set("nonce", "attacker-nonce") }, http.StatusUnauthorized, "Sign-in could not be verified"},
		{"pkce challenge", func(v url.Values) {
			v.Set("code_challenge", "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM")
		}, http.StatusBadGateway, "Sign-in could not be completed"},
		{"cancelled", func(v url.Values) { v.Del("user"); v.Set("cancel", "1") }, http.StatusUnauthorized, "Sign-in did not complete"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			b := e.browser()
			p := b.loginAt("/", "ada", tc.tamper)
			if p.resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d: %s", p.resp.StatusCode, tc.status, textOf(queryOne(t, p.doc, "main")))
			}
			if got := textOf(queryOne(t, p.doc, "h1")); got != tc.title {
				t.Errorf("title %q, want %q", got, tc.title)
			}
			if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
				t.Errorf("a rejected sign-in left a session: GET / = %d", p.resp.StatusCode)
			}
		})
	}
}

func TestCallbackOnlyInTheBrowserThatStartedIt(t *testing.T) {
	e := newEnv(t)
	victim := e.browser().noRedirects()
	attacker := e.browser().noRedirects()
	// The attacker signs in at the provider and stops before the callback.
	p := attacker.loginAt("/", "ada", nil)
	callback := p.resp.Header.Get("Location")
	if !strings.HasPrefix(callback, e.srv.URL+"/auth/callback?") {
		t.Fatalf("expected a redirect to the callback, got %q", callback)
	}
	// Forced into another browser (login CSRF), the fresh callback signs
	// nobody in.
	if p := victim.get(callback); p.resp.StatusCode != http.StatusBadRequest || !strings.Contains(textOf(queryOne(t, p.doc, "h1")), "Sign-in expired") {
		t.Errorf("foreign callback: %d", p.resp.StatusCode)
	}
	if p := victim.get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Errorf("victim got a session")
	}
	// The browser that started the sign-in may use it, once.
	if p := attacker.get(callback); p.resp.StatusCode != http.StatusSeeOther || p.resp.Header.Get("Location") != "/" {
		t.Fatalf("first use of the callback: %d", p.resp.StatusCode)
	}
	if p := attacker.get(callback); p.resp.StatusCode != http.StatusBadRequest {
		t.Errorf("replayed callback: %d", p.resp.StatusCode)
	}
}

func TestRoleGating(t *testing.T) {
	e := newEnv(t)
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)

	nora, p := e.login("nora")
	if p.resp.StatusCode != http.StatusForbidden {
		t.Fatalf("no role: GET / = %d, want 403", p.resp.StatusCode)
	}
	if got := textOf(queryOne(t, p.doc, "code.role")); got != reviewerRole {
		t.Errorf("403 page names role %q", got)
	}
	if !strings.Contains(textOf(queryOne(t, p.doc, "ol.steps")), "Enterprise applications") {
		t.Error("403 page does not explain how to grant the role")
	}
	queryOne(t, p.doc, `form[action="/auth/logout"]`)
	if len(queryAll(t, p.doc, "nav.mainnav")) != 0 {
		t.Error("a user without a role sees the navigation")
	}
	for _, path := range []string{"/dashboard", "/requests/" + r.ID, "/invite"} {
		if p := nora.get(path); p.resp.StatusCode != http.StatusForbidden {
			t.Errorf("no role: GET %s = %d", path, p.resp.StatusCode)
		}
	}
	if p := nora.post("/requests/"+r.ID+"/approve", nil); p.resp.StatusCode != http.StatusForbidden || e.get(r.ID).Status != approvals.StatusPending {
		t.Errorf("no role: approve = %d, status %s", p.resp.StatusCode, e.get(r.ID).Status)
	}

	rob, p := e.login("rob")
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("reviewer: GET / = %d", p.resp.StatusCode)
	}
	var nav []string
	for _, a := range queryAll(t, p.doc, "nav.mainnav a") {
		nav = append(nav, textOf(a))
	}
	if strings.Join(nav, ",") != "Queue,Dashboard" {
		t.Errorf("reviewer nav %v", nav)
	}
	for _, path := range []string{"/dashboard", "/requests/" + r.ID} {
		if p := rob.get(path); p.resp.StatusCode != http.StatusOK {
			t.Errorf("reviewer: GET %s = %d", path, p.resp.StatusCode)
		}
	}
	for _, path := range []string{"/invite", "/export", "/export/download?format=csv", "/audit"} {
		p := rob.get(path)
		if p.resp.StatusCode != http.StatusForbidden {
			t.Errorf("reviewer: GET %s = %d, want 403", path, p.resp.StatusCode)
			continue
		}
		if got := textOf(queryOne(t, p.doc, "code.role")); got != adminRole {
			t.Errorf("GET %s: 403 names role %q", path, got)
		}
	}
	for _, path := range []string{"/requests/" + r.ID + "/retry", "/requests/" + r.ID + "/reopen", "/invite"} {
		if p := rob.post(path, url.Values{"email": {"x@y.com"}}); p.resp.StatusCode != http.StatusForbidden {
			t.Errorf("reviewer: POST %s = %d, want 403", path, p.resp.StatusCode)
		}
	}

	ada, p := e.login("ada")
	nav = nil
	for _, a := range queryAll(t, p.doc, "nav.mainnav a") {
		nav = append(nav, textOf(a))
	}
	if strings.Join(nav, ",") != "Queue,Dashboard,Invite,Export,Audit" {
		t.Errorf("admin nav %v", nav)
	}
	for _, path := range []string{"/", "/dashboard", "/invite", "/export", "/audit", "/requests/" + r.ID} {
		if p := ada.get(path); p.resp.StatusCode != http.StatusOK {
			t.Errorf("admin: GET %s = %d", path, p.resp.StatusCode)
		}
	}
}

func TestSessionExpires(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	e.clock.Advance(web.DefaultSessionIdleTimeout - time.Minute)
	if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusOK {
		t.Fatalf("active session: %d", p.resp.StatusCode)
	}
	e.clock.Advance(web.DefaultSessionIdleTimeout + time.Second)
	if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("idle session: %d, want a redirect to sign in", p.resp.StatusCode)
	}

	b, _ = e.login("rob")
	for range int(web.DefaultSessionMaxAge / time.Hour) {
		e.clock.Advance(time.Hour)
		b.noRedirects().get("/")
	}
	e.clock.Advance(time.Minute)
	if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Fatalf("session past its max age: %d", p.resp.StatusCode)
	}
}

func TestSessionsAreBounded(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.MaxSessions = 2 })
	first, _ := e.login("rob")
	e.clock.Advance(time.Minute)
	second, _ := e.login("ada")
	e.clock.Advance(time.Minute)
	third, _ := e.login("rob")
	if p := first.noRedirects().get("/"); p.resp.StatusCode != http.StatusSeeOther {
		t.Errorf("the least recently used session survived: %d", p.resp.StatusCode)
	}
	for i, b := range []*browser{second, third} {
		if p := b.noRedirects().get("/"); p.resp.StatusCode != http.StatusOK {
			t.Errorf("session %d lost: %d", i+2, p.resp.StatusCode)
		}
	}
}

func TestHTTPSCookiesAreHostPrefixedAndSecure(t *testing.T) {
	idp, err := oidctest.NewServer(oidctest.Config{Key: signingKey(), Clients: []oidctest.Client{{ID: "c", RedirectURIs: []string{"https://approvals.example/auth/callback"}}}}, true)
	if err != nil {
		t.Fatal(err)
	}
	defer idp.Close()
	svc := &approvals.Service{Store: memory.New(nil)}
	ui, err := web.New(web.Config{Service: svc, PublicURL: "https://approvals.example", ReviewerRole: reviewerRole, AdminRole: adminRole,
		OIDC: web.OIDCConfig{Issuer: idp.URL(), ClientID: "c", HTTPClient: idp.Client()}})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	ui.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "https://approvals.example/auth/login", nil))
	if w.Code != http.StatusFound {
		t.Fatalf("status %d: %s", w.Code, w.Body)
	}
	c := w.Result().Cookies()
	if len(c) != 1 || !strings.HasPrefix(c[0].Name, "__Host-approvals_login_") || !c[0].Secure || c[0].Domain != "" || c[0].Path != "/" {
		t.Errorf("cookies %+v", c)
	}
	if h := w.Header().Get("Strict-Transport-Security"); !strings.HasPrefix(h, "max-age=") {
		t.Errorf("HSTS %q", h)
	}
	if loc := w.Header().Get("Location"); !strings.HasPrefix(loc, idp.URL()+"/authorize?") || !strings.Contains(loc, url.QueryEscape("https://approvals.example/auth/callback")) {
		t.Errorf("Location %q", loc)
	}
}

func TestConfigValidate(t *testing.T) {
	svc := &approvals.Service{Store: memory.New(nil)}
	ok := web.Config{Service: svc, PublicURL: "https://a.example", OIDC: web.OIDCConfig{Issuer: "https://login.microsoftonline.com/tid/v2.0", ClientID: "c"},
		ReviewerRole: reviewerRole, AdminRole: adminRole}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for _, tc := range []struct {
		name   string
		change func(*web.Config)
		want   string
	}{
		{"no service", func(c *web.Config) { c.Service = nil }, "Service"},
		{"no issuer", func(c *web.Config) { c.OIDC.Issuer = "" }, "APPROVALS_OIDC_ISSUER"},
		{"bad issuer", func(c *web.Config) { c.OIDC.Issuer = "login.example" }, "APPROVALS_OIDC_ISSUER"},
		{"no client", func(c *web.Config) { c.OIDC.ClientID = "" }, "APPROVALS_OIDC_CLIENT_ID"},
		{"public URL with path", func(c *web.Config) { c.PublicURL = "https://a.example/approvals" }, "APPROVALS_PUBLIC_URL"},
		{"public URL relative", func(c *web.Config) { c.PublicURL = "/x" }, "APPROVALS_PUBLIC_URL"},
		{"same roles", func(c *web.Config) { c.AdminRole = reviewerRole }, "APPROVALS_ADMIN_ROLE"},
		{"no reviewer role", func(c *web.Config) { c.ReviewerRole = "" }, "APPROVALS_REVIEWER_ROLE"},
	} {
		c := ok
		tc.change(&c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: err %v, want one naming %s", tc.name, err, tc.want)
		}
		if _, err := web.New(c); err == nil {
			t.Errorf("%s: New accepted the config", tc.name)
		}
	}
}

func TestUnreachableProviderShowsAPage(t *testing.T) {
	svc := &approvals.Service{Store: memory.New(nil)}
	ui, err := web.New(web.Config{Service: svc, PublicURL: "http://localhost:1", OIDC: web.OIDCConfig{Issuer: "http://127.0.0.1:1/nowhere", ClientID: "c"},
		ReviewerRole: reviewerRole, AdminRole: adminRole,
		Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	w := httptest.NewRecorder()
	ui.ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/auth/login", nil))
	if w.Code != http.StatusBadGateway || !strings.Contains(w.Body.String(), "Sign-in is unavailable") {
		t.Errorf("status %d: %s", w.Code, w.Body)
	}
}
