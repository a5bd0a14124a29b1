package provisioner

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

func TestGuestUPN(t *testing.T) {
	const tenant = "contoso.onmicrosoft.com"
	tests := []struct {
		email, want string
	}{
		{"johnsmith@outlook.com", "johnsmith_outlook.com#EXT#@contoso.onmicrosoft.com"},
		{"John.Smith@Outlook.COM", "john.smith_outlook.com#EXT#@contoso.onmicrosoft.com"},
		{"  jo@example.com ", "jo_example.com#EXT#@contoso.onmicrosoft.com"},
		{"o'brien@example.ie", "o'brien_example.ie#EXT#@contoso.onmicrosoft.com"},
		{"a-b_c!d^e~f@x.org", "a-b_c!d^e~f_x.org#EXT#@contoso.onmicrosoft.com"},
		// '+' is not allowed: it becomes '_', and the hash keeps
		// john+tag apart from john_tag.
		{"john+tag@example.com", "john_tag_example.com~" + hash8("john+tag@example.com") + "#EXT#@contoso.onmicrosoft.com"},
		{"josé@example.com", "jose_example.com~" + hash8("josé@example.com") + "#EXT#@contoso.onmicrosoft.com"},
		{"JOSÉ@EXAMPLE.COM", "jose_example.com~" + hash8("josé@example.com") + "#EXT#@contoso.onmicrosoft.com"},
		{"jürgen.groß@bücher.de", "jurgen.gross_bucher.de~" + hash8("jürgen.groß@bücher.de") + "#EXT#@contoso.onmicrosoft.com"},
		{"łukasz@example.pl", "lukasz_example.pl~" + hash8("łukasz@example.pl") + "#EXT#@contoso.onmicrosoft.com"},
		{"a#b@example.com", "a_b_example.com~" + hash8("a#b@example.com") + "#EXT#@contoso.onmicrosoft.com"},
		{"a&b*c%d$e@example.com", "a_b_c_d_e_example.com~" + hash8("a&b*c%d$e@example.com") + "#EXT#@contoso.onmicrosoft.com"},
		{"李@example.cn", "__example.cn~" + hash8("李@example.cn") + "#EXT#@contoso.onmicrosoft.com"},
		{`"a@b"@example.com`, "_a_b__example.com~" + hash8(`"a@b"@example.com`) + "#EXT#@contoso.onmicrosoft.com"},
	}
	for _, tt := range tests {
		got, err := GuestUPN(tt.email, tenant)
		if err != nil || got != tt.want {
			t.Errorf("GuestUPN(%q) = %q, %v; want %q", tt.email, got, err, tt.want)
		}
	}

	// Too long: truncated to 64 characters before the @, with the hash.
	long := strings.Repeat("verylongname", 6) + "@example.com"
	got, err := GuestUPN(long, tenant)
	local, _, _ := strings.Cut(got, "@")
	if err != nil || len(local) != MaxUPNLocalLength || !strings.HasSuffix(local, "~"+hash8(long)+"#EXT#") {
		t.Errorf("GuestUPN(long) = %q (%d), %v", got, len(local), err)
	}
	// Exactly 64 fits without a hash.
	fits := strings.Repeat("a", MaxUPNLocalLength-len("#EXT#")-len("_x.io")) + "@x.io"
	if got, _ := GuestUPN(fits, tenant); strings.Contains(got, "~") || len(strings.Split(got, "@")[0]) != 64 {
		t.Errorf("GuestUPN(64) = %q", got)
	}

	for _, bad := range [][2]string{{"no-at-sign", tenant}, {"@example.com", tenant}, {"a@", tenant}, {"a@b.c", ""}, {"a@b.c", "not a domain"}} {
		if got, err := GuestUPN(bad[0], bad[1]); err == nil {
			t.Errorf("GuestUPN(%q, %q) = %q, want an error", bad[0], bad[1], got)
		}
	}
}

// hash8 is the documented disambiguating suffix: the first 8 hex digits
// of the SHA-256 of the lower-cased email.
func hash8(email string) string {
	sum := sha256.Sum256([]byte(strings.ToLower(strings.TrimSpace(email))))
	return hex.EncodeToString(sum[:])[:8]
}

func FuzzGuestUPN(f *testing.F) {
	for _, s := range []string{"johnsmith@outlook.com", "john+tag@example.com", "josé@example.com", "a@b", `"x@y"@z`, strings.Repeat("é", 40) + "@x.y", ".a@b.c"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, email string) {
		got, err := GuestUPN(email, "contoso.onmicrosoft.com")
		if err != nil {
			return
		}
		again, _ := GuestUPN(email, "contoso.onmicrosoft.com")
		if again != got {
			t.Fatalf("not deterministic: %q then %q", got, again)
		}
		local, ok := strings.CutSuffix(got, "#EXT#@contoso.onmicrosoft.com")
		if !ok {
			t.Fatalf("%q does not end with the guest marker and tenant", got)
		}
		if len(local)+len("#EXT#") > MaxUPNLocalLength || local == "" || local[0] == '.' {
			t.Fatalf("%q: bad local part", got)
		}
		for i := 0; i < len(local); i++ {
			if !upnChar(local[i]) {
				t.Fatalf("%q: character %q is not allowed in a UPN", got, local[i])
			}
		}
	})
}

func TestNewGuest(t *testing.T) {
	r := &approvals.Request{
		Email:    "Jo+x@Example.com",
		Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g1"},
		Claims:   map[string]any{"givenName": "Jo", "lastName": "Doe", "ui_locales": "fr-FR", "usageLocation": "FR"},
	}
	g, err := newGuest(r, "Contoso.onmicrosoft.com")
	if err != nil {
		t.Fatal(err)
	}
	if g.DisplayName != "Jo Doe" || g.Mail != "Jo+x@Example.com" || g.Identity != *r.Identity ||
		g.Properties["surname"] != "Doe" || g.Properties["usageLocation"] != "FR" || g.Properties["ui_locales"] != nil ||
		!strings.HasSuffix(g.UserPrincipalName, "#EXT#@contoso.onmicrosoft.com") {
		t.Errorf("guest = %+v", g)
	}
	if _, err := newGuest(&approvals.Request{Email: "x@example.com"}, "contoso.onmicrosoft.com"); err == nil {
		t.Error("a guest without an identity was made")
	}
	if got := displayName(&approvals.Request{Email: "only@example.com"}, nil); got != "only" {
		t.Errorf("displayName fallback = %q", got)
	}
}

func TestFilters(t *testing.T) {
	if got := IdentityFilter(approvals.Identity{Issuer: "Facebook", IssuerAssignedID: "o'1"}); got != "identities/any(c:c/issuerAssignedId eq 'o''1' and c/issuer eq 'facebook.com')" {
		t.Error(got)
	}
	if got := MailFilter("o'brien@example.com"); got != "mail eq 'o''brien@example.com'" {
		t.Error(got)
	}
	if got := OtherMailsFilter("a@b.c"); got != "otherMails/any(x:x eq 'a@b.c')" {
		t.Error(got)
	}
}
