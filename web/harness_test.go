package web_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/fakeclock"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/provisioner/provisionertest"
	"github.com/approvals-dev/approvals/store/memory"
	"github.com/approvals-dev/approvals/web"
	"github.com/approvals-dev/approvals/web/oidctest"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// One RSA key for every test provider: generating one per test is slow
// under the race detector.
var signingKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const (
	clientID     = "11111111-2222-3333-4444-555555555555"
	clientSecret = "test-secret"
)

// env is a running UI over a memory store, signed in through an oidctest
// provider.
type env struct {
	t     testing.TB
	clock *fakeclock.Clock
	store *countingStore
	svc   *approvals.Service
	idp   *oidctest.Server
	ui    *web.UI
	srv   *httptest.Server
	// graph is the fake Graph the env's provisioner invites through, once
	// startProvisioner has run.
	graph *graphtest.Server
	// handler serves ui; restart tests put another UI behind it.
	handler *swapHandler
}

// swapHandler is the running server's handler, replaceable while it runs.
type swapHandler struct {
	mu sync.RWMutex
	h  http.Handler
}

func (s *swapHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.RLock()
	h := s.h
	s.mu.RUnlock()
	h.ServeHTTP(w, r)
}

func (s *swapHandler) set(h http.Handler) {
	s.mu.Lock()
	s.h = h
	s.mu.Unlock()
}

func newEnv(t testing.TB, configure ...func(*web.Config)) *env {
	t.Helper()
	clock := fakeclock.New(t0)
	st := &countingStore{Store: memory.New(clock)}
	e := &env{t: t, clock: clock, store: st, svc: &approvals.Service{Store: st, Clock: clock,
		InviteRedirectURL: defaultRedirectURL, SendInvitationMessage: true}}
	e.srv = httptest.NewUnstartedServer(nil)
	public := "http://" + e.srv.Listener.Addr().String()
	idp, err := oidctest.NewServer(oidctest.Config{
		Clients: []oidctest.Client{{ID: clientID, Secret: clientSecret, RedirectURIs: []string{public + "/auth/callback"}}},
		Now:     clock.Now,
		Key:     signingKey(),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	e.idp = idp
	cfg := web.Config{
		Service:   e.svc,
		Clock:     clock,
		PublicURL: public,
		OIDC:      web.OIDCConfig{Issuer: idp.URL(), ClientID: clientID, ClientSecret: clientSecret},
		Logger:    discardLogger(),

		ReviewerRole: reviewerRole, AdminRole: adminRole,
	}
	for _, f := range configure {
		f(&cfg)
	}
	e.ui, err = web.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	e.handler = &swapHandler{h: e.ui}
	e.srv.Config.Handler = e.handler
	e.srv.Start()
	t.Cleanup(func() {
		e.srv.Close()
		idp.Close()
	})
	return e
}

// countingStore counts the rows List returns and the Decisions calls, to
// check that pages read bounded slices of the store.
type countingStore struct {
	approvals.Store
	mu        sync.Mutex
	listed    int
	lists     int
	decisions int
}

func (s *countingStore) List(ctx context.Context, q approvals.ListQuery) (approvals.Page, error) {
	p, err := s.Store.List(ctx, q)
	s.mu.Lock()
	s.listed += len(p.Requests)
	s.lists++
	s.mu.Unlock()
	return p, err
}

func (s *countingStore) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error {
	s.mu.Lock()
	s.decisions++
	s.mu.Unlock()
	return s.Store.Decisions(ctx, q, fn)
}

func (s *countingStore) reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.listed, s.lists, s.decisions = 0, 0, 0
}

func (s *countingStore) counts() (listed, lists, decisions int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.listed, s.lists, s.decisions
}

// signUp records a pending sign-up at the given time.
func (e *env) signUp(at time.Time, email, name string, claims map[string]any, id *approvals.Identity) *approvals.Request {
	e.t.Helper()
	e.clock.Set(at)
	defer e.clock.Set(t0)
	r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: email, DisplayName: name, Claims: claims, Identity: id, Locale: "en-US"})
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// failProvisioning records a failed attempt to provision the approved
// request id, as the provisioner would after Graph refused it.
func (e *env) failProvisioning(id string, f approvals.Failure) {
	e.t.Helper()
	_, err := e.store.Update(context.Background(), id, func(r *approvals.Request) ([]approvals.Event, error) {
		if err := r.StartAttempt(); err != nil {
			return nil, err
		}
		ev, err := r.FailProvisioning(f, t0)
		return []approvals.Event{ev}, err
	})
	if err != nil {
		e.t.Fatal(err)
	}
}

// eventsOf returns the events of type typ in the first page of the audit
// trail.
func (e *env) eventsOf(typ approvals.EventType) []approvals.Event {
	e.t.Helper()
	evs, _, err := e.store.Audit(context.Background(), approvals.AuditQuery{})
	if err != nil {
		e.t.Fatal(err)
	}
	var out []approvals.Event
	for _, ev := range evs {
		if ev.Type == typ {
			out = append(out, ev)
		}
	}
	return out
}

func (e *env) get(id string) *approvals.Request {
	e.t.Helper()
	r, err := e.store.Get(context.Background(), id)
	if err != nil {
		e.t.Fatal(err)
	}
	return r
}

// browser is a user agent with a cookie jar that keeps the last page's
// CSRF token.
type browser struct {
	t      testing.TB
	e      *env
	client *http.Client
	csrf   string
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{t: e.t, e: e, client: &http.Client{Jar: jar}}
}

// noRedirects makes the browser stop at redirects.
func (b *browser) noRedirects() *browser {
	c := *b.client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	nb := *b
	nb.client = &c
	return &nb
}

type page struct {
	resp *http.Response
	body string
	doc  *html.Node
}

func (b *browser) do(req *http.Request) *page {
	b.t.Helper()
	resp, err := b.client.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		b.t.Fatal(err)
	}
	p := &page{resp: resp, body: string(body)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		if p.doc, err = html.Parse(strings.NewReader(p.body)); err != nil {
			b.t.Fatal(err)
		}
		for _, m := range queryAll(b.t, p.doc, `meta[name=csrf-token]`) {
			b.csrf = attr(m, "content")
		}
	}
	return p
}

func (b *browser) url(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return b.e.srv.URL + path
}

func (b *browser) get(path string) *page {
	b.t.Helper()
	req, err := http.NewRequest(http.MethodGet, b.url(path), nil)
	if err != nil {
		b.t.Fatal(err)
	}
	return b.do(req)
}

// post submits a form with the browser's CSRF token unless the values
// already carry one.
func (b *browser) post(path string, v url.Values, header ...string) *page {
	b.t.Helper()
	if v == nil {
		v = url.Values{}
	}
	if !v.Has("csrf_token") {
		v.Set("csrf_token", b.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, b.url(path), strings.NewReader(v.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	return b.do(req)
}

// submit posts the form matched by selector on p with its fields, changed
// by set.
func (b *browser) submit(p *page, selector string, set url.Values) *page {
	b.t.Helper()
	form := queryOne(b.t, p.doc, selector)
	v := formValues(b.t, form)
	for k, vs := range set {
		v[k] = vs
	}
	action := attr(form, "action")
	if !strings.HasPrefix(action, "http") {
		base := p.resp.Request.URL
		ref, err := url.Parse(action)
		if err != nil {
			b.t.Fatal(err)
		}
		action = base.ResolveReference(ref).String()
	}
	return b.post(action, v)
}

// formValues collects the named inputs of a form the way a browser would,
// without its submit buttons.
func formValues(t testing.TB, form *html.Node) url.Values {
	v := url.Values{}
	for _, in := range queryAll(t, form, "input") {
		name := attr(in, "name")
		if name == "" {
			continue
		}
		switch attr(in, "type") {
		case "checkbox", "radio":
			if _, ok := attrOf(in, "checked"); !ok {
				continue
			}
			v.Add(name, cmpOr(attr(in, "value"), "on"))
		case "submit", "button":
		default:
			v.Add(name, attr(in, "value"))
		}
	}
	for _, ta := range queryAll(t, form, "textarea") {
		if name := attr(ta, "name"); name != "" {
			v.Add(name, textOf(ta))
		}
	}
	return v
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// login signs user in through the provider's sign-in page and returns the
// browser and the page it lands on.
func (e *env) login(user string) (*browser, *page) {
	e.t.Helper()
	b := e.browser()
	return b, b.loginAt("/", user, nil)
}

// loginAt starts at path, picks user on the provider's page (after tamper
// changes the page's hidden fields) and follows the redirects back.
func (b *browser) loginAt(path, user string, tamper func(url.Values)) *page {
	b.t.Helper()
	// Follow the redirects to the provider even when b stops at them.
	follow := *b
	c := *b.client
	c.CheckRedirect = nil
	follow.client = &c
	signin := follow.get(path)
	if signin.resp.StatusCode != http.StatusOK || !strings.HasPrefix(signin.resp.Request.URL.String(), b.e.idp.URL()) {
		b.t.Fatalf("GET %s: expected the provider's sign-in page, got %d at %s", path, signin.resp.StatusCode, signin.resp.Request.URL)
	}
	form := queryOne(b.t, signin.doc, "form")
	v := formValues(b.t, form)
	v.Set("user", user)
	if tamper != nil {
		tamper(v)
	}
	req, err := http.NewRequest(http.MethodPost, b.e.idp.URL()+attr(form, "action"), strings.NewReader(v.Encode()))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

// defaultRedirectURL is the env's APPROVALS_INVITE_REDIRECT_URL.
const defaultRedirectURL = "https://myapps.microsoft.com"

// The app roles the tests configure (cmd's defaults).
const (
	reviewerRole = "Approvals.Reviewer"
	adminRole    = "Approvals.Admin"
)

// startProvisioner runs the real provisioner and Graph client against a
// fake Graph (provisioner/graphtest), so that invitations from the Invite
// page are carried out as in production.
func (e *env) startProvisioner() {
	t := e.t
	e.graph = graphtest.New(graphtest.Options{})
	t.Cleanup(e.graph.Close)
	provisionertest.Start(t, e.svc, e.store, e.graph, defaultRedirectURL)
}

func discardLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }
