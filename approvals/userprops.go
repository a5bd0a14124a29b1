package approvals

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// UserProperty is a Microsoft Graph user property that a sign-up's claims
// or an invitation's attributes may write. The table below is the one list
// of them: the provisioner maps claims through it, the admin API checks
// invitation attributes against it, and the reviewer UI labels claims with
// it.
type UserProperty struct {
	// Name is the property's name in Graph.
	Name string
	// Label names it for people.
	Label string
	// Collection is set for string collections (businessPhones): a claim
	// value becomes a one-element list. Invitations, whose attributes are
	// scalars, cannot set them.
	Collection bool
}

// userProperties lists the writable Graph user properties, in the order
// the UI shows them.
var userProperties = []UserProperty{
	{Name: "displayName", Label: "Display name"},
	{Name: "givenName", Label: "Given name"},
	{Name: "surname", Label: "Surname"},
	{Name: "jobTitle", Label: "Job title"},
	{Name: "companyName", Label: "Company"},
	{Name: "department", Label: "Department"},
	{Name: "employeeId", Label: "Employee id"},
	{Name: "employeeType", Label: "Employee type"},
	{Name: "employeeHireDate", Label: "Hire date"},
	{Name: "officeLocation", Label: "Office"},
	{Name: "streetAddress", Label: "Street address"},
	{Name: "city", Label: "City"},
	{Name: "state", Label: "State or province"},
	{Name: "postalCode", Label: "Postal code"},
	{Name: "country", Label: "Country or region"},
	{Name: "usageLocation", Label: "Usage location"},
	{Name: "mobilePhone", Label: "Mobile phone"},
	{Name: "businessPhones", Label: "Business phone", Collection: true},
	{Name: "faxNumber", Label: "Fax"},
	{Name: "preferredLanguage", Label: "Preferred language"},
	{Name: "mailNickname", Label: "Mail nickname"},
	{Name: "ageGroup", Label: "Age group"},
	{Name: "consentProvidedForMinor", Label: "Consent for minor"},
}

// claimAliases are claim names Entra or its documentation use for a
// property under another name: the documentation's lastName, and firstName
// for symmetry. They are accepted from sign-ups only; an invitation names
// properties as Graph does.
var claimAliases = map[string]string{"lastname": "surname", "firstname": "givenName"}

// reservedUserProperties are user properties the provisioning itself sets,
// or that would change who the account is.
var reservedUserProperties = map[string]bool{
	"id": true, "mail": true, "userPrincipalName": true, "identities": true, "userType": true,
	"accountEnabled": true, "passwordProfile": true, "proxyAddresses": true, "otherMails": true,
}

var userPropertyByLower = func() map[string]UserProperty {
	m := make(map[string]UserProperty, len(userProperties)+len(claimAliases))
	for _, p := range userProperties {
		m[strings.ToLower(p.Name)] = p
	}
	for alias, name := range claimAliases {
		m[alias] = m[strings.ToLower(name)]
	}
	return m
}()

// UserProperties returns the writable Graph user properties, in display
// order. The slice is a copy.
func UserProperties() []UserProperty { return append([]UserProperty(nil), userProperties...) }

// LookupUserProperty returns the property a claim name sets, matching
// case-insensitively and accepting the aliases lastName and firstName.
func LookupUserProperty(claim string) (UserProperty, bool) {
	p, ok := userPropertyByLower[strings.ToLower(claim)]
	return p, ok
}

// extensionAttribute matches a directory extension attribute as Entra
// sends it and Graph stores it: extension_, the owning application's id
// without dashes, _, the attribute name.
var extensionAttribute = regexp.MustCompile(`^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]{1,120}$`)

// IsExtensionAttribute reports whether name is a directory extension
// attribute (extension_<32 hex digits>_<Name>), which Graph accepts on a
// user as is.
func IsExtensionAttribute(name string) bool { return extensionAttribute.MatchString(name) }

// SplitExtensionAttribute returns the application id and attribute name of
// extension_<32 hex>_<Name>; ok is false for other names.
func SplitExtensionAttribute(name string) (appID, attr string, ok bool) {
	if !IsExtensionAttribute(name) {
		return "", "", false
	}
	rest := strings.TrimPrefix(name, "extension_")
	return rest[:32], rest[33:], true
}

// GraphUserProperties maps claims (a request's, or an invitation's
// attributes) onto the Graph user properties they set: built-in properties
// under their Graph names (lastName -> surname), every extension attribute
// as is. Claims that are not user properties (email, identities,
// ui_locales, unknown names) are dropped, because Graph rejects a body
// naming a property the user type does not have. Values of built-in
// properties become strings (a list for collections); empty values are
// dropped.
func GraphUserProperties(claims map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range claims {
		if IsExtensionAttribute(k) {
			if v != nil && v != "" {
				out[k] = v
			}
			continue
		}
		p, ok := LookupUserProperty(k)
		if !ok {
			continue
		}
		s := ClaimText(v)
		if s == "" {
			continue
		}
		if _, set := out[p.Name]; set && !strings.EqualFold(k, p.Name) {
			continue // the Graph spelling wins over an alias (surname over lastName)
		}
		if p.Collection {
			out[p.Name] = []string{s}
		} else {
			out[p.Name] = s
		}
	}
	return out
}

// ClaimText renders a claim value (a JSON scalar) as Graph text.
func ClaimText(v any) string {
	switch x := v.(type) {
	case string:
		return strings.TrimSpace(x)
	case bool:
		return strconv.FormatBool(x)
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case int:
		return strconv.Itoa(x)
	case nil:
		return ""
	}
	return fmt.Sprint(v)
}

// CheckAttribute reports why an invitation may not write the attribute
// name, or nil when it may: a single-valued property under its Graph name,
// or an extension attribute.
func CheckAttribute(name string) error {
	if IsExtensionAttribute(name) {
		return nil
	}
	if p, ok := userPropertyByLower[strings.ToLower(name)]; ok && p.Name == name && !p.Collection {
		return nil
	}
	if reservedUserProperties[name] {
		return Errorf(EInvalid, "attributes: %q is set by the invitation itself and cannot be written here", name)
	}
	return Errorf(EInvalid, "attributes: %q is neither a Microsoft Graph user property this flow writes (such as givenName, surname, jobTitle, companyName, department, city, usageLocation) nor a custom attribute extension_<app id without dashes>_<Name>", name)
}
