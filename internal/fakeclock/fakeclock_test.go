package fakeclock

import (
	"testing"
	"time"
)

var t0 = time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)

// The clock moves only when told to.
func TestClock(t *testing.T) {
	c := New(t0)
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("Now = %v, want %v", got, t0)
	}
	if got := c.Now(); !got.Equal(t0) {
		t.Fatalf("second Now = %v: the clock moved by itself", got)
	}
	c.Advance(time.Hour)
	if got := c.Now(); !got.Equal(t0.Add(time.Hour)) {
		t.Errorf("after Advance(1h) Now = %v", got)
	}
	c.Set(t0.Add(-time.Minute))
	if got := c.Now(); !got.Equal(t0.Add(-time.Minute)) {
		t.Errorf("after Set Now = %v", got)
	}
}

// A ticking clock moves on by its tick on every reading.
func TestTicking(t *testing.T) {
	c := NewTicking(t0, time.Millisecond)
	a, b := c.Now(), c.Now()
	if !a.Equal(t0.Add(time.Millisecond)) || b.Sub(a) != time.Millisecond {
		t.Errorf("Now, Now = %v, %v; want one tick apart from %v", a, b, t0)
	}
}
