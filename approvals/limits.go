package approvals

import (
	"strings"
	"unicode/utf8"
)

// MaxReasonLength is the most characters (Unicode code points, not bytes) the
// reason of a decision or a reopening may have, on every surface: the
// reviewer UI, the admin API and the domain itself.
const MaxReasonLength = 2000

// CheckReason reports, as an EInvalid error, a reason that is not valid
// UTF-8 or is longer than MaxReasonLength characters.
func CheckReason(reason string) error {
	if !utf8.ValidString(reason) {
		return Errorf(EInvalid, "the reason is not valid text (it is not UTF-8); type it again")
	}
	if n := utf8.RuneCountInString(reason); n > MaxReasonLength {
		return Errorf(EInvalid, "the reason has %d characters; shorten it to at most %d", n, MaxReasonLength)
	}
	return nil
}

// Truncate returns s cut after n characters (code points), never inside
// a character, with "…" added when it cut; invalid UTF-8 bytes become
// U+FFFD. It is for showing text, never for storing it.
func Truncate(s string, n int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	count := 0
	for i := range s {
		if count == max(n, 0) {
			return s[:i] + "…"
		}
		count++
	}
	return s
}
