package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail/mailtest"
)

// The demo keeps its emails in its own SMTP server: a message sent with
// the demo's mail configuration arrives there and is listed, decoded, for
// the Mail page, which the demo's UI serves (behind sign-in).
func TestDemoMailbox(t *testing.T) {
	d, _, _ := startDemo(t, "--no-samples")
	c := d.main.Config
	if c.Mail.Transport != mailSMTP || c.Mail.SMTPTLS != "none" {
		t.Fatalf("demo mail config %+v", c.Mail)
	}
	courier, err := newMailCourier(&c, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	r := &approvals.Request{ID: "r1", Email: "ann@fabrikam.com", DisplayName: "Ann Lee", Locale: "de", Status: approvals.StatusPending, CreatedAt: time.Now()}
	err = courier.Deliver(context.Background(), &approvals.Delivery{ID: "evt-1.email.rev", Channel: approvals.ChannelEmail,
		Kind: approvals.MailReviewerPending, Recipient: "rev@contoso.com", Request: r})
	if err != nil {
		t.Fatal(err)
	}
	// And one fed to the mailbox directly, as the page's tests do.
	d.mailbox.srv.Add(mailtest.Message{From: "a@b.example", To: []string{"x@y.example"}, ReceivedAt: time.Now(),
		Data: []byte("Subject: =?utf-8?q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nhello\r\n")})
	mails := d.mailbox.mails()
	if len(mails) != 2 {
		t.Fatalf("%d mails", len(mails))
	}
	m := mails[0]
	if m.Subject != "Registrierungsanfrage zur Prüfung: Ann Lee" || len(m.To) != 1 || m.To[0] != "rev@contoso.com" ||
		!strings.Contains(m.HTML, "<table") || !strings.Contains(m.Text, "Genehmigen: "+d.PublicURL+"/requests/r1?decision=approve") {
		t.Errorf("decoded mail %q to %v\ntext %s", m.Subject, m.To, m.Text)
	}
	if mails[1].Subject != "Grüße" || strings.TrimSpace(mails[1].Text) != "hello" {
		t.Errorf("fed mail %+v", mails[1])
	}
	client := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Get(d.PublicURL + "/demo/mail")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == http.StatusNotFound {
		t.Errorf("the demo serves no Mail page")
	}
}
