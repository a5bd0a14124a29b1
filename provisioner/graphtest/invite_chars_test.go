package graphtest_test

import (
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// The fake refuses exactly the invitation addresses CONTRACT section 3
// documents, with Graph's error, and accepts the rest; approvals'
// InvitationProblem, which flags people at arrival, agrees with it on
// every case.
func TestInvitationRefusesTheDocumentedCharacters(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	c := newClient(t, srv)
	var cases []struct {
		email string
		ok    bool
	}
	for _, ch := range "~!#$%^&*()+=[]{}\\/|;:\"<>?," {
		cases = append(cases, struct {
			email string
			ok    bool
		}{"a" + string(ch) + "b@example.com", false})
	}
	for email, ok := range map[string]bool{
		".ab@example.com": false, "ab.@example.com": false, "-ab@example.com": false, "ab-@example.com": false,
		"a.b@example.com": true, "a-b@example.com": true, "_ab_@example.com": true, "a'b@example.com": true, "ab@sub-domain.example.com": true,
	} {
		cases = append(cases, struct {
			email string
			ok    bool
		}{email, ok})
	}
	for _, tt := range cases {
		r := c.do("POST", "/invitations", map[string]any{"invitedUserEmailAddress": tt.email, "inviteRedirectUrl": "https://x.example"})
		if tt.ok && r.status != 201 {
			t.Errorf("invite %q: %d %v; want 201", tt.email, r.status, r.body)
		}
		if !tt.ok {
			e, _ := r.body["error"].(map[string]any)
			if r.status != 400 || e["code"] != "BadRequest" || !strings.Contains(e["message"].(string), "invitedUserEmailAddress") {
				t.Errorf("invite %q: %d %v; want 400 BadRequest about invitedUserEmailAddress", tt.email, r.status, r.body)
			}
		}
		// mail.ParseAddress refuses some of these outright ("a(b)" is a
		// comment, "a<b" no address); approvals' rule must still agree.
		if got := approvals.InvitationProblem(tt.email) == ""; got != tt.ok {
			t.Errorf("approvals.InvitationProblem(%q) accepts=%v; the fake Graph accepts=%v", tt.email, got, tt.ok)
		}
	}
}
