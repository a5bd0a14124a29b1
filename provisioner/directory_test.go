package provisioner_test

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

func newDirectory(t *testing.T, srv *graphtest.Server, cfg provisioner.CredentialConfig) *provisioner.Directory {
	t.Helper()
	cfg.TenantID, cfg.ClientID = srv.TenantID(), srv.ClientID()
	cfg.AuthorityHost, cfg.DisableInstanceDiscovery, cfg.HTTPClient = srv.AuthorityURL(), true, srv.Client()
	cred, err := provisioner.NewCredential(cfg)
	if err != nil {
		t.Fatal(err)
	}
	d, err := provisioner.NewDirectory(provisioner.GraphConfig{URL: srv.URL(), Credential: cred, Transport: srv.Transport(), Metrics: prometheus.NewRegistry()})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// The Directory is what the admin API's invitation flow uses.
func TestDirectoryOperations(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	d := newDirectory(t, srv, provisioner.CredentialConfig{ClientSecret: srv.ClientSecret()})
	ctx := context.Background()
	gid := srv.AddGroup("")

	found, err := d.FindPerson(ctx, "o'hara@example.com", nil)
	if err != nil || len(found) != 0 {
		t.Fatalf("FindPerson on an empty directory: %v, %v", found, err)
	}
	inv, err := d.Invite(ctx, provisioner.Invitation{Email: "o'hara@example.com", DisplayName: "Scarlett", RedirectURL: "https://apps.example.com", Message: "Welcome aboard"})
	if err != nil || inv.UserID == "" || inv.RedeemURL == "" || inv.InvitationID == inv.UserID {
		t.Fatalf("Invite: %+v, %v", inv, err)
	}
	if got := srv.Invitations()[0]; got.Message != "Welcome aboard" || got.SendMessage {
		t.Errorf("invitation = %+v", got)
	}
	found, err = d.FindPerson(ctx, "O'Hara@example.com", nil)
	if err != nil || len(found) != 1 || found[0].ID != inv.UserID || found[0].UserType != "Guest" || len(found[0].OtherMails) != 1 {
		t.Fatalf("FindPerson after invite: %+v, %v", found, err)
	}
	if err := d.UpdateUser(ctx, inv.UserID, map[string]any{"city": "Tara", "businessPhones": []string{"+1 555"}, ext: "x"}); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if err := d.AddToGroup(ctx, gid, inv.UserID); err != nil {
			t.Fatalf("AddToGroup (already a member counts as added): %v", err)
		}
	}
	// A UPN holds '#': it must reach Graph escaped as %23.
	u, err := d.GetUser(ctx, found[0].UserPrincipalName)
	if err != nil || u.ID != inv.UserID {
		t.Fatalf("GetUser by UPN: %+v, %v", u, err)
	}
	last := srv.CallsTo("GET /users/{id}")[0]
	if !strings.Contains(last.Path, "%23EXT%23") {
		t.Errorf("UPN path on the wire: %s", last.Path)
	}
	// The look-up queries, as sent: '+' and quotes encoded, not mangled.
	if _, err := d.FindPerson(ctx, "x+y@example.com", &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "1'2"}); err != nil {
		t.Fatal(err)
	}
	gets := srv.CallsTo("GET /users")
	if q := gets[len(gets)-3].Query; !strings.Contains(q, "$filter=identities%2Fany") || !strings.Contains(q, "1%27%272") {
		t.Errorf("identity query = %s", q)
	}
	if q := gets[len(gets)-2].Query; !strings.Contains(q, "x%2By%40example.com") {
		t.Errorf("mail query = %s", q)
	}

	for _, c := range srv.Calls() {
		if !c.Authorized {
			t.Errorf("%s %s went without a valid token for the configured host", c.Method, c.Path)
		}
	}

	// Errors are *GraphError with Graph's code, message and request-id.
	err = d.UpdateUser(ctx, "00000000-0000-0000-0000-000000000000", map[string]any{"city": "x"})
	var ge *provisioner.GraphError
	if !errors.As(err, &ge) || ge.Status != 404 || ge.Code != "Request_ResourceNotFound" || ge.RequestID == "" || ge.Route != "PATCH /users/{id}" {
		t.Fatalf("UpdateUser of nobody: %#v", err)
	}
	if !strings.HasPrefix(err.Error(), "update user 00000000-0000-0000-0000-000000000000: Graph Request_ResourceNotFound: Resource ") {
		t.Errorf("error text: %s", err)
	}
	_, err = d.CreateGuest(ctx, provisioner.NewGuest{UserPrincipalName: "x_example.com#EXT#@fabrikam.com", Mail: "x@example.com", DisplayName: "X", Identity: approvals.Identity{Issuer: "google.com", IssuerAssignedID: "1"}})
	if !errors.As(err, &ge) || ge.Status != 400 || !strings.Contains(ge.Message, "domain portion") {
		t.Errorf("CreateGuest in another domain: %v", err)
	}
	srv.Fault("GET /users", graphtest.FaultSpec{Status: 429, RetryAfter: 7 * time.Second, Count: 1})
	_, err = d.FindUsers(ctx, provisioner.MailFilter("a@b.c"))
	if !errors.As(err, &ge) || ge.Status != 429 || ge.RetryAfter != 7*time.Second {
		t.Errorf("429: %#v", err)
	}
	srv.Fault("GET /users", graphtest.FaultSpec{Reset: true, Count: 2})
	_, err = d.FindUsers(ctx, provisioner.MailFilter("a@b.c"))
	if !errors.As(err, &ge) || ge.Status != 0 || ge.Err == nil || !strings.Contains(err.Error(), "no answer from Graph") || strings.Contains(err.Error(), "a@b.c") || !strings.Contains(err.Error(), "(client-request-id ") {
		t.Errorf("reset: %v", err)
	}
	t.Logf("a reset reads: %v", err)
}

func TestCredentialConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"AZURE_TENANT_ID": " t ", "AZURE_CLIENT_ID": "c", "AZURE_CLIENT_CERTIFICATE_PATH": "/x.pem",
		"AZURE_AUTHORITY_HOST": "https://login.microsoftonline.us/", "APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
		"AZURE_CLIENT_SEND_CERTIFICATE_CHAIN": "1",
	}
	c := provisioner.CredentialConfigFromEnv(func(k string) string { return env[k] })
	if c.TenantID != "t" || c.Kind() != provisioner.CredentialClientCertificate || !c.DisableInstanceDiscovery || !c.SendCertificateChain || c.AuthorityHost != "https://login.microsoftonline.us/" {
		t.Errorf("config = %+v", c)
	}
	tests := []struct {
		c    provisioner.CredentialConfig
		kind provisioner.CredentialKind
		err  string
	}{
		{provisioner.CredentialConfig{TenantID: "t", ClientID: "c", ClientSecret: "s", ClientCertificatePath: "p"}, provisioner.CredentialClientSecret, ""},
		{provisioner.CredentialConfig{TenantID: "t", ClientID: "c", FederatedTokenFile: "f"}, provisioner.CredentialWorkloadIdentity, ""},
		{provisioner.CredentialConfig{}, provisioner.CredentialManagedIdentity, ""},
		{provisioner.CredentialConfig{ClientID: "c"}, provisioner.CredentialManagedIdentity, ""},
		{provisioner.CredentialConfig{ClientID: "c", ClientSecret: "s"}, provisioner.CredentialClientSecret, "AZURE_TENANT_ID"},
		{provisioner.CredentialConfig{TenantID: "t", ClientSecret: "s"}, provisioner.CredentialClientSecret, "AZURE_CLIENT_ID"},
		{provisioner.CredentialConfig{TenantID: "t", ClientID: "c", ClientSecret: "s", AuthorityHost: "http://local"}, provisioner.CredentialClientSecret, "https"},
	}
	for _, tt := range tests {
		if tt.c.Kind() != tt.kind {
			t.Errorf("%+v: kind %s, want %s", tt.c, tt.c.Kind(), tt.kind)
		}
		err := tt.c.Validate()
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("%+v: Validate = %v, want %q", tt.c, err, tt.err)
		}
	}
}

// Client certificate and workload identity credentials get their tokens
// from the configured (sovereign or local) authority too.
func TestCertificateAndWorkloadIdentityCredentials(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	dir := t.TempDir()

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "approvals"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalPKCS8PrivateKey(key)
	certPath := filepath.Join(dir, "graph.pem")
	pemData := append(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER})...)
	if err := os.WriteFile(certPath, pemData, 0o600); err != nil {
		t.Fatal(err)
	}

	// A workload identity token file holds a JWT issued to the client.
	claims, _ := json.Marshal(map[string]any{"iss": srv.ClientID(), "sub": srv.ClientID(), "aud": "api://AzureADTokenExchange", "exp": time.Now().Add(time.Hour).Unix()})
	assertion := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".sig"
	tokenPath := filepath.Join(dir, "token")
	if err := os.WriteFile(tokenPath, []byte(assertion), 0o600); err != nil {
		t.Fatal(err)
	}

	for _, cfg := range []provisioner.CredentialConfig{{ClientCertificatePath: certPath}, {FederatedTokenFile: tokenPath}} {
		d := newDirectory(t, srv, cfg)
		if _, err := d.FindUsers(context.Background(), provisioner.MailFilter("a@b.c")); err != nil {
			t.Errorf("%s: %v", cfg.Kind(), err)
		}
	}
	if n := srv.TokensIssued(); n != 2 {
		t.Errorf("%d tokens issued, want 2", n)
	}

	// A refused secret is a permanent failure, said plainly.
	d := newDirectory(t, srv, provisioner.CredentialConfig{ClientSecret: "wrong"})
	_, err = d.FindUsers(context.Background(), provisioner.MailFilter("a@b.c"))
	if err == nil || !strings.Contains(err.Error(), "the token authority refused the credential (HTTP 401): AADSTS7000215: Invalid client secret provided.") || strings.Contains(err.Error(), "\n") {
		t.Errorf("wrong secret: %v", err)
	}
}
