// Package api is the admin REST API under /api/v1: admins' scripts page
// through requests and decide them, read the audit trail, export decisions
// and download backups, and line-of-business applications invite external
// users. It authenticates every call with an API key or an Entra ID access
// token carrying the admin role, and answers every error, including unknown
// routes and panics, as {"error":{"code":"...","message":"..."}}.
//
// The handler is built with Echo; no Echo type leaves the package. The
// routes and their JSON shapes are described by the OpenAPI document
// embedded from openapi.json and served at GET /api/v1/openapi.json.
package api

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
	"github.com/approvals-dev/approvals/internal/querystring"
)

// Prefix is the path every route of the API starts with. Mount the handler
// New returns at Prefix + "/" in an http.ServeMux.
const Prefix = "/api/v1"

// Defaults of the optional Config fields.
const (
	DefaultInviteTimeout = 60 * time.Second
	// DefaultStreamWriteTimeout is how long one write of an export or a
	// backup may take before the connection is given up; each write
	// extends the deadline again, so long downloads are not cut off by
	// the server's overall write timeout.
	DefaultStreamWriteTimeout = 60 * time.Second
)

// TokenConfig says how Entra ID access tokens are validated. With an empty
// Issuer only API keys are accepted.
type TokenConfig struct {
	// Issuer is the token issuer, e.g.
	// https://login.microsoftonline.com/<tenant id>/v2.0. Its discovery
	// document and keys are fetched on the first token presented, not at
	// start, so the server starts when the issuer is unreachable.
	Issuer string
	// Audience is the application (client) id of the API's app
	// registration; tokens whose aud is the id or "api://<id>" are
	// accepted.
	Audience string
	// AdminRole is the app-role value (the roles claim) a token must carry;
	// required with Issuer.
	AdminRole string
	// HTTPClient reaches the issuer; nil means http.DefaultClient.
	HTTPClient *http.Client
}

// Config configures the API.
type Config struct {
	// Service carries out decisions; required.
	Service *approvals.Service
	// Store is read by the listings, the audit trail and the export, and
	// records invitations; it defaults to Service.Store.
	Store approvals.Store
	// Clock defaults to Service.Clock, then approvals.SystemClock.
	Clock approvals.Clock
	// APIKeys maps a key's name, recorded as the actor, to its secret, sent
	// as "Authorization: Bearer <secret>".
	APIKeys map[string]string
	// Token configures Entra ID access tokens.
	Token TokenConfig
	// Backup writes a consistent snapshot of the live database to w and
	// returns its size, e.g. (*bolt.Store).Backup. When nil, GET
	// /api/v1/backup answers 501.
	Backup func(w io.Writer) (int64, error)
	// NoBackup is the message of that 501 when Backup is nil: what to do
	// instead (on PostgreSQL, pg_dump). Empty: a generic message.
	NoBackup string
	// InviteTimeout bounds how long POST /api/v1/invitations waits for
	// Microsoft Graph before answering 202; it defaults to
	// DefaultInviteTimeout. Invitations are on when Service.Directory is
	// set.
	InviteTimeout time.Duration
	// StreamWriteTimeout defaults to DefaultStreamWriteTimeout.
	StreamWriteTimeout time.Duration
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

func (c Config) withDefaults() Config {
	c.Store, c.Clock = defaults.StoreAndClock(c.Service, c.Store, c.Clock)
	if c.InviteTimeout <= 0 {
		c.InviteTimeout = DefaultInviteTimeout
	}
	if c.StreamWriteTimeout <= 0 {
		c.StreamWriteTimeout = DefaultStreamWriteTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	return c
}

// Validate reports the first missing or malformed setting, naming it the
// way an operator configures it.
func (c Config) Validate() error {
	c = c.withDefaults()
	keysOK, badKey := true, ""
	for _, name := range slices.Sorted(maps.Keys(c.APIKeys)) {
		if name == "" || c.APIKeys[name] == "" || strings.ContainsAny(name+c.APIKeys[name], " \t\r\n") {
			keysOK, badKey = false, name
			break
		}
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Service == nil, "api: Config.Service is required"},
		{c.Store == nil, "api: Config.Store (or Service.Store) is required"},
		{!keysOK, fmt.Sprintf("api: APPROVALS_API_KEYS: key %q needs a name and a secret without spaces", badKey)},
		{c.Token.Issuer != "" && !absoluteURL(c.Token.Issuer, "http", "https"), "api: the token issuer (APPROVALS_OIDC_ISSUER) must be an absolute http(s) URL"},
		{c.Token.Issuer != "" && c.Token.Audience == "", "api: the token audience (APPROVALS_OIDC_CLIENT_ID) is required to accept Entra ID access tokens"},
		{c.Token.Issuer != "" && c.Token.AdminRole == "", "api: the admin role (APPROVALS_ADMIN_ROLE) is required to accept Entra ID access tokens"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

func absoluteURL(s string, schemes ...string) bool {
	u, err := url.Parse(s)
	return err == nil && slices.Contains(schemes, u.Scheme) && u.Host != "" && u.User == nil
}

// server holds the handlers' dependencies.
type server struct {
	svc                *approvals.Service
	store              approvals.Store
	clock              approvals.Clock
	keys               []apiKey
	tokens             *tokenVerifier
	backup             func(io.Writer) (int64, error)
	noBackup           string
	inviteTimeout      time.Duration
	streamWriteTimeout time.Duration
	log                *slog.Logger
}

// New returns the API as an http.Handler serving the routes under Prefix.
func New(cfg Config) (http.Handler, error) {
	e, err := newEcho(cfg)
	if err != nil {
		return nil, err
	}
	return e, nil
}

// newEcho builds the router; tests use it to list the registered routes.
func newEcho(cfg Config) (*echo.Echo, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	s := &server{
		svc:                cfg.Service,
		store:              cfg.Store,
		clock:              cfg.Clock,
		backup:             cfg.Backup,
		noBackup:           cfg.NoBackup,
		inviteTimeout:      cfg.InviteTimeout,
		streamWriteTimeout: cfg.StreamWriteTimeout,
		log:                cfg.Logger,
	}
	for _, name := range slices.Sorted(maps.Keys(cfg.APIKeys)) {
		s.keys = append(s.keys, apiKey{name: name, hash: sha256.Sum256([]byte(cfg.APIKeys[name]))})
	}
	if cfg.Token.Issuer != "" {
		s.tokens = newTokenVerifier(cfg.Token, cfg.Clock)
	}

	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.Logger.SetOutput(io.Discard)
	e.HTTPErrorHandler = s.handleError
	e.Use(s.recoverPanics, secureHeaders, s.authenticate, refuseUnreadableQuery)

	g := e.Group(Prefix)
	g.GET("/requests", s.listRequests)
	g.GET("/requests/:id", s.getRequest)
	g.POST("/requests/:id/approve", s.approve)
	g.POST("/requests/:id/deny", s.deny)
	g.POST("/requests/:id/reopen", s.reopen)
	g.POST("/requests/:id/retry-provisioning", s.retryProvisioning)
	g.GET("/requests/:id/deliveries", s.listDeliveries)
	g.POST("/deliveries/:id/resend", s.resendDelivery)
	g.GET("/audit", s.audit)
	g.GET("/decisions/export", s.export)
	g.GET("/backup", s.downloadBackup)
	g.POST("/invitations", s.invite)
	g.GET(openAPIPath, serveOpenAPI)
	return e, nil
}

// refuseUnreadableQuery answers 400 to a query string Go cannot read in
// full ("status=denied;since=2999-01-01", "q=%zz"): c.QueryParams would
// drop the parameter without a word, so a filter would silently not apply.
// It runs after authentication, so strangers still learn nothing but 401.
func refuseUnreadableQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := querystring.Check(c.Request().URL.RawQuery); err != nil {
			return invalid("%s", err.Error())
		}
		return next(c)
	}
}

// secureHeaders marks every answer as private and not to be sniffed: they
// carry personal data.
func secureHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Cache-Control", "no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		return next(c)
	}
}
