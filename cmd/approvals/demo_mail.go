package main

import (
	"fmt"

	"github.com/approvals-dev/approvals/mail/mailtest"
	"github.com/approvals-dev/approvals/web"
)

// demoMailbox is the demo's SMTP server: go-smtp on loopback keeping what
// it receives in memory, so the demo shows its emails with no mail
// server. The demo is configured with transport smtp, TLS none.
type demoMailbox struct{ srv *mailtest.Server }

func startDemoMailbox() (*demoMailbox, error) {
	srv, err := mailtest.Start(mailtest.Options{})
	if err != nil {
		return nil, fmt.Errorf("demo mailbox: %w", err)
	}
	return &demoMailbox{srv: srv}, nil
}

// env returns the settings that send the demo's emails to the mailbox.
func (b *demoMailbox) env() map[string]string {
	return map[string]string{
		"APPROVALS_MAIL_TRANSPORT": mailSMTP,
		"APPROVALS_SMTP_ADDR":      b.srv.Addr(),
		"APPROVALS_SMTP_TLS":       "none",
		"APPROVALS_MAIL_FROM":      "Contoso access requests <approvals@" + demoTenantDomain + ">",
		// Every email the product sends, so that the Mail page shows the
		// reviewer alert and each applicant email.
		"APPROVALS_REVIEWER_EMAILS":  "reviewers@" + demoTenantDomain,
		"APPROVALS_NOTIFY_APPLICANT": "received,approved,denied",
	}
}

// mails lists what the mailbox received, decoded for the UI's Mail page.
func (b *demoMailbox) mails() []web.DemoMail {
	var out []web.DemoMail
	for _, m := range b.srv.Messages() {
		subject, text, html, err := m.Parts()
		if err != nil {
			subject, text = "(unreadable message)", err.Error()
		}
		out = append(out, web.DemoMail{To: m.To, Subject: subject, At: m.ReceivedAt, HTML: html, Text: text})
	}
	return out
}
