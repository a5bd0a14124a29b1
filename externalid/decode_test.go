package externalid

import (
	"reflect"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// TestDecodeSamples reads the documented payloads and the captured-looking
// ones, whose differences CONTRACT section 2 lists.
func TestDecodeSamples(t *testing.T) {
	tests := []struct {
		file      string
		email     string
		emailAttr string
		identity  *approvals.Identity
		name      string
		locale    string
		claims    map[string]any
	}{
		{"submit_reference.json", "larissa@contoso.com", "",
			&approvals.Identity{Issuer: "contoso.onmicrosoft.com", IssuerAssignedID: "larissa@contoso.com"}, "", "en-us",
			map[string]any{"givenName": "Larissa", "extension_0123456789abcdef0123456789abcdef_graduationYear": float64(2010), "extension_0123456789abcdef0123456789abcdef_onMailingList": false}},
		{"start_reference.json", "larissa@contoso.com", "",
			&approvals.Identity{Issuer: "contoso.onmicrosoft.com", IssuerAssignedID: "larissa@contoso.com"}, "", "en-us",
			map[string]any{"givenName": "Larissa", "extension_0123456789abcdef0123456789abcdef_graduationYear": float64(2010), "extension_0123456789abcdef0123456789abcdef_onMailingList": false}},
		// attributes.email, "@odata.Type", no identities, upper-case names, an array value.
		{"submit_captured_email_attribute.json", "Marie.Curie@Example.org", "email", nil, "Marie Curie", "fr-FR",
			map[string]any{"city": "Paris", "extension_0123456789abcdef0123456789abcdef_Interests": "physics,chemistry"}},
		// attributes.EmailAddress and an emailAddress identity: the identity wins.
		{"submit_captured_emailaddress.json", "jan@example.pl", "",
			&approvals.Identity{Issuer: "contoso.onmicrosoft.com", IssuerAssignedID: "jan@example.pl"}, "", "pl",
			map[string]any{"givenName": "Jan", "surname": "Kowalski"}},
		// {"signInType":"federated","issuer":"mail"}.
		{"start_federated_mail.json", "otto@example.de", "",
			&approvals.Identity{Issuer: approvals.IssuerMail, IssuerAssignedID: "otto@example.de"}, "", "de-DE", nil},
		// Google: the identity is the sub, the email an attribute.
		{"start_google.json", "ana@gmail.com", "email",
			&approvals.Identity{Issuer: approvals.IssuerGoogle, IssuerAssignedID: "110169484474386276334"}, "", "es-ES", nil},
		{"submit_google_no_identities.json", "ana@gmail.com", "email", nil, "Ana García", "es-ES", nil},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			p, err := Decode(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			su := p.SignUp
			if su.Email != tt.email || p.EmailAttribute != tt.emailAttr || su.DisplayName != tt.name || su.Locale != tt.locale {
				t.Errorf("email %q (from %q), name %q, locale %q; want %q (%q), %q, %q", su.Email, p.EmailAttribute, su.DisplayName, su.Locale, tt.email, tt.emailAttr, tt.name, tt.locale)
			}
			if !reflect.DeepEqual(su.Identity, tt.identity) {
				t.Errorf("identity %+v, want %+v", su.Identity, tt.identity)
			}
			if !reflect.DeepEqual(su.Claims, tt.claims) {
				t.Errorf("claims %#v, want %#v", su.Claims, tt.claims)
			}
			if su.Source != approvals.SourceExternalID || p.TenantID != testTenant {
				t.Errorf("source %q, tenant %q", su.Source, p.TenantID)
			}
		})
	}
}

func TestDecodeValues(t *testing.T) {
	tests := []struct {
		name string
		body string
		want map[string]any
		errs map[string]string
	}{
		{"bare values and null dropped", `{"data":{"userSignUpInfo":{"attributes":{"city":"Oslo","x":null,"o":{"value":{"a":1}},"n":{"VALUE":7.5}}}}}`,
			map[string]any{"city": "Oslo", "n": 7.5}, nil},
		{"array of mixed kinds", `{"data":{"userSignUpInfo":{"attributes":{"extension_a_b":{"value":["x",1,true,null]}}}}}`,
			map[string]any{"extension_a_b": "x,1,true"}, nil},
		{"too long value", `{"data":{"userSignUpInfo":{"attributes":{"city":{"value":"` + string(make([]byte, 0)) + long(1025) + `"}}}}}`,
			nil, map[string]string{"city": "too_large"}},
		{"identities of the wrong kind are ignored", `{"data":{"userSignUpInfo":{"identities":{"a":1},"attributes":{"email":{"value":"a@b.example"}}}}}`,
			nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Decode([]byte(tt.body))
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.SignUp.Claims, tt.want) || !reflect.DeepEqual(p.AttributeErrors, tt.errs) {
				t.Errorf("claims %#v errors %v; want %#v %v", p.SignUp.Claims, p.AttributeErrors, tt.want, tt.errs)
			}
		})
	}
	for _, bad := range []string{``, `[]`, `{"data":`, `{} {}`, `{"data":{"userSignUpInfo":{"attributes":[1]}}}`} {
		if _, err := Decode([]byte(bad)); err == nil {
			t.Errorf("Decode(%q) accepted", bad)
		}
	}
}

func long(n int) string {
	b := make([]byte, n)
	for i := range b {
		b[i] = 'a'
	}
	return string(b)
}
