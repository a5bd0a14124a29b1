package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
	"github.com/approvals-dev/approvals/provisioner"
)

// MailConfig is the email part of Config (SPEC "Notifications").
type MailConfig struct {
	// Transport is none, smtp or graph.
	Transport    string
	SMTPAddr     string
	SMTPUsername string
	SMTPPassword string
	SMTPTLS      string
	SMTPTimeout  time.Duration
	// From is APPROVALS_MAIL_FROM, "addr" or "Name <addr>".
	From string
	// SignInURL defaults to APPROVALS_INVITE_REDIRECT_URL.
	SignInURL    string
	TemplatesDir string
}

// The mail transports.
const (
	mailNone  = "none"
	mailSMTP  = "smtp"
	mailGraph = "graph"
)

// mailSettings are the email settings, appended to settings.
var mailSettings = []setting{
	{flag: "mail-transport", env: "APPROVALS_MAIL_TRANSPORT", def: mailNone, usage: "how emails are sent: none, smtp or graph (Microsoft Graph sendMail)", set: str(func(c *Config) *string { return &c.Mail.Transport })},
	{flag: "smtp-addr", env: "APPROVALS_SMTP_ADDR", usage: "host:port of the SMTP submission server", set: str(func(c *Config) *string { return &c.Mail.SMTPAddr })},
	{flag: "smtp-username", env: "APPROVALS_SMTP_USERNAME", usage: "SMTP AUTH user name (none: no AUTH)", set: str(func(c *Config) *string { return &c.Mail.SMTPUsername })},
	{flag: "smtp-password", env: "APPROVALS_SMTP_PASSWORD", usage: "SMTP AUTH password", secret: true, set: func(c *Config, v string) error { c.Mail.SMTPPassword = v; return nil }},
	{flag: "smtp-tls", env: "APPROVALS_SMTP_TLS", def: mail.TLSStartTLS, usage: "starttls (required), tls (implicit, port 465) or none (credentials only to loopback)", set: str(func(c *Config) *string { return &c.Mail.SMTPTLS })},
	{flag: "smtp-timeout", env: "APPROVALS_SMTP_TIMEOUT", def: "30s", usage: "bound of one SMTP conversation", set: func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("APPROVALS_SMTP_TIMEOUT: %q is not a duration such as 30s", v)
		}
		c.Mail.SMTPTimeout = d
		return nil
	}},
	{flag: "mail-from", env: "APPROVALS_MAIL_FROM", usage: "sender of the emails, addr or \"Name <addr>\"", set: str(func(c *Config) *string { return &c.Mail.From })},
	{flag: "sign-in-url", env: "APPROVALS_SIGN_IN_URL", usage: "link an approved person created with POST /users signs in at (default: APPROVALS_INVITE_REDIRECT_URL)", set: str(func(c *Config) *string { return &c.Mail.SignInURL })},
	{flag: "templates-dir", env: "APPROVALS_TEMPLATES_DIR", usage: "directory of files overriding the built-in email templates", set: str(func(c *Config) *string { return &c.Mail.TemplatesDir })},
}

// mailChecks are the email settings' checks, one message per problem.
func (c *Config) mailChecks() []check {
	m := c.Mail
	on := m.Transport == mailSMTP || m.Transport == mailGraph
	_, _, fromErr := mail.ParseFrom(m.From)
	host, _, addrErr := net.SplitHostPort(m.SMTPAddr)
	smtp := m.Transport == mailSMTP
	loopback := host == "localhost" || net.ParseIP(host) != nil && net.ParseIP(host).IsLoopback()
	signIn := m.signInURL(c)
	return []check{
		{!on && m.Transport != mailNone, fmt.Sprintf("APPROVALS_MAIL_TRANSPORT %q must be none, smtp or graph", m.Transport)},
		{on && m.From == "", "APPROVALS_MAIL_FROM is required to send email: the sender, addr or \"Name <addr>\""},
		{on && m.From != "" && fromErr != nil, fmt.Sprintf("APPROVALS_MAIL_FROM %q is not an address or \"Name <addr>\"", m.From)},
		{smtp && m.SMTPAddr == "", "APPROVALS_SMTP_ADDR is required with APPROVALS_MAIL_TRANSPORT=smtp: host:port of the submission server, e.g. smtp.example.com:587"},
		{smtp && m.SMTPAddr != "" && (addrErr != nil || host == ""), fmt.Sprintf("APPROVALS_SMTP_ADDR %q is not host:port", m.SMTPAddr)},
		{smtp && m.SMTPTLS != mail.TLSStartTLS && m.SMTPTLS != mail.TLSImplicit && m.SMTPTLS != mail.TLSNone, fmt.Sprintf("APPROVALS_SMTP_TLS %q must be starttls, tls or none", m.SMTPTLS)},
		{smtp && (m.SMTPUsername == "") != (m.SMTPPassword == ""), "APPROVALS_SMTP_USERNAME and APPROVALS_SMTP_PASSWORD must be set together"},
		{smtp && m.SMTPTLS == mail.TLSNone && m.SMTPPassword != "" && addrErr == nil && !loopback, "APPROVALS_SMTP_TLS=none would send the SMTP password in clear text: only allowed to a loopback address; use starttls or tls"},
		{smtp && (m.SMTPTimeout <= 0 || m.SMTPTimeout > 10*time.Minute), "APPROVALS_SMTP_TIMEOUT must be between 1s and 10m"},
		{!on && (m.SMTPAddr != "" || m.From != ""), "APPROVALS_SMTP_ADDR or APPROVALS_MAIL_FROM is set but APPROVALS_MAIL_TRANSPORT is none: set it to smtp or graph, or remove them"},
		{on && signIn != "" && !validURL(signIn, false), fmt.Sprintf("APPROVALS_SIGN_IN_URL %q must be an absolute https URL", signIn)},
		{m.TemplatesDir != "" && !isDir(m.TemplatesDir), fmt.Sprintf("APPROVALS_TEMPLATES_DIR %q is not a readable directory", m.TemplatesDir)},
	}
}

func (m MailConfig) signInURL(c *Config) string {
	if m.SignInURL != "" {
		return m.SignInURL
	}
	return c.InviteRedirectURL
}

func isDir(p string) bool {
	fi, err := os.Stat(p)
	return err == nil && fi.IsDir()
}

// newMailCourier returns the approvals.Courier of approvals.ChannelEmail
// the configuration asks for, or nil with transport none. The templates are
// parsed and checked here, so a broken override stops the start. dir is
// the provisioner's Graph directory (for transport graph); digests list
// the pending requests of store.
func newMailCourier(c *Config, dir *provisioner.Directory, store approvals.Store) (approvals.Courier, error) {
	var pending mail.PendingFunc
	if store != nil {
		pending = pendingRequests(store)
	}
	m := c.Mail
	if m.Transport == mailNone || m.Transport == "" {
		return nil, nil
	}
	r, err := mail.NewRenderer(mail.Settings{PublicURL: c.PublicURL, SignInURL: m.signInURL(c), TemplatesDir: m.TemplatesDir})
	if err != nil {
		return nil, err
	}
	var t mail.Transport
	switch m.Transport {
	case mailSMTP:
		t, err = mail.NewSMTP(mail.SMTPConfig{
			Addr: m.SMTPAddr, Username: m.SMTPUsername, Password: m.SMTPPassword,
			TLS: m.SMTPTLS, Timeout: m.SMTPTimeout, From: m.From,
		})
	case mailGraph:
		if dir == nil {
			return nil, fmt.Errorf("APPROVALS_MAIL_TRANSPORT=graph needs the Microsoft Graph client")
		}
		var from string
		if _, from, err = mail.ParseFrom(m.From); err == nil {
			t = graphMail{dir: dir, from: from}
		}
	default:
		err = fmt.Errorf("APPROVALS_MAIL_TRANSPORT %q must be none, smtp or graph", m.Transport)
	}
	if err != nil {
		return nil, err
	}
	return mail.NewCourier(r, t, pending), nil
}

// graphMail sends the emails with Microsoft Graph's sendMail from the
// mailbox from. Graph sends one body: the HTML part.
type graphMail struct {
	dir  *provisioner.Directory
	from string
}

// Send implements mail.Transport.
func (g graphMail) Send(ctx context.Context, m *mail.Message) error {
	return g.dir.SendMail(ctx, provisioner.MailMessage{
		From: g.from, To: m.To, Subject: m.Subject, HTML: m.HTML, InternetMessageID: m.MessageID,
		// Graph takes only X- headers: Auto-Submitted cannot be sent.
		Headers: map[string]string{"X-Auto-Response-Suppress": "All"},
	})
}

// maxDigestRequests bounds the requests one digest lists.
const maxDigestRequests = 200

// pendingRequests returns the digests' PendingFunc over store: the
// requests still pending that were created in [since, until), oldest
// first.
func pendingRequests(store approvals.Store) mail.PendingFunc {
	return func(ctx context.Context, since, until time.Time) ([]*approvals.Request, error) {
		var out []*approvals.Request
		q := approvals.ListQuery{Status: approvals.StatusPending, Order: approvals.OldestFirst, Limit: approvals.MaxPageSize}
		for {
			p, err := store.List(ctx, q)
			if err != nil {
				return nil, fmt.Errorf("pending requests: %w", err)
			}
			for _, r := range p.Requests {
				if !r.CreatedAt.Before(since) && r.CreatedAt.Before(until) {
					out = append(out, r)
					if len(out) == maxDigestRequests {
						return out, nil
					}
				}
			}
			if p.NextCursor == "" {
				return out, nil
			}
			q.Cursor = p.NextCursor
		}
	}
}
