package approvals

import (
	"reflect"
	"testing"
)

func TestProvisioningMethod(t *testing.T) {
	tests := []struct {
		name string
		id   *Identity
		want ProvisioningMethod
	}{
		{"no identity (Entra ID, Microsoft account)", nil, MethodInvitation},
		{"google.com", &Identity{Issuer: "google.com", IssuerAssignedID: "1"}, MethodCreateUser},
		{"google (doc spelling)", &Identity{Issuer: "google", IssuerAssignedID: "1"}, MethodCreateUser},
		{"Google.com", &Identity{Issuer: "Google.com", IssuerAssignedID: "1"}, MethodCreateUser},
		{"facebook.com", &Identity{Issuer: "facebook.com", IssuerAssignedID: "1"}, MethodCreateUser},
		{"facebook", &Identity{Issuer: "facebook", IssuerAssignedID: "1"}, MethodCreateUser},
		{" FACEBOOK ", &Identity{Issuer: " FACEBOOK ", IssuerAssignedID: "1"}, MethodCreateUser},
		{"mail (email OTP)", &Identity{Issuer: "mail", IssuerAssignedID: "a@b.c"}, MethodCreateUser},
		{"email", &Identity{Issuer: "email", IssuerAssignedID: "a@b.c"}, MethodCreateUser},
		{"empty issuer", &Identity{}, MethodInvitation},
		{"other issuer", &Identity{Issuer: "github.com", IssuerAssignedID: "1"}, MethodInvitation},
		{"MicrosoftAccount", &Identity{Issuer: "MicrosoftAccount", IssuerAssignedID: "1"}, MethodInvitation},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &Request{Email: "a@example.com", Identity: tt.id}
			if got := r.ProvisioningMethod(); got != tt.want {
				t.Errorf("Branch = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestGraphUserProperties(t *testing.T) {
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
	if got := GraphUserProperties(claims); !reflect.DeepEqual(got, want) {
		t.Errorf("UserProperties =\n%v\nwant\n%v", got, want)
	}
	// The Graph spelling wins over the alias, whatever the map order.
	for range 20 {
		if got := GraphUserProperties(map[string]any{"lastName": "Alias", "surname": "Graph"}); got["surname"] != "Graph" {
			t.Fatalf("surname = %v", got["surname"])
		}
	}
}

func TestCheckAttribute(t *testing.T) {
	for _, ok := range []string{"usageLocation", "ageGroup", "employeeHireDate", "mailNickname", "consentProvidedForMinor", "jobTitle",
		"extension_0123456789abcdef0123456789abcdef_Role"} {
		if err := CheckAttribute(ok); err != nil {
			t.Errorf("CheckAttribute(%q) = %v", ok, err)
		}
	}
	for _, bad := range []string{"lastName", "mail", "userPrincipalName", "businessPhones", "JobTitle", "extension_nothex_Role", "bogus"} {
		if err := CheckAttribute(bad); Code(err) != EInvalid {
			t.Errorf("CheckAttribute(%q) = %v, want EInvalid", bad, err)
		}
	}
	// Every property a claim may set is one Graph knows under that name.
	for _, p := range UserProperties() {
		if got, ok := LookupUserProperty(p.Name); !ok || got != p || p.Label == "" {
			t.Errorf("property %+v: lookup %+v %v", p, got, ok)
		}
	}
}
