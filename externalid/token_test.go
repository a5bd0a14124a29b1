package externalid

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/externalid/externalidtest"
)

func b64(v any) string {
	b, _ := json.Marshal(v)
	return base64.RawURLEncoding.EncodeToString(b)
}

// TestTokenRules refuses a token for each rule it breaks, and accepts the
// valid forms.
func TestTokenRules(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	v := e.h.Tokens()
	_, kid := e.iss.Key()
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	valid := e.token(nil)
	parts := strings.Split(valid, ".")
	claims := e.iss.Claims(testApp, e.clock.Now(), time.Hour)

	sign := func(key *rsa.PrivateKey, kid string, edit func(map[string]any)) string {
		c := e.iss.Claims(testApp, e.clock.Now(), time.Hour)
		if edit != nil {
			edit(c)
		}
		tok, err := externalidtest.Sign(c, key, kid)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	pub, _ := x509.MarshalPKIXPublicKey(e.iss.KeyPublic())
	hs := func() string {
		head := b64(map[string]any{"alg": "HS256", "typ": "JWT", "kid": kid})
		body := b64(claims)
		m := hmac.New(sha256.New, pub)
		m.Write([]byte(head + "." + body))
		return head + "." + body + "." + base64.RawURLEncoding.EncodeToString(m.Sum(nil))
	}()
	tampered := func() string {
		c := e.iss.Claims(testApp, e.clock.Now(), time.Hour)
		c["oid"] = "00000000-0000-4000-8000-000000000000"
		return parts[0] + "." + b64(c) + "." + parts[2]
	}()
	none := b64(map[string]any{"alg": "none", "typ": "JWT"}) + "." + b64(claims) + "."

	tests := []struct {
		name string
		tok  string
		ok   bool
	}{
		{"valid v2", valid, true},
		{"aud api:// form", e.token(func(c map[string]any) { c["aud"] = "api://" + testApp }), true},
		{"aud identifierUris form", e.token(func(c map[string]any) { c["aud"] = "api://approvals.example.com/" + testApp }), true},
		{"aud array", e.token(func(c map[string]any) { c["aud"] = []string{"x", strings.ToUpper(testApp)} }), true},
		{"v1 token with appid", e.token(func(c map[string]any) {
			delete(c, "azp")
			c["ver"], c["appid"], c["aud"] = "1.0", strings.ToUpper(AuthenticationEventsAppID), "api://"+testApp
		}), true},
		{"expired within skew", e.token(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-30 * time.Second).Unix() }), true},
		{"wrong aud", e.token(func(c map[string]any) { c["aud"] = "11111111-1111-4111-8111-111111111111" }), false},
		{"aud of another host path", e.token(func(c map[string]any) { c["aud"] = "api://x/" + testApp + "/more" }), false},
		{"no aud", e.token(func(c map[string]any) { delete(c, "aud") }), false},
		{"wrong azp", e.token(func(c map[string]any) { c["azp"] = "11111111-1111-4111-8111-111111111111" }), false},
		{"v1 with azp only", e.token(func(c map[string]any) { c["ver"] = "1.0" }), false},
		{"v2 with appid only", e.token(func(c map[string]any) { delete(c, "azp"); c["appid"] = AuthenticationEventsAppID }), false},
		{"no ver", e.token(func(c map[string]any) { delete(c, "ver") }), false},
		{"wrong tid", e.token(func(c map[string]any) { c["tid"] = "11111111-1111-4111-8111-111111111111" }), false},
		{"wrong iss", e.token(func(c map[string]any) { c["iss"] = "https://login.microsoftonline.com/" + testTenant + "/v2.0" }), false},
		{"expired", e.token(func(c map[string]any) { c["exp"] = e.clock.Now().Add(-2 * time.Minute).Unix() }), false},
		{"no exp", e.token(func(c map[string]any) { delete(c, "exp") }), false},
		{"not yet valid", e.token(func(c map[string]any) { c["nbf"] = e.clock.Now().Add(2 * time.Minute).Unix() }), false},
		{"alg none", none, false},
		{"HS256 signed with the public key", hs, false},
		{"unknown kid", sign(other, "not-published", nil), false},
		{"a key not in the JWKS under a published kid", sign(other, kid, nil), false},
		{"tampered payload", tampered, false},
		{"garbage", "a.b.c", false},
		{"empty", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := v.Verify(context.Background(), tt.tok)
			if (err == nil) != tt.ok {
				t.Fatalf("Verify: %v, want ok=%v", err, tt.ok)
			}
			var te *TokenError
			if err != nil && !errors.As(err, &te) {
				t.Fatalf("error %T is not a *TokenError", err)
			}
		})
	}
	// Over HTTP: 401 with a JSON body, nothing recorded.
	for _, tok := range []string{"", hs, none, sign(other, kid, nil)} {
		a := e.post(SubmitPath, readTestdata(t, "submit_reference.json"), tok)
		if a.Status != http.StatusUnauthorized || !strings.Contains(a.Raw, "unauthorized") {
			t.Errorf("status %d %s, want 401", a.Status, a.Raw)
		}
	}
	if _, err := e.svc.CheckStatusIn(context.Background(), approvals.SourceExternalID, "larissa@contoso.com", nil); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("a refused call recorded a request: %v", err)
	}
}

// TestJWKSHangAnswersWithinBudget: an issuer whose JWKS never answers
// costs each call the budget, not more, and the answer is 401.
func TestJWKSHangAnswersWithinBudget(t *testing.T) {
	e := newEnv(t, approvals.Policy{}, func(c *Config) { c.TokenBudget = 200 * time.Millisecond })
	e.iss.Hang(true)
	tok := e.token(nil)
	for i := 0; i < 3; i++ {
		start := time.Now()
		a := e.post(StartPath, readTestdata(t, "start_reference.json"), tok)
		if took := time.Since(start); a.Status != http.StatusUnauthorized || took > time.Second {
			t.Fatalf("call %d: status %d after %s; want 401 within the budget", i, a.Status, took)
		}
	}
	// One fetch ran, the others waited for it: no pile-up of fetches.
	if n := e.iss.JWKSHits.Load(); n != 1 {
		t.Errorf("JWKS fetched %d times, want 1", n)
	}
	e.iss.Hang(false)
}

// TestKeyRotationRefetchesAndIsRateLimited: a token under a new key id
// fetches the JWKS again; further unknown key ids within the interval do
// not.
func TestKeyRotationRefetchesAndIsRateLimited(t *testing.T) {
	e := newEnv(t, approvals.Policy{}, func(c *Config) { c.Tokens.RefreshInterval = time.Minute })
	v := e.h.Tokens()
	ctx := context.Background()
	if _, err := v.Verify(ctx, e.token(nil)); err != nil {
		t.Fatal(err)
	}
	if n := e.iss.JWKSHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times, want 1", n)
	}
	// Cached: no fetch.
	if _, err := v.Verify(ctx, e.token(nil)); err != nil || e.iss.JWKSHits.Load() != 1 {
		t.Fatalf("second token: %v, %d fetches", err, e.iss.JWKSHits.Load())
	}
	// Rotation within the interval: the new kid is refused without a fetch.
	e.clock.Advance(10 * time.Second)
	if err := e.iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 5; i++ {
		if _, err := v.Verify(ctx, e.token(nil)); err == nil {
			t.Fatal("a token under a key not yet fetched was accepted")
		}
	}
	if n := e.iss.JWKSHits.Load(); n != 1 {
		t.Fatalf("JWKS fetched %d times within the rate limit, want 1", n)
	}
	// After the interval: one refetch, and the new key works.
	e.clock.Advance(time.Minute)
	if _, err := v.Verify(ctx, e.token(nil)); err != nil {
		t.Fatalf("after rotation: %v", err)
	}
	if n := e.iss.JWKSHits.Load(); n != 2 {
		t.Fatalf("JWKS fetched %d times, want 2", n)
	}
}

// rewrite sends every request to the fake issuer's loopback server, so
// that an https ciamlogin.com issuer can be tested without the network.
type rewrite struct{ to *url.URL }

func (rw rewrite) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.URL.Scheme, r.URL.Host, r.Host = rw.to.Scheme, rw.to.Host, rw.to.Host
	return http.DefaultTransport.RoundTrip(r)
}

// TestDiscoveryDocumentWithTenantGUIDHost: fetched by the subdomain name,
// the document names the tenant-GUID host; tokens carry that issuer and
// are accepted. A document naming any other issuer is refused.
func TestDiscoveryDocumentWithTenantGUIDHost(t *testing.T) {
	byName := "https://contoso.ciamlogin.com/" + testTenant + "/v2.0"
	byGUID := "https://" + testTenant + ".ciamlogin.com/" + testTenant + "/v2.0"
	e := newEnv(t, approvals.Policy{})
	to, _ := url.Parse(e.iss.URL())
	client := &http.Client{Transport: rewrite{to}, Timeout: 2 * time.Second}
	v, err := NewTokenVerifier(TokenConfig{TenantID: testTenant, AppID: testApp, Issuers: []string{byName}, HTTPClient: client, Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.iss.SetDocumentIssuer(byGUID)
	if _, err := v.Verify(context.Background(), e.token(func(c map[string]any) { c["iss"] = byGUID })); err != nil {
		t.Fatalf("GUID-host issuer: %v", err)
	}
	if _, err := v.Verify(context.Background(), e.token(func(c map[string]any) { c["iss"] = byName })); err != nil {
		t.Fatalf("configured issuer: %v", err)
	}

	e.clock.Advance(time.Hour)
	v2, _ := NewTokenVerifier(TokenConfig{TenantID: testTenant, AppID: testApp, Issuers: []string{byName}, HTTPClient: client, Clock: e.clock})
	e.iss.SetDocumentIssuer("https://evil.ciamlogin.com/" + testTenant + "/v2.0")
	if _, err := v2.Verify(context.Background(), e.token(func(c map[string]any) { c["iss"] = byName })); err == nil {
		t.Fatal("a document naming another issuer was trusted")
	}
}

func TestTokenConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  TokenConfig
		want string
	}{
		{"tenant", TokenConfig{TenantID: "contoso", AppID: testApp}, "tenant id"},
		{"app", TokenConfig{TenantID: testTenant, AppID: ""}, "app id"},
		{"http issuer", TokenConfig{TenantID: testTenant, AppID: testApp, Issuers: []string{"http://login.example.com/x"}}, "https"},
	}
	for _, tt := range tests {
		if err := tt.cfg.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: %v, want %q", tt.name, err, tt.want)
		}
	}
	if _, err := NewTokenVerifier(TokenConfig{TenantID: testTenant, AppID: testApp}); err != nil {
		t.Errorf("defaults: %v", err)
	}
}

// TestVerifiedTokenCache: a token checked once is answered from the cache,
// but it still expires, and it stops counting once its key leaves the
// issuer's key set.
func TestVerifiedTokenCache(t *testing.T) {
	e := newEnv(t, approvals.Policy{}, func(c *Config) { c.Tokens.RefreshInterval = time.Second })
	v := e.h.Tokens()
	ctx := context.Background()
	tok := e.token(func(c map[string]any) { c["exp"] = e.clock.Now().Add(10 * time.Minute).Unix() })
	for i := 0; i < 3; i++ {
		if _, err := v.Verify(ctx, tok); err != nil {
			t.Fatal(err)
		}
	}
	e.clock.Advance(10*time.Minute + ClockSkew + time.Second)
	if _, err := v.Verify(ctx, tok); err == nil {
		t.Fatal("a cached token was accepted after it expired")
	}
	// Rotation: the old key leaves the JWKS; a token under the new key
	// refreshes the set, and the cached old token no longer counts.
	old := e.token(nil)
	if _, err := v.Verify(ctx, old); err != nil {
		t.Fatal(err)
	}
	if err := e.iss.Rotate(); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Second)
	if _, err := v.Verify(ctx, e.token(nil)); err != nil {
		t.Fatalf("new key: %v", err)
	}
	if _, err := v.Verify(ctx, old); err == nil {
		t.Fatal("a cached token under a retired key was accepted")
	}
}
