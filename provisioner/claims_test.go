package provisioner

import (
	"crypto/sha256"
	"encoding/hex"
	"reflect"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

func TestBranch(t *testing.T) {
	tests := []struct {
		name string
		id   *approvals.Identity
		want approvals.ProvisioningMethod
	}{
		{"no identity (Entra ID, Microsoft account)", nil, approvals.MethodInvitation},
		{"google.com", &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{"google (doc spelling)", &approvals.Identity{Issuer: "google", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{"Google.com", &approvals.Identity{Issuer: "Google.com", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{"facebook.com", &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{"facebook", &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{" FACEBOOK ", &approvals.Identity{Issuer: " FACEBOOK ", IssuerAssignedID: "1"}, approvals.MethodCreateUser},
		{"mail (email OTP)", &approvals.Identity{Issuer: "mail", IssuerAssignedID: "a@b.c"}, approvals.MethodCreateUser},
		{"email", &approvals.Identity{Issuer: "email", IssuerAssignedID: "a@b.c"}, approvals.MethodCreateUser},
		{"empty issuer", &approvals.Identity{}, approvals.MethodInvitation},
		{"other issuer", &approvals.Identity{Issuer: "github.com", IssuerAssignedID: "1"}, approvals.MethodInvitation},
		{"MicrosoftAccount", &approvals.Identity{Issuer: "MicrosoftAccount", IssuerAssignedID: "1"}, approvals.MethodInvitation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &approvals.Request{Email: "a@example.com", Identity: tt.id}
			if got := Branch(r); got != tt.want {
				t.Errorf("Branch = %s, want %s", got, tt.want)
			}
		})
	}
}

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

func TestUserProperties(t *testing.T) {
	ext := "extension_0123456789abcdef0123456789ABCDEF_Role"
	claims := map[string]any{
		"email":                 "a@example.com",
		"displayName":           "John Smith",
		"givenName":             "John",
		"lastName":              "Smith",
		"jobTitle":              "",
		"city":                  "Redmond",
		"country":               "US",
		"postalCode":            98052.0,
		"businessPhones":        "+1 555 0100",
		"ui_locales":            "en-US",
		"step":                  "PostAttributeCollection",
		"client_id":             "x",
		"identities":            []any{},
		"objectId":              "x",
		ext:                     "supplier",
		"extension_nothex_Role": "dropped",
		"extension_0123456789abcdef0123456789abcdef_Flag": true,
	}
	want := map[string]any{
		"displayName":    "John Smith",
		"givenName":      "John",
		"surname":        "Smith",
		"city":           "Redmond",
		"country":        "US",
		"postalCode":     "98052",
		"businessPhones": []string{"+1 555 0100"},
		ext:              "supplier",
		"extension_0123456789abcdef0123456789abcdef_Flag": true,
	}
	if got := UserProperties(claims); !reflect.DeepEqual(got, want) {
		t.Errorf("UserProperties =\n%v\nwant\n%v", got, want)
	}
	// The Graph spelling wins over the alias, whatever the map order.
	for range 20 {
		if got := UserProperties(map[string]any{"lastName": "Alias", "surname": "Graph"}); got["surname"] != "Graph" {
			t.Fatalf("surname = %v", got["surname"])
		}
	}
}

func TestGuestUserBody(t *testing.T) {
	r := &approvals.Request{
		Email:    "Jo+x@Example.com",
		Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "g1"},
		Claims:   map[string]any{"givenName": "Jo", "lastName": "Doe", "ui_locales": "fr-FR"},
	}
	body, err := guestUser(r, "Contoso.onmicrosoft.com")
	if err != nil {
		t.Fatal(err)
	}
	if body["displayName"] != "Jo Doe" || body["mail"] != "Jo+x@Example.com" || body["userType"] != "Guest" ||
		body["accountEnabled"] != true || body["surname"] != "Doe" || body["ui_locales"] != nil ||
		!strings.HasSuffix(body["userPrincipalName"].(string), "#EXT#@contoso.onmicrosoft.com") {
		t.Errorf("body = %v", body)
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
