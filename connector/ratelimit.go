package connector

import (
	"sync"
	"sync/atomic"
	"time"
)

// failureLimiter counts failed authentication attempts per client with the
// generic cell rate algorithm: a client's bucket is one time, its
// theoretical arrival time (tat). Each failure moves tat by every; a client
// whose tat is more than (burst-1)*every ahead of now is throttled. A tat in
// the past is a full bucket, the same as no entry, so such entries can be
// dropped at any time: memory stays bounded by max.
type failureLimiter struct {
	burst      int
	every      time.Duration
	maxClients int

	// n mirrors len(tat) so that a first failure after a quiet spell
	// costs no lookup.
	n         atomic.Int64
	mu        sync.Mutex
	tat       map[string]time.Time
	lastSweep time.Time
}

func newFailureLimiter(burst int, every time.Duration, maxClients int) *failureLimiter {
	return &failureLimiter{burst: burst, every: every, maxClients: maxClients, tat: map[string]time.Time{}}
}

// empty reports whether no client has failed recently.
func (l *failureLimiter) empty() bool { return l.n.Load() == 0 }

// wait returns how long the client must wait before its next attempt is
// looked at; 0 when it may try now.
func (l *failureLimiter) wait(key string, now time.Time) time.Duration {
	if l.empty() {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) >= l.every {
		l.sweep(now)
	}
	tat, ok := l.tat[key]
	if !ok {
		return 0
	}
	if d := tat.Sub(now) - time.Duration(l.burst-1)*l.every; d > 0 {
		return d
	}
	return 0
}

// fail records a failed attempt by the client.
func (l *failureLimiter) fail(key string, now time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	tat, ok := l.tat[key]
	if !ok && len(l.tat) >= l.maxClients {
		l.sweep(now)
		// Still full of clients failing right now: forget one of them.
		// A flood from more addresses than max can reset some buckets,
		// but memory stays bounded.
		for k := range l.tat {
			if len(l.tat) < l.maxClients {
				break
			}
			delete(l.tat, k)
		}
	}
	if tat.Before(now) {
		tat = now
	}
	l.tat[key] = tat.Add(l.every)
	l.n.Store(int64(len(l.tat)))
}

// sweep drops the clients whose bucket is full again.
func (l *failureLimiter) sweep(now time.Time) {
	for k, tat := range l.tat {
		if !tat.After(now) {
			delete(l.tat, k)
		}
	}
	l.lastSweep = now
	l.n.Store(int64(len(l.tat)))
}
