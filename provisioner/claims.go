package provisioner

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/approvals-dev/approvals/approvals"
)

// MaxUPNLocalLength is the longest part of a user principal name before the
// @ that Entra accepts; for a guest it includes the #EXT# marker.
const MaxUPNLocalLength = 64

// upnHashLength is the number of hex digits of the hash GuestUPN appends
// when it had to change or shorten an address.
const upnHashLength = 8

// GuestUPN returns the user principal name of a guest created with POST
// /users for the given email in the tenant whose initial domain is
// tenantDomain: the email, lower-cased, with its @ replaced by _, then
// #EXT#@ and the domain, as Entra names B2B guests
// (john.smith@outlook.com -> john.smith_outlook.com#EXT#@contoso.onmicrosoft.com).
//
// Entra allows only A-Z a-z 0-9 ' . - _ ! ^ ~ (and # for the marker) before
// the @, at most 64 of them. Other characters are mapped deterministically:
// accented Latin letters fold to their base letters (é -> e, ß -> ss), and
// everything else, '#' included, becomes '_'. Because folding can make two
// addresses look alike (josé@ and jose@), whenever a character was changed
// or the name had to be shortened to fit, "~" and the first 8 hex digits of
// the SHA-256 of the lower-cased email are inserted before #EXT#, so the
// result still identifies one address. Names that needed no change carry no
// hash, so they match what Entra itself generates.
func GuestUPN(email, tenantDomain string) (string, error) {
	email = strings.ToLower(strings.TrimSpace(email))
	domain := strings.ToLower(strings.TrimSpace(tenantDomain))
	at := strings.LastIndexByte(email, '@')
	if at <= 0 || at == len(email)-1 {
		return "", fmt.Errorf("guest UPN for %q: not an email address", email)
	}
	if !validDomain(domain) {
		return "", fmt.Errorf("guest UPN: %q is not a tenant domain such as contoso.onmicrosoft.com", tenantDomain)
	}
	var b strings.Builder
	changed := false
	for i, r := range email {
		switch {
		case i == at:
			b.WriteByte('_')
		case i == 0 && r == '.':
			changed = true // a UPN may not start with a dot
			b.WriteByte('_')
		case r < 0x80 && upnChar(byte(r)):
			b.WriteRune(r)
		default:
			changed = true
			if f, ok := foldLatin[r]; ok {
				b.WriteString(f)
			} else {
				b.WriteByte('_')
			}
		}
	}
	local := b.String()
	const marker = "#EXT#"
	limit := MaxUPNLocalLength - len(marker)
	if len(local) > limit {
		changed = true
	}
	if changed {
		// The hash suffix must fit too: cut the mapped part to leave it
		// room (the mapped part is ASCII, so bytes are characters).
		local = local[:min(len(local), limit-1-upnHashLength)]
		// '.' may not end the part before the marker's hash either way.
		local = strings.TrimRight(local, ".")
		sum := sha256.Sum256([]byte(email))
		local += "~" + hex.EncodeToString(sum[:])[:upnHashLength]
	}
	return local + marker + "@" + domain, nil
}

// upnChar reports whether c may appear in a guest UPN's local part as is.
// '#' is allowed by Entra but kept for the #EXT# marker.
func upnChar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("'.-_!^~", c) >= 0
}

func validDomain(d string) bool {
	if d == "" || !strings.Contains(d, ".") || strings.HasPrefix(d, ".") || strings.HasSuffix(d, ".") {
		return false
	}
	for i := 0; i < len(d); i++ {
		c := d[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '.' || c == '-') {
			return false
		}
	}
	return true
}

// foldLatin maps the lower-case accented Latin letters found in European
// names to ASCII. Input is lower-cased first.
var foldLatin = map[rune]string{
	'à': "a", 'á': "a", 'â': "a", 'ã': "a", 'ä': "a", 'å': "a", 'ā': "a", 'ă': "a", 'ą': "a",
	'æ': "ae", 'ç': "c", 'ć': "c", 'č': "c", 'ĉ': "c", 'ċ': "c", 'ď': "d", 'đ': "d", 'ð': "d",
	'è': "e", 'é': "e", 'ê': "e", 'ë': "e", 'ē': "e", 'ė': "e", 'ę': "e", 'ě': "e",
	'ğ': "g", 'ģ': "g", 'ì': "i", 'í': "i", 'î': "i", 'ï': "i", 'ī': "i", 'į': "i", 'ı': "i",
	'ķ': "k", 'ĺ': "l", 'ļ': "l", 'ľ': "l", 'ł': "l", 'ñ': "n", 'ń': "n", 'ņ': "n", 'ň': "n",
	'ò': "o", 'ó': "o", 'ô': "o", 'õ': "o", 'ö': "o", 'ø': "o", 'ō': "o", 'ő': "o", 'œ': "oe",
	'ŕ': "r", 'ř': "r", 'ś': "s", 'š': "s", 'ş': "s", 'ș': "s", 'ß': "ss", 'ť': "t", 'ţ': "t", 'ț': "t",
	'þ': "th", 'ù': "u", 'ú': "u", 'û': "u", 'ü': "u", 'ū': "u", 'ů': "u", 'ű': "u", 'ų': "u",
	'ý': "y", 'ÿ': "y", 'ź': "z", 'ż': "z", 'ž': "z",
}

// displayName returns the name to give a new account: the request's display
// name, else the displayName claim, else given name and surname, else the
// email's local part. Graph requires one to create a user.
func displayName(r *approvals.Request, props map[string]any) string {
	if s := strings.TrimSpace(r.DisplayName); s != "" {
		return s
	}
	if s, _ := props["displayName"].(string); s != "" {
		return s
	}
	given, _ := props["givenName"].(string)
	sur, _ := props["surname"].(string)
	if s := strings.TrimSpace(given + " " + sur); s != "" {
		return s
	}
	local, _, _ := strings.Cut(r.Email, "@")
	return local
}

// newGuest returns the POST /users account for r: a Guest with r's
// federated identity, a UPN made from the email, and the user properties
// its claims set.
func newGuest(r *approvals.Request, tenantDomain string) (NewGuest, error) {
	if r.Identity == nil {
		return NewGuest{}, errors.New("create guest: the request has no identity")
	}
	upn, err := GuestUPN(r.Email, tenantDomain)
	if err != nil {
		return NewGuest{}, err
	}
	props := approvals.GraphUserProperties(r.Claims)
	return NewGuest{
		UserPrincipalName: upn,
		Mail:              r.Email,
		DisplayName:       displayName(r, props),
		Identity:          *r.Identity,
		Properties:        props,
	}, nil
}

// patchProperties returns the properties PATCH writes on an account that
// exists already (invited or linked): the mapped claims and, when the
// request carries one, the display name.
func patchProperties(r *approvals.Request) map[string]any {
	props := approvals.GraphUserProperties(r.Claims)
	if s := strings.TrimSpace(r.DisplayName); s != "" {
		props["displayName"] = s
	}
	return props
}
