package web

import (
	"cmp"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/labstack/echo/v4"
	"golang.org/x/oauth2"
)

// Sign-in is the OpenID Connect authorization-code flow with PKCE (S256),
// state and nonce. The state, nonce, PKCE verifier and the page to return
// to travel in a login cookie, sealed (seal.go) and bound to its own name,
// so that a callback is accepted only in the browser that started the
// sign-in, and no other client can push a sign-in in progress out of a
// server-side table: there is none. Each sign-in has its own cookie, so
// that two tabs signing in at once both succeed; a browser keeps at most
// maxLogins of them.

const ctxSession = "web.session"

// sessionOf returns the signed-in session of the request, if any.
func sessionOf(c echo.Context) (session, bool) {
	s, ok := c.Get(ctxSession).(session)
	return s, ok
}

// loadSession attaches the live session named by the session cookie.
func (u *UI) loadSession(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		s, ok, err := u.sessions.get(r.Context(), readCookie(r, u.cookies.session()))
		if err != nil {
			return err
		}
		if ok {
			c.Set(ctxSession, s)
		}
		return next(c)
	}
}

// maxFormBytes bounds the body of any form post.
const maxFormBytes = 1 << 20

// checkCSRF rejects a state-changing request unless it comes from a page of
// this site: the browser's Sec-Fetch-Site and Origin must not say
// otherwise, and the session's synchronizer token must come back in the
// csrf_token field or the X-CSRF-Token header.
func (u *UI) checkCSRF(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		r.Body = http.MaxBytesReader(c.Response(), r.Body, maxFormBytes)
		forged := errPage(http.StatusForbidden, "This form has expired",
			"The form was out of date or did not come from this site, so nothing was changed. Reload the page and try again.")
		if !u.sameOrigin(r) {
			return forged
		}
		s, ok := sessionOf(c)
		if !ok && c.Path() == "/auth/logout" {
			return next(c) // signing out of nothing forges nothing
		}
		if !ok {
			return errPage(http.StatusForbidden, "Your session has ended",
				"You were signed out, so nothing was changed. Sign in again, then repeat the action.")
		}
		token := r.Header.Get("X-CSRF-Token")
		if token == "" {
			if err := r.ParseForm(); err != nil {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
			}
			token = r.PostForm.Get("csrf_token")
		}
		if subtle.ConstantTimeCompare([]byte(token), []byte(s.csrf)) != 1 {
			return forged
		}
		return next(c)
	}
}

// sameOrigin reports whether the browser's fetch metadata allow the request
// to have come from this site. Old browsers send neither header: the token
// alone protects them.
func (u *UI) sameOrigin(r *http.Request) bool {
	switch r.Header.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return false
	}
	o := r.Header.Get("Origin")
	if o == "" {
		return true
	}
	if o == u.origin {
		return true
	}
	// Reached under another name than PublicURL (the demo on 127.0.0.1):
	// an attacker's page cannot send this server's own host as Origin.
	ou, err := url.Parse(o)
	return err == nil && ou.Host != "" && ou.Host == r.Host
}

type role int

const (
	roleReviewer role = iota
	roleAdmin
)

// require lets a request through when the session's user holds the role;
// otherwise it sends the browser to sign in, or shows the 403 page.
func (u *UI) require(need role) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			s, ok := sessionOf(c)
			if !ok {
				r := c.Request()
				if r.Method == http.MethodGet || r.Method == http.MethodHead {
					return c.Redirect(http.StatusSeeOther, "/auth/login?next="+url.QueryEscape(r.URL.RequestURI()))
				}
				return errPage(http.StatusUnauthorized, "Sign in to continue", "You are not signed in, so nothing was changed.")
			}
			switch {
			case need == roleAdmin && !s.user.Admin:
				return &pageError{Status: http.StatusForbidden, Title: "This page is for administrators", Role: u.cfg.AdminRole,
					Message: "Your account does not have the administrator role this page needs."}
			case need == roleReviewer && !s.user.CanReview():
				return &pageError{Status: http.StatusForbidden, Title: "You don't have access to Approvals", Role: u.cfg.ReviewerRole,
					Message: "Your account signed in, but it does not have the reviewer role."}
			}
			return next(c)
		}
	}
}

// safeNext returns target when it is a path on this site, and "/" otherwise,
// so that sign-in cannot be used to redirect to another site.
func safeNext(target string) string {
	if !strings.HasPrefix(target, "/") || strings.HasPrefix(target, "//") || strings.HasPrefix(target, `/\`) ||
		strings.HasPrefix(target, "/auth/") {
		return "/"
	}
	t, err := url.Parse(target)
	if err != nil || t.Scheme != "" || t.Host != "" {
		return "/"
	}
	return target
}

// pendingLogin is what the callback needs to finish a sign-in started in
// this browser. It travels sealed in a login cookie.
type pendingLogin struct {
	State    string `json:"s"`
	Nonce    string `json:"n"`
	Verifier string `json:"v"`
	Next     string `json:"r"`
	Expires  int64  `json:"e"` // Unix seconds
}

// The bounds of the sign-ins in progress.
const (
	// loginTTL bounds the time a reviewer may spend at the identity
	// provider.
	loginTTL = 10 * time.Minute
	// maxLogins is how many sign-ins one browser may have in progress: a
	// new one clears the oldest beyond it, so that the login cookies stay
	// a few kilobytes.
	maxLogins = 3
	// maxLoginCookies bounds the login cookies a request's handler opens.
	maxLoginCookies = 8
	// maxNextLen bounds the page a sign-in returns to; a longer one
	// returns to the queue.
	maxNextLen = 1024
)

func loginAAD(name string) string { return "login\x00" + name }

// loginCookie is one login cookie of a request; ok when it opened and has
// not expired.
type loginCookie struct {
	name string
	pl   pendingLogin
	ok   bool
}

// loginCookies opens the request's login cookies. Only a store that could
// not give the keys is an error.
func (u *UI) loginCookies(r *http.Request) ([]loginCookie, error) {
	now := u.clock.Now()
	var out []loginCookie
	for _, ck := range r.Cookies() {
		if !strings.HasPrefix(ck.Name, u.cookies.login()) || len(out) == maxLoginCookies {
			continue
		}
		lc := loginCookie{name: ck.Name}
		plain, err := u.sealer.open(r.Context(), loginAAD(ck.Name), ck.Value)
		if err != nil && !errors.Is(err, errUnsealed) {
			return nil, err
		}
		lc.ok = err == nil && json.Unmarshal(plain, &lc.pl) == nil && now.Before(time.Unix(lc.pl.Expires, 0))
		out = append(out, lc)
	}
	return out, nil
}

var errSignInUnavailable = errPage(http.StatusServiceUnavailable, "Sign-in is unavailable",
	"The server could not read its sign-in keys. Try again in a minute; if it keeps failing, tell your administrator (the server log says why).")

func (u *UI) login(c echo.Context) error {
	r := c.Request()
	next := safeNext(c.QueryParam("next"))
	if len(next) > maxNextLen {
		next = "/"
	}
	if s, ok := sessionOf(c); ok && s.user.CanReview() {
		return c.Redirect(http.StatusSeeOther, next)
	}
	p, err := u.discover(r.Context())
	if err != nil {
		u.log.Error("web: sign-in unavailable", "err", err)
		return errPage(http.StatusBadGateway, "Sign-in is unavailable",
			"The identity provider could not be reached. Try again in a minute; if it keeps failing, tell your administrator (the server log says why).")
	}
	others, err := u.loginCookies(r)
	if err != nil {
		u.log.Error("web: sign-in keys unavailable", "err", err)
		return errSignInUnavailable
	}
	// Make room: unreadable and expired cookies go, then the oldest.
	slices.SortStableFunc(others, func(a, b loginCookie) int {
		if a.ok != b.ok {
			if a.ok {
				return 1
			}
			return -1
		}
		return cmp.Compare(a.pl.Expires, b.pl.Expires)
	})
	for i, o := range others {
		if !o.ok || len(others)-i >= maxLogins {
			u.cookies.clear(c.Response(), o.name)
		}
	}

	pl := pendingLogin{State: randomToken(), Nonce: randomToken(), Verifier: oauth2.GenerateVerifier(), Next: next,
		Expires: u.clock.Now().Add(loginTTL).Unix()}
	name := u.cookies.login() + randomToken()[:16]
	plain, _ := json.Marshal(pl) // strings and a number always encode
	value, err := u.sealer.seal(r.Context(), loginAAD(name), plain)
	if err != nil {
		u.log.Error("web: sign-in keys unavailable", "err", err)
		return errSignInUnavailable
	}
	u.cookies.set(c.Response(), name, value, loginTTL)
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.Redirect(http.StatusFound, p.oauth.AuthCodeURL(pl.State, oidc.Nonce(pl.Nonce), oauth2.S256ChallengeOption(pl.Verifier)))
}

// finishLogin returns the sign-in in progress the callback's state names,
// clearing its cookie and any unreadable or expired one. found says
// whether the browser had any sign-in in progress at all.
func (u *UI) finishLogin(c echo.Context, state string) (pl pendingLogin, ok, found bool, err error) {
	cks, err := u.loginCookies(c.Request())
	if err != nil {
		return pendingLogin{}, false, false, err
	}
	for _, ck := range cks {
		switch {
		case !ck.ok:
			u.cookies.clear(c.Response(), ck.name)
		case subtle.ConstantTimeCompare([]byte(state), []byte(ck.pl.State)) == 1 && !ok:
			u.cookies.clear(c.Response(), ck.name)
			pl, ok, found = ck.pl, true, true
		default:
			found = true
		}
	}
	return pl, ok, found, nil
}

// idClaims are the ID-token claims the UI uses. Entra sends oid, name,
// preferred_username and roles (app roles assigned to the user or to a
// group they are in).
type idClaims struct {
	OID               string   `json:"oid"`
	Name              string   `json:"name"`
	PreferredUsername string   `json:"preferred_username"`
	Email             string   `json:"email"`
	Roles             []string `json:"roles"`
}

func (u *UI) callback(c echo.Context) error {
	r := c.Request()
	q := r.URL.Query()
	pl, ok, found, err := u.finishLogin(c, q.Get("state"))
	switch {
	case err != nil:
		u.log.Error("web: sign-in keys unavailable", "err", err)
		return errSignInUnavailable
	case !found:
		return errPage(http.StatusBadRequest, "Sign-in expired",
			"The sign-in took too long, was already used, or was started in another browser. Go to the queue to sign in again.")
	case !ok:
		u.log.Warn("web: sign-in rejected: state mismatch")
		return errPage(http.StatusBadRequest, "Sign-in could not be verified",
			"The answer from the identity provider did not match this sign-in, so it was refused. Go to the queue to sign in again.")
	}
	if e := q.Get("error"); e != "" {
		desc := q.Get("error_description")
		if len(desc) > 300 {
			desc = desc[:300] + "…"
		}
		u.log.Info("web: sign-in failed at the identity provider", "error", e, "description", desc)
		return errPage(http.StatusUnauthorized, "Sign-in did not complete", "The identity provider answered: "+e+". "+desc)
	}
	p, err := u.discover(r.Context())
	if err != nil {
		u.log.Error("web: sign-in unavailable", "err", err)
		return errPage(http.StatusBadGateway, "Sign-in is unavailable", "The identity provider could not be reached. Try again in a minute.")
	}
	ctx, cancel := u.providerContext(r.Context())
	defer cancel()
	tok, err := p.oauth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(pl.Verifier))
	if err != nil {
		u.log.Warn("web: sign-in rejected: code exchange failed", "err", err)
		return errPage(http.StatusBadGateway, "Sign-in could not be completed",
			"The identity provider did not accept the sign-in. Try again; if it keeps failing, tell your administrator (the server log says why).")
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := p.verifier.Verify(ctx, raw)
	if err == nil && subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(pl.Nonce)) != 1 {
		err = errNonce
	}
	var cl idClaims
	if err == nil {
		err = idt.Claims(&cl)
	}
	if err != nil {
		u.log.Warn("web: sign-in rejected: ID token", "err", err)
		return errPage(http.StatusUnauthorized, "Sign-in could not be verified",
			"The identity token was not valid for this application, so the sign-in was refused. Go to the queue to try again.")
	}
	user := account{OID: cl.OID, Name: cl.Name, Username: cl.PreferredUsername, Roles: cl.Roles,
		Reviewer: hasRole(cl.Roles, u.cfg.ReviewerRole), Admin: hasRole(cl.Roles, u.cfg.AdminRole)}
	if user.OID == "" {
		user.OID = idt.Subject // issuers other than Entra
	}
	if user.Username == "" {
		user.Username = cl.Email
	}
	if user.Name == "" {
		user.Name = user.Username
	}
	if old, ok := sessionOf(c); ok {
		u.sessions.delete(r.Context(), old.hash)
	}
	id, err := u.sessions.create(r.Context(), user)
	if err != nil {
		return fmt.Errorf("web: store the session: %w", err)
	}
	u.cookies.set(c.Response(), u.cookies.session(), id, u.cfg.SessionMaxAge)
	u.log.Info("web: signed in", "oid", user.OID, "name", user.Name, "reviewer", user.Reviewer, "admin", user.Admin)
	return c.Redirect(http.StatusSeeOther, safeNext(pl.Next))
}

type constError string

func (e constError) Error() string { return string(e) }

const errNonce = constError("nonce does not match the sign-in")

func (u *UI) logout(c echo.Context) error {
	if s, ok := sessionOf(c); ok {
		u.sessions.delete(c.Request().Context(), s.hash)
		u.log.Info("web: signed out", "oid", s.user.OID)
	}
	u.cookies.clear(c.Response(), u.cookies.session())
	return c.Redirect(http.StatusSeeOther, "/auth/signed-out")
}

func (u *UI) signedOut(c echo.Context) error {
	return u.render(c, http.StatusOK, "signed-out", u.newPage(c, "Signed out", ""))
}
