package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/externalid/externalidtest"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/web/oidctest"
)

// Demo is `approvals demo`: the whole system on one machine with no Azure
// tenant. It runs the real server (the same Main as `serve`) against an
// in-process fake Microsoft Graph and a built-in OpenID Connect provider,
// sends sample sign-ups through the real connector endpoint, and prints
// what a newcomer needs to try it.
type Demo struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	dir, listen string
	publicURL   string // --public-url: where browsers reach the demo
	fresh       bool
	quiet       bool // no sample requests (tests add their own)

	main    *Main
	graph   *graphtest.Server
	idp     *oidctest.Provider
	mailbox *demoMailbox

	// Ready, when set, is called once the demo serves and its samples are
	// in; tests use it.
	Ready func(d *Demo)
	// ConnectorUser, ConnectorPassword, APIKey and PublicURL are known once
	// Run has started the server.
	ConnectorUser, ConnectorPassword, APIKey, PublicURL string
	// ExternalIDToken is a bearer token the External ID extensions accept
	// (demo_externalid.go).
	ExternalIDToken string
	extIssuer       *externalidtest.Issuer
}

// Demo settings that do not change from run to run.
const (
	demoTenantDomain = "contoso.onmicrosoft.com"
	demoClientID     = "a5d1c3e0-4b5f-4c8e-9d0a-1f2e3d4c5b6a"
	demoAutoApprove  = "partner.example"
	demoAutoDeny     = "spam.example"
	demoExtension    = "extension_cf4ff515cbf947218d468c96f9dc9021_Role"
)

// Demo group ids: every approved user is added to both.
var demoGroups = []string{"6f1c0b1e-0d5a-4a44-9a57-4f3e8c1d2b10", "b2c7e8f4-91d3-4e0b-8c6a-7d5e4f3a2b01"}

// ParseFlags reads the demo's flags.
func (d *Demo) ParseFlags(args []string) error {
	fs := newFlagSet("approvals demo", "Usage: approvals demo [flags]\n\nRuns the whole system locally with a fake Microsoft Graph and a built-in sign-in provider.\n\n")
	fs.StringVar(&d.dir, "dir", "demo", "folder for the demo's data file")
	fs.StringVar(&d.listen, "listen", "127.0.0.1:8080", "listen address (use 127.0.0.1:0 for any free port, 0.0.0.0:8080 to be reached from other machines or from outside a container)")
	fs.StringVar(&d.publicURL, "public-url", "", "the URL browsers use to reach the demo, such as http://demo-host:8080 (default: http://<listen address>, with localhost for an unspecified host); the sign-in provider is served under it at /demo-idp")
	fs.BoolVar(&d.fresh, "fresh", false, "delete the demo's data file first")
	fs.BoolVar(&d.quiet, "no-samples", false, "do not send the sample sign-ups")
	if err := parseFlags(fs, args, d.Stdout); err != nil {
		return err
	}
	return nil
}

func randomSecret() string {
	var b [18]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Run starts the fakes and the server, sends the samples, prints the
// banner, and serves until ctx is cancelled.
func (d *Demo) Run(ctx context.Context) error {
	if err := os.MkdirAll(d.dir, 0o700); err != nil {
		return err
	}
	db := filepath.Join(d.dir, "approvals.db")
	if d.fresh {
		for _, f := range []string{db, filepath.Join(d.dir, "secrets.json")} {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	ln, err := net.Listen("tcp", d.listen)
	if err != nil {
		return fmt.Errorf("listening on %s: %w (another demo running? try --listen 127.0.0.1:0)", d.listen, err)
	}
	if d.PublicURL, err = demoPublicURL(d.publicURL, ln.Addr()); err != nil {
		ln.Close()
		return err
	}

	d.graph = graphtest.New(graphtest.Options{TenantDomain: demoTenantDomain, Latency: 80 * time.Millisecond})
	for _, g := range demoGroups {
		d.graph.AddGroup(g)
	}
	// Sam already has a guest account: approving Sam links it instead of
	// inviting a second time.
	d.graph.AddUser(graphtest.User{DisplayName: "Sam Taylor", Mail: "sam.taylor@outlook.com", UserType: "Guest"})

	oidcSecret := randomSecret()
	// The sign-in provider shares the demo's port (under /demo-idp), so a
	// browser on another machine, or outside a container, reaches both at
	// the public URL. The server itself reaches it through the listener,
	// whatever name the public URL uses.
	d.idp, err = oidctest.New(oidctest.Config{
		Issuer:   d.PublicURL + demoIdPPath,
		Clients:  []oidctest.Client{{ID: demoClientID, Secret: oidcSecret, RedirectURIs: []string{d.PublicURL + "/auth/callback"}}},
		TenantID: d.graph.TenantID(),
	})
	if err != nil {
		ln.Close()
		return err
	}

	if d.mailbox, err = startDemoMailbox(); err != nil {
		return err
	}

	d.ConnectorUser = "entra-connector"
	if d.ConnectorPassword, d.APIKey, err = demoSecrets(filepath.Join(d.dir, "secrets.json")); err != nil {
		return err
	}
	env := map[string]string{
		"APPROVALS_DB":                      db,
		"APPROVALS_PUBLIC_URL":              d.PublicURL,
		"APPROVALS_CONNECTOR_USERNAME":      d.ConnectorUser,
		"APPROVALS_CONNECTOR_PASSWORD":      d.ConnectorPassword,
		"APPROVALS_TENANT_DOMAIN":           demoTenantDomain,
		"APPROVALS_GRAPH_URL":               d.graph.URL(),
		"APPROVALS_GROUP_IDS":               strings.Join(demoGroups, ","),
		"APPROVALS_AUTO_APPROVE_DOMAINS":    demoAutoApprove,
		"APPROVALS_AUTO_DENY_DOMAINS":       demoAutoDeny,
		"APPROVALS_SEND_INVITATION_MESSAGE": "false",
		"APPROVALS_API_KEYS":                "demo=" + d.APIKey,
		"APPROVALS_OIDC_ISSUER":             d.idp.Issuer(),
		"APPROVALS_OIDC_CLIENT_ID":          demoClientID,
		"APPROVALS_OIDC_CLIENT_SECRET":      oidcSecret,
		"APPROVALS_LOG_LEVEL":               "warn",
		// Any free loopback port, so that the demo runs beside a server.
		"APPROVALS_METRICS_LISTEN": "127.0.0.1:0",
	}
	if err := d.startExternalID(env); err != nil {
		return err
	}
	for k, v := range d.mailbox.env() {
		env[k] = v
	}
	d.main = &Main{
		Stdout: d.Stdout, Stderr: d.Stderr,
		Getenv: func(k string) string {
			// The demo logs warnings only, so that its printout stays
			// readable, unless APPROVALS_LOG_LEVEL asks for more; webhooks
			// (APPROVALS_WEBHOOK_*) are off unless the environment sets them.
			if (k == "APPROVALS_LOG_LEVEL" || strings.HasPrefix(k, "APPROVALS_WEBHOOK_")) && d.Getenv != nil {
				if v := d.Getenv(k); v != "" {
					return v
				}
			}
			return env[k]
		},
		credentials: &provisioner.CredentialConfig{
			TenantID: d.graph.TenantID(), ClientID: d.graph.ClientID(), ClientSecret: d.graph.ClientSecret(),
			AuthorityHost: d.graph.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: d.graph.Client(),
		},
		graphTransport: d.graph.Transport(),
		oidcClient:     selfClient(ln.Addr()),
		listener:       ln,
		extraRoutes:    map[string]http.Handler{demoIdPPath + "/": d.idp},
		demoMail:       d.mailbox.mails,
	}
	if err := d.main.ParseFlags(nil); err != nil {
		return fmt.Errorf("demo configuration: %w", err)
	}
	d.main.onReady = func(*Main) {
		if !d.quiet {
			if err := d.sendSamples(ctx); err != nil {
				fmt.Fprintf(d.Stderr, "demo: sample sign-ups: %v\n", err)
			}
			if err := d.sendExternalIDSamples(ctx); err != nil {
				fmt.Fprintf(d.Stderr, "demo: External ID samples: %v\n", err)
			}
		}
		d.printBanner()
		d.printExternalIDBanner()
		if d.Ready != nil {
			d.Ready(d)
		}
	}
	return d.main.Run(ctx)
}

// demoIdPPath is where the demo serves its sign-in provider.
const demoIdPPath = "/demo-idp"

// demoPublicURL is the demo's public URL: flag when given (an absolute
// http URL without a path), else http:// and the listener's address, with
// localhost for an unspecified host (0.0.0.0, [::]), which no browser can
// open.
func demoPublicURL(flag string, addr net.Addr) (string, error) {
	if flag != "" {
		u, err := url.Parse(flag)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || strings.Trim(u.Path, "/") != "" || u.RawQuery != "" || u.User != nil {
			return "", fmt.Errorf("--public-url %q: want an absolute http URL without a path, such as http://demo-host:8080", flag)
		}
		return u.Scheme + "://" + u.Host, nil
	}
	tcp, ok := addr.(*net.TCPAddr)
	if !ok || tcp.IP.IsUnspecified() {
		_, port, _ := net.SplitHostPort(addr.String())
		return "http://localhost:" + port, nil
	}
	return "http://" + addr.String(), nil
}

// selfClient is an HTTP client whose every connection goes to the demo's
// own listener: the server fetches its sign-in provider's discovery,
// keys and tokens at the public URL, which may name a host this machine
// cannot resolve or a port a container maps elsewhere.
func selfClient(addr net.Addr) *http.Client {
	target := addr.String()
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsUnspecified() {
		target = net.JoinHostPort("127.0.0.1", strconv.Itoa(tcp.Port))
	}
	var d net.Dialer
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "tcp", target)
		},
	}}
}

// demoSecrets returns the connector password and the API key kept in
// path, making them on the first run, so that the curl lines of an earlier
// run keep working against the kept data file.
func demoSecrets(path string) (password, apiKey string, err error) {
	var s struct{ ConnectorPassword, APIKey string }
	if b, err := os.ReadFile(path); err == nil && json.Unmarshal(b, &s) == nil && len(s.ConnectorPassword) >= 16 && len(s.APIKey) >= 24 {
		return s.ConnectorPassword, s.APIKey, nil
	}
	s.ConnectorPassword, s.APIKey = randomSecret(), randomSecret()
	b, _ := json.Marshal(s)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		return "", "", err
	}
	return s.ConnectorPassword, s.APIKey, nil
}

// samples are sign-ups of each kind, as Entra's API connector sends them.
func samples() []string {
	return []string{
		`{"email":"maria.garcia@gmail.com","identities":[{"signInType":"federated","issuer":"google.com","issuerAssignedId":"108234567890123456789"}],"displayName":"María García","givenName":"María","surname":"García","city":"Madrid","country":"Spain","` + demoExtension + `":"supplier","ui_locales":"es-ES"}`,
		`{"email":"johnsmith@outlook.com","identities":[{"signInType":"federated","issuer":"facebook.com","issuerAssignedId":"0123456789"}],"displayName":"John Smith","givenName":"John","lastName":"Smith","city":"Redmond","jobTitle":"Supplier","ui_locales":"en-US"}`,
		`{"email":"li.wei@example.cn","identities":[{"signInType":"federated","issuer":"mail","issuerAssignedId":"li.wei@example.cn"}],"displayName":"Li Wei","city":"Shanghai","ui_locales":"en-US"}`,
		`{"email":"kai.nowak@fabrikam.onmicrosoft.com","displayName":"Kai Nowak","givenName":"Kai","surname":"Nowak","jobTitle":"Auditor","city":"Kraków","` + demoExtension + `":"auditor","ui_locales":"pl"}`,
		`{"email":"sam.taylor@outlook.com","displayName":"Sam Taylor","city":"Leeds","ui_locales":"en-GB"}`,
		`{"email":"claire.dubois@gmail.com","identities":[{"signInType":"federated","issuer":"google","issuerAssignedId":"109876543210987654321"}],"displayName":"Claire Dubois","city":"Lyon","ui_locales":"fr-FR"}`,
		`{"email":"ann.lee@` + demoAutoApprove + `","displayName":"Ann Lee","ui_locales":"en-US"}`,
		`{"email":"bot@` + demoAutoDeny + `","displayName":"Totally Real Person","ui_locales":"de-DE"}`,
	}
}

// sendSamples posts each sample to the connector's request-approval
// endpoint, exactly as Entra would.
func (d *Demo) sendSamples(ctx context.Context) error {
	for _, body := range samples() {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.PublicURL+"/connector/request-approval", bytes.NewBufferString(body))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.SetBasicAuth(d.ConnectorUser, d.ConnectorPassword)
		resp, err := d.main.oidcClient.Do(req) // to our own listener, whatever the public URL
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("request-approval answered %s", resp.Status)
		}
	}
	return nil
}

func (d *Demo) printBanner() {
	u := d.PublicURL
	fmt.Fprintf(d.Stdout, `
approvals demo is running: no Azure tenant, an in-process fake Microsoft Graph (it forgets its
users when the demo stops) and a built-in sign-in page.

Sample sign-ups came in through the real connector endpoint: Google, Facebook, email one-time
passcode, Entra ID and Microsoft-account people are pending. Rules decided two more: %s is
auto-approved (Entra creates the account) and %s is auto-denied. Approving Sam Taylor links
the guest account the directory already has instead of inviting again.

  Reviewer UI        %s/
                     sign in as Ada Reviewer (reviewer + admin), Rob Reviewer (reviewer)
                     or Nora Nobody (no role) on the demo sign-in page

  API connectors     %s/connector/check-approval-status
                     %s/connector/request-approval
                     Basic user name: %s
                     Basic password:  %s

  Admin API          %s/api/v1/requests   (Authorization: Bearer %s)

Try a sign-up as Entra would send it:

  curl -u '%s:%s' -H 'Content-Type: application/json' \
    -d '{"email":"new.person@gmail.com","identities":[{"signInType":"federated","issuer":"google.com","issuerAssignedId":"1234"}],"displayName":"New Person","ui_locales":"fr-FR"}' \
    %s/connector/request-approval

List pending requests:

  curl -H 'Authorization: Bearer %s' '%s/api/v1/requests?status=pending'

Data file: %s (pass --fresh to start over). Ctrl-C stops the demo.
`, demoAutoApprove, demoAutoDeny, u, u, u, d.ConnectorUser, d.ConnectorPassword, u, d.APIKey,
		d.ConnectorUser, d.ConnectorPassword, u, d.APIKey, u, d.main.Config.DB)
}

// Close stops the server (and the sign-in provider it serves), then the
// fake Graph.
func (d *Demo) Close() error {
	var err error
	if d.main != nil {
		err = d.main.Close()
	}
	d.closeExternalID()
	if d.graph != nil {
		d.graph.Close()
	}
	if d.mailbox != nil {
		_ = d.mailbox.srv.Close()
	}
	return err
}
