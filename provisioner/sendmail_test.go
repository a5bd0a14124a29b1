package provisioner_test

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

func TestSendMail(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	srv.AddUser(graphtest.User{UserPrincipalName: "approvals@contoso.example", Mail: "approvals@contoso.example", UserType: "Member"})
	srv.AddUser(graphtest.User{UserPrincipalName: "nomailbox@contoso.example", UserType: "Member"})
	d := newDirectory(t, srv, provisioner.CredentialConfig{ClientSecret: srv.ClientSecret()})
	ctx := context.Background()
	msg := provisioner.MailMessage{
		From: "approvals@contoso.example", To: "ada@example.com", Subject: "Your account is ready",
		HTML: "<p>Ready</p>", InternetMessageID: "evt-1.email.ada=40example.com@approvals.example.com",
		Headers: map[string]string{"X-Auto-Response-Suppress": "All"},
	}
	if err := d.SendMail(ctx, msg); err != nil {
		t.Fatal(err)
	}
	sent := srv.SentMails()
	if len(sent) != 1 {
		t.Fatalf("%d sent", len(sent))
	}
	s := sent[0]
	if s.From != "approvals@contoso.example" || len(s.To) != 1 || s.To[0] != "ada@example.com" || s.Subject != msg.Subject ||
		s.ContentType != "html" && s.ContentType != "HTML" || s.Content != "<p>Ready</p>" || s.SaveToSentItems ||
		s.InternetID != "<"+msg.InternetMessageID+">" || s.Headers["X-Auto-Response-Suppress"] != "All" {
		t.Errorf("sent %+v", s)
	}

	for _, tc := range []struct {
		name      string
		change    func(m *provisioner.MailMessage)
		setup     func()
		status    int
		permanent bool
	}{
		{"unknown mailbox", func(m *provisioner.MailMessage) { m.From = "nobody@contoso.example" }, nil, http.StatusNotFound, true},
		{"user without mailbox", func(m *provisioner.MailMessage) { m.From = "nomailbox@contoso.example" }, nil, http.StatusNotFound, true},
		{"no permission", nil, func() { srv.SetPermissions(graphtest.PermUserReadWriteAll) }, http.StatusForbidden, true},
		{"throttled", nil, func() {
			srv.Fault("POST /users/{id}/sendMail", graphtest.FaultSpec{Status: http.StatusTooManyRequests, RetryAfter: time.Second, Count: 10})
		}, http.StatusTooManyRequests, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv.ClearFaults()
			srv.SetPermissions(graphtest.PermUserReadWriteAll, graphtest.PermMailSend)
			m := msg
			if tc.change != nil {
				tc.change(&m)
			}
			if tc.setup != nil {
				tc.setup()
			}
			err := d.SendMail(ctx, m)
			var de *approvals.DeliveryError
			var ge *provisioner.GraphError
			if !errors.As(err, &de) || !errors.As(err, &ge) {
				t.Fatalf("error %v, want a DeliveryError with a GraphError", err)
			}
			if de.Permanent != tc.permanent || ge.Status != tc.status {
				t.Errorf("permanent %v status %d, want %v %d (%v)", de.Permanent, ge.Status, tc.permanent, tc.status, err)
			}
			if tc.status == http.StatusTooManyRequests && de.RetryAfter != time.Second {
				t.Errorf("RetryAfter = %v, want 1s", de.RetryAfter)
			}
		})
	}

	// A custom header must start with X-: refused before the call, and
	// the fake refuses it as Graph does.
	srv.ClearFaults()
	m := msg
	m.Headers = map[string]string{"Auto-Submitted": "auto-generated"}
	if err := d.SendMail(ctx, m); !approvals.IsPermanentDelivery(err) {
		t.Errorf("header without X-: %v, want permanent", err)
	}
	if n := len(srv.SentMails()); n != 1 {
		t.Errorf("%d sent, want still 1", n)
	}
}
