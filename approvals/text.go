package approvals

import "strings"

// UnsafeRune reports whether r may not appear in a name or attribute the
// product stores: a C0 control (NUL, BEL, ESC, tab, newlines, ...), DEL, a
// C1 control (U+0080 to U+009F), a bidirectional control (U+061C, U+200E,
// U+200F, U+202A to U+202E, U+2066 to U+2069), or a line or paragraph
// separator (U+2028, U+2029). Written to a terminal, a CSV file, a log or
// an email, such characters can rewrite what a reader sees (a U+202E
// reverses the rest of the line).
func UnsafeRune(r rune) bool {
	switch {
	case r < 0x20, r == 0x7f, r >= 0x80 && r <= 0x9f:
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x2028, r == 0x2029:
		return true
	}
	return false
}

// CheckText returns an error with code EInvalid naming field when s has an
// UnsafeRune, and nil otherwise. The message names the character by its
// code point, never the value.
func CheckText(field, s string) error {
	for _, r := range s {
		if UnsafeRune(r) {
			return fieldErrorf(field, "%s contains the control character U+%04X; control and text-direction characters are not allowed", field, r)
		}
	}
	return nil
}

// CheckSignUpText applies CheckText to a sign-up's display name, its
// string claims and their names: RequestApproval refuses a sign-up it
// fails, with code EInvalid and the field named.
func CheckSignUpText(su SignUp) error {
	if err := CheckText("displayName", su.DisplayName); err != nil {
		return err
	}
	return checkClaims(su.Claims)
}

// checkClaims applies CheckText to every string claim, in name order so
// that the first one named is always the same.
func checkClaims(claims map[string]any) error {
	var first string
	var bad error
	for name, v := range claims {
		err := CheckText(name, name)
		if err != nil {
			err = fieldErrorf(ReplaceUnsafe(name, nil), "an attribute name contains a control or text-direction character")
		} else if s, ok := v.(string); ok {
			err = CheckText(name, s)
		}
		if err != nil && (bad == nil || name < first) {
			first, bad = name, err
		}
	}
	return bad
}

// ReplaceUnsafe returns s with every UnsafeRune except those keep allows
// replaced by U+FFFD, for text written where such a character would act
// (a CSV cell, a log line) rather than be shown.
func ReplaceUnsafe(s string, keep func(rune) bool) string {
	clean := true
	for _, r := range s {
		if UnsafeRune(r) && (keep == nil || !keep(r)) {
			clean = false
			break
		}
	}
	if clean {
		return s
	}
	return strings.Map(func(r rune) rune {
		if UnsafeRune(r) && (keep == nil || !keep(r)) {
			return '\uFFFD'
		}
		return r
	}, s)
}
