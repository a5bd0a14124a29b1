package bolt

import (
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// FuzzDecodePendingValue: a deliveries_pending value decodes or is
// refused without a panic, and what pendingValue writes reads back.
func FuzzDecodePendingValue(f *testing.F) {
	f.Add([]byte("\x07webhook"))
	f.Add([]byte("\x05slack\x00\x00\x00\x00\x00\x00\x00\x01"))
	f.Add([]byte{})
	f.Add([]byte{0xff})
	f.Fuzz(func(t *testing.T, v []byte) {
		c, until, err := decodePendingValue(v)
		if err != nil {
			return
		}
		d := &approvals.Delivery{Channel: c}
		if until != nil {
			d.Lease = &approvals.Lease{Until: fromT8(until)}
		}
		back := pendingValue(d)
		c2, until2, err := decodePendingValue(back)
		if err != nil || c2 != c || (until == nil) != (until2 == nil) {
			t.Fatalf("round trip of %x: %x -> %q %x %v", v, back, c2, until2, err)
		}
	})
}
