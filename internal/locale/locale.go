// Package locale picks the language to answer a person in from what their
// browser or Entra's ui_locales says, shared by the connector's messages
// and the emails so that both choose the same language for one person.
package locale

import "strings"

// Match returns the language to answer in for a ui_locales value: the
// primary language subtag of the most preferred tag that is in have, or ""
// when none is. Tags are matched by their language only,
// case-insensitively, with '-' or '_' as separator: "fr-CA" and "FR_fr"
// both give "fr".
//
// Every form CONTRACT section 1 lists is read: one tag ("fr-FR"), OpenID
// Connect's space-separated list in order of preference ("fr-FR en-US"), a
// comma-separated one ("fr-FR,en-US", "fr-FR, en-US"), and a browser's
// Accept-Language ("fr-FR,fr;q=0.9,en;q=0.8"): a tag's weight is its q
// parameter (1 when absent), the highest weight wins and equal weights keep
// the order written. A tag with q=0 (not acceptable), a malformed q, the
// wildcard "*" and anything that is not a 2 or 3 letter language are
// skipped. It allocates nothing unless a language is written in upper
// case.
func Match(uiLocales string, have func(lang string) bool) string {
	best, bestQ := "", 0
	for rest := uiLocales; rest != ""; {
		var elem string
		elem, rest, _ = strings.Cut(rest, ",")
		tags, params, _ := strings.Cut(elem, ";")
		q, ok := weight(params)
		if !ok || q <= bestQ {
			continue
		}
		for tags != "" {
			var tag string
			tag, tags = nextField(tags)
			if tag == "" {
				break
			}
			lang := primaryLanguage(tag)
			if lang != "" && have(lang) {
				best, bestQ = lang, q
				break
			}
		}
		if bestQ == 1000 {
			break // nothing can weigh more
		}
	}
	return best
}

// nextField returns the first blank-separated field of s and what follows.
func nextField(s string) (field, rest string) {
	s = strings.TrimLeft(s, " \t\r\n")
	i := strings.IndexAny(s, " \t\r\n")
	if i < 0 {
		return s, ""
	}
	return s[:i], s[i:]
}

// primaryLanguage returns the lower-case primary language subtag of tag
// when it is 2 or 3 letters, or "". A tag already in lower case comes back
// without allocating.
func primaryLanguage(tag string) string {
	lang := tag
	if i := strings.IndexAny(tag, "-_"); i >= 0 {
		lang = tag[:i]
	}
	if len(lang) < 2 || len(lang) > 3 {
		return ""
	}
	var b [3]byte
	for i := 0; i < len(lang); i++ {
		c := lang[i] | 0x20
		if c < 'a' || c > 'z' {
			return ""
		}
		b[i] = c
	}
	if lower := b[:len(lang)]; string(lower) != lang {
		return string(lower)
	}
	return lang
}

// weight reads the q parameter among the ';'-separated params of one
// Accept-Language element, in thousandths: 1000 when there is none, ok
// false when it is malformed (RFC 9110 section 12.4.2: "0", "1", "0.5",
// "0.125", "1.000"; at most three decimals).
func weight(params string) (q int, ok bool) {
	q = 1000
	for params != "" {
		var p string
		p, params, _ = strings.Cut(params, ";")
		name, value, found := strings.Cut(strings.TrimSpace(p), "=")
		if !found || strings.TrimSpace(name) != "q" && strings.TrimSpace(name) != "Q" {
			continue
		}
		value = strings.TrimSpace(value)
		if value == "" || len(value) > 5 || (value[0] != '0' && value[0] != '1') {
			return 0, false
		}
		q = int(value[0]-'0') * 1000
		if len(value) > 1 {
			if value[1] != '.' {
				return 0, false
			}
			scale := 100
			for i := 2; i < len(value); i++ {
				c := value[i]
				if c < '0' || c > '9' {
					return 0, false
				}
				q += int(c-'0') * scale
				scale /= 10
			}
		}
		if q > 1000 {
			return 0, false
		}
	}
	return q, true
}
