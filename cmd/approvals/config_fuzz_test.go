package main

import (
	"encoding/hex"
	"flag"
	"io"
	"strings"
	"testing"
)

// FuzzConfig decodes fuzzed values of the settings that are parsed rather
// than taken as they are (lists, name=secret pairs, thumbprints, numbers,
// booleans, addresses, URLs) on top of a valid configuration. Either every
// problem is reported on its own line naming the variable to fix, or the
// configuration holds what Validate promises.
func FuzzConfig(f *testing.F) {
	f.Add("ops=0123456789abcdef0123456789", "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:AB:CD:EF:01", "6f1c0b1e-0d5a-4a44-9a57-4f3e8c1d2b10", "partner.example", "spam.example", ":8080", "4", "true", "https://graph.microsoft.us/v1.0")
	f.Add("a=1,a=2,=x,y", "zz", "not-a-guid,,", "Partner.Example", "partner.example", "nope", "65", "maybe", "http://graph.example/v1.0")
	f.Add(" ops = 0123456789abcdef0123456789 , ci=abcdefghijklmnopqrstuvwxyz", " , ", " ", "a.b.c.example,", "", "[::1]:0", " 1 ", "FALSE", "http://[::1]:9/v1.0")
	f.Add("k=v=w", "00000000000000000000000000000000000000000000000000000000000000000", "", "x", "x", ":65536", "-1", "1", "https://")
	f.Fuzz(func(t *testing.T, apiKeys, thumbprints, groups, approve, deny, listen, workers, send, graphURL string) {
		env := validEnv()
		env["APPROVALS_TLS_CERT_FILE"], env["APPROVALS_TLS_KEY_FILE"] = "cert.pem", "key.pem"
		for k, v := range map[string]string{
			"APPROVALS_API_KEYS":                   apiKeys,
			"APPROVALS_CONNECTOR_CERT_THUMBPRINTS": thumbprints,
			"APPROVALS_GROUP_IDS":                  groups,
			"APPROVALS_AUTO_APPROVE_DOMAINS":       approve,
			"APPROVALS_AUTO_DENY_DOMAINS":          deny,
			"APPROVALS_LISTEN":                     listen,
			"APPROVALS_PROVISIONING_WORKERS":       workers,
			"APPROVALS_SEND_INVITATION_MESSAGE":    send,
			"APPROVALS_GRAPH_URL":                  graphURL,
		} {
			if v != "" {
				env[k] = v
			}
		}
		fs := flag.NewFlagSet("serve", flag.ContinueOnError)
		fs.SetOutput(io.Discard)
		apply := registerFlags(fs, func(k string) string { return env[k] })
		if err := fs.Parse(nil); err != nil {
			t.Fatal(err)
		}
		var c Config
		err := apply(&c)
		if err == nil {
			err = c.Validate()
		}
		if err != nil {
			for _, line := range strings.Split(err.Error(), "\n") {
				if !strings.Contains(line, "APPROVALS_") {
					t.Fatalf("a problem that names no setting: %q", line)
				}
			}
			return
		}
		for name, secret := range c.APIKeys {
			if name == "" || strings.Contains(name, ",") || strings.TrimSpace(name) != name || len(secret) < 24 {
				t.Fatalf("API key %q=%q accepted", name, secret)
			}
		}
		for _, tp := range c.ConnectorThumbprints {
			if _, err := hex.DecodeString(tp); err != nil || (len(tp) != 40 && len(tp) != 64) || strings.ToLower(tp) != tp {
				t.Fatalf("thumbprint %q accepted", tp)
			}
		}
		for _, g := range c.GroupIDs {
			if !guidRE.MatchString(g) {
				t.Fatalf("group id %q accepted", g)
			}
		}
		for _, d := range append(append([]string(nil), c.AutoApproveDomains...), c.AutoDenyDomains...) {
			if d == "" || strings.ToLower(d) != d || strings.ContainsAny(d, " ,") {
				t.Fatalf("domain %q accepted", d)
			}
		}
		if overlap(c.AutoApproveDomains, c.AutoDenyDomains) != "" {
			t.Fatalf("a domain both approved and denied: %v %v", c.AutoApproveDomains, c.AutoDenyDomains)
		}
		if c.ProvisioningWorkers < 1 || c.ProvisioningWorkers > 64 || !validListen(c.Listen) || !validGraphURL(c.GraphURL) {
			t.Fatalf("accepted %+v", c)
		}
	})
}
