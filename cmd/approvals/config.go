package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/approvals-dev/approvals/internal/clientip"
)

// Config is everything `approvals serve` reads from flags and APPROVALS_*
// environment variables. Flags win over the environment, which wins over
// the defaults.
type Config struct {
	Listen string
	DB     string
	// DatabaseURL is APPROVALS_DATABASE_URL (or its _FILE): the PostgreSQL
	// store several replicas share, instead of the bbolt file DB.
	DatabaseURL string
	PublicURL   string
	TLSCertFile string
	TLSKeyFile  string
	MetricsAddr string
	// TrustedProxies are the networks whose forwarding headers are
	// believed (APPROVALS_TRUSTED_PROXIES), as given.
	TrustedProxies string

	ConnectorUsername    string
	ConnectorPassword    string
	ConnectorThumbprints []string

	TenantDomain                 string
	GraphURL                     string
	AzureDisableInstanceDiscover bool
	AzureTenantID                string
	// AzureClientSecret is AZURE_CLIENT_SECRET (or the file
	// AZURE_CLIENT_SECRET_FILE names); it replaces the one azidentity
	// would read from the environment.
	AzureClientSecret     string
	InviteRedirectURL     string
	SendInvitationMessage bool
	GroupIDs              []string
	ProvisioningWorkers   int

	AutoApproveDomains []string
	AutoDenyDomains    []string

	APIKeys map[string]string // name -> secret

	OIDCIssuer       string
	OIDCClientID     string
	OIDCClientSecret string
	ReviewerRole     string
	AdminRole        string

	LogLevel string

	// ExternalID is cmd/approvals/externalid.go's.
	ExternalID ExternalIDConfig
	Notify     NotifyConfig // notify.go
	// Mail is the email configuration (mail.go).
	Mail MailConfig
	// explicit holds the environment names of the settings given by the
	// environment or a flag rather than by their default.
	explicit map[string]bool
}

// setting is one configuration value: its flag, its environment variable,
// its default and where it goes. A secret is never shown in the help, and
// may instead be read from the file its variable with _FILE appended names
// (APPROVALS_API_KEYS_FILE=/run/secrets/api-keys), for Docker and
// Kubernetes secrets.
type setting struct {
	flag, env, def, usage string
	secret                bool
	set                   func(c *Config, v string) error
}

func str(p func(c *Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = strings.TrimSpace(v); return nil }
}

func list(p func(c *Config) *[]string) func(*Config, string) error {
	return func(c *Config, v string) error { *p(c) = splitList(v); return nil }
}

func boolean(name string, p func(c *Config) *bool) func(*Config, string) error {
	return func(c *Config, v string) error {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not true or false", name, v)
		}
		*p(c) = b
		return nil
	}
}

// settings lists every configuration value; the README's table is made
// from the same names.
var settings = slices.Concat([]setting{
	{flag: "listen", env: "APPROVALS_LISTEN", def: ":8080", usage: "listen address", set: str(func(c *Config) *string { return &c.Listen })},
	{flag: "db", env: "APPROVALS_DB", def: "approvals.db", usage: "bbolt data file", set: str(func(c *Config) *string { return &c.DB })},
	{flag: "database-url", env: "APPROVALS_DATABASE_URL", usage: "PostgreSQL URL for several replicas, instead of APPROVALS_DB (postgres://user:password@host/db?pool_max_conns=20&statement_timeout=5s)", secret: true, set: func(c *Config, v string) error { c.DatabaseURL = strings.TrimSpace(v); return nil }},
	{flag: "public-url", env: "APPROVALS_PUBLIC_URL", def: "http://localhost:8080", usage: "external base URL (redirect URIs, links)", set: str(func(c *Config) *string { return &c.PublicURL })},
	{flag: "tls-cert-file", env: "APPROVALS_TLS_CERT_FILE", usage: "serve HTTPS with this certificate (PEM)", set: str(func(c *Config) *string { return &c.TLSCertFile })},
	{flag: "tls-key-file", env: "APPROVALS_TLS_KEY_FILE", usage: "private key of the TLS certificate (PEM)", set: str(func(c *Config) *string { return &c.TLSKeyFile })},
	{flag: "metrics-listen", env: "APPROVALS_METRICS_LISTEN", def: defaultMetricsListen, usage: "serve /metrics on this address (port 0: any free port; the APPROVALS_LISTEN address: on the main listener)", set: str(func(c *Config) *string { return &c.MetricsAddr })},
	{flag: "trusted-proxies", env: "APPROVALS_TRUSTED_PROXIES", usage: "comma-separated CIDRs of reverse proxies whose X-Forwarded-For / Forwarded headers name the client (default none: the peer address is the client)", set: str(func(c *Config) *string { return &c.TrustedProxies })},
	{flag: "connector-username", env: "APPROVALS_CONNECTOR_USERNAME", usage: "Basic user name the API connector sends", set: str(func(c *Config) *string { return &c.ConnectorUsername })},
	{flag: "connector-password", env: "APPROVALS_CONNECTOR_PASSWORD", usage: "Basic password the API connector sends", secret: true, set: func(c *Config, v string) error { c.ConnectorPassword = v; return nil }},
	{flag: "connector-cert-thumbprints", env: "APPROVALS_CONNECTOR_CERT_THUMBPRINTS", usage: "comma-separated SHA-1 or SHA-256 thumbprints of accepted connector client certificates", set: func(c *Config, v string) error {
		c.ConnectorThumbprints = nil
		for _, t := range splitList(v) {
			c.ConnectorThumbprints = append(c.ConnectorThumbprints, normalizeThumbprint(t))
		}
		return nil
	}},
	{flag: "tenant-domain", env: "APPROVALS_TENANT_DOMAIN", usage: "tenant domain used to build guest UPNs, e.g. contoso.onmicrosoft.com", set: str(func(c *Config) *string { return &c.TenantDomain })},
	{flag: "graph-url", env: "APPROVALS_GRAPH_URL", def: "https://graph.microsoft.com/v1.0", usage: "Microsoft Graph base URL", set: str(func(c *Config) *string { return &c.GraphURL })},
	{flag: "azure-disable-instance-discovery", env: "APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY", def: "false", usage: "true for private clouds and local authorities", set: boolean("APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY", func(c *Config) *bool { return &c.AzureDisableInstanceDiscover })},
	{flag: "azure-tenant-id", env: "AZURE_TENANT_ID", usage: "directory (tenant) id", set: str(func(c *Config) *string { return &c.AzureTenantID })},
	{flag: "azure-client-secret", env: "AZURE_CLIENT_SECRET", usage: "client secret of the app registration, for Microsoft Graph", secret: true, set: func(c *Config, v string) error { c.AzureClientSecret = v; return nil }},
	{flag: "invite-redirect-url", env: "APPROVALS_INVITE_REDIRECT_URL", def: "https://myapps.microsoft.com", usage: "where invited guests land after redeeming", set: str(func(c *Config) *string { return &c.InviteRedirectURL })},
	{flag: "send-invitation-message", env: "APPROVALS_SEND_INVITATION_MESSAGE", def: "true", usage: "let Microsoft send its invitation email", set: boolean("APPROVALS_SEND_INVITATION_MESSAGE", func(c *Config) *bool { return &c.SendInvitationMessage })},
	{flag: "group-ids", env: "APPROVALS_GROUP_IDS", usage: "comma-separated group object ids every approved user is added to", set: list(func(c *Config) *[]string { return &c.GroupIDs })},
	{flag: "provisioning-workers", env: "APPROVALS_PROVISIONING_WORKERS", def: "4", usage: "concurrent provisioning jobs", set: func(c *Config, v string) error {
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("APPROVALS_PROVISIONING_WORKERS: %q is not a number", v)
		}
		c.ProvisioningWorkers = n
		return nil
	}},
	{flag: "auto-approve-domains", env: "APPROVALS_AUTO_APPROVE_DOMAINS", usage: "comma-separated email domains approved without a reviewer", set: list(func(c *Config) *[]string { return &c.AutoApproveDomains })},
	{flag: "auto-deny-domains", env: "APPROVALS_AUTO_DENY_DOMAINS", usage: "comma-separated email domains denied without a reviewer", set: list(func(c *Config) *[]string { return &c.AutoDenyDomains })},
	{flag: "api-keys", env: "APPROVALS_API_KEYS", usage: "comma-separated name=secret pairs for the admin REST API", secret: true, set: func(c *Config, v string) error {
		c.APIKeys = map[string]string{}
		for _, pair := range splitList(v) {
			name, secret, ok := strings.Cut(pair, "=")
			name = strings.TrimSpace(name)
			if !ok || name == "" || secret == "" {
				return fmt.Errorf("APPROVALS_API_KEYS: each entry must be name=secret (an entry has no '=' or an empty part)")
			}
			if _, dup := c.APIKeys[name]; dup {
				return fmt.Errorf("APPROVALS_API_KEYS: the name %q is used twice", name)
			}
			c.APIKeys[name] = secret
		}
		return nil
	}},
	{flag: "oidc-issuer", env: "APPROVALS_OIDC_ISSUER", usage: "OpenID Connect issuer for reviewer sign-in (default: Entra ID of AZURE_TENANT_ID)", set: str(func(c *Config) *string { return &c.OIDCIssuer })},
	{flag: "oidc-client-id", env: "APPROVALS_OIDC_CLIENT_ID", usage: "OIDC client (application) id", set: str(func(c *Config) *string { return &c.OIDCClientID })},
	{flag: "oidc-client-secret", env: "APPROVALS_OIDC_CLIENT_SECRET", usage: "OIDC client secret", secret: true, set: func(c *Config, v string) error { c.OIDCClientSecret = v; return nil }},
	{flag: "reviewer-role", env: "APPROVALS_REVIEWER_ROLE", def: "Approvals.Reviewer", usage: "app role that allows reviewing", set: str(func(c *Config) *string { return &c.ReviewerRole })},
	{flag: "admin-role", env: "APPROVALS_ADMIN_ROLE", def: "Approvals.Admin", usage: "app role that allows administering", set: str(func(c *Config) *string { return &c.AdminRole })},
	{flag: "log-level", env: "APPROVALS_LOG_LEVEL", def: "info", usage: "debug, info, warn or error", set: str(func(c *Config) *string { return &c.LogLevel })},
}, externalIDSettings, notifySettings, mailSettings)

// defaultMetricsListen is where /metrics is served unless
// APPROVALS_METRICS_LISTEN says otherwise: loopback only, off the
// listener the internet reaches.
const defaultMetricsListen = "127.0.0.1:9464"

// registerFlags adds every setting to fs. Defaults come from getenv (for a
// secret, from the file its _FILE variable names), then the built-in
// default; a flag given on the command line overrides both. The returned
// function applies the values and reports every bad one, a secret file
// that cannot be read included.
func registerFlags(fs *flag.FlagSet, getenv func(string) string) func(c *Config) error {
	values := make([]*string, len(settings))
	explicit := make([]bool, len(settings))
	var envErrs []error
	for i, s := range settings {
		def := s.def
		v, ok, err := lookupSetting(getenv, s)
		if err != nil {
			envErrs = append(envErrs, err)
		} else if ok {
			def = v
			explicit[i] = true
		}
		shown := def
		if s.secret && def != "" {
			shown = "(set)"
		}
		env := s.env
		if s.secret {
			env += " or " + s.env + "_FILE"
		}
		values[i] = new(string)
		*values[i] = def
		fs.Func(s.flag, fmt.Sprintf("%s (env %s, default %q)", s.usage, env, displayDefault(s, shown)), func(v string) error {
			*values[i] = v
			explicit[i] = true
			return nil
		})
	}
	return func(c *Config) error {
		errs := envErrs
		c.explicit = map[string]bool{}
		for i, s := range settings {
			if explicit[i] {
				c.explicit[s.env] = true
			}
			if err := s.set(c, *values[i]); err != nil {
				errs = append(errs, err)
			}
		}
		return errors.Join(errs...)
	}
}

// lookupSetting returns the value the environment gives s: its variable,
// or for a secret the content of the file its _FILE variable names, with
// the trailing newline an editor or `echo` leaves removed.
func lookupSetting(getenv func(string) string, s setting) (string, bool, error) {
	v, ok := lookup(getenv, s.env)
	if !s.secret {
		return v, ok, nil
	}
	fileVar := s.env + "_FILE"
	path, fromFile := lookup(getenv, fileVar)
	switch {
	case !fromFile:
		return v, ok, nil
	case ok:
		return "", false, fmt.Errorf("both %s and %s are set: keep one (the file is for Docker and Kubernetes secrets)", s.env, fileVar)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		var pe *fs.PathError
		if errors.As(err, &pe) {
			err = pe.Err
		}
		return "", false, fmt.Errorf("%s: cannot read %s: %v; check the path and that the server's user may read it", fileVar, path, err)
	}
	v = strings.TrimRight(string(b), "\r\n")
	if v == "" {
		return "", false, fmt.Errorf("%s: the file %s is empty; put the value of %s in it", fileVar, path, s.env)
	}
	return v, true, nil
}

func displayDefault(s setting, shown string) string {
	if s.secret {
		return ""
	}
	return shown
}

func lookup(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func splitList(v string) []string {
	var out []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func normalizeThumbprint(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	return strings.NewReplacer(":", "", " ", "").Replace(t)
}

var (
	guidRE   = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	domainRE = regexp.MustCompile(`^([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$`)
)

// check is one rule of Validate: when bad is true, msg says what is wrong
// and which setting fixes it.
type check struct {
	bad bool
	msg string
}

// Validate checks the configuration of `approvals serve` and returns one
// message per problem, naming the setting to fix.
func (c *Config) Validate() error {
	hasBasic := c.ConnectorUsername != "" || c.ConnectorPassword != ""
	hasTLS := c.TLSCertFile != "" || c.TLSKeyFile != ""
	checks := []check{
		{!validListen(c.Listen), fmt.Sprintf("APPROVALS_LISTEN %q is not a host:port address such as :8080", c.Listen)},
		{!validListen(c.MetricsAddr), fmt.Sprintf("APPROVALS_METRICS_LISTEN %q is not a host:port address such as 127.0.0.1:9464", c.MetricsAddr)},
		{c.DB == "", "APPROVALS_DB is empty; name the bbolt data file"},
		{!validURL(c.PublicURL, true), fmt.Sprintf("APPROVALS_PUBLIC_URL %q must be an absolute http(s) URL", c.PublicURL)},
		{trustedProxiesErr(c.TrustedProxies) != "", trustedProxiesErr(c.TrustedProxies)},
		{(c.TLSCertFile == "") != (c.TLSKeyFile == ""), "APPROVALS_TLS_CERT_FILE and APPROVALS_TLS_KEY_FILE must be set together"},
		{!hasBasic && len(c.ConnectorThumbprints) == 0, "the connector endpoints would be unauthenticated: set APPROVALS_CONNECTOR_USERNAME and APPROVALS_CONNECTOR_PASSWORD, or APPROVALS_CONNECTOR_CERT_THUMBPRINTS"},
		{hasBasic && (c.ConnectorUsername == "" || c.ConnectorPassword == ""), "APPROVALS_CONNECTOR_USERNAME and APPROVALS_CONNECTOR_PASSWORD must be set together"},
		{hasBasic && c.ConnectorPassword != "" && len(c.ConnectorPassword) < 16, "APPROVALS_CONNECTOR_PASSWORD must be at least 16 characters"},
		{len(c.ConnectorThumbprints) > 0 && !hasTLS, "APPROVALS_CONNECTOR_CERT_THUMBPRINTS needs APPROVALS_TLS_CERT_FILE and APPROVALS_TLS_KEY_FILE: client certificates are only seen when this server terminates TLS"},
		{badThumbprint(c.ConnectorThumbprints) != "", fmt.Sprintf("APPROVALS_CONNECTOR_CERT_THUMBPRINTS: %q is not a SHA-1 (40 hex digits) or SHA-256 (64 hex digits) thumbprint", badThumbprint(c.ConnectorThumbprints))},
		{c.TenantDomain == "", "APPROVALS_TENANT_DOMAIN is required: approved guests are created as <email>#EXT#@<tenant domain>, e.g. contoso.onmicrosoft.com"},
		{c.TenantDomain != "" && !domainRE.MatchString(strings.ToLower(c.TenantDomain)), fmt.Sprintf("APPROVALS_TENANT_DOMAIN %q is not a domain name", c.TenantDomain)},
		{!validGraphURL(c.GraphURL), fmt.Sprintf("APPROVALS_GRAPH_URL %q must be an https URL (http only on loopback)", c.GraphURL)},
		{!validURL(c.InviteRedirectURL, false), fmt.Sprintf("APPROVALS_INVITE_REDIRECT_URL %q must be an absolute https URL", c.InviteRedirectURL)},
		{badGUID(c.GroupIDs) != "", fmt.Sprintf("APPROVALS_GROUP_IDS: %q is not a group object id (a GUID)", badGUID(c.GroupIDs))},
		{c.ProvisioningWorkers < 1 || c.ProvisioningWorkers > 64, "APPROVALS_PROVISIONING_WORKERS must be between 1 and 64"},
		{badDomain(c.AutoApproveDomains) != "", fmt.Sprintf("APPROVALS_AUTO_APPROVE_DOMAINS: %q is not a lower-case domain name", badDomain(c.AutoApproveDomains))},
		{badDomain(c.AutoDenyDomains) != "", fmt.Sprintf("APPROVALS_AUTO_DENY_DOMAINS: %q is not a lower-case domain name", badDomain(c.AutoDenyDomains))},
		{overlap(c.AutoApproveDomains, c.AutoDenyDomains) != "", fmt.Sprintf("%q is in both APPROVALS_AUTO_APPROVE_DOMAINS and APPROVALS_AUTO_DENY_DOMAINS", overlap(c.AutoApproveDomains, c.AutoDenyDomains))},
		{shortKey(c.APIKeys) != "", fmt.Sprintf("APPROVALS_API_KEYS: the secret of %q must be at least 24 characters", shortKey(c.APIKeys))},
		{c.OIDCClientID == "", "the reviewer UI would have no sign-in: set APPROVALS_OIDC_CLIENT_ID (and APPROVALS_OIDC_CLIENT_SECRET) of the app registration"},
		{c.OIDCClientID != "" && c.OIDCClientSecret == "", "APPROVALS_OIDC_CLIENT_SECRET is required with APPROVALS_OIDC_CLIENT_ID"},
		{c.OIDCIssuer == "" && c.AzureTenantID == "", "set APPROVALS_OIDC_ISSUER, or AZURE_TENANT_ID for the Entra ID default issuer"},
		{c.OIDCIssuer != "" && !validURL(c.OIDCIssuer, true), fmt.Sprintf("APPROVALS_OIDC_ISSUER %q must be an absolute URL", c.OIDCIssuer)},
		{c.ReviewerRole == "" || c.AdminRole == "", "APPROVALS_REVIEWER_ROLE and APPROVALS_ADMIN_ROLE must not be empty"},
		{!validLevel(c.LogLevel), fmt.Sprintf("APPROVALS_LOG_LEVEL %q must be debug, info, warn or error", c.LogLevel)},
	}
	checks = append(checks, c.ExternalID.checks()...)
	checks = append(checks, c.databaseChecks()...)
	checks = append(checks, c.notifyChecks()...)
	checks = append(checks, c.mailChecks()...)
	var msgs []string
	for _, ch := range checks {
		if ch.bad {
			msgs = append(msgs, ch.msg)
		}
	}
	if len(msgs) > 0 {
		return errors.New(strings.Join(msgs, "\n"))
	}
	return nil
}

// metricsOnMainListener reports whether /metrics is served on the main
// listener: only when APPROVALS_METRICS_LISTEN names exactly the address of
// APPROVALS_LISTEN (port 0 on both means two ephemeral ports).
func (c *Config) metricsOnMainListener() bool {
	_, port, _ := net.SplitHostPort(c.Listen)
	return c.MetricsAddr == c.Listen && port != "0"
}

// Issuer returns the OIDC issuer, defaulting to the Entra ID v2.0 issuer of
// the tenant.
func (c *Config) Issuer() string {
	if c.OIDCIssuer != "" {
		return c.OIDCIssuer
	}
	return "https://login.microsoftonline.com/" + c.AzureTenantID + "/v2.0"
}

func validListen(a string) bool {
	_, port, err := net.SplitHostPort(a)
	if err != nil {
		return false
	}
	n, err := strconv.Atoi(port)
	return err == nil && n >= 0 && n < 65536
}

func validURL(s string, allowHTTP bool) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	return u.Scheme == "https" || (allowHTTP && u.Scheme == "http")
}

func validGraphURL(s string) bool {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return false
	}
	if u.Scheme == "https" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return u.Scheme == "http" && (u.Hostname() == "localhost" || (ip != nil && ip.IsLoopback()))
}

// trustedProxiesErr is what is wrong with APPROVALS_TRUSTED_PROXIES, or "".
func trustedProxiesErr(list string) string {
	if _, err := clientip.ParseTrusted(list); err != nil {
		return err.Error()
	}
	return ""
}

func badThumbprint(ts []string) string {
	for _, t := range ts {
		if _, err := hex.DecodeString(t); err != nil || (len(t) != 40 && len(t) != 64) {
			return t
		}
	}
	return ""
}

func badGUID(ids []string) string {
	for _, id := range ids {
		if !guidRE.MatchString(id) {
			return id
		}
	}
	return ""
}

func badDomain(ds []string) string {
	for _, d := range ds {
		if !domainRE.MatchString(d) {
			return d
		}
	}
	return ""
}

func overlap(a, b []string) string {
	for _, x := range a {
		for _, y := range b {
			if x == y {
				return x
			}
		}
	}
	return ""
}

func shortKey(keys map[string]string) string {
	for name, secret := range keys {
		if len(secret) < 24 {
			return name
		}
	}
	return ""
}

func validLevel(l string) bool {
	switch strings.ToLower(l) {
	case "debug", "info", "warn", "error":
		return true
	}
	return false
}
