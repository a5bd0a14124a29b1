// Package externalidtest is a fake Entra External ID token issuer for
// tests, benchmarks and the demo: an OpenID discovery document and a JWKS
// served on a loopback address, an RSA key generated at start, and tokens
// minted the way Entra mints the ones it sends to custom authentication
// extensions. It can rotate its key, hang its JWKS and name another issuer
// in its discovery document, to test what a verifier does then.
package externalidtest

import (
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"time"

	"github.com/go-jose/go-jose/v4"
)

// AuthenticationEventsAppID is Entra's authentication events service, the
// azp of the tokens it sends.
const AuthenticationEventsAppID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"

// Issuer is a fake issuer. Its methods are safe for concurrent use.
type Issuer struct {
	// TenantID is the tenant whose issuer this is.
	TenantID string
	server   *httptest.Server

	mu        sync.Mutex
	key       *rsa.PrivateKey
	kid       string
	published []jose.JSONWebKey
	docIssuer string
	hang      chan struct{} // non-nil: the JWKS waits until it is closed

	// JWKSHits and DiscoveryHits count the fetches.
	JWKSHits, DiscoveryHits atomic.Int64
}

// NewIssuer starts a fake issuer for tenantID on a loopback port. Close it.
func NewIssuer(tenantID string) (*Issuer, error) {
	iss := &Issuer{TenantID: tenantID}
	if err := iss.Rotate(); err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /"+tenantID+"/v2.0/.well-known/openid-configuration", iss.discovery)
	mux.HandleFunc("GET /"+tenantID+"/discovery/v2.0/keys", iss.jwks)
	iss.server = httptest.NewServer(mux)
	return iss, nil
}

// URL is the issuer, the iss of its tokens:
// http://127.0.0.1:port/{tenant}/v2.0.
func (iss *Issuer) URL() string { return iss.server.URL + "/" + iss.TenantID + "/v2.0" }

// Close stops the server, releasing a hanging JWKS first.
func (iss *Issuer) Close() {
	iss.Hang(false)
	iss.server.CloseClientConnections()
	iss.server.Close()
}

// Rotate replaces the signing key with a new one, published alone.
func (iss *Issuer) Rotate() error {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.key = key
	iss.kid = fmt.Sprintf("key-%d", time.Now().UnixNano())
	iss.published = []jose.JSONWebKey{{Key: key.Public(), KeyID: iss.kid, Algorithm: string(jose.RS256), Use: "sig"}}
	return nil
}

// Key returns the current signing key and its id.
func (iss *Issuer) Key() (*rsa.PrivateKey, string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	return iss.key, iss.kid
}

// SetDocumentIssuer makes the discovery document name issuer instead of
// URL() ("" restores it).
func (iss *Issuer) SetDocumentIssuer(issuer string) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	iss.docIssuer = issuer
}

// Hang makes the JWKS endpoint wait (true) until Hang(false) or Close.
func (iss *Issuer) Hang(on bool) {
	iss.mu.Lock()
	defer iss.mu.Unlock()
	switch {
	case on && iss.hang == nil:
		iss.hang = make(chan struct{})
	case !on && iss.hang != nil:
		close(iss.hang)
		iss.hang = nil
	}
}

func (iss *Issuer) discovery(w http.ResponseWriter, r *http.Request) {
	iss.DiscoveryHits.Add(1)
	iss.mu.Lock()
	doc := iss.docIssuer
	iss.mu.Unlock()
	if doc == "" {
		doc = iss.URL()
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{
		"issuer":                                doc,
		"jwks_uri":                              iss.server.URL + "/" + iss.TenantID + "/discovery/v2.0/keys",
		"id_token_signing_alg_values_supported": []string{"RS256"},
	})
}

func (iss *Issuer) jwks(w http.ResponseWriter, r *http.Request) {
	iss.JWKSHits.Add(1)
	iss.mu.Lock()
	hang, keys := iss.hang, iss.published
	iss.mu.Unlock()
	if hang != nil {
		select {
		case <-hang:
		case <-r.Context().Done():
			return
		}
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: keys})
}

// Claims returns the claims of a valid v2 token for appID issued now,
// valid for ttl.
func (iss *Issuer) Claims(appID string, now time.Time, ttl time.Duration) map[string]any {
	return map[string]any{
		"aud": appID, "iss": iss.URL(), "iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(ttl).Unix(),
		"azp": AuthenticationEventsAppID, "azpacr": "1", "oid": "8a9e0d3b-7c1f-4e15-9a4c-3f2e1d0c9b8a",
		"sub": "8a9e0d3b-7c1f-4e15-9a4c-3f2e1d0c9b8a", "tid": iss.TenantID, "ver": "2.0",
	}
}

// Token signs claims with the current key, RS256, the key id in the
// header.
func (iss *Issuer) Token(claims map[string]any) (string, error) {
	key, kid := iss.Key()
	return Sign(claims, key, kid)
}

// Sign signs claims with key under the key id kid, RS256.
func Sign(claims map[string]any, key *rsa.PrivateKey, kid string) (string, error) {
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.RS256, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return "", err
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// KeyPublic returns the current public key.
func (iss *Issuer) KeyPublic() *rsa.PublicKey {
	key, _ := iss.Key()
	return &key.PublicKey
}
