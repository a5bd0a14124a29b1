package recent

import (
	"fmt"
	"testing"
	"time"
)

// A key is let through once per window; other keys are not held back by
// it.
func TestFirstOncePerWindow(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	s := Set{Window: time.Hour, Max: 10}
	steps := []struct {
		key  string
		at   time.Duration
		want bool
	}{
		{"a", 0, true},
		{"a", time.Minute, false},
		{"b", time.Minute, true},
		{"a", time.Hour - time.Nanosecond, false},
		{"a", time.Hour, true},
		{"a", time.Hour + time.Minute, false},
	}
	for _, st := range steps {
		if got := s.First(st.key, t0.Add(st.at)); got != st.want {
			t.Errorf("First(%q) at +%v = %v, want %v", st.key, st.at, got, st.want)
		}
	}
}

// A full set forgets everything: memory stays bounded, and a forgotten key
// is let through again.
func TestFirstBounded(t *testing.T) {
	t0 := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	s := Set{Window: time.Hour, Max: 3}
	for i := range 3 {
		s.First(fmt.Sprint(i), t0)
	}
	if !s.First("3", t0) {
		t.Fatal("a new key was held back")
	}
	if len(s.seen) != 1 {
		t.Errorf("%d keys remembered after the set filled, want 1", len(s.seen))
	}
	if !s.First("0", t0) {
		t.Error("a forgotten key was held back")
	}
}
