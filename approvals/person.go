package approvals

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Unicode is the part of the person rule the standard library cannot do:
// NFC normalisation and the IDNA conversion of a domain to its ASCII
// (A-label) form. cmd supplies the implementation (package
// internal/unitext, over golang.org/x/text and golang.org/x/net/idna), so
// that this package stays on the standard library.
type Unicode interface {
	// NFC returns s in Unicode normalisation form C.
	NFC(s string) string
	// DomainToASCII converts an email domain to the lower-case ASCII form
	// DNS uses (UTS #46 processing, "xn--" labels for non-ASCII ones), or
	// fails when it is not a valid domain name.
	DomainToASCII(domain string) (string, error)
}

// ASCIIOnly is the Unicode rule without the Unicode steps: NFC leaves the
// string alone and DomainToASCII lower-cases an ASCII domain and refuses
// any other. It is the rule of a Service or store given none; servers use
// cmd's.
var ASCIIOnly Unicode = asciiOnly{}

type asciiOnly struct{}

func (asciiOnly) NFC(s string) string { return s }

func (asciiOnly) DomainToASCII(d string) (string, error) {
	for i := 0; i < len(d); i++ {
		if d[i] >= utf8.RuneSelf {
			return "", Errorf(EInvalid, "domain %q has characters outside ASCII and no IDNA conversion is configured", d)
		}
	}
	return asciiLower(d), nil
}

// Person is a person's canonical identity: the one form of their address
// and identity every request, look-up and key is made from.
type Person struct {
	// Email is the canonical address: trimmed, NFC, the local part's case
	// kept as sent, the domain in lower-case ASCII (IDNA).
	Email string
	// Identity is the normalised identity (NormalizeIssuer, trimmed id),
	// or nil.
	Identity *Identity
	// Key is the person's key (PersonKey of Email and Identity).
	Key string
}

// NewPerson is the one constructor of a person's canonical identity from
// what a sign-up, an invitation or a look-up gives: the address is trimmed
// and put in NFC; its domain goes through u's IDNA conversion (so BÜCHER.de
// and xn--bcher-kva.de are one domain); the local part keeps its case,
// which PersonKey folds for ASCII letters only (no Unicode case folding:
// the Kelvin sign K and K stay different people, as do İ and i). The
// issuer is normalised with NormalizeIssuer. A nil u is ASCIIOnly.
func NewPerson(email string, id *Identity, u Unicode) (Person, error) {
	e, err := CanonicalEmail(email, u)
	if err != nil {
		return Person{}, err
	}
	p := Person{Email: e, Identity: NormalizeIdentity(id)}
	p.Key = PersonKey(p.Email, p.Identity)
	return p, nil
}

// CanonicalEmail returns NewPerson's form of an address, or an error with
// code EInvalid when it has no @ or its domain is not a domain name.
func CanonicalEmail(email string, u Unicode) (string, error) {
	if u == nil {
		u = ASCIIOnly
	}
	e := strings.TrimSpace(email)
	at := strings.LastIndexByte(e, '@')
	if at <= 0 || at == len(e)-1 || !utf8.ValidString(e) {
		return "", Errorf(EInvalid, "email %q is not a valid address", email)
	}
	local, d := nfcKeepingASCII(e[:at], u), e[at+1:]
	if plainASCIIDomain(d) {
		return local + "@" + asciiLower(d), nil
	}
	d, err := u.DomainToASCII(d)
	if err != nil || !plainASCIIDomain(strings.ReplaceAll(d, "xn--", "xn")) {
		return "", Errorf(EInvalid, "email %q has a domain that is not a valid domain name", email)
	}
	return local + "@" + d, nil
}

// nfcKeepingASCII puts s in NFC, except that a character NFC would replace
// by an ASCII one (the Kelvin sign by K, the Greek question mark by ;) is
// kept as it is: no non-ASCII character may turn into an ASCII address and
// so share its key. LookalikeWarning tells reviewers about such
// characters.
func nfcKeepingASCII(s string, u Unicode) string {
	ascii := true
	for i := 0; i < len(s); i++ {
		if s[i] >= utf8.RuneSelf {
			ascii = false
			break
		}
	}
	if ascii {
		return s
	}
	var b strings.Builder
	start := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= utf8.RuneSelf {
			if n := u.NFC(s[i : i+size]); len(n) > 0 && n[0] < utf8.RuneSelf {
				b.WriteString(u.NFC(s[start:i]))
				b.WriteString(s[i : i+size])
				start = i + size
			}
		}
		i += size
	}
	b.WriteString(u.NFC(s[start:]))
	return b.String()
}

// plainASCIIDomain reports whether d is a host name of ASCII letters,
// digits and inner hyphens, which IDNA would only lower-case: the common
// case, spared the conversion on the connector's hot path.
func plainASCIIDomain(d string) bool {
	if len(d) > 253 {
		return false
	}
	for _, label := range strings.Split(d, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' ||
			(len(label) >= 4 && label[2] == '-' && label[3] == '-') { // xn-- and other reserved forms go through IDNA
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i] | 0x20
			if !('a' <= c && c <= 'z') && !('0' <= label[i] && label[i] <= '9') && label[i] != '-' {
				return false
			}
		}
	}
	return true
}

// NormalizeIdentity returns id with its issuer normalised and its id
// trimmed, or nil when id is nil.
func NormalizeIdentity(id *Identity) *Identity {
	if id == nil {
		return nil
	}
	return &Identity{Issuer: NormalizeIssuer(id.Issuer), IssuerAssignedID: strings.TrimSpace(id.IssuerAssignedID)}
}

// PersonKey is the key of a person for de-duplication, made from a
// canonical address (NewPerson): the address with its ASCII letters
// lower-cased (other characters as they are), plus the issuer and
// issuer-assigned id when Entra sent an identity. One person has at most
// one request.
func PersonKey(email string, id *Identity) string {
	k := asciiLower(strings.TrimSpace(email))
	if id != nil && id.Issuer != "" {
		k += "\x00" + NormalizeIssuer(id.Issuer) + "\x00" + strings.TrimSpace(id.IssuerAssignedID)
	}
	return k
}

// asciiLower lower-cases the ASCII letters of s and nothing else.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if c := s[i]; 'A' <= c && c <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// LookalikeWarning returns a sentence for reviewers when a canonical
// address could be mistaken for another one: a part mixes scripts (Latin
// with Cyrillic or Greek, ...), or it has characters that look like ASCII
// letters (the Kelvin sign, dotless ı, fullwidth forms). It returns "" for
// an address without such characters. Such addresses are kept apart from
// the ones they imitate (PersonKey does not merge them); the warning is
// what tells a reviewer.
func LookalikeWarning(email string) string {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ""
	}
	parts := append([]string{email[:at]}, strings.Split(email[at+1:], ".")...)
	for _, p := range parts {
		if s := mixedScripts(p); s != "" {
			return "This address mixes scripts (" + s + ") in one part: it may imitate another address. Compare it with the person's other requests before approving."
		}
	}
	for _, r := range email {
		if lookalikes[r] {
			return "This address has a character that looks like an ASCII letter (" + string(r) + ", " + runeName(r) + "): it may imitate another address. Compare it with the person's other requests before approving."
		}
	}
	return ""
}

// scripts are the scripts mixedScripts tells apart; characters of others
// (digits, punctuation, Han, ...) are not counted.
var scripts = []struct {
	name  string
	table *unicode.RangeTable
}{
	{"Latin", unicode.Latin}, {"Cyrillic", unicode.Cyrillic}, {"Greek", unicode.Greek},
	{"Armenian", unicode.Armenian}, {"Cherokee", unicode.Cherokee}, {"Georgian", unicode.Georgian},
}

// mixedScripts returns "A and B" when s has letters of two of scripts.
func mixedScripts(s string) string {
	first := ""
	for _, r := range s {
		if r < utf8.RuneSelf && !unicode.IsLetter(r) {
			continue
		}
		for _, sc := range scripts {
			if unicode.Is(sc.table, r) {
				if first == "" {
					first = sc.name
				} else if first != sc.name {
					return first + " and " + sc.name
				}
				break
			}
		}
	}
	return ""
}

// lookalikes are non-ASCII characters drawn like ASCII letters within a
// single script, which mixedScripts cannot see.
var lookalikes = func() map[rune]bool {
	m := map[rune]bool{
		'\u212A': true, // KELVIN SIGN
		'\u037E': true, // GREEK QUESTION MARK
		'\u1FEF': true, // GREEK VARIA
		'\u212B': true, // ANGSTROM SIGN
		'\u0131': true, // LATIN SMALL LETTER DOTLESS I
		'\u0130': true, // LATIN CAPITAL LETTER I WITH DOT ABOVE
		'\u017F': true, // LATIN SMALL LETTER LONG S
		'\u0269': true, // LATIN SMALL LETTER IOTA
		'\u0251': true, // LATIN SMALL LETTER ALPHA
		'\u0261': true, // LATIN SMALL LETTER SCRIPT G
	}
	for r := rune(0xFF01); r <= 0xFF5E; r++ { // fullwidth ASCII
		m[r] = true
	}
	return m
}()

func runeName(r rune) string {
	switch {
	case r == '\u212A':
		return "Kelvin sign"
	case r == '\u212B':
		return "Angstrom sign"
	case r == '\u0131':
		return "dotless i"
	case r == '\u0130':
		return "capital I with dot"
	case r >= 0xFF01 && r <= 0xFF5E:
		return "fullwidth form"
	}
	return fmt.Sprintf("U+%04X", r)
}
