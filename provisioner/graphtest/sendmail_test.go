package graphtest_test

import (
	"testing"

	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// POST /users/{id}/sendMail answers as CONTRACT section 7 says.
func TestSendMailContract(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	srv.AddUser(graphtest.User{UserPrincipalName: "approvals@contoso.example", Mail: "approvals@contoso.example", UserType: "Member"})
	c := newClient(t, srv)
	message := func(headers ...map[string]any) map[string]any {
		m := map[string]any{
			"subject":      "Hello",
			"body":         map[string]any{"contentType": "HTML", "content": "<p>Hi</p>"},
			"toRecipients": []any{map[string]any{"emailAddress": map[string]any{"address": "ada@example.com"}}},
		}
		if len(headers) > 0 {
			var hs []any
			for _, h := range headers {
				hs = append(hs, h)
			}
			m["internetMessageHeaders"] = hs
		}
		return map[string]any{"message": m, "saveToSentItems": false}
	}
	for _, tc := range []struct {
		name, path string
		body       map[string]any
		status     int
		code       string
	}{
		{"accepted", "/users/approvals@contoso.example/sendMail", message(map[string]any{"name": "X-Approvals", "value": "1"}), 202, ""},
		{"no mailbox", "/users/nobody@contoso.example/sendMail", message(), 404, "ErrorInvalidUser"},
		{"header without X-", "/users/approvals@contoso.example/sendMail", message(map[string]any{"name": "Auto-Submitted", "value": "auto-generated"}), 400, "ErrorInvalidInternetMessageHeader"},
		{"no recipient", "/users/approvals@contoso.example/sendMail", map[string]any{"message": map[string]any{"subject": "x", "body": map[string]any{"contentType": "Text", "content": "x"}}}, 400, "ErrorInvalidRecipients"},
	} {
		r := c.do("POST", tc.path, tc.body)
		if r.status != tc.status || r.errorCode() != tc.code {
			t.Errorf("%s: %d %q, want %d %q", tc.name, r.status, r.errorCode(), tc.status, tc.code)
		}
	}
	if n := len(srv.SentMails()); n != 1 {
		t.Errorf("%d sent, want 1", n)
	}
	srv.SetPermissions(graphtest.PermUserReadWriteAll)
	if r := c.do("POST", "/users/approvals@contoso.example/sendMail", message()); r.status != 403 || r.errorCode() != "ErrorAccessDenied" {
		t.Errorf("without Mail.Send: %d %q", r.status, r.errorCode())
	}
}
