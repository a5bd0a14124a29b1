package leasework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// item is a queued item of the fake queue.
type item struct {
	id    string
	lease *approvals.Lease
	done  bool
}

// fakeQueue is a leased queue in memory: Claim leases the items nobody
// holds, Update applies a mutation to a copy and stores it unless the
// mutation fails, as a store transaction does.
type fakeQueue struct {
	mu     sync.Mutex
	items  []*item
	tokens int
}

func newFakeQueue(n int) *fakeQueue {
	q := &fakeQueue{}
	for i := range n {
		q.items = append(q.items, &item{id: fmt.Sprint("i", i)})
	}
	return q
}

func (q *fakeQueue) claimable(it *item, now time.Time) bool {
	return !it.done && it.lease.Expired(now)
}

func (q *fakeQueue) queue() Queue[*item] {
	return Queue[*item]{
		Next: func(context.Context) (time.Time, bool, error) {
			// As a store does: the soonest time an item not done is
			// claimable, a held lease's expiry.
			q.mu.Lock()
			defer q.mu.Unlock()
			var next time.Time
			ok := false
			for _, it := range q.items {
				at := time.Unix(0, 0)
				if it.lease != nil {
					at = it.lease.Until
				}
				if !it.done && (!ok || at.Before(next)) {
					next, ok = at, true
				}
			}
			return next, ok, nil
		},
		Claim: func(_ context.Context, now time.Time, lease time.Duration, limit int) ([]*item, error) {
			q.mu.Lock()
			defer q.mu.Unlock()
			var out []*item
			for _, it := range q.items {
				if len(out) < limit && q.claimable(it, now) {
					q.tokens++
					it.lease = &approvals.Lease{Owner: fmt.Sprint("t", q.tokens), Until: now.Add(lease)}
					c := *it
					out = append(out, &c)
				}
			}
			return out, nil
		},
		Update: func(_ context.Context, id string, m Mutation[*item]) error {
			q.mu.Lock()
			defer q.mu.Unlock()
			for i, it := range q.items {
				if it.id == id {
					c := *it
					if it.lease != nil {
						l := *it.lease
						c.lease = &l
					}
					if _, err := m(&c); err != nil {
						return err
					}
					q.items[i] = &c
					return nil
				}
			}
			return errors.New("no such item")
		},
		ID:    func(it *item) string { return it.id },
		Lease: func(it *item) *approvals.Lease { return it.lease },
	}
}

// finish marks the item done under the lease.
func finish(l *Lease[*item]) error {
	return l.p.cfg.Queue.Update(l.Parent(), l.ID(), l.Owned(func(it *item) ([]approvals.Event, error) {
		it.done, it.lease = true, nil
		return nil, nil
	}))
}

var errLost = errors.New("lease lost")

func testConfig(q *fakeQueue, work func(context.Context, *slog.Logger, *Lease[*item], *item)) Config[*item] {
	return Config[*item]{
		Queue: q.queue(), Name: "tester", Noun: "test item", Source: "the test queue",
		Workers: 3, Lease: time.Second, PollInterval: 20 * time.Millisecond,
		LeaseLost: errLost, Clock: approvals.SystemClock, Logger: slog.New(slog.DiscardHandler),
		LogAttrs: func(it *item) []any { return []any{"item", it.id} },
		Work:     work,
		Fail:     func(context.Context, *slog.Logger, *Lease[*item], *item, error) {},
	}
}

// run runs p until stop is called or the test ends.
func run(t *testing.T, p *Pool[*item]) (stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	stop = sync.OnceFunc(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	t.Cleanup(stop)
	return stop
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Every item runs once, never more than Workers at a time, and Running
// ends at zero.
func TestPoolRunsEachItemOnceWithinTheWorkers(t *testing.T) {
	q := newFakeQueue(20)
	var mu sync.Mutex
	ran := map[string]int{}
	busy, most, running := 0, 0, -1
	cfg := testConfig(q, func(_ context.Context, _ *slog.Logger, l *Lease[*item], it *item) {
		mu.Lock()
		ran[it.id]++
		busy++
		most = max(most, busy)
		mu.Unlock()
		time.Sleep(3 * time.Millisecond)
		mu.Lock()
		busy--
		mu.Unlock()
		if err := finish(l); err != nil {
			t.Error(err)
		}
	})
	cfg.Running = func(n int) { running = n } // under the Pool's lock
	p := New(cfg)
	stop := run(t, p)
	waitFor(t, "every item", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(ran) == 20
	})
	stop()
	for id, n := range ran {
		if n != 1 {
			t.Errorf("%s ran %d times", id, n)
		}
	}
	if most > 3 {
		t.Errorf("%d items ran at once, want at most 3", most)
	}
	p.mu.Lock()
	last := running
	p.mu.Unlock()
	if last != 0 {
		t.Errorf("Running last told %d, want 0", last)
	}
	if err := p.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "tester: Run called twice") {
		t.Errorf("second Run: %v", err)
	}
}

// The heartbeat renews the lease while the work runs; when another claim
// takes the item, the work's context ends, the lease is lost, and the
// lost worker's writes are refused.
func TestHeartbeatRenewsAndNoticesALostLease(t *testing.T) {
	q := newFakeQueue(1)
	type result struct {
		renewed bool
		ended   bool
		lost    bool
		err     error
	}
	got := make(chan result, 1)
	cfg := testConfig(q, func(_ context.Context, _ *slog.Logger, l *Lease[*item], it *item) {
		first := it.lease.Until
		renewed := false
		for deadline := time.Now().Add(5 * time.Second); !renewed && time.Now().Before(deadline); {
			time.Sleep(2 * time.Millisecond)
			q.mu.Lock()
			renewed = q.items[0].lease.Until.After(first)
			q.mu.Unlock()
		}
		q.mu.Lock()
		q.items[0].lease = &approvals.Lease{Owner: "another worker", Until: time.Now().Add(time.Hour)}
		q.mu.Unlock()
		ended := false
		select {
		case <-l.Context().Done():
			ended = true
		case <-time.After(5 * time.Second):
		}
		got <- result{renewed: renewed, ended: ended, lost: l.Lost(), err: finish(l)}
	})
	cfg.Lease = 60 * time.Millisecond // a beat every 20 ms
	run(t, New(cfg))
	r := <-got
	if !r.renewed {
		t.Error("the heartbeat did not renew the lease")
	}
	if !r.ended {
		t.Error("the work's context did not end when the lease was lost")
	}
	if !r.lost || !errors.Is(r.err, errLost) {
		t.Errorf("after losing the lease: Lost() = %v, finish = %v; want true and the LeaseLost error", r.lost, r.err)
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.items[0].done || q.items[0].lease.Owner != "another worker" {
		t.Errorf("the lost worker's write went through: %+v", q.items[0])
	}
}

// Work that panics is recovered and handed to Fail with the lease, whose
// writes still hold.
func TestPanicGoesToFail(t *testing.T) {
	q := newFakeQueue(1)
	failed := make(chan error, 1)
	cfg := testConfig(q, func(context.Context, *slog.Logger, *Lease[*item], *item) { panic("boom") })
	cfg.Fail = func(_ context.Context, _ *slog.Logger, l *Lease[*item], it *item, err error) {
		if it.id != "i0" {
			t.Errorf("Fail got %s", it.id)
		}
		failed <- errors.Join(err, finish(l))
	}
	run(t, New(cfg))
	select {
	case err := <-failed:
		if err == nil || err.Error() != "internal error: boom" {
			t.Errorf("Fail got %v, want only internal error: boom", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Fail was not called")
	}
}

// When Run's context ends, the work in flight goes on: without a grace
// until it returns, with one until the grace ends its job context.
func TestShutdownWaitsForTheWorkInFlight(t *testing.T) {
	for _, grace := range []time.Duration{0, 50 * time.Millisecond} {
		t.Run(fmt.Sprint("grace ", grace), func(t *testing.T) {
			q := newFakeQueue(1)
			started := make(chan struct{})
			var parentEnded bool
			var took time.Duration
			cfg := testConfig(q, func(runCtx context.Context, _ *slog.Logger, l *Lease[*item], _ *item) {
				close(started)
				<-runCtx.Done()
				t0 := time.Now()
				select {
				case <-l.Parent().Done():
					parentEnded = true
				case <-time.After(300 * time.Millisecond):
				}
				took = time.Since(t0)
			})
			cfg.ShutdownGrace = grace
			stop := run(t, New(cfg))
			<-started
			stop() // Run returns only after the work did
			if grace == 0 && (parentEnded || took < 300*time.Millisecond) {
				t.Errorf("without a grace the job context ended (%v) after %v; want the work to run to its end", parentEnded, took)
			}
			if grace > 0 && (!parentEnded || took >= 300*time.Millisecond) {
				t.Errorf("with a grace of %v the job context ended: %v, after %v", grace, parentEnded, took)
			}
		})
	}
}
