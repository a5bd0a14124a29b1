package api

import (
	"errors"
	"fmt"
	"reflect"
	"regexp"
	"strings"

	"github.com/go-playground/validator/v10"
)

// writableUserProperties are the single-valued Microsoft Graph user
// properties the invite flow may PATCH. Graph refuses unknown ones
// ("Property 'lastName' does not exist on type 'microsoft.graph.user'"), so
// they are checked here, before anybody is invited. Collections
// (businessPhones, otherMails) are left out: attributes are kept as the
// request's claims, whose values are scalars.
var writableUserProperties = map[string]bool{
	"ageGroup": true, "city": true, "companyName": true,
	"consentProvidedForMinor": true, "country": true, "department": true, "displayName": true,
	"employeeHireDate": true, "employeeId": true, "employeeType": true, "faxNumber": true,
	"givenName": true, "jobTitle": true, "mailNickname": true, "mobilePhone": true,
	"officeLocation": true, "postalCode": true, "preferredLanguage": true,
	"state": true, "streetAddress": true, "surname": true, "usageLocation": true,
}

// reservedUserProperties are user properties the invitation itself sets,
// or that would change who the account is.
var reservedUserProperties = map[string]bool{
	"id": true, "mail": true, "userPrincipalName": true, "identities": true, "userType": true,
	"accountEnabled": true, "passwordProfile": true, "proxyAddresses": true,
}

// extensionAttributeRE matches a directory extension: extension_, the
// owning app's client id without dashes, _, the attribute name.
var extensionAttributeRE = regexp.MustCompile(`^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]{1,120}$`)

// graphAttribute reports whether key may be written to a user.
func graphAttribute(key string) bool {
	return writableUserProperties[key] || extensionAttributeRE.MatchString(key)
}

// newValidator returns the validator of request bodies; field names in its
// errors are the JSON names.
func newValidator() (*validator.Validate, error) {
	v := validator.New(validator.WithRequiredStructEnabled())
	v.RegisterTagNameFunc(func(f reflect.StructField) string {
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if name == "-" {
			return ""
		}
		return name
	})
	err := v.RegisterValidation("graph_attribute", func(fl validator.FieldLevel) bool {
		return fl.Field().Kind() == reflect.String && graphAttribute(fl.Field().String())
	})
	if err != nil {
		return nil, fmt.Errorf("api: registering validations: %w", err)
	}
	return v, nil
}

// validationError turns the first failed rule into a 400 that says what to
// change.
func validationError(err error) error {
	var ves validator.ValidationErrors
	if !errors.As(err, &ves) || len(ves) == 0 {
		// The rules themselves are broken (validator.InvalidValidationError):
		// a bug of ours, logged as an internal error, not the caller's
		// to read.
		return fmt.Errorf("api: validating the request body: %w", err)
	}
	fe := ves[0]
	field := fe.Field()
	value := fmt.Sprint(fe.Value())
	switch fe.Tag() {
	case "required":
		return invalidf("%s is required", field)
	case "max":
		if fe.Kind() == reflect.String {
			return invalidf("%s is longer than %s characters", field, fe.Param())
		}
		return invalidf("%s has more than %s entries", field, fe.Param())
	case "excludesall":
		return invalidf("email %q contains a character Microsoft Graph invitations refuse (one of + # ! $ %% & *); use an address without them", value)
	case "email":
		return invalidf("email %q is not a valid email address", value)
	case "https_url":
		return invalidf("%s %q must be an absolute https URL", field, value)
	case "unique":
		return invalidf("%s lists the same id twice", field)
	case "uuid":
		if strings.HasPrefix(field, "group_ids") {
			return invalidf("%s %q is not a group object id (a GUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301)", field, value)
		}
		return invalidf("%s %q is not a user object id (a GUID)", field, value)
	case "graph_attribute":
		if reservedUserProperties[value] {
			return invalidf("attributes: %q is set by the invitation itself and cannot be written here", value)
		}
		return invalidf("attributes: %q is neither a Microsoft Graph user property this flow writes (such as givenName, surname, jobTitle, companyName, department, city) nor a custom attribute extension_<app id without dashes>_<Name>", value)
	}
	// A rule without a message of its own: name the field and the value,
	// never the rule's name in the validator.
	if fe.Kind() == reflect.String {
		return invalidf("%s %q is not an accepted value; see the field's rules in %s%s", field, value, Prefix, openAPIPath)
	}
	return invalidf("%s is not an accepted value; see the field's rules in %s%s", field, Prefix, openAPIPath)
}
