package approvals

import "testing"

func TestUnsafeRune(t *testing.T) {
	for _, r := range []rune{0, '\a', '\b', '\t', '\n', '\r', 0x1b, 0x7f, 0x80, 0x85, 0x9b, 0x9f, 0x061c, 0x200e, 0x200f, 0x202a, 0x202e, 0x2066, 0x2069, 0x2028, 0x2029} {
		if !UnsafeRune(r) {
			t.Errorf("UnsafeRune(U+%04X) = false", r)
		}
	}
	for _, r := range []rune{' ', 'a', '~', 0xa0, 0xe9, 0x200b, 0x200d, 0x2030, 0x0627, 0xfeff + 1} {
		if UnsafeRune(r) {
			t.Errorf("UnsafeRune(U+%04X) = true", r)
		}
	}
}

func TestReplaceUnsafe(t *testing.T) {
	if got := ReplaceUnsafe("a\u202eb\nc\x1b", func(r rune) bool { return r == '\n' }); got != "a\ufffdb\nc\ufffd" {
		t.Errorf("ReplaceUnsafe = %q", got)
	}
	if s := "plain text é"; ReplaceUnsafe(s, nil) != s {
		t.Error("ReplaceUnsafe changed clean text")
	}
}
