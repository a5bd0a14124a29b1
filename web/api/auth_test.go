package api

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

const (
	testClientID = "6b1f6d39-4c3a-4a8e-9a52-0d2c1f6e7a10"
	testOID      = "11111111-2222-3333-4444-555555555555"
)

// issuer is a stand-in for Entra ID's v2 endpoint: a discovery document
// and a JWKS with one RSA key. It can be switched off to act unreachable.
type issuer struct {
	srv  *httptest.Server
	key  *rsa.PrivateKey
	kid  string
	down atomic.Bool
	hits atomic.Int64
}

func newIssuer(t *testing.T) *issuer {
	t.Helper()
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	is := &issuer{key: key, kid: "test-key-1"}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		is.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                is.srv.URL,
			"authorization_endpoint":                is.srv.URL + "/authorize",
			"token_endpoint":                        is.srv.URL + "/token",
			"jwks_uri":                              is.srv.URL + "/keys",
			"id_token_signing_alg_values_supported": []string{"RS256"},
		})
	})
	mux.HandleFunc("GET /keys", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{"keys": []map[string]string{{
			"kty": "RSA", "use": "sig", "alg": "RS256", "kid": is.kid,
			"n": b64(key.N.Bytes()), "e": b64(big.NewInt(int64(key.E)).Bytes()),
		}}})
	})
	is.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if is.down.Load() {
			http.Error(w, "down", http.StatusServiceUnavailable)
			return
		}
		mux.ServeHTTP(w, r)
	}))
	t.Cleanup(is.srv.Close)
	return is
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

// token signs claims with key (the issuer's when nil) as an RS256 JWT.
func (is *issuer) token(t *testing.T, claims map[string]any, key *rsa.PrivateKey) string {
	t.Helper()
	if key == nil {
		key = is.key
	}
	header := b64([]byte(`{"alg":"RS256","typ":"JWT","kid":"` + is.kid + `"}`))
	payload := b64([]byte(mustJSON(claims)))
	sum := sha256.Sum256([]byte(header + "." + payload))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, sum[:])
	if err != nil {
		t.Fatal(err)
	}
	return header + "." + payload + "." + b64(sig)
}

// claims returns a valid admin access token's claims at now.
func (is *issuer) claims(now time.Time) map[string]any {
	return map[string]any{
		"iss": is.srv.URL, "aud": testClientID, "sub": "sub-ada", "oid": testOID, "name": "Ada Admin",
		"iat": now.Add(-time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "exp": now.Add(time.Hour).Unix(),
		"roles": []string{"Approvals.Reviewer", "Approvals.Admin"}, "ver": "2.0",
	}
}

func withIssuer(is *issuer) func(*Config) {
	return func(c *Config) {
		c.Token = TokenConfig{Issuer: is.srv.URL, Audience: testClientID, AdminRole: "Approvals.Admin", HTTPClient: is.srv.Client()}
	}
}

func TestAPIKeys(t *testing.T) {
	e := newEnv(t)
	r := e.signUp("pat@example.com")
	tests := []struct {
		name, authorization string
		status              int
		code, fragment      string
	}{
		{"no header", "", 401, "unauthorized", "authentication required"},
		{"wrong key", "Bearer not-a-key-0123456789", 401, "unauthorized", "unknown API key"},
		{"key of another case", "Bearer " + strings.ToUpper(opsKey), 401, "unauthorized", "unknown API key"},
		{"key prefix", "Bearer " + opsKey[:10], 401, "unauthorized", "unknown API key"},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("ops:"+opsKey)), 401, "unauthorized", "malformed Authorization"},
		{"bearer without credential", "Bearer", 401, "unauthorized", "malformed Authorization"},
		{"bearer with blank credential", "Bearer   ", 401, "unauthorized", "malformed Authorization"},
		{"two credentials", "Bearer " + opsKey + " " + reportKey, 401, "unauthorized", "malformed Authorization"},
		{"key as bare header", opsKey, 401, "unauthorized", "malformed Authorization"},
		{"jwt-shaped without token config", "Bearer aaa.bbb.ccc", 401, "unauthorized", "unknown API key"},
		{"ops key", "Bearer " + opsKey, 200, "", ""},
		{"second key", "Bearer " + reportKey, 200, "", ""},
		{"lower-case scheme", "bearer " + opsKey, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.doAuth("GET", "/api/v1/requests/"+r.ID, tt.authorization, "")
			if tt.status != 200 {
				a.wantError(t, tt.status, tt.code, tt.fragment)
				if !strings.HasPrefix(a.header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("WWW-Authenticate %q", a.header.Get("WWW-Authenticate"))
				}
				return
			}
			a.want(t, 200)
		})
	}

	// Unauthenticated calls learn nothing about routes.
	e.doAuth("GET", "/api/v1/no-such-route", "", "").wantError(t, 401, "unauthorized")
	e.doAuth("DELETE", "/api/v1/requests", "", "").wantError(t, 401, "unauthorized")

	// The key's name is the actor.
	var v requestView
	e.doAuth("POST", "/api/v1/requests/"+r.ID+"/approve", "Bearer "+reportKey, `{"reason":"known supplier"}`).want(t, 200).json(t, &v)
	if v.Decision == nil || v.Decision.By != "api_key:reporting" || v.Decision.ByID != "reporting" || v.Decision.ActorKind != approvals.ActorAPIKey {
		t.Errorf("decision %+v, want by api_key:reporting", v.Decision)
	}
	evs := e.eventsOf(approvals.EventApproved)
	if len(evs) != 1 || evs[0].Actor.Kind != approvals.ActorAPIKey || evs[0].Actor.ID != "reporting" {
		t.Errorf("approved events %+v", evs)
	}
}

func TestConfigValidate(t *testing.T) {
	svc := &approvals.Service{Store: newEnv(t).mem}
	tests := []struct {
		name string
		cfg  Config
		want string
	}{
		{"no service", Config{}, "Service is required"},
		{"empty secret", Config{Service: svc, APIKeys: map[string]string{"ops": ""}}, `key "ops"`},
		{"empty name", Config{Service: svc, APIKeys: map[string]string{"": "secret"}}, `key ""`},
		{"space in secret", Config{Service: svc, APIKeys: map[string]string{"ops": "a b"}}, `key "ops"`},
		{"relative issuer", Config{Service: svc, Token: TokenConfig{Issuer: "login.example", Audience: "x"}}, "absolute http(s) URL"},
		{"issuer without audience", Config{Service: svc, Token: TokenConfig{Issuer: "https://login.example/v2.0", AdminRole: "A"}}, "audience"},
		{"issuer without admin role", Config{Service: svc, Token: TokenConfig{Issuer: "https://login.example/v2.0", Audience: "x"}}, "APPROVALS_ADMIN_ROLE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(tt.cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("New: %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
	if _, err := New(Config{Service: svc}); err != nil {
		t.Errorf("minimal config: %v", err)
	}
}

func TestAccessTokens(t *testing.T) {
	is := newIssuer(t)
	e := newEnv(t, withIssuer(is))
	r := e.signUp("pat@example.com")
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	now := e.clock.Now()
	tok := func(change func(map[string]any), key *rsa.PrivateKey) string {
		c := is.claims(now)
		if change != nil {
			change(c)
		}
		return is.token(t, c, key)
	}
	tests := []struct {
		name           string
		token          string
		status         int
		code, fragment string
	}{
		{"valid admin", tok(nil, nil), 200, "", ""},
		{"api:// audience", tok(func(c map[string]any) { c["aud"] = "api://" + testClientID }, nil), 200, "", ""},
		{"audience list", tok(func(c map[string]any) { c["aud"] = []string{"other", testClientID} }, nil), 200, "", ""},
		{"expired", tok(func(c map[string]any) { c["exp"] = now.Add(-time.Second).Unix() }, nil), 401, "unauthorized", "expired"},
		{"no expiry", tok(func(c map[string]any) { delete(c, "exp") }, nil), 401, "unauthorized", "expired"},
		{"not yet valid", tok(func(c map[string]any) { c["nbf"] = now.Add(time.Hour).Unix() }, nil), 401, "unauthorized", "not valid"},
		{"signed by another key", tok(nil, otherKey), 401, "unauthorized", "not valid"},
		{"wrong audience", tok(func(c map[string]any) { c["aud"] = "00000003-0000-0000-c000-000000000000" }, nil), 401, "unauthorized", "audience"},
		{"wrong issuer", tok(func(c map[string]any) { c["iss"] = "https://sts.windows.net/tenant/" }, nil), 401, "unauthorized", "not valid"},
		{"no roles", tok(func(c map[string]any) { delete(c, "roles") }, nil), 403, "forbidden", "Approvals.Admin"},
		{"reviewer only", tok(func(c map[string]any) { c["roles"] = []string{"Approvals.Reviewer"} }, nil), 403, "forbidden", "Approvals.Admin"},
		{"tampered payload", func() string {
			parts := strings.Split(tok(func(c map[string]any) { c["roles"] = []string{} }, nil), ".")
			c := is.claims(now)
			parts[1] = b64([]byte(mustJSON(c)))
			return strings.Join(parts, ".")
		}(), 401, "unauthorized", "not valid"},
		{"alg none", b64([]byte(`{"alg":"none","typ":"JWT"}`)) + "." + b64([]byte(mustJSON(is.claims(now)))) + ".", 401, "unauthorized", ""},
		{"garbage with dots", "Bearer.not.jwt", 401, "unauthorized", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := e.doAuth("GET", "/api/v1/requests/"+r.ID, "Bearer "+tt.token, "")
			if tt.status == 200 {
				a.want(t, 200)
				return
			}
			a.wantError(t, tt.status, tt.code, tt.fragment)
			wantErr := `error="invalid_token"`
			if tt.status == 403 {
				wantErr = `error="insufficient_scope"`
			}
			if !strings.Contains(a.header.Get("WWW-Authenticate"), wantErr) {
				t.Errorf("WWW-Authenticate %q, want %s", a.header.Get("WWW-Authenticate"), wantErr)
			}
		})
	}
	if n := is.hits.Load(); n != 1 {
		t.Errorf("discovery fetched %d times, want once", n)
	}

	// The token's holder is the actor, by object id and name.
	var v requestView
	e.doAuth("POST", "/api/v1/requests/"+r.ID+"/deny", "Bearer "+tok(nil, nil), `{"reason":"not a partner"}`).want(t, 200).json(t, &v)
	if v.Decision == nil || v.Decision.By != "Ada Admin" || v.Decision.ByID != testOID || v.Decision.ActorKind != approvals.ActorReviewer {
		t.Errorf("decision %+v, want by Ada Admin (%s)", v.Decision, testOID)
	}
	// Admins may reopen.
	e.doAuth("POST", "/api/v1/requests/"+r.ID+"/reopen", "Bearer "+tok(nil, nil), `{"reason":"appeal"}`).want(t, 200)
}

// The server starts and serves API keys while the issuer is unreachable,
// and accepts tokens once it is back.
func TestAccessTokensIssuerUnreachable(t *testing.T) {
	is := newIssuer(t)
	is.down.Store(true)
	e := newEnv(t, withIssuer(is))
	r := e.signUp("pat@example.com")
	token := is.token(t, is.claims(e.clock.Now()), nil)

	e.doAuth("GET", "/api/v1/requests/"+r.ID, "Bearer "+token, "").wantError(t, 503, "unavailable", "issuer", "API key")
	e.doAuth("GET", "/api/v1/requests/"+r.ID, "Bearer "+opsKey, "").want(t, 200)
	// A failed discovery is not repeated on every call.
	hits := is.hits.Load()
	is.down.Store(false)
	e.doAuth("GET", "/api/v1/requests/"+r.ID, "Bearer "+token, "").wantError(t, 503, "unavailable")
	if is.hits.Load() != hits {
		t.Errorf("discovery retried within %v", discoveryRetryAfter)
	}
	e.clock.Advance(discoveryRetryAfter)
	e.doAuth("GET", "/api/v1/requests/"+r.ID, "Bearer "+token, "").want(t, 200)
}
