package mail_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
)

// FuzzRender renders emails of requests with any values a person can type
// and any digest period: it never fails for a valid recipient, the subject
// stays one line, and no value escapes the HTML escaping.
func FuzzRender(f *testing.F) {
	f.Add("Ada Lovelace", "fr-CA", "city", "London", `{"since":"2026-01-02T03:00:00Z","until":"2026-01-02T04:00:00Z"}`)
	f.Add("<script>alert(1)</script>\r\nBcc: x@y", "de;q=0.5,*", "extension_abc_Name", `"><img src=x>`, `{`)
	f.Add("\u2028\x00\xff", "", "", "", `{"since":"x"}`)
	r, err := mail.NewRenderer(mail.Settings{PublicURL: "https://approvals.example.com", SignInURL: "https://apps.example.com"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, name, locale, claim, value, period string) {
		q := &approvals.Request{ID: "r1", Email: "ada@example.com", DisplayName: name, Locale: locale,
			Claims: map[string]any{claim: value}, Decision: &approvals.Decision{Reason: value, ShareReason: true}}
		for _, kind := range mail.Kinds {
			d := &approvals.Delivery{ID: "evt-1.email." + name, Channel: approvals.ChannelEmail, Kind: kind, Recipient: "rev@example.com", Request: q}
			var reqs []*approvals.Request
			if kind == approvals.MailReviewerDigest {
				d.Request, d.Data, reqs = nil, json.RawMessage(period), []*approvals.Request{q}
			}
			m, err := r.Render(d, reqs)
			if err != nil {
				if kind == approvals.MailReviewerDigest {
					continue // a malformed period is refused
				}
				t.Fatalf("%s: %v", kind, err)
			}
			if strings.ContainsAny(m.Subject, "\r\n") {
				t.Fatalf("%s: subject %q has a line break", kind, m.Subject)
			}
			if strings.Contains(m.HTML, "<script") || strings.Contains(m.HTML, "<img") {
				t.Fatalf("%s: unescaped value in the HTML", kind)
			}
			if strings.ContainsAny(m.MessageID, "\r\n <>") || strings.Count(m.MessageID, "@") != 1 {
				t.Fatalf("Message-ID %q", m.MessageID)
			}
		}
	})
}
