package oidctest_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/approvals-dev/approvals/web/oidctest"
)

var key = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

const redirect = "http://app.example/auth/callback"

func newServer(t *testing.T, cfg oidctest.Config) *oidctest.Server {
	t.Helper()
	if cfg.Clients == nil {
		cfg.Clients = []oidctest.Client{{ID: "app", Secret: "s3cret", RedirectURIs: []string{redirect}}}
	}
	cfg.Key = key()
	s, err := oidctest.NewServer(cfg, false)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

var noFollow = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

// authorize runs /authorize and returns the redirect's query.
func authorize(t *testing.T, s *oidctest.Server, v url.Values) (int, url.Values) {
	t.Helper()
	resp, err := noFollow.Get(s.URL() + "/authorize?" + v.Encode())
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc, _ := url.Parse(resp.Header.Get("Location"))
	if loc == nil {
		return resp.StatusCode, nil
	}
	return resp.StatusCode, loc.Query()
}

func authParams(verifier string) url.Values {
	return url.Values{
		"client_id": {"app"}, "redirect_uri": {redirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"st"}, "nonce": {"n-1"}, "code_challenge": {oauth2.S256ChallengeFromVerifier(verifier)}, "code_challenge_method": {"S256"},
	}
}

func TestFlowWithGoOIDC(t *testing.T) {
	s := newServer(t, oidctest.Config{AutoLogin: "ada", TenantID: "tid-1"})
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	conf := oauth2.Config{ClientID: "app", ClientSecret: "s3cret", Endpoint: p.Endpoint(), RedirectURL: redirect, Scopes: []string{"openid", "profile"}}
	verifier := oauth2.GenerateVerifier()
	status, q := authorize(t, s, authParams(verifier))
	if status != http.StatusFound || q.Get("state") != "st" || q.Get("code") == "" {
		t.Fatalf("authorize: %d %v", status, q)
	}
	tok, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.Verifier(&oidc.Config{ClientID: "app"}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		OID   string   `json:"oid"`
		Name  string   `json:"name"`
		UPN   string   `json:"preferred_username"`
		Roles []string `json:"roles"`
		TID   string   `json:"tid"`
	}
	if err := idt.Claims(&c); err != nil {
		t.Fatal(err)
	}
	ada := oidctest.DefaultUsers()[0]
	if idt.Nonce != "n-1" || idt.Subject != ada.Subject || c.OID != ada.OID || c.Name != "Ada Reviewer" || c.UPN != ada.Email ||
		strings.Join(c.Roles, ",") != oidctest.RoleReviewer+","+oidctest.RoleAdmin || c.TID != "tid-1" {
		t.Errorf("claims %+v nonce %q", c, idt.Nonce)
	}
	// The code is single-use.
	if _, err := conf.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier)); err == nil || !strings.Contains(err.Error(), "invalid_grant") {
		t.Errorf("second exchange: %v", err)
	}
}

func TestAuthorizeRefusals(t *testing.T) {
	s := newServer(t, oidctest.Config{AutoLogin: "rob"})
	v := oauth2.GenerateVerifier()
	for _, tc := range []struct {
		name       string
		change     func(url.Values)
		status     int
		redirected string // the error in the redirect; empty: no redirect
	}{
		{"unknown client", func(q url.Values) { q.Set("client_id", "other") }, http.StatusBadRequest, ""},
		{"unregistered redirect", func(q url.Values) { q.Set("redirect_uri", "http://evil.example/cb") }, http.StatusBadRequest, ""},
		{"implicit flow", func(q url.Values) { q.Set("response_type", "id_token") }, http.StatusFound, "unsupported_response_type"},
		{"no openid scope", func(q url.Values) { q.Set("scope", "profile") }, http.StatusFound, "invalid_scope"},
		{"no PKCE", func(q url.Values) { q.Del("code_challenge") }, http.StatusFound, "invalid_request"},
		{"plain PKCE", func(q url.Values) { q.Set("code_challenge_method", "plain") }, http.StatusFound, "invalid_request"},
	} {
		q := authParams(v)
		tc.change(q)
		status, loc := authorize(t, s, q)
		if status != tc.status || loc.Get("error") != tc.redirected {
			t.Errorf("%s: %d %v", tc.name, status, loc)
		}
		if tc.redirected != "" && loc.Get("state") != "st" {
			t.Errorf("%s: state not returned", tc.name)
		}
	}
}

func TestSignInPageAndCancel(t *testing.T) {
	s := newServer(t, oidctest.Config{})
	q := authParams(oauth2.GenerateVerifier())
	resp, err := http.Get(s.URL() + "/authorize?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	page, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("sign-in page: %d %v", resp.StatusCode, err)
	}
	for _, want := range []string{"Ada Reviewer", "Rob Reviewer", "Nora Nobody", `name="code_challenge"`, `value="st"`} {
		if !strings.Contains(string(page), want) {
			t.Errorf("sign-in page lacks %q", want)
		}
	}
	q.Set("cancel", "1")
	r, err := noFollow.PostForm(s.URL()+"/authorize", q)
	if err != nil {
		t.Fatal(err)
	}
	r.Body.Close()
	loc, _ := url.Parse(r.Header.Get("Location"))
	if loc.Query().Get("error") != "access_denied" || loc.Query().Get("state") != "st" {
		t.Errorf("cancel: %s", r.Header.Get("Location"))
	}
}

func tokenCall(t *testing.T, s *oidctest.Server, form url.Values, basic ...string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.URL()+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if len(basic) == 2 {
		req.SetBasicAuth(url.QueryEscape(basic[0]), url.QueryEscape(basic[1]))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body
}

func TestTokenRefusals(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	s := newServer(t, oidctest.Config{AutoLogin: "nora", Now: clock})
	code := func(verifier string) string {
		_, q := authorize(t, s, authParams(verifier))
		return q.Get("code")
	}
	v := oauth2.GenerateVerifier()
	good := func(c string) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {c}, "redirect_uri": {redirect}, "code_verifier": {v}}
	}
	for _, tc := range []struct {
		name   string
		form   func(url.Values)
		basic  []string
		status int
		err    string
	}{
		{"wrong secret", nil, []string{"app", "nope"}, http.StatusUnauthorized, "invalid_client"},
		{"unknown client", nil, []string{"other", "s3cret"}, http.StatusUnauthorized, "invalid_client"},
		{"wrong verifier", func(f url.Values) { f.Set("code_verifier", oauth2.GenerateVerifier()) }, []string{"app", "s3cret"}, http.StatusBadRequest, "invalid_grant"},
		{"no verifier", func(f url.Values) { f.Del("code_verifier") }, []string{"app", "s3cret"}, http.StatusBadRequest, "invalid_grant"},
		{"other redirect", func(f url.Values) { f.Set("redirect_uri", "http://app.example/other") }, []string{"app", "s3cret"}, http.StatusBadRequest, "invalid_grant"},
		{"refresh grant", func(f url.Values) { f.Set("grant_type", "refresh_token") }, []string{"app", "s3cret"}, http.StatusBadRequest, "unsupported_grant_type"},
		{"secret in the body", func(f url.Values) { f.Set("client_id", "app"); f.Set("client_secret", "s3cret") }, nil, http.StatusOK, ""},
	} {
		f := good(code(v))
		if tc.form != nil {
			tc.form(f)
		}
		status, body := tokenCall(t, s, f, tc.basic...)
		if status != tc.status || (tc.err != "" && body["error"] != tc.err) {
			t.Errorf("%s: %d %v", tc.name, status, body)
		}
		if tc.err == "" && body["id_token"] == nil {
			t.Errorf("%s: no id_token in %v", tc.name, body)
		}
	}
	// Codes expire after a minute.
	c := code(v)
	mu.Lock()
	now = now.Add(61 * time.Second)
	mu.Unlock()
	if status, body := tokenCall(t, s, good(c), "app", "s3cret"); status != http.StatusBadRequest || body["error"] != "invalid_grant" {
		t.Errorf("expired code: %d %v", status, body)
	}
}

func TestMintAndMountUnderAPath(t *testing.T) {
	mux := http.NewServeMux()
	ts := httptest.NewUnstartedServer(mux)
	issuer := "http://" + ts.Listener.Addr().String() + "/oidc"
	p, err := oidctest.New(oidctest.Config{Issuer: issuer, Key: key()})
	if err != nil {
		t.Fatal(err)
	}
	mux.Handle("/oidc/", p)
	ts.Start()
	defer ts.Close()

	ctx := context.Background()
	prov, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		t.Fatal(err)
	}
	if prov.Endpoint().AuthURL != issuer+"/authorize" {
		t.Errorf("auth URL %q", prov.Endpoint().AuthURL)
	}
	claims := p.UserClaims(oidctest.DefaultUsers()[1], "api://approvals")
	claims["scp"] = "Approvals.Read"
	raw, err := p.Mint(claims)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := prov.Verifier(&oidc.Config{ClientID: "api://approvals"}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	var c map[string]any
	_ = tok.Claims(&c)
	if c["scp"] != "Approvals.Read" || c["oid"] != oidctest.DefaultUsers()[1].OID || c["iss"] != issuer {
		t.Errorf("claims %v", c)
	}
	if resp, err := http.Get(ts.URL + "/oidc/nothing"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown path: %v %v", resp.StatusCode, err)
	}
	if _, err := oidctest.New(oidctest.Config{Issuer: "not a url"}); err == nil {
		t.Error("accepted a bad issuer")
	}
	if _, err := oidctest.New(oidctest.Config{Issuer: issuer, AutoLogin: "zed", Key: key()}); err == nil {
		t.Error("accepted an unknown AutoLogin user")
	}
}
