package mail_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
)

var testAt = time.Date(2026, 3, 4, 10, 30, 0, 0, time.UTC)

func newRenderer(t *testing.T, dir string) *mail.Renderer {
	t.Helper()
	r, err := mail.NewRenderer(mail.Settings{PublicURL: "https://approvals.example.com/base", SignInURL: "https://myapps.microsoft.com/?tenantid=t1", TemplatesDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func sampleRequest(locale string) *approvals.Request {
	return &approvals.Request{
		ID: "req-1", Email: "ada@contoso.example", DisplayName: "Ada Lovelace",
		Identity:  &approvals.Identity{Issuer: "Google", IssuerAssignedID: "42"},
		Claims:    map[string]any{"city": "London", "extension_0123abcd_Department": "Engines", "displayName": "Ada Lovelace"},
		Locale:    locale,
		Status:    approvals.StatusPending,
		CreatedAt: testAt,
	}
}

func delivery(kind string, r *approvals.Request) *approvals.Delivery {
	return &approvals.Delivery{
		ID: approvals.ChildDeliveryID("evt-7", approvals.ChannelEmail, "rev@contoso.example"), Channel: approvals.ChannelEmail,
		Kind: kind, RequestID: r.ID, Recipient: "rev@contoso.example", Request: r,
		Event: &approvals.Event{Seq: 7, At: testAt, RequestID: r.ID},
	}
}

// subjects holds the expected subject start of some kinds per language: a
// check that the language really changes.
var subjects = map[string]map[string]string{
	"en": {approvals.MailReviewerPending: "Sign-up request to review: Ada Lovelace", approvals.MailApplicantApproved: "Your account is ready"},
	"fr": {approvals.MailReviewerPending: "Demande d'inscription à examiner: Ada Lovelace", approvals.MailApplicantApproved: "Votre compte est prêt"},
	"pl": {approvals.MailReviewerPending: "Wniosek o rejestrację do rozpatrzenia: Ada Lovelace", approvals.MailApplicantApproved: "Twoje konto jest gotowe"},
	"de": {approvals.MailReviewerPending: "Registrierungsanfrage zur Prüfung: Ada Lovelace", approvals.MailApplicantApproved: "Ihr Konto ist bereit"},
	"es": {approvals.MailReviewerPending: "Solicitud de registro para revisar: Ada Lovelace", approvals.MailApplicantApproved: "Su cuenta está lista"},
}

func TestRenderEveryKindEveryLanguage(t *testing.T) {
	r := newRenderer(t, "")
	for lang, want := range subjects {
		for _, kind := range mail.Kinds {
			t.Run(lang+"/"+kind, func(t *testing.T) {
				q := sampleRequest(lang + "-XX")
				d := delivery(kind, q)
				var reqs []*approvals.Request
				if kind == approvals.MailReviewerDigest {
					d.Request, d.Data = nil, json.RawMessage(`{"since":"2026-03-04T10:00:00Z","until":"2026-03-04T11:00:00Z"}`)
					reqs = []*approvals.Request{q}
				}
				m, err := r.Render(d, reqs)
				if err != nil {
					t.Fatal(err)
				}
				if kind != approvals.MailReviewerDigest && m.Lang != lang {
					t.Errorf("Lang = %q, want %q", m.Lang, lang)
				}
				if w, ok := want[kind]; ok && m.Subject != w {
					t.Errorf("Subject = %q, want %q", m.Subject, w)
				}
				if m.Subject == "" || m.Text == "" || !strings.Contains(m.HTML, "<table") {
					t.Errorf("empty part: subject %q, text %d bytes, html %d bytes", m.Subject, len(m.Text), len(m.HTML))
				}
				for _, bad := range []string{"<script", "<img", "<link", "@import", "{{", "ZgotmplZ", "<no value>"} {
					if strings.Contains(m.HTML, bad) || strings.Contains(m.Text, bad) {
						t.Errorf("message contains %q", bad)
					}
				}
				if strings.HasPrefix(kind, "reviewer.") {
					for _, s := range []string{"Ada Lovelace", "ada@contoso.example", "google.com", "contoso.example", "2026-03-04 10:30 UTC", "Department", "Engines", "London",
						"https://approvals.example.com/base/requests/req-1?decision=approve", "https://approvals.example.com/base/requests/req-1?decision=deny"} {
						if !strings.Contains(m.Text, s) {
							t.Errorf("text lacks %q:\n%s", s, m.Text)
						}
					}
					if !strings.Contains(m.HTML, `href="https://approvals.example.com/base/requests/req-1?decision=approve"`) {
						t.Errorf("html lacks the approve button:\n%s", m.HTML)
					}
				}
			})
		}
	}
}

func TestRenderLanguageFallbackAndLists(t *testing.T) {
	r := newRenderer(t, "")
	for _, tc := range []struct{ locale, want string }{
		{"", "en"}, {"xx-YY", "en"}, {"fr-CA", "fr"}, {"nl-NL pl-PL", "pl"}, {"de;q=0.5,es;q=0.9", "es"}, {"*", "en"},
	} {
		m, err := r.Render(delivery(approvals.MailApplicantReceived, sampleRequest(tc.locale)), nil)
		if err != nil {
			t.Fatal(err)
		}
		if m.Lang != tc.want {
			t.Errorf("locale %q: Lang = %q, want %q", tc.locale, m.Lang, tc.want)
		}
	}
}

func TestRenderEscapesUserValues(t *testing.T) {
	r := newRenderer(t, "")
	q := sampleRequest("en")
	q.DisplayName = "<script>alert(1)</script>\r\nBcc: eve@evil.example"
	q.Claims["city"] = `"><img src=x onerror=alert(1)>`
	m, err := r.Render(delivery(approvals.MailReviewerPending, q), nil)
	if err != nil {
		t.Fatal(err)
	}
	if strings.ContainsAny(m.Subject, "\r\n") {
		t.Errorf("subject has a line break: %q", m.Subject)
	}
	if strings.Contains(m.HTML, "<script>") || strings.Contains(m.HTML, "<img") {
		t.Errorf("html not escaped:\n%s", m.HTML)
	}
	if !strings.Contains(m.HTML, "&lt;script&gt;") {
		t.Errorf("html lacks the escaped name")
	}
	if strings.Contains(m.Text, "\nBcc:") || strings.Contains(m.Text, "\r") {
		t.Errorf("text lets a value start a line:\n%s", m.Text)
	}
}

func TestRenderApprovedLink(t *testing.T) {
	r := newRenderer(t, "")
	for _, tc := range []struct {
		name   string
		change func(q *approvals.Request)
		want   string
		again  bool
	}{
		{"invitation", func(q *approvals.Request) {
			q.Provisioning = approvals.Provisioning{State: approvals.ProvisioningSucceeded, Method: approvals.MethodInvitation, RedeemURL: "https://login.microsoftonline.com/redeem?rd=abc"}
		}, "https://login.microsoftonline.com/redeem?rd=abc", false},
		{"create user", func(q *approvals.Request) {
			q.Provisioning = approvals.Provisioning{State: approvals.ProvisioningSucceeded, Method: approvals.MethodCreateUser}
		}, "https://myapps.microsoft.com/?tenantid=t1", false},
		{"by entra", func(q *approvals.Request) { q.Provisioning.State = approvals.ProvisioningByEntra }, "https://myapps.microsoft.com/?tenantid=t1", true},
		{"external id", func(q *approvals.Request) { q.Source = mail.SourceExternalID }, "https://myapps.microsoft.com/?tenantid=t1", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			q := sampleRequest("en")
			q.Status = approvals.StatusApproved
			tc.change(q)
			m, err := r.Render(delivery(approvals.MailApplicantApproved, q), nil)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(m.Text, tc.want) {
				t.Errorf("text lacks %q:\n%s", tc.want, m.Text)
			}
			if got := strings.Contains(m.Text, "Sign up again"); got != tc.again {
				t.Errorf("sign up again = %v, want %v:\n%s", got, tc.again, m.Text)
			}
		})
	}
}

func TestRenderDeniedReasonOnlyWhenShared(t *testing.T) {
	r := newRenderer(t, "")
	for _, share := range []bool{false, true} {
		q := sampleRequest("de")
		q.Status = approvals.StatusDenied
		q.Decision = &approvals.Decision{By: "rev", At: testAt, Reason: "Not a partner <b>domain</b>", ShareReason: share}
		m, err := r.Render(delivery(approvals.MailApplicantDenied, q), nil)
		if err != nil {
			t.Fatal(err)
		}
		if got := strings.Contains(m.Text, "Not a partner"); got != share {
			t.Errorf("share %v: reason in text = %v", share, got)
		}
		if got := strings.Contains(m.HTML, "Not a partner &lt;b&gt;domain&lt;/b&gt;"); got != share {
			t.Errorf("share %v: escaped reason in html = %v", share, got)
		}
	}
}

func TestMessageIDStableAndValid(t *testing.T) {
	r := newRenderer(t, "")
	d := delivery(approvals.MailReviewerPending, sampleRequest("en"))
	a, err := r.Render(d, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := r.Render(d, nil)
	if a.MessageID != b.MessageID {
		t.Errorf("Message-ID changed: %q, %q", a.MessageID, b.MessageID)
	}
	if want := "evt-7.email.rev=40contoso.example@approvals.example.com"; a.MessageID != want {
		t.Errorf("Message-ID = %q, want %q", a.MessageID, want)
	}
	if mail.MessageID("a=40b", "h") == mail.MessageID("a@b", "h") {
		t.Error("two IDs give one Message-ID")
	}
}

func TestRenderRefusesBadRecipient(t *testing.T) {
	r := newRenderer(t, "")
	for _, to := range []string{"", "a@b\r\nBcc: c@d", "Eve <eve@example.com>", "a@b,c@d", "nobody"} {
		d := delivery(approvals.MailApplicantReceived, sampleRequest("en"))
		d.Recipient = to
		if _, err := r.Render(d, nil); err == nil {
			t.Errorf("recipient %q accepted", to)
		}
	}
}

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestTemplateOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"applicant.received.subject.txt": `{{if eq .Lang "fr"}}Bien reçu{{else}}Got it{{end}}, {{.Request.Name}}`,
		"applicant.received.txt":         `{{define "content"}}Custom text for {{.Request.Email}}{{end}}`,
		"applicant.received.html":        `{{define "content"}}<p>Custom html for {{.Request.Name}}</p>{{end}}`,
	})
	r := newRenderer(t, dir)
	q := sampleRequest("fr")
	q.DisplayName = "A & B"
	m, err := r.Render(delivery(approvals.MailApplicantReceived, q), nil)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != "Bien reçu, A & B" || !strings.Contains(m.Text, "Custom text for ada@contoso.example") || !strings.Contains(m.HTML, "<p>Custom html for A &amp; B</p>") {
		t.Errorf("override not used: %q\n%s\n%s", m.Subject, m.Text, m.HTML)
	}
	if !strings.Contains(m.HTML, "<table") {
		t.Error("the built-in layout is not kept around an overridden content")
	}
}

func TestTemplateOverrideErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"syntax", map[string]string{"reviewer.pending.html": "{{define \"content\"}}\n<p>\n{{if .Request}}\n{{end}}"},
			[]string{"reviewer.pending.html", ":4"}},
		{"unknown field", map[string]string{"applicant.denied.txt": "{{define \"content\"}}\n{{.Nope}}{{end}}"},
			[]string{"applicant.denied.txt", ":2", "Nope"}},
		{"unknown file", map[string]string{"reviewer.pendng.html": "x"}, []string{"reviewer.pendng.html", "not a known template name"}},
		{"subject", map[string]string{"reviewer.digest.subject.txt": "{{.T.missing"}, []string{"reviewer.digest.subject.txt", ":1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mail.NewRenderer(mail.Settings{PublicURL: "https://a.example", TemplatesDir: writeFiles(t, tc.files)})
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	if _, err := mail.NewRenderer(mail.Settings{PublicURL: "https://a.example", TemplatesDir: filepath.Join(t.TempDir(), "missing")}); err == nil {
		t.Error("a missing directory is accepted")
	}
	if _, err := mail.NewRenderer(mail.Settings{PublicURL: "not a url"}); err == nil {
		t.Error("a bad public URL is accepted")
	}
}

// recorder is a Transport keeping what it is given.
type recorder struct{ got []*mail.Message }

func (r *recorder) Send(_ context.Context, m *mail.Message) error {
	r.got = append(r.got, m)
	return nil
}

func TestCourierDigest(t *testing.T) {
	r := newRenderer(t, "")
	var asked [2]time.Time
	pending := []*approvals.Request{sampleRequest("en"), sampleRequest("en")}
	pending[1].ID, pending[1].Email, pending[1].DisplayName = "req-2", "grace@example.org", "Grace Hopper"
	rec := &recorder{}
	c := mail.NewCourier(r, rec, func(_ context.Context, since, until time.Time) ([]*approvals.Request, error) {
		asked = [2]time.Time{since, until}
		return pending, nil
	})
	since := testAt.Truncate(time.Hour)
	d := &approvals.Delivery{
		ID: approvals.ChildDeliveryID("digest-1772618400", approvals.ChannelEmail, "rev@contoso.example"), Channel: approvals.ChannelEmail,
		Kind: approvals.MailReviewerDigest, Recipient: "rev@contoso.example",
		Data: json.RawMessage(`{"since":"` + since.Format(time.RFC3339) + `","until":"` + since.Add(time.Hour).Format(time.RFC3339) + `"}`),
	}
	if err := c.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if !asked[0].Equal(since) || !asked[1].Equal(since.Add(time.Hour)) {
		t.Errorf("asked for %v, want [%v, %v)", asked, since, since.Add(time.Hour))
	}
	if len(rec.got) != 1 {
		t.Fatalf("%d messages, want one digest", len(rec.got))
	}
	m := rec.got[0]
	if m.Subject != "Sign-up requests to review (2)" {
		t.Errorf("Subject = %q", m.Subject)
	}
	for _, s := range []string{"Ada Lovelace", "Grace Hopper", "/requests/req-1?decision=approve", "/requests/req-2?decision=deny", "2026-03-04 10:00 UTC"} {
		if !strings.Contains(m.Text, s) || !strings.Contains(m.HTML, s) {
			t.Errorf("digest lacks %q", s)
		}
	}

	pending = nil
	if err := c.Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if len(rec.got) != 1 {
		t.Errorf("an empty digest was sent")
	}
}

func TestCourierRefusesPermanently(t *testing.T) {
	c := mail.NewCourier(newRenderer(t, ""), &recorder{}, nil)
	for name, d := range map[string]*approvals.Delivery{
		"webhook channel": {ID: "x", Channel: approvals.ChannelWebhook, Kind: approvals.MailApplicantReceived, Recipient: "a@b.example", Request: sampleRequest("en")},
		"unknown kind":    {ID: "x", Channel: approvals.ChannelEmail, Kind: "applicant.welcome", Recipient: "a@b.example", Request: sampleRequest("en")},
		"no request":      {ID: "x", Channel: approvals.ChannelEmail, Kind: approvals.MailApplicantReceived, Recipient: "a@b.example"},
		"bad digest":      {ID: "x", Channel: approvals.ChannelEmail, Kind: approvals.MailReviewerDigest, Recipient: "a@b.example", Data: json.RawMessage(`{`)},
	} {
		err := c.Deliver(context.Background(), d)
		var de *approvals.DeliveryError
		if !errors.As(err, &de) || !de.Permanent {
			t.Errorf("%s: error %v, want a permanent DeliveryError", name, err)
		}
	}
}
