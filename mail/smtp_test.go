package mail_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"io"
	"math/big"
	"mime"
	"mime/multipart"
	"net"
	netmail "net/mail"
	"strings"
	"testing"
	"time"

	"github.com/emersion/go-smtp"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
	"github.com/approvals-dev/approvals/mail/mailtest"
)

// testPKI is a CA generated for the test and a server certificate for
// 127.0.0.1 it signed.
type testPKI struct {
	server *tls.Config
	roots  *x509.CertPool
}

func newPKI(t *testing.T) testPKI {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "mail test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)}, DNSNames: []string{"localhost"},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, KeyUsage: x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	return testPKI{
		server: &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12},
		roots:  roots,
	}
}

func startServer(t *testing.T, opts mailtest.Options) *mailtest.Server {
	t.Helper()
	s, err := mailtest.Start(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func newSMTP(t *testing.T, cfg mail.SMTPConfig) *mail.SMTP {
	t.Helper()
	if cfg.From == "" {
		cfg.From = "Approvals <approvals@contoso.example>"
	}
	s, err := mail.NewSMTP(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func rendered(t *testing.T, kind string, q *approvals.Request) *mail.Message {
	t.Helper()
	m, err := newRenderer(t, "").Render(delivery(kind, q), nil)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// parts returns the decoded text/plain and text/html parts of a received
// message.
func parts(t *testing.T, msg *netmail.Message) map[string]string {
	t.Helper()
	mt, params, err := mime.ParseMediaType(msg.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/alternative" {
		t.Fatalf("Content-Type %q (%v), want multipart/alternative", msg.Header.Get("Content-Type"), err)
	}
	out := map[string]string{}
	mr := multipart.NewReader(msg.Body, params["boundary"])
	for {
		p, err := mr.NextPart() // decodes quoted-printable
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(p)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		out[ct] = string(b)
	}
	return out
}

func TestSMTPStartTLSWithAuth(t *testing.T) {
	pki := newPKI(t)
	srv := startServer(t, mailtest.Options{TLS: pki.server, Username: "svc", Password: "s3cret"})
	s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), Username: "svc", Password: "s3cret", TLSConfig: &tls.Config{RootCAs: pki.roots}, Timeout: 5 * time.Second})
	q := sampleRequest("pl")
	m := rendered(t, approvals.MailReviewerPending, q)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 {
		t.Fatalf("%d messages received, want 1", len(got))
	}
	if got[0].From != "approvals@contoso.example" || len(got[0].To) != 1 || got[0].To[0] != "rev@contoso.example" {
		t.Errorf("envelope from %q to %q", got[0].From, got[0].To)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	subj, _ := new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	for h, want := range map[string]string{
		"Message-Id":               "<" + m.MessageID + ">",
		"Auto-Submitted":           "auto-generated",
		"X-Auto-Response-Suppress": "All",
		"Content-Language":         "pl",
		"To":                       "<rev@contoso.example>",
	} {
		if g := msg.Header.Get(h); g != want {
			t.Errorf("%s = %q, want %q", h, g, want)
		}
	}
	if subj != "Wniosek o rejestrację do rozpatrzenia: Ada Lovelace" {
		t.Errorf("Subject = %q", subj)
	}
	from, err := msg.Header.AddressList("From")
	if err != nil || len(from) != 1 || from[0].Name != "Approvals" || from[0].Address != "approvals@contoso.example" {
		t.Errorf("From = %v (%v)", from, err)
	}
	p := parts(t, msg)
	if !strings.Contains(p["text/plain"], "Zatwierdź: https://approvals.example.com/base/requests/req-1?decision=approve") {
		t.Errorf("text part:\n%s", p["text/plain"])
	}
	if !strings.Contains(p["text/html"], `href="https://approvals.example.com/base/requests/req-1?decision=deny"`) {
		t.Errorf("html part:\n%s", p["text/html"])
	}
}

func TestSMTPImplicitTLS(t *testing.T) {
	pki := newPKI(t)
	srv := startServer(t, mailtest.Options{TLS: pki.server, Implicit: true, Username: "svc", Password: "pw"})
	s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), TLS: mail.TLSImplicit, Username: "svc", Password: "pw", TLSConfig: &tls.Config{RootCAs: pki.roots}, Timeout: 5 * time.Second})
	if err := s.Send(context.Background(), rendered(t, approvals.MailApplicantReceived, sampleRequest("es"))); err != nil {
		t.Fatal(err)
	}
	if n := len(srv.Messages()); n != 1 {
		t.Errorf("%d messages, want 1", n)
	}
}

func TestSMTPStartTLSIsRequired(t *testing.T) {
	pki := newPKI(t)
	for name, opts := range map[string]mailtest.Options{
		"no STARTTLS offered":   {InsecureAuth: true},
		"untrusted certificate": {TLS: pki.server},
	} {
		t.Run(name, func(t *testing.T) {
			srv := startServer(t, opts)
			s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), Timeout: 5 * time.Second}) // system roots: the test CA is unknown
			err := s.Send(context.Background(), rendered(t, approvals.MailApplicantReceived, sampleRequest("en")))
			if err == nil || approvals.IsPermanentDelivery(err) {
				t.Errorf("error %v, want a temporary failure", err)
			}
			if n := len(srv.Messages()); n != 0 {
				t.Errorf("%d messages sent in clear text", n)
			}
		})
	}
}

func TestSMTPWrongPasswordIsPermanent(t *testing.T) {
	srv := startServer(t, mailtest.Options{Username: "svc", Password: "right", InsecureAuth: true})
	s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), TLS: mail.TLSNone, Username: "svc", Password: "wrong", Timeout: 5 * time.Second})
	err := s.Send(context.Background(), rendered(t, approvals.MailApplicantReceived, sampleRequest("en")))
	if err == nil {
		t.Fatal("sent with a wrong password")
	}
	if strings.Contains(err.Error(), "wrong") {
		t.Errorf("the error shows the password: %v", err)
	}
}

func TestSMTPAnswers(t *testing.T) {
	for _, tc := range []struct {
		step      string
		code      int
		permanent bool
	}{
		{"MAIL", 421, false}, {"MAIL", 451, false}, {"RCPT", 450, false}, {"DATA", 452, false},
		{"MAIL", 553, true}, {"RCPT", 550, true}, {"DATA", 554, true},
	} {
		t.Run(tc.step+" "+big.NewInt(int64(tc.code)).String(), func(t *testing.T) {
			srv := startServer(t, mailtest.Options{Fail: func(step string) *smtp.SMTPError {
				if step == tc.step {
					return &smtp.SMTPError{Code: tc.code, Message: "test answer"}
				}
				return nil
			}})
			s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), TLS: mail.TLSNone, Timeout: 5 * time.Second})
			err := s.Send(context.Background(), rendered(t, approvals.MailApplicantReceived, sampleRequest("en")))
			var de *approvals.DeliveryError
			if !errors.As(err, &de) {
				t.Fatalf("error %v, want a DeliveryError", err)
			}
			if de.Permanent != tc.permanent {
				t.Errorf("Permanent = %v, want %v (%v)", de.Permanent, tc.permanent, err)
			}
		})
	}
}

// silentServer accepts connections and never answers.
func silentServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			conns = append(conns, c)
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		<-done
		for _, c := range conns {
			_ = c.Close()
		}
	})
	return ln.Addr().String()
}

func TestSMTPSilentServerIsBounded(t *testing.T) {
	addr := silentServer(t)
	m := rendered(t, approvals.MailApplicantReceived, sampleRequest("en"))
	t.Run("timeout", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{Addr: addr, TLS: mail.TLSNone, Timeout: 300 * time.Millisecond})
		start := time.Now()
		err := s.Send(context.Background(), m)
		if err == nil || approvals.IsPermanentDelivery(err) {
			t.Errorf("error %v, want temporary", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
	t.Run("context", func(t *testing.T) {
		s := newSMTP(t, mail.SMTPConfig{Addr: addr, TLS: mail.TLSNone, Timeout: time.Minute})
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		err := s.Send(ctx, m)
		if err == nil || approvals.IsPermanentDelivery(err) {
			t.Errorf("error %v, want temporary", err)
		}
		if d := time.Since(start); d > 3*time.Second {
			t.Errorf("took %v", d)
		}
	})
}

func TestSMTPHeaderInjection(t *testing.T) {
	srv := startServer(t, mailtest.Options{})
	s := newSMTP(t, mail.SMTPConfig{Addr: srv.Addr(), TLS: mail.TLSNone, Timeout: 5 * time.Second})
	q := sampleRequest("en")
	q.DisplayName = "Eve\r\nBcc: victim@evil.example\r\nX-Injected: yes"
	m := rendered(t, approvals.MailReviewerPending, q)
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got := srv.Messages()
	if len(got) != 1 || len(got[0].To) != 1 {
		t.Fatalf("messages %d, recipients %v", len(got), got)
	}
	msg, err := netmail.ReadMessage(bytes.NewReader(got[0].Data))
	if err != nil {
		t.Fatal(err)
	}
	if msg.Header.Get("Bcc") != "" || msg.Header.Get("X-Injected") != "" {
		t.Errorf("a display name added a header: %v", msg.Header)
	}

	// A subject or a recipient given with line breaks is refused or
	// flattened, whoever made the Message.
	m.Subject = "Hello\r\nBcc: victim@evil.example"
	m.To = "rev@contoso.example\r\nBcc: victim@evil.example"
	err = s.Send(context.Background(), m)
	if !approvals.IsPermanentDelivery(err) {
		t.Errorf("recipient with a line break: error %v, want permanent", err)
	}
	m.To = "rev@contoso.example"
	if err := s.Send(context.Background(), m); err != nil {
		t.Fatal(err)
	}
	got = srv.Messages()
	msg, _ = netmail.ReadMessage(bytes.NewReader(got[len(got)-1].Data))
	if msg.Header.Get("Bcc") != "" || len(got[len(got)-1].To) != 1 {
		t.Errorf("a subject added a header: %v", msg.Header)
	}
}

func TestNewSMTPChecks(t *testing.T) {
	for name, cfg := range map[string]mail.SMTPConfig{
		"no port":                {Addr: "smtp.example.com", From: "a@b.example"},
		"bad tls":                {Addr: "smtp.example.com:587", TLS: "ssl", From: "a@b.example"},
		"clear text credentials": {Addr: "smtp.example.com:25", TLS: mail.TLSNone, Username: "u", Password: "p", From: "a@b.example"},
		"username alone":         {Addr: "smtp.example.com:587", Username: "u", From: "a@b.example"},
		"bad from":               {Addr: "smtp.example.com:587", From: "not an address"},
		"from with a line break": {Addr: "smtp.example.com:587", From: "\"A\r\nBcc: x@y\" <a@b.example>"},
	} {
		if _, err := mail.NewSMTP(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
	if _, err := mail.NewSMTP(mail.SMTPConfig{Addr: "127.0.0.1:25", TLS: mail.TLSNone, Username: "u", Password: "p", From: "a@b.example"}); err != nil {
		t.Errorf("loopback clear text refused: %v", err)
	}
}
