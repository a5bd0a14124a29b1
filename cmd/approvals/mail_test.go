package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail/mailtest"
)

func TestMailConfigValidate(t *testing.T) {
	smtp := map[string]string{"APPROVALS_MAIL_TRANSPORT": "smtp", "APPROVALS_SMTP_ADDR": "smtp.example.com:587", "APPROVALS_MAIL_FROM": "Approvals <approvals@contoso.com>"}
	with := func(base map[string]string, kv ...string) map[string]string {
		m := map[string]string{}
		for k, v := range base {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	for _, tt := range []struct {
		name string
		env  map[string]string
		want string // "" valid
	}{
		{"none by default", nil, ""},
		{"smtp", smtp, ""},
		{"smtp with auth", with(smtp, "APPROVALS_SMTP_USERNAME", "svc", "APPROVALS_SMTP_PASSWORD", "pw"), ""},
		{"graph", map[string]string{"APPROVALS_MAIL_TRANSPORT": "graph", "APPROVALS_MAIL_FROM": "approvals@contoso.com"}, ""},
		{"unknown transport", map[string]string{"APPROVALS_MAIL_TRANSPORT": "sendmail"}, `APPROVALS_MAIL_TRANSPORT "sendmail" must be none, smtp or graph`},
		{"smtp without address", with(smtp, "APPROVALS_SMTP_ADDR", ""), "APPROVALS_SMTP_ADDR is required"},
		{"smtp without from", with(smtp, "APPROVALS_MAIL_FROM", ""), "APPROVALS_MAIL_FROM is required"},
		{"graph without from", map[string]string{"APPROVALS_MAIL_TRANSPORT": "graph"}, "APPROVALS_MAIL_FROM is required"},
		{"bad from", with(smtp, "APPROVALS_MAIL_FROM", "Approvals"), "is not an address"},
		{"bad address", with(smtp, "APPROVALS_SMTP_ADDR", "smtp.example.com"), "is not host:port"},
		{"bad tls", with(smtp, "APPROVALS_SMTP_TLS", "ssl"), "APPROVALS_SMTP_TLS"},
		{"password alone", with(smtp, "APPROVALS_SMTP_PASSWORD", "pw"), "must be set together"},
		{"clear text password", with(smtp, "APPROVALS_SMTP_TLS", "none", "APPROVALS_SMTP_USERNAME", "u", "APPROVALS_SMTP_PASSWORD", "p"), "clear text"},
		{"clear text password to loopback", with(smtp, "APPROVALS_SMTP_ADDR", "127.0.0.1:25", "APPROVALS_SMTP_TLS", "none", "APPROVALS_SMTP_USERNAME", "u", "APPROVALS_SMTP_PASSWORD", "p"), ""},
		{"bad timeout", with(smtp, "APPROVALS_SMTP_TIMEOUT", "soon"), "APPROVALS_SMTP_TIMEOUT"},
		{"from without transport", map[string]string{"APPROVALS_MAIL_FROM": "a@contoso.com"}, "APPROVALS_MAIL_TRANSPORT is none"},
		{"http sign-in url", with(smtp, "APPROVALS_SIGN_IN_URL", "http://apps.example.com"), "APPROVALS_SIGN_IN_URL"},
		{"missing templates dir", with(smtp, "APPROVALS_TEMPLATES_DIR", "/nonexistent/templates"), "APPROVALS_TEMPLATES_DIR"},
	} {
		t.Run(tt.name, func(t *testing.T) { checkConfig(t, tt.env, tt.want) })
	}
	// Several problems: one line each.
	_, err := loadConfig(t, with(validEnv(), "APPROVALS_MAIL_TRANSPORT", "smtp", "APPROVALS_SMTP_TLS", "ssl"))
	if err == nil || !strings.Contains(err.Error(), "APPROVALS_SMTP_ADDR is required") || !strings.Contains(err.Error(), "APPROVALS_MAIL_FROM is required") || !strings.Contains(err.Error(), "APPROVALS_SMTP_TLS") {
		t.Errorf("error %v, want every problem", err)
	}
}

func TestMailPasswordFromFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "smtp-password")
	if err := os.WriteFile(p, []byte("from-file\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	env := validEnv()
	for k, v := range map[string]string{"APPROVALS_MAIL_TRANSPORT": "smtp", "APPROVALS_SMTP_ADDR": "smtp.example.com:587", "APPROVALS_MAIL_FROM": "a@contoso.com", "APPROVALS_SMTP_USERNAME": "svc", "APPROVALS_SMTP_PASSWORD_FILE": p} {
		env[k] = v
	}
	c, err := loadConfig(t, env)
	if err != nil || c.Mail.SMTPPassword != "from-file" {
		t.Fatalf("password %q, %v", c.Mail.SMTPPassword, err)
	}
}

// The courier the configuration builds sends through the configured SMTP
// server, with links on APPROVALS_PUBLIC_URL and the sign-in URL
// defaulting to APPROVALS_INVITE_REDIRECT_URL.
func TestNewMailCourierSMTP(t *testing.T) {
	srv, err := mailtest.Start(mailtest.Options{Username: "svc", Password: "pw", InsecureAuth: true})
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	env := validEnv()
	for k, v := range map[string]string{
		"APPROVALS_PUBLIC_URL": "https://approvals.contoso.com", "APPROVALS_MAIL_TRANSPORT": "smtp", "APPROVALS_SMTP_ADDR": srv.Addr(),
		"APPROVALS_SMTP_TLS": "none", "APPROVALS_SMTP_USERNAME": "svc", "APPROVALS_SMTP_PASSWORD": "pw", "APPROVALS_MAIL_FROM": "Approvals <approvals@contoso.com>",
	} {
		env[k] = v
	}
	c, err := loadConfig(t, env)
	if err != nil {
		t.Fatal(err)
	}
	courier, err := newMailCourier(&c, nil, nil)
	if err != nil || courier == nil {
		t.Fatalf("courier %v, %v", courier, err)
	}
	r := &approvals.Request{ID: "r1", Email: "ada@example.com", Status: approvals.StatusApproved, CreatedAt: time.Now(),
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningSucceeded, Method: approvals.MethodCreateUser}}
	d := &approvals.Delivery{ID: "evt-3.email.ada@example.com", Channel: approvals.ChannelEmail, Kind: approvals.MailApplicantApproved, Recipient: "ada@example.com", Request: r}
	if err := courier.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages", len(got))
	}
	h, _ := got[0].Header()
	if h.Get("Message-Id") != "<evt-3.email.ada=40example.com@approvals.contoso.com>" {
		t.Errorf("Message-ID %q", h.Get("Message-Id"))
	}
	if !strings.Contains(string(got[0].Data), "https://myapps.microsoft.com") {
		t.Errorf("no sign-in link:\n%s", got[0].Data)
	}

	c.Mail.Transport = "none"
	if courier, err := newMailCourier(&c, nil, nil); courier != nil || err != nil {
		t.Errorf("transport none: %v, %v", courier, err)
	}
	c.Mail.Transport, c.Mail.TemplatesDir = "smtp", t.TempDir()
	if err := os.WriteFile(filepath.Join(c.Mail.TemplatesDir, "applicant.approved.html"), []byte("{{define \"content\"}}\n{{.Nope}}{{end}}"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := newMailCourier(&c, nil, nil); err == nil || !strings.Contains(err.Error(), "applicant.approved.html:2") {
		t.Errorf("broken override: %v", err)
	}
}

// Digests list the requests created in the period that are still pending,
// from the real store.
func TestPendingRequestsForDigests(t *testing.T) {
	st, err := openStore(&Config{DB: filepath.Join(t.TempDir(), "approvals.db")}, storeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.(interface{ Close() error }).Close()
	ctx := context.Background()
	base := time.Date(2026, 3, 4, 10, 0, 0, 0, time.UTC)
	for i, tc := range []struct {
		at     time.Time
		status approvals.Status
	}{
		{base.Add(-time.Minute), approvals.StatusPending},     // before the period
		{base, approvals.StatusPending},                       // first instant: in
		{base.Add(30 * time.Minute), approvals.StatusDenied},  // decided: out
		{base.Add(59 * time.Minute), approvals.StatusPending}, // in
		{base.Add(time.Hour), approvals.StatusPending},        // until is excluded
	} {
		r := &approvals.Request{ID: fmt.Sprintf("r%d", i), Email: fmt.Sprintf("p%d@example.com", i), Status: tc.status, CreatedAt: tc.at, UpdatedAt: tc.at}
		if _, _, err := st.Create(ctx, r, nil); err != nil {
			t.Fatal(err)
		}
	}
	got, err := pendingRequests(st)(ctx, base, base.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range got {
		ids = append(ids, r.ID)
	}
	if strings.Join(ids, ",") != "r1,r3" {
		t.Errorf("digest lists %v, want r1,r3", ids)
	}
}
