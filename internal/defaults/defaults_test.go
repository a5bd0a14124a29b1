package defaults

import (
	"math"
	"testing"
	"time"
)

func TestPositive(t *testing.T) {
	for _, c := range []struct {
		v, want time.Duration
	}{{0, time.Minute}, {-time.Second, time.Minute}, {time.Second, time.Second}} {
		if got := Positive(c.v, time.Minute); got != c.want {
			t.Errorf("Positive(%v, 1m) = %v, want %v", c.v, got, c.want)
		}
	}
	if got := Positive(0, 8); got != 8 {
		t.Errorf("Positive(0, 8) = %d", got)
	}
	if got := Positive(math.NaN(), 1.5); got != 1.5 {
		t.Errorf("Positive(NaN, 1.5) = %v", got)
	}
}
