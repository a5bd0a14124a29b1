// Package fakeclock is the approvals.Clock that tests set by hand, so that
// windows, deadlines and expiries are reached without sleeping.
package fakeclock

import (
	"sync"
	"time"
)

// Clock shows a time that moves only when told to (or, with a tick, on
// every reading). It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	now  time.Time
	tick time.Duration
}

// New returns a Clock showing t.
func New(t time.Time) *Clock { return &Clock{now: t} }

// NewTicking returns a Clock showing t that moves on by tick before every
// Now, so that things stored one after another have distinct times.
func NewTicking(t time.Time, tick time.Duration) *Clock { return &Clock{now: t, tick: tick} }

// Now implements approvals.Clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(c.tick)
	return c.now
}

// Advance moves the clock on by d.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// Set moves the clock to t.
func (c *Clock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}
