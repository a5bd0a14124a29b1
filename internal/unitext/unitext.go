// Package unitext is the Unicode half of the person rule (approvals.Unicode):
// NFC normalisation with golang.org/x/text/unicode/norm and the IDNA
// conversion of email domains with golang.org/x/net/idna, which the domain
// package, restricted to the standard library, cannot import.
package unitext

import (
	"fmt"
	"strings"

	"golang.org/x/net/idna"
	"golang.org/x/text/unicode/norm"

	"github.com/approvals-dev/approvals/approvals"
)

// Rules is the approvals.Unicode that cmd gives the Service and the stores.
var Rules approvals.Unicode = rules{}

// profile is IDNA2008 lookup processing with the UTS #46 mapping (what
// browsers and mail systems apply to a domain typed by a person): it maps
// case and compatibility forms, and refuses labels that cannot be a host
// name. Hyphen rules are checked (a label never starts or ends with "-").
var profile = idna.New(
	idna.MapForLookup(),
	idna.Transitional(false),
	idna.StrictDomainName(true),
	idna.BidiRule(),
	idna.ValidateLabels(true),
	idna.CheckHyphens(true),
	idna.CheckJoiners(true),
)

type rules struct{}

func (rules) NFC(s string) string { return norm.NFC.String(s) }

func (rules) DomainToASCII(domain string) (string, error) {
	d, err := profile.ToASCII(domain)
	if err != nil {
		return "", fmt.Errorf("domain %q: %w", domain, err)
	}
	if d == "" || strings.HasSuffix(d, ".") {
		return "", fmt.Errorf("domain %q: not a host name", domain)
	}
	return strings.ToLower(d), nil
}
