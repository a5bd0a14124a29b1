package web

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
)

// Defaults of the optional Config fields.
const (
	DefaultSessionIdleTimeout = 2 * time.Hour
	DefaultSessionMaxAge      = 12 * time.Hour
	DefaultMaxSessions        = 10000
	DefaultSearchScanLimit    = 5000
)

// OIDCConfig says where reviewers sign in.
type OIDCConfig struct {
	// Issuer is the OpenID Connect issuer URL, such as
	// https://login.microsoftonline.com/{tenant}/v2.0.
	// Any standard issuer that supports the authorization-code flow with
	// PKCE works.
	Issuer       string
	ClientID     string
	ClientSecret string
	// HTTPClient reaches the issuer; nil means http.DefaultClient. The demo
	// passes one that trusts its in-process provider.
	HTTPClient *http.Client
}

// Config configures the reviewer UI.
type Config struct {
	// Service carries out decisions; required.
	Service *approvals.Service
	// Store is read by the pages and keeps the reviewers' sessions and
	// cookie keys; it defaults to Service.Store.
	Store approvals.Store
	// Clock defaults to Service.Clock, then approvals.SystemClock.
	Clock approvals.Clock
	// PublicURL is the external base URL, e.g. https://approvals.contoso.com.
	// The sign-in redirect URI is PublicURL + "/auth/callback". When it is
	// https, cookies are Secure and __Host- prefixed and HSTS is sent.
	PublicURL string
	OIDC      OIDCConfig
	// ReviewerRole and AdminRole are the values of the roles claim that
	// allow reviewing and administering; both are required (their defaults
	// are cmd's: APPROVALS_REVIEWER_ROLE, APPROVALS_ADMIN_ROLE). The admin
	// role includes the reviewer's rights.
	ReviewerRole string
	AdminRole    string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// SessionIdleTimeout, SessionMaxAge and MaxSessions bound the
	// sessions, which the Store keeps; zero means the Default values. A
	// sign-in beyond MaxSessions ends the sessions that expire soonest.
	SessionIdleTimeout time.Duration
	SessionMaxAge      time.Duration
	MaxSessions        int
	// SearchScanLimit bounds how many requests one queue search reads;
	// zero means DefaultSearchScanLimit.
	SearchScanLimit int
	// DemoMail, set by the demo only, lists the emails its in-process
	// SMTP server received, oldest first: the UI then has a Mail page.
	DemoMail func() []DemoMail
}

// withDefaults returns c with the zero optional fields set.
func (c Config) withDefaults() Config {
	c.Store, c.Clock = defaults.StoreAndClock(c.Service, c.Store, c.Clock)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	c.SessionIdleTimeout = defaults.Positive(c.SessionIdleTimeout, DefaultSessionIdleTimeout)
	c.SessionMaxAge = defaults.Positive(c.SessionMaxAge, DefaultSessionMaxAge)
	c.MaxSessions = defaults.Positive(c.MaxSessions, DefaultMaxSessions)
	c.SearchScanLimit = defaults.Positive(c.SearchScanLimit, DefaultSearchScanLimit)
	c.PublicURL = strings.TrimSuffix(c.PublicURL, "/")
	return c
}

// Validate reports the first missing or malformed setting, naming it the
// way an operator configures it.
func (c Config) Validate() error {
	c = c.withDefaults()
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Service == nil, "web: Config.Service is required"},
		{c.Store == nil, "web: Config.Store (or Service.Store) is required"},
		{!absoluteHTTP(c.PublicURL, false), "web: APPROVALS_PUBLIC_URL must be an absolute http(s) URL without a path, such as https://approvals.contoso.com"},
		{c.OIDC.Issuer == "", "web: APPROVALS_OIDC_ISSUER is required for reviewer sign-in (Entra ID: set AZURE_TENANT_ID)"},
		{c.OIDC.Issuer != "" && !absoluteHTTP(c.OIDC.Issuer, true), "web: APPROVALS_OIDC_ISSUER must be an absolute http(s) URL"},
		{c.OIDC.ClientID == "", "web: APPROVALS_OIDC_CLIENT_ID is required for reviewer sign-in"},
		{c.ReviewerRole == "" || c.AdminRole == "", "web: APPROVALS_REVIEWER_ROLE and APPROVALS_ADMIN_ROLE are required"},
		{c.ReviewerRole == c.AdminRole, "web: APPROVALS_REVIEWER_ROLE and APPROVALS_ADMIN_ROLE must differ"},
		{c.SessionMaxAge < c.SessionIdleTimeout, "web: the session max age must not be shorter than the idle timeout"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

func absoluteHTTP(s string, pathAllowed bool) bool {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return false
	}
	return pathAllowed || u.Path == "" || u.Path == "/"
}

// secure reports whether the UI is served over HTTPS.
func (c Config) secure() bool { return strings.HasPrefix(c.PublicURL, "https://") }

func (c Config) redirectURL() string { return c.PublicURL + "/auth/callback" }

// String describes c without its secret, for logs.
func (c Config) String() string {
	return fmt.Sprintf("web.Config{PublicURL: %q, Issuer: %q, ClientID: %q}", c.PublicURL, c.OIDC.Issuer, c.OIDC.ClientID)
}
