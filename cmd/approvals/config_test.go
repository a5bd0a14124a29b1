package main

import (
	"flag"
	"io"
	"strings"
	"testing"
)

// validEnv is a complete, valid serve configuration.
func validEnv() map[string]string {
	return map[string]string{
		"APPROVALS_CONNECTOR_USERNAME": "entra",
		"APPROVALS_CONNECTOR_PASSWORD": "correct-horse-battery-staple",
		"APPROVALS_TENANT_DOMAIN":      "contoso.onmicrosoft.com",
		"APPROVALS_OIDC_CLIENT_ID":     "11111111-2222-3333-4444-555555555555",
		"APPROVALS_OIDC_CLIENT_SECRET": "s3cret",
		"AZURE_TENANT_ID":              "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee",
	}
}

func loadConfig(t *testing.T, env map[string]string, args ...string) (Config, error) {
	t.Helper()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	apply := registerFlags(fs, func(k string) string { return env[k] })
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	var c Config
	if err := apply(&c); err != nil {
		return c, err
	}
	return c, c.Validate()
}

// checkConfig loads validEnv with the settings in over (an empty value
// unsets one) and fails the test unless the configuration is valid (want
// empty) or its error mentions want. It returns that error.
func checkConfig(t *testing.T, over map[string]string, want string) error {
	t.Helper()
	env := validEnv()
	for k, v := range over {
		if v == "" {
			delete(env, k)
		} else {
			env[k] = v
		}
	}
	_, err := loadConfig(t, env)
	switch {
	case want == "" && err != nil:
		t.Fatalf("unexpected error: %v", err)
	case want != "" && (err == nil || !strings.Contains(err.Error(), want)):
		t.Fatalf("error %v, want it to mention %q", err, want)
	}
	return err
}

func TestConfigDefaultsAndPrecedence(t *testing.T) {
	env := validEnv()
	env["APPROVALS_LISTEN"] = ":9000"
	c, err := loadConfig(t, env, "--listen", "127.0.0.1:7000")
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:7000" {
		t.Errorf("flag must win over env: %q", c.Listen)
	}
	if c.DB != "approvals.db" || c.GraphURL != "https://graph.microsoft.com/v1.0" || !c.SendInvitationMessage ||
		c.InviteRedirectURL != "https://myapps.microsoft.com" || c.ReviewerRole != "Approvals.Reviewer" || c.AdminRole != "Approvals.Admin" {
		t.Errorf("defaults: %+v", c)
	}
	if got := c.Issuer(); got != "https://login.microsoftonline.com/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee/v2.0" {
		t.Errorf("issuer default %q", got)
	}
	env["APPROVALS_LISTEN"] = ":9000"
	c, _ = loadConfig(t, env)
	if c.Listen != ":9000" {
		t.Errorf("env must win over default: %q", c.Listen)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string // changes to validEnv; "" deletes
		want string            // substring of the error; "" means valid
	}{
		{"valid", nil, ""},
		{"no connector auth", map[string]string{"APPROVALS_CONNECTOR_USERNAME": "", "APPROVALS_CONNECTOR_PASSWORD": ""}, "connector endpoints would be unauthenticated"},
		{"username without password", map[string]string{"APPROVALS_CONNECTOR_PASSWORD": ""}, "must be set together"},
		{"short password", map[string]string{"APPROVALS_CONNECTOR_PASSWORD": "short"}, "at least 16 characters"},
		{"thumbprints alone need TLS", map[string]string{"APPROVALS_CONNECTOR_USERNAME": "", "APPROVALS_CONNECTOR_PASSWORD": "", "APPROVALS_CONNECTOR_CERT_THUMBPRINTS": strings.Repeat("ab", 20)}, "needs APPROVALS_TLS_CERT_FILE"},
		{"thumbprints with TLS", map[string]string{"APPROVALS_CONNECTOR_USERNAME": "", "APPROVALS_CONNECTOR_PASSWORD": "", "APPROVALS_CONNECTOR_CERT_THUMBPRINTS": strings.Repeat("AB:", 31) + "AB, " + strings.Repeat("cd", 20), "APPROVALS_TLS_CERT_FILE": "c.pem", "APPROVALS_TLS_KEY_FILE": "k.pem"}, ""},
		{"bad thumbprint", map[string]string{"APPROVALS_CONNECTOR_CERT_THUMBPRINTS": "xyz", "APPROVALS_TLS_CERT_FILE": "c.pem", "APPROVALS_TLS_KEY_FILE": "k.pem"}, "is not a SHA-1"},
		{"cert without key", map[string]string{"APPROVALS_TLS_CERT_FILE": "c.pem"}, "must be set together"},
		{"no tenant domain", map[string]string{"APPROVALS_TENANT_DOMAIN": ""}, "APPROVALS_TENANT_DOMAIN is required"},
		{"no reviewer sign-in", map[string]string{"APPROVALS_OIDC_CLIENT_ID": ""}, "reviewer UI would have no sign-in"},
		{"no issuer", map[string]string{"AZURE_TENANT_ID": ""}, "APPROVALS_OIDC_ISSUER"},
		{"custom issuer", map[string]string{"AZURE_TENANT_ID": "", "APPROVALS_OIDC_ISSUER": "https://id.example.com"}, ""},
		{"http graph off loopback", map[string]string{"APPROVALS_GRAPH_URL": "http://graph.example.com/v1.0"}, "APPROVALS_GRAPH_URL"},
		{"http graph on loopback", map[string]string{"APPROVALS_GRAPH_URL": "http://127.0.0.1:9999/v1.0"}, ""},
		{"sovereign graph", map[string]string{"APPROVALS_GRAPH_URL": "https://graph.microsoft.us/v1.0"}, ""},
		{"bad group id", map[string]string{"APPROVALS_GROUP_IDS": "11111111-2222-3333-4444-555555555555,sales"}, `"sales" is not a group object id`},
		{"overlapping domains", map[string]string{"APPROVALS_AUTO_APPROVE_DOMAINS": "contoso.com", "APPROVALS_AUTO_DENY_DOMAINS": "contoso.com"}, "in both"},
		{"bad domain", map[string]string{"APPROVALS_AUTO_APPROVE_DOMAINS": "@contoso.com"}, "not a lower-case domain"},
		{"short api key", map[string]string{"APPROVALS_API_KEYS": "ops=short"}, `secret of "ops"`},
		{"bad listen", map[string]string{"APPROVALS_LISTEN": "8080"}, "APPROVALS_LISTEN"},
		{"bad bool", map[string]string{"APPROVALS_SEND_INVITATION_MESSAGE": "maybe"}, "not true or false"},
		{"bad api key pair", map[string]string{"APPROVALS_API_KEYS": "novalue"}, "name=secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkConfig(t, tt.env, tt.want) })
	}
}

func TestConfigNeverPrintsSecretsInHelp(t *testing.T) {
	env := validEnv()
	env["APPROVALS_API_KEYS"] = "ops=very-secret-api-key-value-123456"
	var out strings.Builder
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(&out)
	registerFlags(fs, func(k string) string { return env[k] })
	fs.PrintDefaults()
	for _, secret := range []string{"correct-horse-battery-staple", "very-secret-api-key-value", "s3cret"} {
		if strings.Contains(out.String(), secret) {
			t.Errorf("help text shows a secret %q", secret)
		}
	}
	if !strings.Contains(out.String(), "APPROVALS_CONNECTOR_PASSWORD") {
		t.Error("help text should name the environment variables")
	}
}

func TestConfigTrustedProxies(t *testing.T) {
	env := validEnv()
	c, err := loadConfig(t, env)
	if err != nil || c.TrustedProxies != "" {
		t.Fatalf("default: %q %v, want none", c.TrustedProxies, err)
	}
	env["APPROVALS_TRUSTED_PROXIES"] = "10.0.0.0/8, 2001:db8::/32,192.0.2.7"
	if c, err = loadConfig(t, env); err != nil || c.TrustedProxies != "10.0.0.0/8, 2001:db8::/32,192.0.2.7" {
		t.Fatalf("valid list: %q %v", c.TrustedProxies, err)
	}
	for _, bad := range []string{"10.0.0/8", "10.0.0.0/8;192.168.0.0/16", "proxy.internal"} {
		env["APPROVALS_TRUSTED_PROXIES"] = bad
		_, err := loadConfig(t, env)
		if err == nil || !strings.Contains(err.Error(), "APPROVALS_TRUSTED_PROXIES") || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("%q: %v, want an error naming the setting and the CIDR form", bad, err)
		}
	}
	_, err = loadConfig(t, validEnv(), "--trusted-proxies", "not-a-cidr")
	if err == nil || !strings.Contains(err.Error(), `"not-a-cidr"`) {
		t.Errorf("flag: %v", err)
	}
}
