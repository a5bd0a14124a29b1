package postgres

import (
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// FuzzDecodeCursor feeds listing cursors to the decoder: it never panics,
// refuses what it cannot read with code invalid, and reads back what
// encodeCursor wrote.
func FuzzDecodeCursor(f *testing.F) {
	f.Add(encodeCursor(1764000000000000000, "0123456789abcdef01234567"))
	f.Add("AA")
	f.Add("%%%")
	f.Add(encodeCursor(-1, "x"))
	f.Fuzz(func(t *testing.T, c string) {
		at, id, err := decodeCursor(c)
		if err != nil {
			if approvals.Code(err) != approvals.EInvalid {
				t.Fatalf("decodeCursor(%q) = %v; want code invalid", c, err)
			}
			return
		}
		at2, id2, err := decodeCursor(encodeCursor(at, id))
		if err != nil || at2 != at || id2 != id {
			t.Fatalf("round trip of %d %q = %d %q, %v", at, id, at2, id2, err)
		}
	})
}
