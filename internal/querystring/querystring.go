// Package querystring checks URL query strings before a handler reads them.
// Go's url.ParseQuery refuses a parameter separated by ";" or holding a
// malformed percent-escape ("%zz"), and (*url.URL).Query drops such a
// parameter without a word, so "status=denied;since=2999-01-01" would
// silently become no filter at all. The admin API and the reviewer UI run
// Check first and answer 400 with its message instead.
package querystring

import (
	"fmt"
	"net/url"
	"strings"
)

// maxShown bounds how much of an offending parameter a message quotes.
const maxShown = 80

// Check reports whether raw (a URL's RawQuery, without the "?") is a query
// string that url.ParseQuery reads in full. It returns nil exactly when
// url.ParseQuery returns no error; otherwise an error whose message names
// the offending parameter and says how to write it, fit to show the caller.
func Check(raw string) error {
	if _, err := url.ParseQuery(raw); err == nil {
		return nil
	}
	for part := range strings.SplitSeq(raw, "&") {
		if strings.Contains(part, ";") {
			return fmt.Errorf(`the query parameter %s contains ";": separate parameters with "&", and write a ";" inside a value as %%3B`, quote(part))
		}
		if bad := badEscape(part); bad != "" {
			return fmt.Errorf(`the query parameter %s contains %q, which is not a percent-escape (%% and two hex digits): write a "%%" inside a value as %%25`, quote(part), bad)
		}
	}
	// url.ParseQuery refuses nothing else today; should it one day, the
	// caller still gets a 400 rather than a silently shortened query.
	return fmt.Errorf("the query string %s cannot be read; encode each name and value with percent-escapes", quote(raw))
}

// badEscape returns the first malformed percent-escape in s: a "%" not
// followed by two hex digits, with what follows it (at most two bytes).
func badEscape(s string) string {
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			continue
		}
		if i+2 < len(s) && isHex(s[i+1]) && isHex(s[i+2]) {
			i += 2
			continue
		}
		return s[i:min(i+3, len(s))]
	}
	return ""
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// quote quotes s for a message, shortened when long.
func quote(s string) string {
	if len(s) > maxShown {
		s = s[:maxShown] + "..."
	}
	return fmt.Sprintf("%q", s)
}
