// Package leasework runs the workers of a leased queue kept in the store:
// the provisioning jobs (approvals.JobQueue) and the outbox's deliveries
// (approvals.Outbox). A Pool claims as many claimable items as it has free
// workers, each under a lease, and runs each on its own goroutine; a
// heartbeat renews the lease while the work runs, and every write of the
// work checks it (Lease.Owned), so that a worker that lost its item to
// another process writes nothing. The Pool looks again when it is woken,
// when a worker finishes, when the soonest item becomes claimable, or at
// the poll interval; when Run's context ends it lets the work in flight
// finish, for at most a grace, and returns.
package leasework

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// GaugeInterval is how often a Pool counts its queue (Config.Count).
const GaugeInterval = 10 * time.Second

// errorRetry bounds the wait after the queue could not be read.
const errorRetry = 5 * time.Second

// Mutation changes an item of type T in one store write, returning the
// events to append; approvals.Mutation and approvals.DeliveryMutation are
// ones.
type Mutation[T any] = func(T) ([]approvals.Event, error)

// Queue is the store side of a leased queue of items of type T.
type Queue[T any] struct {
	// Next returns when the soonest item becomes claimable; false when
	// there is none.
	Next func(ctx context.Context) (time.Time, bool, error)
	// Claim leases up to limit items claimable at now, for lease.
	Claim func(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]T, error)
	// Update applies m to the stored item id in one write.
	Update func(ctx context.Context, id string, m Mutation[T]) error
	// ID returns an item's id.
	ID func(T) string
	// Lease returns an item's lease; nil when no worker holds it.
	Lease func(T) *approvals.Lease
}

// Config configures a Pool. Every field is required unless it says
// otherwise; the owner of the Pool sets the defaults.
type Config[T any] struct {
	Queue Queue[T]
	// Name names the worker in logs ("notifier"), Noun one item
	// ("delivery") and Source the queue ("the outbox").
	Name, Noun, Source string
	// StartAttrs are logged with "<Name> started", after the workers.
	StartAttrs []any
	// Stopping, when set, is logged with the grace when Run's context
	// ends and ShutdownGrace is positive: "<Name> stopping: <Stopping>".
	Stopping string
	// Workers is how many items run at once.
	Workers int
	// Lease is how long a claim holds an item; the heartbeat renews it
	// every third of it.
	Lease time.Duration
	// PollInterval is the longest the queue goes unread when nothing
	// wakes the Pool.
	PollInterval time.Duration
	// ShutdownGrace is how long, after Run's context ends, the work in
	// flight may go on before its context ends too; zero waits for it
	// however long it takes (its own timeouts bound it).
	ShutdownGrace time.Duration
	// LeaseLost is the error an Owned mutation refuses with when the
	// item's lease is no longer this claim's.
	LeaseLost error
	Clock     approvals.Clock
	Logger    *slog.Logger
	// LogAttrs returns the attributes that name an item in its logs.
	LogAttrs func(T) []any
	// Work runs one claimed item. runCtx ends when Run is asked to stop;
	// l.Context() ends when the lease is lost or the grace is over, and
	// l.Parent() only when the grace is over.
	Work func(runCtx context.Context, log *slog.Logger, l *Lease[T], item T)
	// Fail records the failure of work that panicked, with the job
	// context, after the heartbeat has stopped.
	Fail func(ctx context.Context, log *slog.Logger, l *Lease[T], item T, err error)
	// Count, when set, refreshes the gauges from the store, at most every
	// GaugeInterval; a failed count is tried again at the next look.
	Count func(ctx context.Context, now time.Time) error
	// Housekeeping, when set, runs before every look at the queue, on the
	// Run goroutine.
	Housekeeping func(ctx context.Context, now time.Time)
	// Running, when set, is told how many items this process runs each
	// time the number changes.
	Running func(n int)
}

// Pool claims and runs the items of a leased queue.
type Pool[T any] struct {
	cfg   Config[T]
	log   *slog.Logger
	wake  chan struct{}
	freed chan struct{}

	mu      sync.Mutex
	started bool
	running int

	// lastCount is when the queue was last counted; only the Run
	// goroutine touches it.
	lastCount time.Time
}

// New returns a Pool; call Run to start it.
func New[T any](cfg Config[T]) *Pool[T] {
	return &Pool[T]{cfg: cfg, log: cfg.Logger, wake: make(chan struct{}, 1), freed: make(chan struct{}, 1)}
}

// Wake tells the Pool that an item may be claimable now. It never blocks.
func (p *Pool[T]) Wake() { Signal(p.wake) }

// Signal sends on c, a channel with a buffer of one, unless a signal is
// pending already: it never blocks.
func Signal(c chan<- struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run runs items until ctx ends, then lets the work in flight finish (for
// at most ShutdownGrace when it is positive) and returns. Run may be
// called once.
func (p *Pool[T]) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New(p.cfg.Name + ": Run called twice")
	}
	p.started = true
	p.mu.Unlock()

	// The work in flight outlives ctx, so that its outcome is recorded.
	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	p.log.Info(p.cfg.Name+" started", append([]any{"workers", p.cfg.Workers}, p.cfg.StartAttrs...)...)
	for {
		timer.Reset(p.Dispatch(ctx, jobCtx, &wg))
		select {
		case <-ctx.Done():
			if grace := p.cfg.ShutdownGrace; grace > 0 {
				if p.cfg.Stopping != "" {
					p.log.Info(p.cfg.Name+" stopping: "+p.cfg.Stopping, "grace", grace)
				}
				defer time.AfterFunc(grace, cancelJobs).Stop()
			}
			wg.Wait()
			p.log.Info(p.cfg.Name + " stopped")
			return nil
		case <-p.wake:
		case <-p.freed:
		case <-timer.C:
		}
	}
}

// Dispatch is one look at the queue, as Run takes them: it claims as many
// claimable items as there are free workers and starts them under wg, and
// returns how long to wait before looking again (a worker finishing or
// Wake may end the wait sooner). Claiming is a store write, so it is done
// only when Queue.Next says an item is claimable now. Tests call it to
// step a Pool by hand.
func (p *Pool[T]) Dispatch(ctx, jobCtx context.Context, wg *sync.WaitGroup) time.Duration {
	now := p.cfg.Clock.Now()
	p.count(ctx, now)
	if p.cfg.Housekeeping != nil {
		p.cfg.Housekeeping(ctx, now)
	}
	p.mu.Lock()
	free := p.cfg.Workers - p.running
	p.mu.Unlock()
	q := p.cfg.Queue
	next, ok, err := q.Next(ctx)
	if err == nil && ok && !next.After(now) && free > 0 {
		var items []T
		if items, err = q.Claim(ctx, now, p.cfg.Lease, free); err == nil {
			p.addRunning(len(items))
			for _, it := range items {
				wg.Add(1)
				go p.work(ctx, jobCtx, wg, it)
			}
			if free -= len(items); free > 0 {
				next, ok, err = q.Next(ctx)
			}
		}
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			p.log.Error(p.cfg.Name+": cannot read "+p.cfg.Source, "error", err)
		}
		return min(p.cfg.PollInterval, errorRetry)
	case free <= 0 || !ok:
		// Every worker is busy (one finishing ends the wait), or there is
		// nothing queued (Wake ends it).
		return p.cfg.PollInterval
	}
	return max(min(p.cfg.PollInterval, next.Sub(now)), 0)
}

// count refreshes the gauges every GaugeInterval.
func (p *Pool[T]) count(ctx context.Context, now time.Time) {
	if p.cfg.Count == nil || now.Sub(p.lastCount) < GaugeInterval {
		return
	}
	if p.cfg.Count(ctx, now) == nil {
		p.lastCount = now // else Dispatch reports the store's failures
	}
}

func (p *Pool[T]) addRunning(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.running += n
	if p.cfg.Running != nil {
		p.cfg.Running(p.running)
	}
}

// work runs one claimed item on a worker goroutine.
func (p *Pool[T]) work(runCtx, jobCtx context.Context, wg *sync.WaitGroup, item T) {
	defer wg.Done()
	defer func() {
		p.addRunning(-1)
		Signal(p.freed)
	}()
	log := p.log.With(p.cfg.LogAttrs(item)...)
	l := p.keepLease(jobCtx, log, item)
	defer l.Stop()
	defer func() {
		if v := recover(); v != nil {
			// A panic in one item's work must not take the server down or
			// leave the item spinning.
			log.Error(p.cfg.Noun+" panicked", "panic", v, "stack", string(debug.Stack()))
			l.Stop()
			p.cfg.Fail(jobCtx, log, l, item, fmt.Errorf("internal error: %v", v))
		}
	}()
	p.cfg.Work(runCtx, log, l, item)
}

// Lease is a running item's claim on it: the token the store gave the
// claim, the heartbeat that renews it every third of Config.Lease, and a
// context for the work that ends when the claim is lost, so that a worker
// that lost its item stops working on it.
type Lease[T any] struct {
	p      *Pool[T]
	log    *slog.Logger
	id     string
	token  string
	parent context.Context // the job context of Run
	ctx    context.Context // parent, also ended when the lease is lost
	cancel context.CancelFunc
	lost   atomic.Bool

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

// keepLease starts the heartbeat of the lease Claim gave item.
func (p *Pool[T]) keepLease(jobCtx context.Context, log *slog.Logger, item T) *Lease[T] {
	l := &Lease[T]{p: p, log: log, id: p.cfg.Queue.ID(item), parent: jobCtx, quit: make(chan struct{}), done: make(chan struct{})}
	if held := p.cfg.Queue.Lease(item); held != nil {
		l.token = held.Owner
	}
	l.ctx, l.cancel = context.WithCancel(jobCtx)
	go l.heartbeat(p.cfg.Lease / 3)
	return l
}

// ID returns the id of the leased item.
func (l *Lease[T]) ID() string { return l.id }

// Context returns the context of the work: it ends when the lease is
// lost, when Stop is called, or when the grace after Run's end is over.
func (l *Lease[T]) Context() context.Context { return l.ctx }

// Parent returns the job context of Run: it ends only when the grace
// after Run's end is over. The writes that record an outcome use it.
func (l *Lease[T]) Parent() context.Context { return l.parent }

// Lost reports whether the lease was found lost, by the heartbeat or by
// an Owned mutation.
func (l *Lease[T]) Lost() bool { return l.lost.Load() }

func (l *Lease[T]) heartbeat(every time.Duration) {
	defer close(l.done)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-l.quit:
			return
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		err := l.p.cfg.Queue.Update(l.ctx, l.id, l.Renewing(func(T) ([]approvals.Event, error) { return nil, nil }))
		switch {
		case errors.Is(err, l.p.cfg.LeaseLost):
			l.log.Warn(l.p.cfg.Noun + ": its lease was lost (it expired and another worker claimed it); stopping it here")
			l.lost.Store(true)
			l.cancel()
			return
		case err != nil && l.ctx.Err() == nil:
			// The lease still holds until it expires; the next beat tries
			// again.
			l.log.Warn(l.p.cfg.Noun+": cannot renew its lease", "error", err)
		}
	}
}

// Stop ends the heartbeat, waits for it and ends Context; the lease stays
// in the store for the final write to check and release.
func (l *Lease[T]) Stop() {
	l.stopOnce.Do(func() {
		close(l.quit)
		<-l.done
		l.cancel()
	})
}

// Owned returns a mutation that applies m only while this claim holds the
// item's lease, and refuses with Config.LeaseLost otherwise.
func (l *Lease[T]) Owned(m Mutation[T]) Mutation[T] {
	return func(item T) ([]approvals.Event, error) {
		if !l.p.cfg.Queue.Lease(item).HeldBy(l.token) {
			l.lost.Store(true) // the same answer if the mutation runs again
			return nil, l.p.cfg.LeaseLost
		}
		return m(item)
	}
}

// Renewing is Owned that also renews the lease: every write of the work
// counts as a heartbeat. The transitions that end or reschedule an item
// clear the lease after it is renewed here.
func (l *Lease[T]) Renewing(m Mutation[T]) Mutation[T] {
	return l.Owned(func(item T) ([]approvals.Event, error) {
		l.p.cfg.Queue.Lease(item).Until = l.p.cfg.Clock.Now().Add(l.p.cfg.Lease)
		return m(item)
	})
}

// Hold cuts the lease to until, so that an item whose store write failed
// is not claimed again at once; after until any worker may claim it. If
// this write fails too, the lease runs out by itself.
func (l *Lease[T]) Hold(ctx context.Context, until time.Time) error {
	return l.p.cfg.Queue.Update(ctx, l.id, l.Owned(func(item T) ([]approvals.Event, error) {
		l.p.cfg.Queue.Lease(item).Until = until
		return nil, nil
	}))
}
