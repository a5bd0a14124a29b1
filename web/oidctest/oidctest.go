// Package oidctest is a small OpenID Connect provider that behaves like
// Microsoft Entra ID for the parts the reviewer UI uses: discovery, a JWKS
// with a freshly generated RSA key, the authorization-code flow with PKCE
// (S256 only) and a nonce, and RS256 ID tokens carrying oid, name,
// preferred_username and roles. Its sign-in page lists sample users to click,
// so that tests and `approvals demo` need no Azure tenant.
//
// It is strict where a real provider is strict (registered redirect URIs,
// client secrets, one-time codes, PKCE verifiers), so that a client passing
// against it does the flow correctly. It is not meant to face the internet.
package oidctest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"
)

// The app-role values the sample users carry; they are the reviewer UI's
// defaults.
const (
	RoleReviewer = "Approvals.Reviewer"
	RoleAdmin    = "Approvals.Admin"
)

// User is a person who can sign in at the provider.
type User struct {
	// Key picks the user on the sign-in page and in Config.AutoLogin.
	Key string
	// Subject is the sub claim; OID the oid claim (Entra's object id).
	Subject string
	OID     string
	Name    string
	// Email is sent as preferred_username and email.
	Email string
	Roles []string
	// Description is shown on the sign-in page, e.g. "reviewer and admin".
	Description string
}

// DefaultUsers returns the sample users: Ada holds both roles, Rob only the
// reviewer role, Nora none.
func DefaultUsers() []User {
	return []User{
		{Key: "ada", Subject: "sub-ada", OID: "00000000-0000-0000-0000-00000000ada1", Name: "Ada Reviewer",
			Email: "ada@contoso.example", Roles: []string{RoleReviewer, RoleAdmin}, Description: "reviewer and admin"},
		{Key: "rob", Subject: "sub-rob", OID: "00000000-0000-0000-0000-000000000b0b", Name: "Rob Reviewer",
			Email: "rob@contoso.example", Roles: []string{RoleReviewer}, Description: "reviewer"},
		{Key: "nora", Subject: "sub-nora", OID: "00000000-0000-0000-0000-00000000a0a0", Name: "Nora Nobody",
			Email: "nora@contoso.example", Description: "no role"},
	}
}

// Client is an application registered at the provider.
type Client struct {
	ID string
	// Secret is required at the token endpoint when not empty.
	Secret       string
	RedirectURIs []string
}

// Config configures a Provider.
type Config struct {
	// Issuer is the provider's absolute URL, e.g. http://127.0.0.1:9000 or
	// https://localhost:8443/oidc. The provider serves its endpoints under
	// the issuer's path, so it can be mounted on another server's mux.
	Issuer  string
	Clients []Client
	// Users defaults to DefaultUsers.
	Users []User
	// AutoLogin, when set to a user's Key, signs that user in without
	// showing the sign-in page.
	AutoLogin string
	// TenantID is sent as the tid claim.
	TenantID string
	// Now defaults to time.Now.
	Now func() time.Time
	// TokenTTL defaults to one hour.
	TokenTTL time.Duration
	// Key signs the tokens; a new 2048-bit key is generated when nil.
	Key *rsa.PrivateKey
}

// Provider is the OpenID Connect provider. It is an http.Handler.
type Provider struct {
	issuer  string
	base    string // the issuer's path, without a trailing slash
	clients map[string]Client
	users   []User
	auto    string
	tid     string
	now     func() time.Time
	ttl     time.Duration
	key     *rsa.PrivateKey
	kid     string
	page    *template.Template

	mu    sync.Mutex
	codes map[string]grant
}

type grant struct {
	clientID, redirectURI, nonce, challenge, scope string
	user                                           User
	expires                                        time.Time
}

// codeTTL bounds how long an authorization code may wait to be redeemed.
const codeTTL = time.Minute

// New returns a provider for cfg.
func New(cfg Config) (*Provider, error) {
	u, err := url.Parse(cfg.Issuer)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("oidctest: issuer %q must be an absolute http(s) URL without query", cfg.Issuer)
	}
	p := &Provider{
		issuer:  strings.TrimSuffix(cfg.Issuer, "/"),
		base:    strings.TrimSuffix(u.Path, "/"),
		clients: map[string]Client{},
		users:   cfg.Users,
		auto:    cfg.AutoLogin,
		tid:     cfg.TenantID,
		now:     cfg.Now,
		ttl:     cfg.TokenTTL,
		key:     cfg.Key,
		codes:   map[string]grant{},
	}
	for _, c := range cfg.Clients {
		if c.ID == "" {
			return nil, errors.New("oidctest: a client needs an ID")
		}
		p.clients[c.ID] = c
	}
	if p.users == nil {
		p.users = DefaultUsers()
	}
	if p.auto != "" {
		if _, ok := p.user(p.auto); !ok {
			return nil, fmt.Errorf("oidctest: AutoLogin names unknown user %q", p.auto)
		}
	}
	if p.tid == "" {
		p.tid = "00000000-0000-0000-0000-0000000000e1"
	}
	if p.now == nil {
		p.now = time.Now
	}
	if p.ttl <= 0 {
		p.ttl = time.Hour
	}
	if p.key == nil {
		if p.key, err = rsa.GenerateKey(rand.Reader, 2048); err != nil {
			return nil, fmt.Errorf("oidctest: generate key: %w", err)
		}
	}
	sum := sha256.Sum256(p.key.N.Bytes())
	p.kid = base64.RawURLEncoding.EncodeToString(sum[:12])
	if p.page, err = template.New("signin").Parse(signInPage); err != nil {
		return nil, fmt.Errorf("oidctest: %w", err)
	}
	return p, nil
}

// Issuer returns the issuer URL, as ID tokens carry it.
func (p *Provider) Issuer() string { return p.issuer }

// Users returns the users who can sign in.
func (p *Provider) Users() []User { return slices.Clone(p.users) }

func (p *Provider) user(key string) (User, bool) {
	for _, u := range p.users {
		if u.Key == key {
			return u, true
		}
	}
	return User{}, false
}

// ServeHTTP serves discovery, the JWKS, the sign-in page and the token
// endpoint under the issuer's path.
func (p *Provider) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	path, ok := strings.CutPrefix(r.URL.Path, p.base)
	if !ok {
		http.NotFound(w, r)
		return
	}
	switch path {
	case "/.well-known/openid-configuration":
		p.discovery(w)
	case "/keys":
		p.jwks(w)
	case "/authorize":
		p.authorize(w, r)
	case "/token":
		p.token(w, r)
	default:
		http.NotFound(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (p *Provider) discovery(w http.ResponseWriter) {
	writeJSON(w, http.StatusOK, map[string]any{
		"issuer":                                p.issuer,
		"authorization_endpoint":                p.issuer + "/authorize",
		"token_endpoint":                        p.issuer + "/token",
		"jwks_uri":                              p.issuer + "/keys",
		"response_types_supported":              []string{"code"},
		"response_modes_supported":              []string{"query"},
		"subject_types_supported":               []string{"pairwise"},
		"id_token_signing_alg_values_supported": []string{"RS256"},
		"scopes_supported":                      []string{"openid", "profile", "email", "offline_access"},
		"token_endpoint_auth_methods_supported": []string{"client_secret_basic", "client_secret_post"},
		"code_challenge_methods_supported":      []string{"S256"},
		"claims_supported":                      []string{"sub", "iss", "aud", "exp", "iat", "nonce", "oid", "tid", "name", "preferred_username", "email", "roles"},
	})
}

func (p *Provider) jwks(w http.ResponseWriter) {
	pub := p.key.PublicKey
	writeJSON(w, http.StatusOK, map[string]any{"keys": []map[string]string{{
		"kty": "RSA", "use": "sig", "alg": "RS256", "kid": p.kid,
		"n": base64.RawURLEncoding.EncodeToString(pub.N.Bytes()),
		"e": base64.RawURLEncoding.EncodeToString(big.NewInt(int64(pub.E)).Bytes()),
	}}})
}

// authRequest is a validated authorization request.
type authRequest struct {
	ClientID, RedirectURI, State, Nonce, Challenge, Scope string
}

// parseAuthorize checks an authorization request. When the client or the
// redirect URI is wrong it must not redirect (RFC 6749 4.1.2.1): redirect is
// then empty and the error is shown to the user.
func (p *Provider) parseAuthorize(v url.Values) (ar authRequest, redirect string, errCode, errDesc string) {
	ar = authRequest{
		ClientID: v.Get("client_id"), RedirectURI: v.Get("redirect_uri"), State: v.Get("state"),
		Nonce: v.Get("nonce"), Challenge: v.Get("code_challenge"), Scope: v.Get("scope"),
	}
	c, ok := p.clients[ar.ClientID]
	if !ok {
		return ar, "", "unauthorized_client", "unknown client_id"
	}
	if !slices.Contains(c.RedirectURIs, ar.RedirectURI) {
		return ar, "", "invalid_request", "redirect_uri is not registered for this client"
	}
	switch {
	case v.Get("response_type") != "code":
		return ar, ar.RedirectURI, "unsupported_response_type", "only response_type=code is supported"
	case !slices.Contains(strings.Fields(ar.Scope), "openid"):
		return ar, ar.RedirectURI, "invalid_scope", "the openid scope is required"
	case ar.Challenge == "" || v.Get("code_challenge_method") != "S256":
		return ar, ar.RedirectURI, "invalid_request", "PKCE with code_challenge_method=S256 is required"
	case v.Get("response_mode") != "" && v.Get("response_mode") != "query":
		return ar, ar.RedirectURI, "invalid_request", "only response_mode=query is supported"
	}
	return ar, ar.RedirectURI, "", ""
}

func redirectWith(w http.ResponseWriter, r *http.Request, to string, params url.Values) {
	u, err := url.Parse(to)
	if err != nil {
		http.Error(w, "bad redirect_uri", http.StatusBadRequest)
		return
	}
	q := u.Query()
	for k, vs := range params {
		for _, v := range vs {
			if v != "" {
				q.Add(k, v)
			}
		}
	}
	u.RawQuery = q.Encode()
	http.Redirect(w, r, u.String(), http.StatusFound)
}

func (p *Provider) authorize(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodPost {
		w.Header().Set("Allow", "GET, POST")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err := r.ParseForm(); err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	v := r.Form
	ar, redirect, code, desc := p.parseAuthorize(v)
	if code != "" {
		if redirect == "" {
			http.Error(w, code+": "+desc, http.StatusBadRequest)
			return
		}
		redirectWith(w, r, redirect, url.Values{"error": {code}, "error_description": {desc}, "state": {ar.State}})
		return
	}
	key := p.auto
	if r.Method == http.MethodPost {
		if v.Get("cancel") != "" {
			redirectWith(w, r, redirect, url.Values{"error": {"access_denied"}, "error_description": {"the user cancelled the sign-in"}, "state": {ar.State}})
			return
		}
		key = v.Get("user")
	}
	if key == "" {
		p.showSignIn(w, v)
		return
	}
	u, ok := p.user(key)
	if !ok {
		http.Error(w, "unknown user", http.StatusBadRequest)
		return
	}
	c := randomString()
	p.mu.Lock()
	now := p.now()
	for k, g := range p.codes {
		if now.After(g.expires) {
			delete(p.codes, k)
		}
	}
	p.codes[c] = grant{clientID: ar.ClientID, redirectURI: ar.RedirectURI, nonce: ar.Nonce, challenge: ar.Challenge,
		scope: ar.Scope, user: u, expires: now.Add(codeTTL)}
	p.mu.Unlock()
	redirectWith(w, r, redirect, url.Values{"code": {c}, "state": {ar.State}})
}

func (p *Provider) showSignIn(w http.ResponseWriter, v url.Values) {
	type hidden struct{ Name, Value string }
	var fields []hidden
	for _, k := range []string{"client_id", "redirect_uri", "response_type", "scope", "state", "nonce", "code_challenge", "code_challenge_method", "response_mode"} {
		if v.Has(k) {
			fields = append(fields, hidden{k, v.Get(k)})
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action *; frame-ancestors 'none'")
	data := struct {
		Action string
		Fields []hidden
		Users  []User
	}{p.base + "/authorize", fields, p.users}
	if err := p.page.Execute(w, data); err != nil {
		http.Error(w, "internal error", http.StatusInternalServerError)
	}
}

// tokenError answers the token endpoint with an OAuth error.
func tokenError(w http.ResponseWriter, status int, code, desc string) {
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="oidctest"`)
	}
	writeJSON(w, status, map[string]string{"error": code, "error_description": desc})
}

func (p *Provider) token(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		tokenError(w, http.StatusMethodNotAllowed, "invalid_request", "use POST")
		return
	}
	if err := r.ParseForm(); err != nil {
		tokenError(w, http.StatusBadRequest, "invalid_request", "the body is not a form")
		return
	}
	v := r.PostForm
	id, secret, basic := r.BasicAuth()
	if basic {
		// RFC 6749 2.3.1: the id and secret are form-encoded before Basic.
		id, _ = url.QueryUnescape(id)
		secret, _ = url.QueryUnescape(secret)
	} else {
		id, secret = v.Get("client_id"), v.Get("client_secret")
	}
	c, ok := p.clients[id]
	if !ok || (c.Secret != "" && subtle.ConstantTimeCompare([]byte(secret), []byte(c.Secret)) != 1) {
		tokenError(w, http.StatusUnauthorized, "invalid_client", "client authentication failed")
		return
	}
	if v.Get("grant_type") != "authorization_code" {
		tokenError(w, http.StatusBadRequest, "unsupported_grant_type", "only authorization_code is supported")
		return
	}
	p.mu.Lock()
	g, ok := p.codes[v.Get("code")]
	delete(p.codes, v.Get("code")) // one use only, even when the exchange fails
	now := p.now()
	p.mu.Unlock()
	switch {
	case !ok || now.After(g.expires):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the code is unknown, used or expired")
		return
	case g.clientID != id:
		tokenError(w, http.StatusBadRequest, "invalid_grant", "the code was issued to another client")
		return
	case g.redirectURI != v.Get("redirect_uri"):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "redirect_uri does not match the authorization request")
		return
	case !verifierMatches(v.Get("code_verifier"), g.challenge):
		tokenError(w, http.StatusBadRequest, "invalid_grant", "code_verifier does not match the code_challenge")
		return
	}
	claims := p.UserClaims(g.user, id)
	if g.nonce != "" {
		claims["nonce"] = g.nonce
	}
	idToken, err := p.Mint(claims)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	access := p.UserClaims(g.user, id)
	access["scp"] = "access_as_user"
	accessToken, err := p.Mint(access)
	if err != nil {
		tokenError(w, http.StatusInternalServerError, "server_error", err.Error())
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"access_token": accessToken,
		"token_type":   "Bearer",
		"expires_in":   int(p.ttl / time.Second),
		"scope":        g.scope,
		"id_token":     idToken,
	})
}

// verifierMatches checks a PKCE S256 verifier against its challenge.
func verifierMatches(verifier, challenge string) bool {
	if len(verifier) < 43 || len(verifier) > 128 {
		return false
	}
	sum := sha256.Sum256([]byte(verifier))
	want := base64.RawURLEncoding.EncodeToString(sum[:])
	return subtle.ConstantTimeCompare([]byte(want), []byte(challenge)) == 1
}

// UserClaims returns the claims Entra puts in a v2.0 token for u with the
// given audience (a client id): iss, aud, sub, oid, tid, name,
// preferred_username, email, roles (when u has any), iat, nbf and exp.
func (p *Provider) UserClaims(u User, audience string) map[string]any {
	now := p.now()
	c := map[string]any{
		"iss": p.issuer, "aud": audience, "sub": u.Subject, "oid": u.OID, "tid": p.tid,
		"name": u.Name, "preferred_username": u.Email, "email": u.Email, "ver": "2.0",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(p.ttl).Unix(),
	}
	if len(u.Roles) > 0 {
		c["roles"] = slices.Clone(u.Roles)
	}
	return c
}

// Mint signs claims as an RS256 JWT with the provider's key. It fills in
// iss, iat and exp when they are missing, so that tests can mint ID tokens
// and Entra-like access tokens with exactly the claims they need.
func (p *Provider) Mint(claims map[string]any) (string, error) {
	c := make(map[string]any, len(claims)+3)
	for k, v := range claims {
		c[k] = v
	}
	now := p.now()
	if _, ok := c["iss"]; !ok {
		c["iss"] = p.issuer
	}
	if _, ok := c["iat"]; !ok {
		c["iat"] = now.Unix()
	}
	if _, ok := c["exp"]; !ok {
		c["exp"] = now.Add(p.ttl).Unix()
	}
	header, err := json.Marshal(map[string]string{"alg": "RS256", "typ": "JWT", "kid": p.kid})
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(c)
	if err != nil {
		return "", fmt.Errorf("oidctest: claims: %w", err)
	}
	signing := base64.RawURLEncoding.EncodeToString(header) + "." + base64.RawURLEncoding.EncodeToString(payload)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, p.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", fmt.Errorf("oidctest: sign: %w", err)
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

func randomString() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Server is a Provider listening on a loopback port.
type Server struct {
	*Provider
	srv *httptest.Server
}

// NewServer starts a provider on 127.0.0.1 at a free port; cfg.Issuer is
// set to its URL. With tls it serves HTTPS with a self-signed certificate:
// use Client to reach it.
func NewServer(cfg Config, tls bool) (*Server, error) {
	ts := httptest.NewUnstartedServer(nil)
	scheme := "http"
	if tls {
		scheme = "https"
	}
	cfg.Issuer = scheme + "://" + ts.Listener.Addr().String()
	p, err := New(cfg)
	if err != nil {
		ts.Listener.Close()
		return nil, err
	}
	ts.Config.Handler = p
	if tls {
		ts.StartTLS()
	} else {
		ts.Start()
	}
	return &Server{Provider: p, srv: ts}, nil
}

// URL returns the server's base URL, which is also the issuer.
func (s *Server) URL() string { return s.srv.URL }

// Client returns an HTTP client that trusts the server's certificate.
func (s *Server) Client() *http.Client { return s.srv.Client() }

// Close shuts the server down.
func (s *Server) Close() { s.srv.Close() }

const signInPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in – test identity provider</title>
<style>
body{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;background:#f3f4f6;color:#1f2328;margin:0;display:grid;place-items:center;min-height:100vh}
main{background:#fff;border:1px solid #d0d7de;border-radius:8px;padding:2rem;max-width:26rem;width:calc(100% - 2rem);box-sizing:border-box}
h1{font-size:1.25rem;margin:0 0 .25rem}p{color:#57606a;margin:0 0 1.25rem;font-size:.9rem}
button{display:block;width:100%;text-align:left;padding:.75rem 1rem;margin:0 0 .5rem;border:1px solid #d0d7de;border-radius:6px;background:#fff;font:inherit;cursor:pointer}
button:hover{background:#f6f8fa}button:focus-visible{outline:3px solid #0969da;outline-offset:2px}
small{display:block;color:#57606a}.cancel{text-align:center;color:#57606a}
</style></head>
<body><main>
<h1>Sign in</h1>
<p>Test identity provider – pick a sample user. Not a real Microsoft sign-in.</p>
<form method="post" action="{{.Action}}">
{{range .Fields}}<input type="hidden" name="{{.Name}}" value="{{.Value}}">
{{end}}{{range .Users}}<button type="submit" name="user" value="{{.Key}}"><strong>{{.Name}}</strong><small>{{.Email}} · {{.Description}}</small></button>
{{end}}<button type="submit" name="cancel" value="1" class="cancel">Cancel</button>
</form>
</main></body></html>
`
