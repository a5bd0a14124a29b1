package connector

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// A name or attribute with a control or text-direction character is
// refused at the request step with a ValidationError in the person's
// language, nothing is stored, and the log names the field, never the
// value.
func TestRequestStepRefusesControlAndBidiCharacters(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]any
		locale  string
		wantMsg MessageKey
		field   string
	}{
		{"BidiOverrideInDisplayName", map[string]any{"displayName": "Ann \u202egnp.exe"}, "fr-FR", MsgInvalidName, "displayName"},
		{"EscapeInSurname", map[string]any{"displayName": "Ann", "surname": "Lee\x1b[2J"}, "de", MsgInvalidName, "surname"},
		{"NULInGivenName", map[string]any{"givenName": "A\x00nn"}, "en-US", MsgInvalidName, "givenName"},
		{"NewlineInCity", map[string]any{"displayName": "Ann", "city": "Paris\nFAKE LOG LINE"}, "es", MsgInvalidText, "city"},
		{"C1InExtension", map[string]any{"extension_0123abcd_Role": "x\u009by"}, "pl", MsgInvalidText, "extension_0123abcd_Role"},
		{"BellInLastName", map[string]any{"lastName": "Lee\a"}, "en", MsgInvalidName, "surname"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, approvals.Policy{})
			body := map[string]any{"email": "ann@example.com", "ui_locales": tt.locale}
			for k, v := range tt.claims {
				body[k] = v
			}
			b, _ := json.Marshal(body)
			w := e.post(RequestApprovalPath, b)
			rep := readReply(t, w, RequestApprovalPath)
			if w.Code != 400 || rep.Action != "ValidationError" {
				t.Fatalf("answer %d %s; want 400 ValidationError", w.Code, w.Body)
			}
			lang := tt.locale[:2]
			if want := builtinMessages()[lang][tt.wantMsg]; rep.UserMessage != want {
				t.Errorf("message %q; want the %s text %q", rep.UserMessage, lang, want)
			}
			if n := e.count(); n != 0 {
				t.Errorf("%d requests stored; want none", n)
			}
			if !strings.Contains(e.logs.String(), tt.field+": control or text-direction character") {
				t.Errorf("log does not name the field %s:\n%s", tt.field, e.logs.String())
			}
			for _, v := range tt.claims {
				e.assertNoLeak(v.(string))
			}
		})
	}
	// The same names without the characters are accepted.
	e := newEnv(t, approvals.Policy{})
	w := e.post(RequestApprovalPath, []byte(`{"email":"ann@example.com","displayName":"Ann Lée","city":"Paris"}`))
	if rep := readReply(t, w, RequestApprovalPath); rep.Action != "ShowBlockPage" || e.count() != 1 {
		t.Errorf("a clean sign-up: %d %s, %d stored", w.Code, w.Body, e.count())
	}
}
