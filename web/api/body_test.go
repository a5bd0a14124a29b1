package api

import (
	"context"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// A member given twice is refused on every route that takes a body,
// instead of taking the last one (two "email" members used to invite the
// second address).
func TestDuplicateMembersAreRefused(t *testing.T) {
	e := newEnv(t)
	r := e.signUp("twice@example.com")
	for _, tt := range []struct{ path, body, member string }{
		{"/api/v1/requests/" + r.ID + "/approve", `{"reason":"ok","reason":"ok"}`, `"reason"`},
		{"/api/v1/requests/" + r.ID + "/deny", `{"reason":"spam","reason":"partner"}`, `"reason"`},
		{"/api/v1/requests/" + r.ID + "/reopen", `{"reason":"a","reason":"b"}`, `"reason"`},
	} {
		e.do("POST", tt.path, tt.body).wantError(t, 400, "invalid", tt.member, "more than once")
	}
	if got, err := e.store.Get(context.Background(), r.ID); err != nil || got.Status != approvals.StatusPending {
		t.Errorf("a refused body changed the request: %v %v", got, err)
	}

	inv := inviteEnv(t)
	for _, tt := range []struct{ body, member string }{
		{`{"email":"alice@fabrikam.example","email":"mallory@evil.example"}`, `"email"`},
		{`{"email":"a@fabrikam.example","attributes":{"city":"Oslo","city":"Bergen"}}`, `"attributes.city"`},
		{`{"email":"a@fabrikam.example","group_ids":["` + groupA + `"],"group_ids":[]}`, `"group_ids"`},
	} {
		inv.do("POST", "/api/v1/invitations", tt.body).wantError(t, 400, "invalid", tt.member, "more than once")
	}
	if calls := inv.graph.Calls(); len(calls) != 0 {
		t.Errorf("a body with a repeated member reached the directory: %v", calls)
	}
}

// Errors about a body name the member and the JSON type expected, in the
// caller's terms, never a Go type.
func TestBodyErrorsSpeakJSON(t *testing.T) {
	e := newEnv(t)
	r := e.signUp("types@example.com")
	approve := "/api/v1/requests/" + r.ID + "/approve"
	for _, tt := range []struct{ body, want string }{
		{`[]`, "the request body must be a JSON object, not an array"},
		{`"approve"`, "the request body must be a JSON object, not a string"},
		{`{"reason":42}`, `field "reason" must be a string, not a number`},
		{`{"reason":["a"]}`, `field "reason" must be a string, not an array`},
		{`{"reason":true}`, `field "reason" must be a string, not a boolean`},
		{`{"Reason":"x"}`, `unknown field "Reason" in the request body; the fields here are reason`},
		{`{"reason":"x"`, "it ends before the JSON object is complete"},
		{`{"reason":"x"}]`, "unexpected data after the JSON object"},
	} {
		msg := e.do("POST", approve, tt.body).wantError(t, 400, "invalid").Message
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q, want %q", tt.body, msg, tt.want)
		}
		if leak := goInternals(msg); leak != "" {
			t.Errorf("%s: message %q names Go's %q", tt.body, msg, leak)
		}
	}

	inv := inviteEnv(t)
	for _, tt := range []struct{ body, want string }{
		{`{"email":"a@fabrikam.example","send_invitation_message":"yes"}`, `field "send_invitation_message" must be true or false, not a string`},
		{`{"email":"a@fabrikam.example","group_ids":[42]}`, `field "group_ids[0]" must be a string, not a number`},
		{`{"email":"a@fabrikam.example","group_ids":"` + groupA + `"}`, `field "group_ids" must be an array, not a string`},
		{`{"email":"a@fabrikam.example","attributes":["city"]}`, `field "attributes" must be an object, not an array`},
		{`{"email":["a@fabrikam.example"]}`, `field "email" must be a string, not an array`},
	} {
		msg := inv.do("POST", "/api/v1/invitations", tt.body).wantError(t, 400, "invalid").Message
		if !strings.Contains(msg, tt.want) {
			t.Errorf("%s: message %q, want %q", tt.body, msg, tt.want)
		}
		if leak := goInternals(msg); leak != "" {
			t.Errorf("%s: message %q names Go's %q", tt.body, msg, leak)
		}
	}
}

// Invalid UTF-8 in a string is read as U+FFFD, as encoding/json always
// did: stored text is valid UTF-8, and such a body is not refused.
func TestBodyInvalidUTF8BecomesReplacementCharacter(t *testing.T) {
	var b decisionBody
	if err := decodeJSON([]byte("{\"reason\":\"a\xffb\"}"), &b); err != nil {
		t.Fatal(err)
	}
	if b.Reason != "a\uFFFDb" {
		t.Errorf("reason %q", b.Reason)
	}
}
