package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// apiKey is a configured key; only the SHA-256 of its secret is kept, so
// that comparisons take the same time whatever the presented secret's
// length.
type apiKey struct {
	name string
	hash [sha256.Size]byte
}

// actorKey is where authenticate leaves the caller in the Echo context.
const actorKey = "approvals.actor"

// actorOf returns the authenticated caller.
func actorOf(c echo.Context) approvals.Actor {
	a, _ := c.Get(actorKey).(approvals.Actor)
	return a
}

// How long a failed discovery of the token issuer is remembered before the
// next token tries again, so that an unreachable issuer is not asked on
// every call.
const (
	discoveryRetryAfter = 10 * time.Second
	discoveryTimeout    = 10 * time.Second
)

// authenticate lets a call through with a valid API key or an access token
// carrying the admin role: 401 without credentials or with bad ones, 403
// with a valid token that lacks the role. Only the OpenAPI document is
// public.
func (s *server) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if c.Request().Method == http.MethodGet && c.Request().URL.Path == Prefix+openAPIPath {
			return next(c)
		}
		h := c.Request().Header.Get("Authorization")
		scheme, cred, _ := strings.Cut(h, " ")
		cred = strings.TrimSpace(cred)
		if h == "" {
			return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
				message: "authentication required: send Authorization: Bearer <API key or Entra ID access token>"}
		}
		if !strings.EqualFold(scheme, "Bearer") || cred == "" || strings.ContainsAny(cred, " \t") {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="approvals", error="invalid_request"`)
			return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized,
				message: "malformed Authorization header: use Authorization: Bearer <API key or Entra ID access token>"}
		}
		if name, ok := s.matchKey(cred); ok {
			c.Set(actorKey, approvals.Actor{Kind: approvals.ActorAPIKey, ID: name, Admin: true})
			return next(c)
		}
		if s.tokens == nil || strings.Count(cred, ".") != 2 {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="approvals", error="invalid_token"`)
			return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: "unknown API key"}
		}
		actor, err := s.tokens.verify(c.Request().Context(), cred)
		if err != nil {
			var ae *apiError
			if errors.As(err, &ae) {
				switch ae.status {
				case http.StatusUnauthorized:
					c.Response().Header().Set("WWW-Authenticate", `Bearer realm="approvals", error="invalid_token"`)
					s.log.Info("api: access token refused", "reason", ae.cause)
				case http.StatusForbidden:
					c.Response().Header().Set("WWW-Authenticate", `Bearer realm="approvals", error="insufficient_scope"`)
				}
			}
			return err
		}
		c.Set(actorKey, actor)
		return next(c)
	}
}

// matchKey compares cred with every key in constant time, without
// stopping at the first match, and returns the matching key's name.
func (s *server) matchKey(cred string) (string, bool) {
	h := sha256.Sum256([]byte(cred))
	found := -1
	for i, k := range s.keys {
		if subtle.ConstantTimeCompare(h[:], k.hash[:]) == 1 {
			found = i
		}
	}
	if found < 0 {
		return "", false
	}
	return s.keys[found].name, true
}

// tokenVerifier validates Entra ID access tokens for this API: signature
// against the issuer's JWKS, issuer, audience, expiry and the admin role.
// It discovers the issuer on first use.
type tokenVerifier struct {
	cfg       TokenConfig
	audiences []string
	clock     approvals.Clock

	mu       sync.Mutex
	verifier *oidc.IDTokenVerifier
	failedAt time.Time
}

func newTokenVerifier(cfg TokenConfig, clock approvals.Clock) *tokenVerifier {
	id := strings.TrimPrefix(cfg.Audience, "api://")
	return &tokenVerifier{cfg: cfg, audiences: []string{id, "api://" + id}, clock: clock}
}

// get returns the verifier, discovering the issuer when it is not known
// yet.
func (t *tokenVerifier) get(ctx context.Context) (*oidc.IDTokenVerifier, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.verifier != nil {
		return t.verifier, nil
	}
	unavailable := func(cause error) error {
		return &apiError{status: http.StatusServiceUnavailable, code: string(approvals.EUnavailable),
			message: "cannot reach the access-token issuer to check the token; try again later or use an API key", cause: cause}
	}
	if !t.failedAt.IsZero() && t.clock.Now().Sub(t.failedAt) < discoveryRetryAfter {
		return nil, unavailable(errors.New("issuer discovery failed recently"))
	}
	dctx, cancel := context.WithTimeout(ctx, discoveryTimeout)
	defer cancel()
	if t.cfg.HTTPClient != nil {
		dctx = oidc.ClientContext(dctx, t.cfg.HTTPClient)
	}
	p, err := oidc.NewProvider(dctx, t.cfg.Issuer)
	if err != nil {
		t.failedAt = t.clock.Now()
		return nil, unavailable(err)
	}
	// The audience is checked below: Entra puts either the client id or
	// its api:// URI there.
	t.verifier = p.Verifier(&oidc.Config{SkipClientIDCheck: true, Now: t.clock.Now})
	return t.verifier, nil
}

// accessClaims are the claims of an Entra ID v2 access token the API uses.
type accessClaims struct {
	OID               string   `json:"oid"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	AppID             string   `json:"azp"`
	Roles             []string `json:"roles"`
}

// verify checks a token and returns its holder as an admin actor.
func (t *tokenVerifier) verify(ctx context.Context, raw string) (approvals.Actor, error) {
	v, err := t.get(ctx)
	if err != nil {
		return approvals.Actor{}, err
	}
	refused := func(msg string, cause error) error {
		return &apiError{status: http.StatusUnauthorized, code: codeUnauthorized, message: msg, cause: cause}
	}
	tok, err := v.Verify(ctx, raw)
	if err != nil {
		var expired *oidc.TokenExpiredError
		if errors.As(err, &expired) {
			return approvals.Actor{}, refused("the access token has expired", err)
		}
		return approvals.Actor{}, refused("the access token is not valid (signature, issuer or lifetime)", err)
	}
	if !slices.ContainsFunc(tok.Audience, func(a string) bool { return slices.Contains(t.audiences, a) }) {
		return approvals.Actor{}, refused("the access token was not issued for this API (audience)", errors.New("audience "+strings.Join(tok.Audience, ",")))
	}
	var cl accessClaims
	if err := tok.Claims(&cl); err != nil {
		return approvals.Actor{}, refused("the access token's claims cannot be read", err)
	}
	if !slices.Contains(cl.Roles, t.cfg.AdminRole) {
		return approvals.Actor{}, &apiError{status: http.StatusForbidden, code: string(approvals.EForbidden),
			message: "the access token does not carry the " + t.cfg.AdminRole + " app role"}
	}
	id := cl.OID
	if id == "" {
		id = tok.Subject
	}
	name := cl.Name
	if name == "" {
		name = cl.PreferredUsername
	}
	if name == "" && cl.AppID != "" {
		// An application calling with its own identity (client
		// credentials) has no name; say which app it is.
		name = "app:" + cl.AppID
	}
	return approvals.Actor{Kind: approvals.ActorReviewer, ID: id, Name: name, Admin: true}, nil
}
