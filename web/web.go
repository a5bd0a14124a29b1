// Package web is the reviewer web UI of the approval server: the queue of
// sign-up requests, the request page with approve and deny, bulk decisions,
// provisioning retries, the line-of-business invite flow, the decision
// export, the audit trail and a dashboard. Reviewers sign in with OpenID
// Connect (Microsoft Entra ID by default) and need an app role in the roles
// claim.
//
// Pages are server-rendered with html/template and work without
// JavaScript; a small embedded script only adds conveniences. Every
// state-changing request carries a CSRF token, and every response a strict
// Content-Security-Policy. All assets are embedded.
//
// UI handlers live in ui_*.go; the admin REST API will sit beside them in
// api_*.go. Echo is used inside this package only: the outside sees an
// http.Handler.
package web

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/querystring"
)

//go:embed templates static
var assets embed.FS

// UI is the reviewer web UI. It is an http.Handler meant to be mounted at
// "/" of the server. It is safe for concurrent use.
type UI struct {
	cfg      Config
	svc      *approvals.Service
	store    approvals.Store
	clock    approvals.Clock
	log      *slog.Logger
	echo     *echo.Echo
	pages    map[string]*template.Template
	static   http.Handler
	versions map[string]string // static file name -> content hash
	sessions *sessions
	sealer   *sealer // seals the login and flash cookies
	cookies  cookies
	origin   string // scheme://host of PublicURL

	// The identity provider is discovered on first use, so that the
	// server starts while the provider is unreachable and the demo can
	// serve its own provider on the same listener.
	oidcMu   sync.Mutex
	provider *oidcProvider
}

// oidcProvider is the discovered identity provider.
type oidcProvider struct {
	oauth    oauth2.Config
	verifier *oidc.IDTokenVerifier
}

// New returns the UI for cfg. It parses every template; it does not
// contact the identity provider.
func New(cfg Config) (*UI, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	pu, _ := url.Parse(cfg.PublicURL) // checked by Validate
	u := &UI{
		cfg:      cfg,
		svc:      cfg.Service,
		store:    cfg.Store,
		clock:    cfg.Clock,
		log:      cfg.Logger,
		sessions: newSessions(cfg.Store, cfg.Clock, cfg.Logger, cfg.SessionIdleTimeout, cfg.SessionMaxAge, cfg.MaxSessions),
		sealer:   newSealer(cfg.Store, cfg.Clock),
		cookies:  cookies{secure: cfg.secure()},
		origin:   pu.Scheme + "://" + pu.Host,
	}
	if err := u.loadAssets(); err != nil {
		return nil, err
	}
	if err := u.parseTemplates(); err != nil {
		return nil, err
	}
	u.echo = u.routes()
	return u, nil
}

// ServeHTTP implements http.Handler.
func (u *UI) ServeHTTP(w http.ResponseWriter, r *http.Request) { u.echo.ServeHTTP(w, r) }

func (u *UI) routes() *echo.Echo {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	e.HTTPErrorHandler = u.handleError
	e.Use(u.securityHeaders, u.recoverPanics, u.loadSession, u.checkCSRF, refuseUnreadableQuery)

	e.GET("/static/*", u.serveStatic)
	e.GET("/auth/login", u.login)
	e.GET("/auth/callback", u.callback)
	e.POST("/auth/logout", u.logout)
	e.GET("/auth/signed-out", u.signedOut)

	reviewer, admin := u.require(roleReviewer), u.require(roleAdmin)
	e.GET("/", u.queue, reviewer)
	e.POST("/requests/bulk", u.bulk, reviewer)
	e.GET("/requests/:id", u.request, reviewer)
	e.POST("/requests/:id/approve", u.approve, reviewer)
	e.POST("/requests/:id/deny", u.deny, reviewer)
	e.POST("/requests/:id/retry", u.retry, admin)
	e.POST("/requests/:id/reopen", u.reopen, admin)
	e.POST("/requests/:id/deliveries/:delivery/resend", u.resendDelivery, admin)
	e.GET("/dashboard", u.dashboard, reviewer)
	e.GET("/invite", u.inviteForm, admin)
	e.POST("/invite", u.invite, admin)
	e.GET("/export", u.exportForm, admin)
	e.GET("/export/download", u.exportDownload, admin)
	e.GET("/audit", u.audit, admin)
	return e
}

// loadAssets hashes the static files so that their URLs change with their
// content and can be cached for a long time.
func (u *UI) loadAssets() error {
	sub, err := fs.Sub(assets, "static")
	if err != nil {
		return err
	}
	u.versions = map[string]string{}
	err = fs.WalkDir(sub, ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(sub, path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		u.versions[path] = hex.EncodeToString(sum[:6])
		return nil
	})
	if err != nil {
		return fmt.Errorf("web: static assets: %w", err)
	}
	u.static = http.StripPrefix("/static/", http.FileServerFS(sub))
	return nil
}

// assetURL returns the versioned URL of a static file.
func (u *UI) assetURL(name string) string {
	return "/static/" + name + "?v=" + u.versions[name]
}

func (u *UI) serveStatic(c echo.Context) error {
	r := c.Request()
	name := strings.TrimPrefix(r.URL.Path, "/static/")
	v, ok := u.versions[name]
	if !ok {
		return echo.ErrNotFound // also hides directory listings
	}
	h := c.Response().Header()
	if r.URL.Query().Get("v") == v {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "no-cache")
	}
	u.static.ServeHTTP(c.Response(), r)
	return nil
}

// discover returns the identity provider, discovering it on first use.
func (u *UI) discover(ctx context.Context) (*oidcProvider, error) {
	u.oidcMu.Lock()
	defer u.oidcMu.Unlock()
	if u.provider != nil {
		return u.provider, nil
	}
	if hc := u.cfg.OIDC.HTTPClient; hc != nil {
		ctx = oidc.ClientContext(ctx, hc)
	}
	ctx, cancel := context.WithTimeout(ctx, providerTimeout)
	defer cancel()
	p, err := oidc.NewProvider(ctx, u.cfg.OIDC.Issuer)
	if err != nil {
		return nil, fmt.Errorf("discover OpenID provider %s: %w", u.cfg.OIDC.Issuer, err)
	}
	u.provider = &oidcProvider{
		oauth: oauth2.Config{
			ClientID:     u.cfg.OIDC.ClientID,
			ClientSecret: u.cfg.OIDC.ClientSecret,
			Endpoint:     p.Endpoint(),
			RedirectURL:  u.cfg.redirectURL(),
			Scopes:       []string{oidc.ScopeOpenID, "profile", "email"},
		},
		verifier: p.Verifier(&oidc.Config{ClientID: u.cfg.OIDC.ClientID, Now: u.clock.Now}),
	}
	return u.provider, nil
}

// providerTimeout bounds each call to the identity provider: discovery,
// the token exchange, fetching its keys.
const providerTimeout = 15 * time.Second

// providerContext carries the configured HTTP client to the token exchange
// and the key fetch, with a time limit.
func (u *UI) providerContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if hc := u.cfg.OIDC.HTTPClient; hc != nil {
		ctx = context.WithValue(ctx, oauth2.HTTPClient, hc)
	}
	return context.WithTimeout(ctx, providerTimeout)
}

// pageError is an error shown to the user as a page with a status.
type pageError struct {
	Status  int
	Title   string
	Message string
	// Role, on 403 pages, is the app role the page needs.
	Role string
}

func (e *pageError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Title, e.Message) }

func errPage(status int, title, msg string) error {
	return &pageError{Status: status, Title: title, Message: msg}
}

// handleError renders any error a handler returned as an HTML page. Errors
// that are not the user's are logged once, here, with a reference the page
// shows.
func (u *UI) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		u.log.Error("web: error after the response started", "path", c.Request().URL.Path, "err", err)
		return
	}
	pe := &pageError{}
	var he *echo.HTTPError
	switch {
	case errors.As(err, &pe):
	case errors.As(err, &he):
		pe = &pageError{Status: he.Code, Title: http.StatusText(he.Code)}
		switch he.Code {
		case http.StatusNotFound:
			pe.Title, pe.Message = "Page not found", "There is nothing at this address. Check the link, or go back to the queue."
		case http.StatusMethodNotAllowed:
			pe.Message = "This address does not accept that kind of request."
		case http.StatusRequestEntityTooLarge:
			pe.Message = "The form was too large."
		default:
			pe.Message = fmt.Sprint(he.Message)
		}
	default:
		code := approvals.Code(err)
		status := code.HTTPStatus()
		switch code {
		case approvals.ENotFound:
			pe = &pageError{Status: status, Title: "Not found", Message: approvals.Message(err)}
		case approvals.EInvalid:
			pe = &pageError{Status: status, Title: "Invalid request", Message: approvals.Message(err)}
		case approvals.EConflict:
			pe = &pageError{Status: status, Title: "Conflict", Message: approvals.Message(err)}
		case approvals.EForbidden:
			pe = &pageError{Status: status, Title: "Not allowed", Message: approvals.Message(err)}
		default:
			ref := randomToken()[:10]
			u.log.Error("web: request failed", "ref", ref, "method", c.Request().Method, "path", c.Request().URL.Path, "err", err)
			pe = &pageError{Status: status, Title: "Something went wrong",
				Message: "The server could not complete this request. Try again; if it keeps failing, give your administrator the reference " + ref + " (it is in the server log)."}
		}
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(pe.Status)
		return
	}
	p := u.newPage(c, pe.Title, "")
	p.Data = pe
	tmpl := "error"
	if pe.Status == http.StatusForbidden && pe.Role != "" {
		tmpl = "forbidden"
	}
	if rerr := u.render(c, pe.Status, tmpl, p); rerr != nil {
		u.log.Error("web: render error page", "err", rerr)
		_ = c.String(pe.Status, pe.Title+"\n\n"+pe.Message+"\n")
	}
}

func (u *UI) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				err = fmt.Errorf("panic: %v", v)
			}
		}()
		return next(c)
	}
}

// refuseUnreadableQuery answers a 400 page to a query string Go cannot
// read in full ("status=denied;since=2999-01-01", "q=%zz"): c.QueryParam
// would drop the parameter without a word, so a filter would silently not
// apply.
func refuseUnreadableQuery(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if err := querystring.Check(c.Request().URL.RawQuery); err != nil {
			return errPage(http.StatusBadRequest, "Invalid address",
				"This address cannot be read: "+err.Error()+". Check the link, or start again from the menu.")
		}
		return next(c)
	}
}

// securityHeaders sets the headers every response carries.
func (u *UI) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Permissions-Policy", "camera=(), microphone=(), geolocation=(), payment=()")
		if c.Request().TLS != nil || u.cfg.secure() {
			h.Set("Strict-Transport-Security", "max-age=63072000; includeSubDomains")
		}
		return next(c)
	}
}

// contentSecurityPolicy allows only this server's own scripts, styles and
// images; no inline script or style, no framing.
const contentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"font-src 'self'; connect-src 'self'; object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"
