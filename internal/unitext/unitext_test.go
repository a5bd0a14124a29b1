package unitext

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
)

func TestPersonKeysKeepApartWhatUnicodeCaseFoldingMerged(t *testing.T) {
	key := func(t *testing.T, email string) string {
		t.Helper()
		p, err := approvals.NewPerson(email, nil, Rules)
		if err != nil {
			t.Fatalf("NewPerson(%q): %v", email, err)
		}
		return p.Key
	}
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"ASCII case is folded", " Kelvin@Gmail.COM ", "kelvin@gmail.com", true},
		{"the Kelvin sign is not K", "\u212aelvin@gmail.com", "kelvin@gmail.com", false},
		{"dotted capital I is not i", "\u0130nan@example.com", "inan@example.com", false},
		{"dotless i is not i", "\u0131nan@example.com", "inan@example.com", false},
		{"non-ASCII case is kept", "JOS\u00c9@example.com", "jos\u00e9@example.com", false},
		{"NFD and NFC are one address", "jose\u0301@example.com", "jos\u00e9@example.com", true},
		{"an IDN domain and its A-label are one", "anna@B\u00dcCHER.de", "anna@xn--bcher-kva.de", true},
		{"an IDN domain is case-folded by IDNA", "anna@b\u00fccher.DE", "anna@B\u00dcCHER.de", true},
		{"fullwidth domain letters map to ASCII", "anna@\uff45xample.com", "anna@example.com", true},
		{"different domains stay apart", "anna@example.com", "anna@example.org", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := key(t, tt.a), key(t, tt.b)
			if (a == b) != tt.same {
				t.Fatalf("keys %q and %q: same=%v, want %v", a, b, a == b, tt.same)
			}
		})
	}
}

func TestCanonicalEmail(t *testing.T) {
	tests := []struct{ in, want string }{
		{" Ann@Example.COM ", "Ann@example.com"},
		{"anna@B\u00dcCHER.de", "anna@xn--bcher-kva.de"},
		{"jose\u0301@Example.com", "jos\u00e9@example.com"},
		{"a@xn--bcher-kva.DE", "a@xn--bcher-kva.de"},
	}
	for _, tt := range tests {
		if got, err := approvals.CanonicalEmail(tt.in, Rules); err != nil || got != tt.want {
			t.Errorf("CanonicalEmail(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
	for _, bad := range []string{"no-at", "a@", "@x.com", "a@exa mple.com", "a@-x.com", "a@x..com", "a@\u202eevil.com", "a@xn--zz.com"} {
		if got, err := approvals.CanonicalEmail(bad, Rules); err == nil {
			t.Errorf("CanonicalEmail(%q) = %q, want an error", bad, got)
		} else if approvals.Code(err) != approvals.EInvalid {
			t.Errorf("CanonicalEmail(%q): code %s, want invalid", bad, approvals.Code(err))
		}
	}
}

// FuzzPersonKey holds the person rule to its promises on any input: the
// canonical form is a fixed point, valid UTF-8, with a lower-case ASCII
// domain.
func FuzzPersonKey(f *testing.F) {
	for _, s := range []string{"Ann@Example.com", "\u212aelvin@gmail.com", "jose\u0301@B\u00dcCHER.de", "a@xn--bcher-kva.de", "a@@b", "\u0130@x.y"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		p, err := approvals.NewPerson(email, nil, Rules)
		if err != nil {
			return
		}
		if utf8.ValidString(email) && !utf8.ValidString(p.Email) {
			t.Fatalf("NewPerson(%q).Email = %q is not valid UTF-8", email, p.Email)
		}
		domain := p.Email[strings.LastIndexByte(p.Email, '@')+1:]
		for i := 0; i < len(domain); i++ {
			if c := domain[i]; c >= utf8.RuneSelf || ('A' <= c && c <= 'Z') {
				t.Fatalf("NewPerson(%q) domain %q is not lower-case ASCII", email, domain)
			}
		}
		again, err := approvals.NewPerson(p.Email, nil, Rules)
		if err != nil || again.Email != p.Email || again.Key != p.Key {
			t.Fatalf("canonical %q is not a fixed point: %q, %v", p.Email, again.Email, err)
		}
	})
}
