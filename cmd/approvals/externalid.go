package main

import (
	"fmt"
	"log/slog"
	"net/http"
	"strings"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/externalid"
)

// ExternalIDConfig is the Entra External ID part of the configuration:
// the custom authentication extensions of an external tenant.
type ExternalIDConfig struct {
	// TenantID turns the two routes on (APPROVALS_EXTERNAL_ID_TENANT_ID).
	TenantID string
	// AppID is the extension's app registration: the token audience
	// (APPROVALS_EXTERNAL_ID_APP_ID).
	AppID string
	// Issuers are the accepted token issuers
	// (APPROVALS_EXTERNAL_ID_ISSUERS); externalid.DefaultIssuers when
	// empty. An http:// issuer is accepted on a loopback address only:
	// that is how tests and the demo point the server at an issuer of
	// their own, with every check still made.
	Issuers []string
}

// externalIDSettings are the External ID settings, appended to settings.
var externalIDSettings = []setting{
	{flag: "external-id-tenant-id", env: "APPROVALS_EXTERNAL_ID_TENANT_ID", usage: "the External ID external tenant's id; turns on /external-id/attribute-collection-start and -submit", set: str(func(c *Config) *string { return &c.ExternalID.TenantID })},
	{flag: "external-id-app-id", env: "APPROVALS_EXTERNAL_ID_APP_ID", usage: "application id of the custom authentication extension's app registration (the token audience)", set: str(func(c *Config) *string { return &c.ExternalID.AppID })},
	{flag: "external-id-issuers", env: "APPROVALS_EXTERNAL_ID_ISSUERS", usage: "comma-separated accepted token issuers (default https://{tenant}.ciamlogin.com/{tenant}/v2.0,https://login.microsoftonline.com/{tenant}/v2.0)", set: list(func(c *Config) *[]string { return &c.ExternalID.Issuers })},
}

// enabled reports whether the extensions are configured.
func (x ExternalIDConfig) enabled() bool {
	return x.TenantID != "" || x.AppID != "" || len(x.Issuers) > 0
}

// checks are the External ID lines of Config.Validate.
func (x ExternalIDConfig) checks() []check {
	if !x.enabled() {
		return nil
	}
	var out []check
	add := func(bad bool, msg string) { out = append(out, check{bad, msg}) }
	add(x.TenantID == "", "APPROVALS_EXTERNAL_ID_TENANT_ID is required with the other APPROVALS_EXTERNAL_ID_* settings")
	add(x.TenantID != "" && badGUID([]string{x.TenantID}) != "", fmt.Sprintf("APPROVALS_EXTERNAL_ID_TENANT_ID %q is not a tenant id (a GUID)", x.TenantID))
	add(x.AppID == "", "APPROVALS_EXTERNAL_ID_APP_ID is required with APPROVALS_EXTERNAL_ID_TENANT_ID: the application id of the custom authentication extension's app registration")
	add(x.AppID != "" && badGUID([]string{x.AppID}) != "", fmt.Sprintf("APPROVALS_EXTERNAL_ID_APP_ID %q is not an application id (a GUID)", x.AppID))
	for _, iss := range x.Issuers {
		err := externalid.TokenConfig{TenantID: "00000000-0000-0000-0000-000000000000", AppID: "00000000-0000-0000-0000-000000000000", Issuers: []string{iss}}.Validate()
		add(err != nil, fmt.Sprintf("APPROVALS_EXTERNAL_ID_ISSUERS: %q must be an https URL (http only on a loopback address)", iss))
	}
	return out
}

// newExternalID returns the handler of /external-id/: the extensions when
// configured (their keys being fetched in the background), otherwise a
// JSON 404 for every path, so that the reviewer UI never answers there.
func newExternalID(c *Config, svc *approvals.Service, log *slog.Logger, clock approvals.Clock) (http.Handler, error) {
	x := c.ExternalID
	if !x.enabled() {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.WriteHeader(http.StatusNotFound)
			_, _ = w.Write([]byte(`{"error":{"code":"not_found","message":"Entra External ID is not configured on this server (APPROVALS_EXTERNAL_ID_TENANT_ID)"}}`))
		}), nil
	}
	h, err := externalid.New(externalid.Config{
		Service: svc,
		Tokens:  externalid.TokenConfig{TenantID: strings.ToLower(x.TenantID), AppID: x.AppID, Issuers: x.Issuers, Clock: clock},
		Logger:  log,
	})
	if err != nil {
		return nil, err
	}
	h.Tokens().Warm()
	log.Info("External ID extensions on", "tenant_id", x.TenantID, "issuers", strings.Join(h.Tokens().Issuers(), ","))
	return h, nil
}
