package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/approvals-dev/approvals/approvals"
)

func TestRequestPageWarnsOfLookalikeAddress(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	tests := []struct {
		email, want string // want "" for no warning
	}{
		{"ann@example.com", ""},
		{"\u0430nn@example.com", "mixes scripts (Cyrillic and Latin)"},
		{"\u212aelvin@gmail.com", "Kelvin sign"},
	}
	for i, tt := range tests {
		r := e.signUp(t0.Add(-time.Duration(i+1)*time.Hour), tt.email, "Ann", nil, nil)
		p := b.get("/requests/" + r.ID)
		if p.resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", tt.email, p.resp.StatusCode)
		}
		warnings := queryAll(t, p.doc, "#lookalike-warning")
		switch {
		case tt.want == "" && len(warnings) != 0:
			t.Errorf("%s: warning %q; want none", tt.email, textOf(warnings[0]))
		case tt.want != "" && (len(warnings) != 1 || !strings.Contains(textOf(warnings[0]), tt.want)):
			t.Errorf("%s: %d warnings; want one saying %q", tt.email, len(warnings), tt.want)
		}
	}
}

// The request page lists the other requests of the same address, whatever
// the identity, with their outcomes, and warns when one was denied.
func TestRequestPageShowsOtherRequestsOfTheAddress(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	google := e.signUp(t0.Add(-3*time.Hour), "ann@example.com", "Ann", nil, &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-1"})
	if _, err := e.svc.Deny(context.Background(), google.ID, reviewer, "not a customer"); err != nil {
		t.Fatal(err)
	}
	otp := e.signUp(t0.Add(-2*time.Hour), "Ann@Example.com", "Ann", nil, &approvals.Identity{Issuer: "mail", IssuerAssignedID: "ann@example.com"})
	e.signUp(t0.Add(-1*time.Hour), "bob@example.com", "Bob", nil, nil)

	p := b.get("/requests/" + otp.ID)
	rows := queryAll(t, p.doc, "ul.others li")
	if len(rows) != 1 || !strings.Contains(textOf(rows[0]), "Google") || !strings.Contains(textOf(rows[0]), "Denied") || !strings.Contains(textOf(rows[0]), "not a customer") {
		t.Fatalf("other requests %d rows: %q", len(rows), textOfAll(rows))
	}
	queryOne(t, p.doc, `ul.others a[href="/requests/`+google.ID+`"]`)
	if w := queryAll(t, p.doc, "#denied-before"); len(w) != 1 || !strings.Contains(textOf(w[0]), "not a customer") {
		t.Errorf("denied-before warning: %d", len(w))
	}
	// The denied request lists the pending one, and no warning about itself.
	p = b.get("/requests/" + google.ID)
	if rows := queryAll(t, p.doc, "ul.others li"); len(rows) != 1 || !strings.Contains(textOf(rows[0]), "Pending") {
		t.Errorf("the denied request's other requests: %q", textOfAll(rows))
	}
	if len(queryAll(t, p.doc, "#denied-before")) != 0 {
		t.Error("a denied request warns of itself")
	}
}

func textOfAll(nodes []*html.Node) []string {
	var out []string
	for _, n := range nodes {
		out = append(out, textOf(n))
	}
	return out
}

// A person on the invitation path whose address Graph invitations refuse
// is flagged on the request page when the request arrives; one who gets
// an account with POST /users is not.
func TestRequestPageFlagsAnAddressThatCannotBeInvited(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	tests := []struct {
		email string
		id    *approvals.Identity
		want  string
	}{
		{"pat+tag@example.com", nil, "contains '+'"},
		{"-pat@example.com", nil, "starts with \"-\""},
		{"pat+tag@example.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g-9"}, ""},
		{"pat.tag@example.com", nil, ""},
	}
	for i, tt := range tests {
		r := e.signUp(t0.Add(-time.Duration(i+1)*time.Minute), tt.email, "Pat", nil, tt.id)
		flags := queryAll(t, b.get("/requests/"+r.ID).doc, "#uninvitable")
		switch {
		case tt.want == "" && len(flags) != 0:
			t.Errorf("%s %v: flagged %q", tt.email, tt.id, textOf(flags[0]))
		case tt.want != "" && (len(flags) != 1 || !strings.Contains(textOf(flags[0]), tt.want)):
			t.Errorf("%s: %d flags; want one saying %q", tt.email, len(flags), tt.want)
		}
	}
}
