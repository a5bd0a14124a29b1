package externalid

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// maxDocumentBytes bounds a discovery document or a JWKS. Entra's are a few
// kilobytes.
const maxDocumentBytes = 1 << 20

// errKeysUnavailable is returned while an issuer's keys cannot be fetched.
var errKeysUnavailable = errors.New("the issuer's signing keys are not available")

// keySet is one accepted issuer's signing keys: fetched from the JWKS its
// OpenID discovery document names, cached, and fetched again when a token
// names a key id the cache lacks, at most once per minInterval. A fetch
// runs in the background with its own timeout; callers wait for it only
// as long as their context allows, so an issuer outage costs each call at
// most its budget. It implements go-oidc's KeySet.
type keySet struct {
	issuer    string // as configured
	altIssuer string // the tenant-GUID-host form the document may name, or ""
	client    *http.Client
	clock     approvals.Clock
	timeout   time.Duration // of one fetch (document and JWKS)
	interval  time.Duration // between two fetches
	maxAge    time.Duration // after which keys are refreshed in the background

	mu          sync.Mutex
	keys        []jose.JSONWebKey
	fetchedAt   time.Time
	lastAttempt time.Time
	lastErr     error
	inflight    chan struct{} // closed when the running fetch ends
	// docIssuer is the issuer the discovery document names: tokens carry it.
	docIssuer string
	// fetches counts fetch attempts, for tests and the log.
	fetches int
}

// accepts reports whether a token's iss belongs to this key set: the
// configured issuer, or the one its discovery document names.
func (ks *keySet) accepts(iss string) bool {
	if iss == ks.issuer {
		return true
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return ks.docIssuer != "" && iss == ks.docIssuer
}

// VerifySignature checks the signature of a compact JWS against the cached
// keys, fetching them first when the key id is unknown, and returns the
// payload. Only RS256 is parsed.
func (ks *keySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, []jose.SignatureAlgorithm{jose.RS256})
	if err != nil {
		return nil, fmt.Errorf("malformed token: %w", err)
	}
	if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	kid := jws.Signatures[0].Header.KeyID
	keys, err := ks.keysFor(ctx, kid)
	if err != nil {
		return nil, err
	}
	for _, k := range keys {
		if kid != "" && k.KeyID != kid {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, nil
		}
	}
	return nil, errors.New("signature does not match any of the issuer's keys")
}

// keysFor returns the cached keys when one has the key id (or any key when
// the token names none), and otherwise fetches, within the rate limit, and
// waits for the fetch while ctx lasts.
func (ks *keySet) keysFor(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	now := ks.clock.Now()
	ks.mu.Lock()
	if has(ks.keys, kid) {
		keys := ks.keys
		if now.Sub(ks.fetchedAt) > ks.maxAge {
			ks.startFetchLocked(now) // stale: refresh, but answer from the cache
		}
		ks.mu.Unlock()
		return keys, nil
	}
	ch := ks.startFetchLocked(now)
	ks.mu.Unlock()
	if ch == nil {
		return nil, fmt.Errorf("key %q is unknown and the keys were fetched less than %s ago", kid, ks.interval)
	}
	select {
	case <-ch:
	case <-ctx.Done():
		return nil, fmt.Errorf("%w: waiting for the JWKS: %w", errKeysUnavailable, ctx.Err())
	}
	ks.mu.Lock()
	defer ks.mu.Unlock()
	if has(ks.keys, kid) {
		return ks.keys, nil
	}
	if ks.lastErr != nil {
		return nil, fmt.Errorf("%w: %w", errKeysUnavailable, ks.lastErr)
	}
	return nil, fmt.Errorf("key %q is not in the issuer's JWKS", kid)
}

// hasKey reports whether the cached keys still have kid.
func (ks *keySet) hasKey(kid string) bool {
	ks.mu.Lock()
	defer ks.mu.Unlock()
	return has(ks.keys, kid)
}

// has reports whether keys has kid, or any key when kid is "".
func has(keys []jose.JSONWebKey, kid string) bool {
	for _, k := range keys {
		if kid == "" || k.KeyID == kid {
			return true
		}
	}
	return false
}

// startFetchLocked starts a fetch unless one is running or the last began
// less than interval ago, and returns the channel closed when the running
// fetch ends, or nil when the rate limit refused. ks.mu is held.
func (ks *keySet) startFetchLocked(now time.Time) chan struct{} {
	if ks.inflight != nil {
		return ks.inflight
	}
	if !ks.lastAttempt.IsZero() && now.Sub(ks.lastAttempt) < ks.interval {
		return nil
	}
	ks.lastAttempt = now
	ks.fetches++
	ch := make(chan struct{})
	ks.inflight = ch
	go ks.fetch(ch)
	return ch
}

// fetch reads the discovery document and the JWKS within the timeout and
// stores the result.
func (ks *keySet) fetch(done chan struct{}) {
	ctx, cancel := context.WithTimeout(context.Background(), ks.timeout)
	defer cancel()
	docIssuer, keys, err := ks.load(ctx)
	ks.mu.Lock()
	defer ks.mu.Unlock()
	ks.lastErr = err
	if err == nil {
		ks.keys, ks.docIssuer, ks.fetchedAt = keys, docIssuer, ks.clock.Now()
	}
	ks.inflight = nil
	close(done)
}

// discovery is the part of an OpenID discovery document used here.
type discovery struct {
	Issuer  string `json:"issuer"`
	JWKSURI string `json:"jwks_uri"`
}

// load fetches the discovery document and the keys it names.
func (ks *keySet) load(ctx context.Context) (string, []jose.JSONWebKey, error) {
	var doc discovery
	docURL := strings.TrimSuffix(ks.issuer, "/") + "/.well-known/openid-configuration"
	if err := ks.getJSON(ctx, docURL, &doc); err != nil {
		return "", nil, err
	}
	if doc.Issuer != ks.issuer && (ks.altIssuer == "" || doc.Issuer != ks.altIssuer) {
		return "", nil, fmt.Errorf("the discovery document of %s names issuer %q", ks.issuer, doc.Issuer)
	}
	if err := checkFetchURL(doc.JWKSURI); err != nil {
		return "", nil, fmt.Errorf("the discovery document of %s: jwks_uri: %w", ks.issuer, err)
	}
	var set jose.JSONWebKeySet
	if err := ks.getJSON(ctx, doc.JWKSURI, &set); err != nil {
		return "", nil, err
	}
	var keys []jose.JSONWebKey
	for _, k := range set.Keys {
		if _, ok := k.Key.(*rsa.PublicKey); !ok || (k.Use != "" && k.Use != "sig") || (k.Algorithm != "" && k.Algorithm != string(jose.RS256)) {
			continue
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return "", nil, fmt.Errorf("the JWKS of %s has no RSA signing key", ks.issuer)
	}
	return doc.Issuer, keys, nil
}

// getJSON GETs u and decodes its JSON body into v.
func (ks *keySet) getJSON(ctx context.Context, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	req.Header.Set("Accept", "application/json")
	resp, err := ks.client.Do(req)
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return fmt.Errorf("GET %s: status %d", u, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxDocumentBytes+1))
	if err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	if len(body) > maxDocumentBytes {
		return fmt.Errorf("GET %s: larger than %d bytes", u, maxDocumentBytes)
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("GET %s: %w", u, err)
	}
	return nil
}

// checkFetchURL accepts an https URL, or http to a loopback address (tests
// and the demo serve their fake issuer on loopback).
func checkFetchURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
	}
	return fmt.Errorf("%q must be https (http only on a loopback address)", raw)
}

// isLoopback reports whether host is localhost or a loopback IP.
func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
