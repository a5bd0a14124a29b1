package main

import (
	"strconv"
)

// The payloads are shaped like the documentation's examples
// (testdata/connector/): Google, Facebook and email one-time-passcode
// people send identities, Entra ID and Microsoft-account people do not;
// the request step carries the attribute page's claims and two custom
// attributes. A request-approval body is about 600 bytes, a check body
// about 250.

// identityKind picks the sign-in of person i: four in ten Google, two
// Facebook, one email OTP, three Entra ID or Microsoft account.
func identityKind(i int) string {
	switch i % 10 {
	case 0, 1, 2, 3:
		return "google.com"
	case 4, 5:
		return "facebook.com"
	case 6:
		return "mail"
	}
	return ""
}

var locales = []string{"en-US", "fr-FR", "de-DE", "pl", "es-ES", "en-GB"}

var givenNames = []string{"Ana", "John", "Marie", "Jan", "Max", "Aiko", "Priya", "Tomás", "Olga", "Kwame"}
var surnames = []string{"García", "Smith", "Dupont", "Kowalski", "Mustermann", "Tanaka", "Sharma", "Silva", "Ivanova", "Mensah"}

// appendEmail appends the email of person i of a run: tag keeps the people
// of one run apart from those of earlier runs against the same server.
func appendEmail(b []byte, tag string, kind string, i int, domain string) []byte {
	b = append(b, kind...)
	b = append(b, '.')
	b = strconv.AppendInt(b, int64(i), 10)
	b = append(b, '.')
	b = append(b, tag...)
	b = append(b, '@')
	return append(b, domain...)
}

// appendSignUp appends the JSON body Entra sends for person i. With full,
// it is the request step's body, with the attribute page's claims;
// otherwise the check step's.
func appendSignUp(b []byte, tag, kind string, i int, domain string, full bool) []byte {
	b = append(b, `{"email":"`...)
	start := len(b)
	b = appendEmail(b, tag, kind, i, domain)
	email := b[start:]
	b = append(b, '"')
	if iss := identityKind(i); iss != "" {
		b = append(b, `,"identities":[{"signInType":"federated","issuer":"`...)
		b = append(b, iss...)
		b = append(b, `","issuerAssignedId":"`...)
		if iss == "mail" {
			b = append(b, email...)
		} else {
			b = strconv.AppendInt(b, 104598273645123456+int64(i), 10)
		}
		b = append(b, `"}]`...)
	}
	given, surname := givenNames[i%len(givenNames)], surnames[(i/len(givenNames))%len(surnames)]
	b = append(b, `,"displayName":"`...)
	b = append(b, given...)
	b = append(b, ' ')
	b = append(b, surname...)
	b = append(b, `","givenName":"`...)
	b = append(b, given...)
	b = append(b, `","surname":"`...)
	b = append(b, surname...)
	b = append(b, '"')
	if full {
		b = append(b, `,"jobTitle":"Supplier contact","streetAddress":"1000 Microsoft Way","city":"Seattle","postalCode":"98052","state":"Washington","country":"United States"`...)
		b = append(b, `,"extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_Company":"Contoso Supplies Ltd","extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_Role":"supplier"`...)
	}
	b = append(b, `,"ui_locales":"`...)
	b = append(b, locales[i%len(locales)]...)
	return append(b, `"}`...)
}
