package connector

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/approvals-dev/approvals/approvals"
)

func TestDecodeTestdata(t *testing.T) {
	const ext = "extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_"
	fb := &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "0123456789"}
	tests := map[string]approvals.SignUp{
		"check-status-facebook.json": {Email: johnEmail, DisplayName: "John Smith", Identity: fb, Locale: "en-US",
			Claims: map[string]any{"displayName": "John Smith", "givenName": "John", "surname": "Smith"}},
		"check-status-entra.json": {Email: johnEmail, DisplayName: "John Smith", Locale: "en-US",
			Claims: map[string]any{"displayName": "John Smith", "givenName": "John", "surname": "Smith"}},
		"check-status-google.json": {Email: "ana.garcia@gmail.com", DisplayName: "Ana García", Locale: "es-ES",
			Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "104598273645123456789"},
			Claims:   map[string]any{"displayName": "Ana García", "givenName": "Ana", "surname": "García"}},
		"request-approval-facebook.json": {Email: johnEmail, DisplayName: "John Smith", Identity: fb, Locale: "en-US",
			Claims: map[string]any{"displayName": "John Smith", "givenName": "John", "surname": "Smith", "jobTitle": "Supplier",
				"streetAddress": "1000 Microsoft Way", "city": "Seattle", "postalCode": "12345", "state": "Washington",
				"country": "United States", ext + "CustomAttribute1": "custom attribute value", ext + "CustomAttribute2": "custom attribute value"}},
		"request-approval-provisioning-facebook.json": {Email: "johnsmith@outlook.com", DisplayName: "John Smith", Identity: fb, Locale: "en-US",
			Claims: map[string]any{"displayName": "John Smith", "city": "Redmond", ext + "CustomAttribute": "custom attribute value"}},
		"request-approval-entra.json": {Email: johnEmail, DisplayName: "John Smith", Locale: "en-US",
			Claims: map[string]any{"displayName": "John Smith", "city": "Redmond", ext + "CustomAttribute": "custom attribute value"}},
		"request-approval-google.json": {Email: "ana.garcia@gmail.com", DisplayName: "Ana García", Locale: "es-ES",
			Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "104598273645123456789"},
			Claims: map[string]any{"displayName": "Ana García", "givenName": "Ana", "surname": "García", "jobTitle": "Ingeniera",
				"city": "Madrid", "country": "Spain", ext + "Role": "supplier"}},
		"request-approval-mail.json": {Email: "jan.kowalski@example.pl", DisplayName: "Jan Kowalski", Locale: "pl",
			Identity: &approvals.Identity{Issuer: "mail", IssuerAssignedID: "jan.kowalski@example.pl"},
			Claims:   map[string]any{"displayName": "Jan Kowalski", "givenName": "Jan", "surname": "Kowalski", "city": "Kraków"}},
		"request-approval-lastname.json": {Email: "marie.dupont@example.fr", DisplayName: "Marie Dupont", Locale: "fr-FR",
			Identity: &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "9876543210"},
			Claims:   map[string]any{"displayName": "Marie Dupont", "givenName": "Marie", "surname": "Dupont"}},
		"request-approval-b2c-extras.json": {Email: "max.mustermann@example.de", DisplayName: "Max Mustermann", Locale: "de-DE",
			Claims: map[string]any{"displayName": "Max Mustermann", ext + "Newsletter": true, ext + "EmployeeCount": float64(42)}},
	}
	d := NewDecoder()
	for _, name := range testdataFiles(t, "*.json") {
		want, ok := tests[name]
		if !ok {
			t.Errorf("testdata %s has no expectation", name)
			continue
		}
		got, err := d.Decode(readTestdata(t, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s:\n got %+v %+v\nwant %+v %+v", name, got, got.Identity, want, want.Identity)
		}
	}
}

func TestDecodeRules(t *testing.T) {
	tests := []struct {
		name   string
		body   string
		check  func(t *testing.T, su approvals.SignUp)
		key    MessageKey // the refusal; "" for success
		locale string     // of the refusal
	}{
		{name: "minimal", body: `{"email":"a@example.com"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Email != "a@example.com" || su.Claims != nil || su.Identity != nil || su.Locale != "" {
				t.Errorf("%+v", su)
			}
		}},
		{name: "surname wins over lastName", body: `{"email":"a@example.com","lastName":"Old","surname":"New"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Claims["surname"] != "New" || len(su.Claims) != 1 {
				t.Errorf("%v", su.Claims)
			}
		}},
		{name: "lastName before surname", body: `{"email":"a@example.com","surname":"New","lastName":"Old"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Claims["surname"] != "New" || len(su.Claims) != 1 {
				t.Errorf("%v", su.Claims)
			}
		}},
		{name: "null, objects and arrays dropped", body: `{"email":"a@example.com","city":null,"x":{"y":[1,2]},"z":[],"lastName":null,"displayName":null}`,
			check: func(t *testing.T, su approvals.SignUp) {
				if su.Claims != nil {
					t.Errorf("%v", su.Claims)
				}
			}},
		{name: "B2C members dropped", body: `{"email":"a@example.com","step":"PostFederationSignup","client_id":"abc","ui_locales":"pl"}`,
			check: func(t *testing.T, su approvals.SignUp) {
				if su.Claims != nil || su.Locale != "pl" {
					t.Errorf("%+v", su)
				}
			}},
		{name: "names are case-sensitive", body: `{"email":"a@example.com","Email":"b@example.com","EMAIL":"c"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Email != "a@example.com" || su.Claims["Email"] != "b@example.com" || su.Claims["EMAIL"] != "c" {
				t.Errorf("%+v", su)
			}
		}},
		{name: "extension names kept exactly", body: `{"email":"a@example.com","extension_0123456789abcdef0123456789ABCDEF_Role":"x","extension_Role":1.5,"Extension_x":false}`,
			check: func(t *testing.T, su approvals.SignUp) {
				want := map[string]any{"extension_0123456789abcdef0123456789ABCDEF_Role": "x", "extension_Role": 1.5, "Extension_x": false}
				if !reflect.DeepEqual(su.Claims, want) {
					t.Errorf("%v", su.Claims)
				}
			}},
		{name: "email trimmed", body: `{"email":"  a@example.com\t"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Email != "a@example.com" {
				t.Errorf("%q", su.Email)
			}
		}},
		{name: "issuer spellings", body: `{"email":"a@example.com","identities":[{"issuer":" Facebook ","issuerAssignedId":" 42 "}]}`,
			check: func(t *testing.T, su approvals.SignUp) {
				if *su.Identity != (approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "42"}) {
					t.Errorf("%+v", su.Identity)
				}
			}},
		{name: "only identities[0] is used", body: `{"email":"a@example.com","identities":[{"issuer":"google.com","issuerAssignedId":"1","extra":{"a":[1]}},{"issuer":"facebook.com"},"junk",[[]]]}`,
			check: func(t *testing.T, su approvals.SignUp) {
				if su.Identity.Issuer != "google.com" || su.Identity.IssuerAssignedID != "1" {
					t.Errorf("%+v", su.Identity)
				}
			}},
		{name: "empty identities", body: `{"email":"a@example.com","identities":[]}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Identity != nil {
				t.Errorf("%+v", su.Identity)
			}
		}},
		{name: "null identities", body: `{"email":"a@example.com","identities":null}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Identity != nil {
				t.Errorf("%+v", su.Identity)
			}
		}},
		{name: "odd ui_locales ignored", body: `{"email":"a@example.com","ui_locales":"fr\u003cscript\u003e"}`, check: func(t *testing.T, su approvals.SignUp) {
			if su.Locale != "" {
				t.Errorf("%q", su.Locale)
			}
		}},
		{name: "null email", body: `{"email":null}`, key: MsgInvalidEmail},
		{name: "empty email", body: `{"email":""}`, key: MsgInvalidEmail},
		{name: "email with a name", body: `{"email":"John <john@example.com>","ui_locales":"de"}`, key: MsgInvalidEmail, locale: "de"},
		{name: "two addresses", body: `{"email":"a@example.com, b@example.com"}`, key: MsgInvalidEmail},
		{name: "email too long", body: `{"email":"` + strings.Repeat("a", 250) + `@example.com"}`, key: MsgInvalidEmail},
		{name: "email as object", body: `{"email":{"value":"a@example.com"}}`, key: MsgInvalidEmail},
		{name: "identity without id", body: `{"email":"a@example.com","identities":[{"issuer":"google.com"}]}`, key: MsgBadRequest},
		{name: "identity id of blanks", body: `{"email":"a@example.com","identities":[{"issuer":"google.com","issuerAssignedId":"  "}]}`, key: MsgBadRequest},
		{name: "identity issuer of blanks", body: `{"email":"a@example.com","identities":[{"issuer":" ","issuerAssignedId":"1"}]}`, key: MsgBadRequest},
		{name: "identity issuer not a string", body: `{"email":"a@example.com","identities":[{"issuer":1,"issuerAssignedId":"1"}]}`, key: MsgBadRequest},
		{name: "identities of strings", body: `{"email":"a@example.com","identities":["google.com"]}`, key: MsgBadRequest},
		{name: "ui_locales not a string", body: `{"email":"a@example.com","ui_locales":["fr"]}`, key: MsgBadRequest},
		{name: "nested just too deep", body: `{"email":"a@example.com","x":` + strings.Repeat("[", maxDepth) + strings.Repeat("]", maxDepth) + `}`, key: MsgBadRequest},
		{name: "nested at the limit", body: `{"email":"a@example.com","x":` + strings.Repeat("[", maxDepth-1) + strings.Repeat("]", maxDepth-1) + `}`,
			check: func(t *testing.T, su approvals.SignUp) {}},
		{name: "duplicate name inside identities", body: `{"email":"a@example.com","identities":[{"issuer":"a","issuer":"b","issuerAssignedId":"1"}]}`, key: MsgBadRequest},
		{name: "NaN is not JSON", body: `{"email":"a@example.com","n":NaN}`, key: MsgBadRequest},
		{name: "invalid escape", body: `{"email":"a@example.com","n":"\x"}`, key: MsgBadRequest},
		{name: "lone surrogate escape", body: `{"email":"a@example.com","n":"\ud800"}`, key: MsgBadRequest},
		{name: "BOM", body: "\ufeff" + `{"email":"a@example.com"}`, key: MsgBadRequest},
	}
	d := NewDecoder()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			su, err := d.Decode([]byte(tt.body))
			if tt.key == "" {
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				tt.check(t, su)
				return
			}
			var de *DecodeError
			if !errors.As(err, &de) || de.Key != tt.key || de.Locale != tt.locale {
				t.Fatalf("Decode = %+v, %v; want refusal %s (locale %q)", su, err, tt.key, tt.locale)
			}
			if !reflect.DeepEqual(su, approvals.SignUp{}) {
				t.Errorf("refused body returned %+v", su)
			}
		})
	}
}

// readBody returns the whole body whatever the declared length says.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 1000)
	for _, length := range []int64{-1, 0, 1, 999, 1000, 1001, DefaultMaxBodyBytes + 1} {
		got, err := readBody(iotest.OneByteReader(strings.NewReader(body)), length)
		if err != nil || string(got) != body {
			t.Errorf("declared %d: read %d bytes, %v", length, len(got), err)
		}
	}
	if _, err := readBody(iotest.ErrReader(io.ErrUnexpectedEOF), 10); err != io.ErrUnexpectedEOF {
		t.Errorf("read error = %v", err)
	}
}

func TestIsJSON(t *testing.T) {
	for ct, want := range map[string]bool{
		"application/json": true, "application/json; charset=utf-8": true, "Application/JSON; charset=UTF-8": true,
		"application/json;charset=utf-8": true, "text/plain": false, "": false, "application/jsonx": false, "application/json; =": false,
	} {
		if got := isJSON(ct); got != want {
			t.Errorf("isJSON(%q) = %v", ct, got)
		}
	}
}
