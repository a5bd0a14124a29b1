// Package recent remembers which keys were seen lately, so that an adapter
// does something once per key and window however often the key comes
// back: the connector and the External ID extensions record a blocked
// sign-up in the audit trail once per request, message and hour, not once
// per retry.
package recent

import (
	"sync"
	"time"
)

// Set is a bounded set of keys with the time each was last let through.
// Set Window and Max before use; a Set is safe for concurrent use and must
// not be copied after first use.
type Set struct {
	// Window is how long a key let through is held back.
	Window time.Duration
	// Max bounds the keys remembered: when full, the Set forgets
	// everything rather than scan, so at worst a key is let through twice
	// within the window.
	Max int

	mu   sync.Mutex
	seen map[string]time.Time
}

// First reports whether key was not let through within the Window before
// now, and remembers now for it when so.
func (s *Set) First(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if at, ok := s.seen[key]; ok && now.Sub(at) < s.Window {
		return false
	}
	if s.seen == nil || len(s.seen) >= s.Max {
		s.seen = make(map[string]time.Time)
	}
	s.seen[key] = now
	return true
}
