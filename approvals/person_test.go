package approvals

import (
	"strings"
	"testing"
)

func TestPersonKeyFoldsOnlyASCIICase(t *testing.T) {
	tests := []struct {
		a, b string
		same bool
	}{
		{" John@Outlook.com ", "john@outlook.com", true},
		{"\u212aelvin@gmail.com", "kelvin@gmail.com", false},
		{"\u0130nan@example.com", "inan@example.com", false},
		{"JOS\u00c9@example.com", "jos\u00e9@example.com", false},
	}
	for _, tt := range tests {
		if got := PersonKey(tt.a, nil) == PersonKey(tt.b, nil); got != tt.same {
			t.Errorf("PersonKey(%q) == PersonKey(%q): %v; want %v", tt.a, tt.b, got, tt.same)
		}
	}
}

func TestNewPersonWithoutUnicodeRules(t *testing.T) {
	p, err := NewPerson(" Ann@Example.COM ", &Identity{Issuer: "Google", IssuerAssignedID: " g-1 "}, nil)
	if err != nil || p.Email != "Ann@example.com" || *p.Identity != (Identity{Issuer: IssuerGoogle, IssuerAssignedID: "g-1"}) ||
		p.Key != PersonKey("ann@example.com", &Identity{Issuer: "google.com", IssuerAssignedID: "g-1"}) {
		t.Fatalf("NewPerson = %+v, %v", p, err)
	}
	// Without an IDNA conversion a non-ASCII domain cannot be made canonical.
	if _, err := NewPerson("anna@b\u00fccher.de", nil, nil); Code(err) != EInvalid {
		t.Errorf("NewPerson of an IDN domain with ASCIIOnly = %v; want invalid", err)
	}
	for _, bad := range []string{"", "ann", "@example.com", "ann@", "ann@exa_mple.com", "a\xffb@example.com"} {
		if _, err := NewPerson(bad, nil, nil); Code(err) != EInvalid {
			t.Errorf("NewPerson(%q) = %v; want invalid", bad, err)
		}
	}
}

func TestLookalikeWarning(t *testing.T) {
	tests := []struct {
		email string
		want  string // "" for none
	}{
		{"ann@example.com", ""},
		{"jos\u00e9@example.com", ""},
		{"\u0430nn@example.com", "mixes scripts (Cyrillic and Latin)"}, // Cyrillic а
		{"ann@\u0435xample.com", "mixes scripts (Cyrillic and Latin)"},
		{"\u0438\u0432\u0430\u043d@example.com", ""}, // all Cyrillic local part, Latin domain: different parts
		{"\u212aelvin@gmail.com", "looks like an ASCII letter (\u212a, Kelvin sign)"},
		{"\u0131nan@example.com", "dotless i"},
		{"ann@\uff45xample.com", "fullwidth form"},
	}
	for _, tt := range tests {
		got := LookalikeWarning(tt.email)
		if tt.want == "" && got != "" || !strings.Contains(got, tt.want) {
			t.Errorf("LookalikeWarning(%q) = %q; want %q in it", tt.email, got, tt.want)
		}
	}
}
