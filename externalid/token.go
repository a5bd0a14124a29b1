package externalid

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"

	"github.com/approvals-dev/approvals/approvals"
)

// AuthenticationEventsAppID is the application id of Entra's
// authentication events service: the azp (v2) or appid (v1) of every token
// Entra sends to a custom authentication extension.
const AuthenticationEventsAppID = "99045fe1-7639-4a75-9d4a-577b6ca3810f"

// ClockSkew is how far exp and nbf may be off the server's clock.
const ClockSkew = time.Minute

// maxTokenBytes bounds the bearer token read from the header. Entra's are
// about 1.5 kB.
const maxTokenBytes = 16 << 10

// DefaultIssuers returns the issuers accepted for tenantID when none are
// configured: the ciamlogin.com form external tenants show, and the
// login.microsoftonline.com form some deployments see.
func DefaultIssuers(tenantID string) []string {
	return []string{
		"https://" + tenantID + ".ciamlogin.com/" + tenantID + "/v2.0",
		"https://login.microsoftonline.com/" + tenantID + "/v2.0",
	}
}

// TokenConfig says which tokens a TokenVerifier accepts.
type TokenConfig struct {
	// TenantID is the external tenant's id: the tid claim. Required.
	TenantID string
	// AppID is the application id of the extension's app registration:
	// the aud claim, bare or in an api:// form. Required.
	AppID string
	// Issuers are the accepted iss values; each one's keys come from its
	// OpenID discovery document. DefaultIssuers(TenantID) when empty.
	// https, or http on a loopback address (for tests and the demo).
	Issuers []string
	// HTTPClient fetches discovery documents and key sets; a client with
	// FetchTimeout when nil.
	HTTPClient *http.Client
	// FetchTimeout bounds one fetch of a document and its keys; 5 s when 0.
	FetchTimeout time.Duration
	// RefreshInterval is the least time between two fetches of one
	// issuer's keys (the rate limit of refetches on an unknown key id);
	// 10 s when 0.
	RefreshInterval time.Duration
	// Clock is the time for exp, nbf and the cache; the system clock when
	// nil.
	Clock approvals.Clock
}

// Validate reports every problem of the configuration at once.
func (c TokenConfig) Validate() error {
	var errs []error
	if !isGUID(c.TenantID) {
		errs = append(errs, errors.New("external ID: the tenant id must be a GUID"))
	}
	if !isGUID(c.AppID) {
		errs = append(errs, errors.New("external ID: the app id must be a GUID (the application id of the extension's app registration)"))
	}
	for _, iss := range c.Issuers {
		if err := checkFetchURL(iss); err != nil {
			errs = append(errs, fmt.Errorf("external ID: issuer %w", err))
		}
	}
	if c.FetchTimeout < 0 || c.RefreshInterval < 0 {
		errs = append(errs, errors.New("external ID: FetchTimeout and RefreshInterval must not be negative"))
	}
	return errors.Join(errs...)
}

// isGUID reports whether s has the 8-4-4-4-12 hex form.
func isGUID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
				return false
			}
		}
	}
	return true
}

// TokenVerifier checks the bearer tokens Entra sends to the extensions:
// the signature (RS256 only) with the issuer's published keys through
// go-oidc's verifier, then iss, aud, tid, exp and nbf (with ClockSkew) and
// azp or appid. It is safe for concurrent use.
type TokenVerifier struct {
	cfg   TokenConfig
	clock approvals.Clock
	// sets maps every accepted iss value to its key set and verifier.
	sets map[string]*issuerVerifier
	list []*issuerVerifier
	// verified caches the tokens whose signature and claims were checked,
	// by their exact text: Entra sends one token for many calls, and an
	// RS256 verification is most of a call's cost. exp and nbf are checked
	// again on every use, and an entry counts only while its key is still
	// in the issuer's key set.
	mu       sync.RWMutex
	verified map[string]verifiedToken
}

// verifiedToken is a cached, checked token.
type verifiedToken struct {
	claims *Claims
	iv     *issuerVerifier
	kid    string
}

// maxVerifiedTokens bounds the cache; it is emptied when full. Entra uses
// a handful of tokens at a time.
const maxVerifiedTokens = 4096

type issuerVerifier struct {
	keys     *keySet
	verifier *oidc.IDTokenVerifier
}

// NewTokenVerifier returns a verifier, or the configuration's problems. It
// fetches nothing until Warm or the first token.
func NewTokenVerifier(cfg TokenConfig) (*TokenVerifier, error) {
	if len(cfg.Issuers) == 0 {
		cfg.Issuers = DefaultIssuers(cfg.TenantID)
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if cfg.FetchTimeout == 0 {
		cfg.FetchTimeout = 5 * time.Second
	}
	if cfg.RefreshInterval == 0 {
		cfg.RefreshInterval = 10 * time.Second
	}
	clock := cfg.Clock
	if clock == nil {
		clock = approvals.SystemClock
	}
	client := cfg.HTTPClient
	if client == nil {
		client = &http.Client{Timeout: cfg.FetchTimeout}
	}
	v := &TokenVerifier{cfg: cfg, clock: clock, sets: make(map[string]*issuerVerifier), verified: make(map[string]verifiedToken)}
	for _, iss := range cfg.Issuers {
		ks := &keySet{
			issuer: iss, altIssuer: guidHostIssuer(iss, cfg.TenantID),
			client: client, clock: clock,
			timeout: cfg.FetchTimeout, interval: cfg.RefreshInterval, maxAge: 24 * time.Hour,
		}
		iv := &issuerVerifier{keys: ks, verifier: oidc.NewVerifier(iss, ks, &oidc.Config{
			// Checked below: aud has two forms, iss may be the
			// document's spelling, and exp and nbf get a small skew
			// (go-oidc allows none on exp and five minutes on nbf).
			SkipClientIDCheck:    true,
			SkipIssuerCheck:      true,
			SkipExpiryCheck:      true,
			SupportedSigningAlgs: []string{oidc.RS256},
			Now:                  clock.Now,
		})}
		v.sets[iss] = iv
		if ks.altIssuer != "" {
			v.sets[ks.altIssuer] = iv
		}
		v.list = append(v.list, iv)
	}
	return v, nil
}

// guidHostIssuer returns issuer with its host replaced by
// {tenantID}.ciamlogin.com when it is a ciamlogin.com issuer under another
// host (the subdomain form): the discovery document fetched by name may
// name that form (CONTRACT section 2). "" otherwise.
func guidHostIssuer(issuer, tenantID string) string {
	u, err := url.Parse(issuer)
	if err != nil || !strings.HasSuffix(strings.ToLower(u.Host), ".ciamlogin.com") {
		return ""
	}
	guidHost := strings.ToLower(tenantID) + ".ciamlogin.com"
	if strings.EqualFold(u.Host, guidHost) {
		return ""
	}
	u.Host = guidHost
	return u.String()
}

// Warm starts fetching every issuer's keys, so that the first call does
// not wait for them. It does not block.
func (v *TokenVerifier) Warm() {
	now := v.clock.Now()
	for _, iv := range v.list {
		iv.keys.mu.Lock()
		iv.keys.startFetchLocked(now)
		iv.keys.mu.Unlock()
	}
}

// Claims are the checked claims of an accepted token.
type Claims struct {
	Issuer   string    `json:"iss"`
	TenantID string    `json:"tid"`
	Version  string    `json:"ver"`
	AZP      string    `json:"azp"`
	AppID    string    `json:"appid"`
	Exp      *jsonTime `json:"exp"`
	Nbf      *jsonTime `json:"nbf"`
	Audience audience  `json:"aud"`
}

// TokenError says why a token was refused. Reason is safe to log: it never
// contains the token.
type TokenError struct{ Reason string }

// Error implements error.
func (e *TokenError) Error() string { return "external ID: token refused: " + e.Reason }

func refuse(format string, args ...any) error {
	return &TokenError{Reason: fmt.Sprintf(format, args...)}
}

// BearerToken returns the token of an "Authorization: Bearer" header, or "".
func BearerToken(h string) string {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || len(tok) > maxTokenBytes {
		return ""
	}
	return strings.TrimSpace(tok)
}

// Verify checks raw, a compact JWT, and returns its claims, or a
// *TokenError. Waiting for keys ends with ctx.
func (v *TokenVerifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	if raw == "" {
		return nil, refuse("no bearer token")
	}
	if len(raw) > maxTokenBytes {
		return nil, refuse("token too long")
	}
	v.mu.RLock()
	hit, ok := v.verified[raw]
	v.mu.RUnlock()
	if ok && hit.iv.keys.hasKey(hit.kid) {
		if err := v.check(hit.claims); err != nil {
			return nil, err
		}
		c := *hit.claims
		return &c, nil
	}
	iss, err := unverifiedIssuer(raw)
	if err != nil {
		return nil, refuse("%v", err)
	}
	iv, ok := v.sets[iss]
	if !ok {
		return nil, refuse("issuer %q is not accepted", truncate(iss, 128))
	}
	tok, err := iv.verifier.Verify(ctx, raw)
	if err != nil {
		return nil, refuse("%v", err)
	}
	if !iv.keys.accepts(tok.Issuer) {
		return nil, refuse("issuer %q is not the one its discovery document names", truncate(tok.Issuer, 128))
	}
	var c Claims
	if err := tok.Claims(&c); err != nil {
		return nil, refuse("claims: %v", err)
	}
	if err := v.check(&c); err != nil {
		return nil, err
	}
	v.remember(raw, &c, iv)
	return &c, nil
}

// remember caches a verified token.
func (v *TokenVerifier) remember(raw string, c *Claims, iv *issuerVerifier) {
	kid, err := keyID(raw)
	if err != nil {
		return
	}
	cc := *c
	v.mu.Lock()
	defer v.mu.Unlock()
	if len(v.verified) >= maxVerifiedTokens {
		v.verified = make(map[string]verifiedToken)
	}
	v.verified[raw] = verifiedToken{claims: &cc, iv: iv, kid: kid}
}

// keyID reads kid from a JWT's header.
func keyID(raw string) (string, error) {
	head, _, ok := strings.Cut(raw, ".")
	if !ok {
		return "", errors.New("not a compact JWS")
	}
	b, err := decodeSegment(head)
	if err != nil {
		return "", err
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(b, &h); err != nil {
		return "", err
	}
	return h.Kid, nil
}

// check applies the rules go-oidc was told to skip, and Entra's own.
func (v *TokenVerifier) check(c *Claims) error {
	now := v.clock.Now()
	switch {
	case c.Exp == nil:
		return refuse("no exp")
	case now.After(c.Exp.Time().Add(ClockSkew)):
		return refuse("expired at %s", c.Exp.Time().UTC().Format(time.RFC3339))
	case c.Nbf != nil && now.Add(ClockSkew).Before(c.Nbf.Time()):
		return refuse("not valid before %s", c.Nbf.Time().UTC().Format(time.RFC3339))
	case !strings.EqualFold(c.TenantID, v.cfg.TenantID):
		return refuse("tid %q is not the external tenant", truncate(c.TenantID, 64))
	case !v.audienceOK(c.Audience):
		return refuse("aud is not the extension's app id")
	}
	switch c.Version {
	case "2.0":
		if !strings.EqualFold(c.AZP, AuthenticationEventsAppID) {
			return refuse("azp %q is not Entra's authentication events service", truncate(c.AZP, 64))
		}
	case "1.0":
		if !strings.EqualFold(c.AppID, AuthenticationEventsAppID) {
			return refuse("appid %q is not Entra's authentication events service", truncate(c.AppID, 64))
		}
	default:
		return refuse("ver %q is neither 1.0 nor 2.0", truncate(c.Version, 16))
	}
	return nil
}

// audienceOK reports whether aud names the app: its id, api://{id}, or
// api://{host}/{id} (the identifierUris form).
func (v *TokenVerifier) audienceOK(aud audience) bool {
	for _, a := range aud {
		if strings.EqualFold(a, v.cfg.AppID) || strings.EqualFold(a, "api://"+v.cfg.AppID) {
			return true
		}
		rest, ok := strings.CutPrefix(strings.ToLower(a), "api://")
		host, id, found := strings.Cut(rest, "/")
		if ok && found && host != "" && strings.EqualFold(id, v.cfg.AppID) {
			return true
		}
	}
	return false
}

// unverifiedIssuer reads iss from a JWT's payload without checking
// anything, to choose the key set.
func unverifiedIssuer(raw string) (string, error) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := decodeSegment(parts[1])
	if err != nil {
		return "", errors.New("payload is not base64url")
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", errors.New("payload is not a JSON object")
	}
	return c.Iss, nil
}

// audience is aud, which JWT allows as a string or an array.
type audience []string

// UnmarshalJSON implements json.Unmarshaler.
func (a *audience) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err == nil {
		*a = audience{s}
		return nil
	}
	var l []string
	if err := json.Unmarshal(b, &l); err != nil {
		return err
	}
	*a = l
	return nil
}

// jsonTime is a NumericDate: seconds since the epoch, possibly fractional.
type jsonTime float64

// Time returns t as a time.
func (t jsonTime) Time() time.Time {
	sec := float64(t)
	return time.Unix(int64(sec), int64((sec-float64(int64(sec)))*1e9))
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// Issuers returns the accepted issuers, as configured or defaulted.
func (v *TokenVerifier) Issuers() []string { return append([]string(nil), v.cfg.Issuers...) }

// decodeSegment decodes one base64url segment of a compact JWS.
func decodeSegment(seg string) ([]byte, error) { return base64.RawURLEncoding.DecodeString(seg) }
