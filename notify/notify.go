// Package notify sends what the outbox holds (approvals.Outbox): it fans
// each announcement out into the deliveries its configuration calls for
// (reviewer and applicant emails, webhooks, Teams and Slack posts) and
// sends every delivery through the Courier of its channel, retrying
// temporary failures with backoff and recording each outcome under the
// delivery's lease. It never runs on the path of the change that caused a
// delivery: the store enqueues the announcement in the change's
// transaction, and the Notifier, woken or polling, does the rest.
package notify

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"runtime/debug"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
)

// Defaults of Config.
const (
	DefaultWorkers       = 8
	DefaultLease         = time.Minute
	DefaultPollInterval  = 5 * time.Second
	DefaultRetryFor      = 25 * time.Hour
	DefaultPurgeAfter    = 7 * 24 * time.Hour
	DefaultPurgeInterval = time.Hour
	// WebhookTimeout bounds one webhook, Teams or Slack call (SPEC: no
	// answer in 10 s is a failure).
	WebhookTimeout = 10 * time.Second
	// MailTimeout bounds one email send.
	MailTimeout = time.Minute
	// MaxWorkers bounds Config.Workers.
	MaxWorkers = 256
)

// Store is what the Notifier needs of the store.
type Store interface {
	approvals.Outbox
}

// Config configures a Notifier.
type Config struct {
	// Store holds the outbox. Required.
	Store Store
	// Couriers send the deliveries of each channel. A channel without one
	// gets no deliveries from the fan-out; one that is stored already
	// (the configuration changed) is marked failed.
	Couriers map[approvals.Channel]approvals.Courier
	// Fanout says who hears of each announced event.
	Fanout Fanout
	// Clock tells the time; the system clock when nil.
	Clock approvals.Clock
	// Workers is how many deliveries are sent at once; DefaultWorkers
	// when zero.
	Workers int
	// Lease is how long a claim holds a delivery; DefaultLease when zero.
	// It is renewed every third of it while a send runs.
	Lease time.Duration
	// PollInterval is the longest the outbox goes unread when nothing
	// wakes the Notifier (deliveries enqueued by another replica);
	// DefaultPollInterval when zero.
	PollInterval time.Duration
	// Timeouts bound one send per channel; WebhookTimeout, or MailTimeout
	// for email, when a channel has none.
	Timeouts map[approvals.Channel]time.Duration
	// RetryFor is how long after its creation a delivery that keeps
	// failing temporarily is retried before it is marked failed;
	// DefaultRetryFor when zero.
	RetryFor time.Duration
	// PurgeAfter is how long sent deliveries are kept; DefaultPurgeAfter
	// when zero. PurgeInterval is how often they are purged.
	PurgeAfter, PurgeInterval time.Duration
	// Logger receives structured logs; discarded when nil.
	Logger *slog.Logger
	// Metrics registers the notification metrics; none when nil.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = approvals.SystemClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Lease <= 0 {
		c.Lease = DefaultLease
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.RetryFor <= 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.PurgeAfter <= 0 {
		c.PurgeAfter = DefaultPurgeAfter
	}
	if c.PurgeInterval <= 0 {
		c.PurgeInterval = DefaultPurgeInterval
	}
}

// Validate reports the first setting that is missing or malformed.
func (c Config) Validate() error {
	switch {
	case c.Store == nil:
		return errors.New("a store is required")
	case c.Workers < 0 || c.Workers > MaxWorkers:
		return fmt.Errorf("notification workers must be between 1 and %d, not %d", MaxWorkers, c.Workers)
	case c.Lease < 0:
		return fmt.Errorf("the delivery lease must be positive, not %s", c.Lease)
	}
	return c.Fanout.validate()
}

// Notifier fans out and sends the outbox's deliveries.
type Notifier struct {
	cfg     Config
	log     *slog.Logger
	metrics *metrics
	wake    chan struct{}
	freed   chan struct{}

	mu      sync.Mutex
	started bool
	running int

	// Only the Run goroutine touches these.
	lastCount, lastPurge time.Time
}

// New checks cfg and returns a Notifier; call Run to start it.
func New(cfg Config) (*Notifier, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new notifier: %w", err)
	}
	cfg.setDefaults()
	m, err := newMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new notifier: %w", err)
	}
	return &Notifier{cfg: cfg, log: cfg.Logger, metrics: m,
		wake: make(chan struct{}, 1), freed: make(chan struct{}, 1)}, nil
}

// Wake tells the Notifier that a delivery may be due now. It never
// blocks.
func (n *Notifier) Wake() { signal(n.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run sends deliveries until ctx ends, then waits for the sends in flight
// (each bounded by its timeout) and returns. Run may be called once.
func (n *Notifier) Run(ctx context.Context) error {
	n.mu.Lock()
	if n.started {
		n.mu.Unlock()
		return errors.New("notifier: Run called twice")
	}
	n.started = true
	n.mu.Unlock()

	// Sends in flight finish after ctx ends (their own timeouts bound
	// them), so that their outcome is recorded.
	sendCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	n.log.Info("notifier started", "workers", n.cfg.Workers, "channels", len(n.cfg.Couriers))
	for {
		wait := n.dispatch(ctx, sendCtx, &wg)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			wg.Wait()
			n.log.Info("notifier stopped")
			return nil
		case <-n.wake:
		case <-n.freed:
		case <-timer.C:
		}
	}
}

// dispatch claims as many due deliveries as there are free workers and
// starts them, and returns how long to wait before looking again.
func (n *Notifier) dispatch(ctx, sendCtx context.Context, wg *sync.WaitGroup) time.Duration {
	now := n.cfg.Clock.Now()
	n.housekeeping(ctx, now)
	n.mu.Lock()
	free := n.cfg.Workers - n.running
	n.mu.Unlock()
	st := n.cfg.Store
	next, ok, err := st.NextDeliveryAt(ctx)
	if err == nil && ok && !next.After(now) && free > 0 {
		var ds []*approvals.Delivery
		if ds, err = st.ClaimDeliveries(ctx, now, n.cfg.Lease, free); err == nil {
			n.mu.Lock()
			n.running += len(ds)
			n.mu.Unlock()
			for _, d := range ds {
				wg.Add(1)
				go n.work(sendCtx, wg, d)
			}
			if free -= len(ds); free > 0 {
				next, ok, err = st.NextDeliveryAt(ctx)
			}
		}
	}
	switch {
	case err != nil:
		if ctx.Err() == nil {
			n.log.Error("notifier: cannot read the outbox", "error", err)
		}
		return min(n.cfg.PollInterval, 5*time.Second)
	case free <= 0 || !ok:
		return n.cfg.PollInterval
	}
	return max(min(n.cfg.PollInterval, next.Sub(now)), 0)
}

// gaugeInterval is how often the outbox is counted for the gauges.
const gaugeInterval = 10 * time.Second

// housekeeping refreshes the gauges and purges old sent deliveries, each
// at its interval.
func (n *Notifier) housekeeping(ctx context.Context, now time.Time) {
	if now.Sub(n.lastCount) >= gaugeInterval {
		if c, err := n.cfg.Store.CountDeliveries(ctx, now); err == nil {
			n.lastCount = now
			n.metrics.setCounts(c)
		}
	}
	if now.Sub(n.lastPurge) >= n.cfg.PurgeInterval {
		n.lastPurge = now
		k, err := n.cfg.Store.PurgeDeliveries(ctx, now.Add(-n.cfg.PurgeAfter))
		switch {
		case err != nil && ctx.Err() == nil:
			n.log.Warn("notifier: cannot purge old deliveries", "error", err)
		case k > 0:
			n.log.Info("notifier: purged old sent deliveries", "count", k, "sent_before", now.Add(-n.cfg.PurgeAfter))
		}
	}
}

// work sends one claimed delivery on a worker goroutine.
func (n *Notifier) work(ctx context.Context, wg *sync.WaitGroup, d *approvals.Delivery) {
	defer wg.Done()
	defer func() {
		n.mu.Lock()
		n.running--
		n.mu.Unlock()
		signal(n.freed)
	}()
	log := n.log.With("delivery", d.ID, "channel", d.Channel, "request_id", d.RequestID)
	l := n.keepLease(ctx, log, d)
	defer l.stop()
	defer func() {
		if v := recover(); v != nil {
			log.Error("delivery panicked", "panic", v, "stack", string(debug.Stack()))
			l.stop()
			n.record(ctx, log, l, d, &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("internal error: %v", v)})
		}
	}()
	if d.Channel == approvals.ChannelAnnouncement {
		n.fanOut(ctx, log, l, d)
		return
	}
	courier := n.cfg.Couriers[d.Channel]
	var err error
	if courier == nil {
		err = &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("no %s transport is configured", d.Channel)}
	} else {
		sendCtx, cancel := context.WithTimeout(l.ctx, n.timeout(d.Channel))
		err = courier.Deliver(sendCtx, d)
		cancel()
	}
	l.stop()
	n.record(ctx, log, l, d, err)
}

func (n *Notifier) timeout(c approvals.Channel) time.Duration {
	if t := n.cfg.Timeouts[c]; t > 0 {
		return t
	}
	if c == approvals.ChannelEmail {
		return MailTimeout
	}
	return WebhookTimeout
}

// fanOut enqueues the deliveries an announcement calls for, then marks
// it sent. A crash between the two enqueues the same deliveries again,
// which the store ignores.
func (n *Notifier) fanOut(ctx context.Context, log *slog.Logger, l *lease, a *approvals.Delivery) {
	children := n.cfg.Fanout.deliveries(a, n.cfg.Couriers)
	if len(children) > 0 {
		if err := n.cfg.Store.EnqueueDeliveries(ctx, children); err != nil {
			log.Error("notifier: cannot enqueue the deliveries of an announcement; trying again later", "error", err)
			n.hold(ctx, l)
			return
		}
		for _, c := range children {
			n.metrics.outcome(c.Channel, "queued")
		}
	}
	l.stop()
	now := n.cfg.Clock.Now()
	_, err := n.cfg.Store.UpdateDelivery(ctx, a.ID, l.owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
		d.MarkSent(now)
		return nil, nil
	}))
	if err != nil && !errors.Is(err, errLeaseLost) {
		log.Warn("notifier: cannot mark an announcement done; its lease runs out and it is fanned out again (the same deliveries)", "error", err)
	}
	if len(children) > 0 {
		n.Wake()
	}
}

// record stores the outcome of a send under the lease.
func (n *Notifier) record(ctx context.Context, log *slog.Logger, l *lease, d *approvals.Delivery, sendErr error) {
	now := n.cfg.Clock.Now()
	var outcome string
	_, err := n.cfg.Store.UpdateDelivery(ctx, d.ID, l.owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
		switch {
		case sendErr == nil:
			d.MarkSent(now)
			outcome = "sent"
			return nil, nil
		case !approvals.IsPermanentDelivery(sendErr) && now.Sub(d.CreatedAt) < n.cfg.RetryFor:
			var de *approvals.DeliveryError
			var after time.Duration
			if errors.As(sendErr, &de) {
				after = de.RetryAfter
			}
			d.ScheduleRetry(now.Add(n.backoff(d.Attempts+1, after)), sendErr.Error())
			outcome = "retried"
			return nil, nil
		}
		reason := sendErr.Error()
		if !approvals.IsPermanentDelivery(sendErr) {
			reason = fmt.Sprintf("gave up after %d attempts over %s: %s", d.Attempts+1, n.cfg.RetryFor, reason)
		}
		d.MarkFailed(reason)
		outcome = "failed"
		return []approvals.Event{FailedEvent(d, now)}, nil
	}))
	switch {
	case errors.Is(err, errLeaseLost):
		log.Warn("delivery: its lease was lost to another worker, whose record stands", "outcome", outcome)
		return
	case err != nil:
		log.Error("delivery: cannot record the outcome; it is sent again once its lease runs out", "error", err, "send_error", sendErr)
		return
	}
	n.metrics.outcome(d.Channel, outcome)
	switch outcome {
	case "sent":
		log.Debug("delivery sent")
	case "retried":
		log.Warn("delivery failed; retrying later", "error", sendErr, "attempts", d.Attempts+1)
	default:
		log.Error("delivery failed permanently", "error", sendErr)
	}
}

// FailedEvent is the audit event of a delivery d that failed for good.
func FailedEvent(d *approvals.Delivery, now time.Time) approvals.Event {
	details := map[string]string{"delivery_id": d.ID, "channel": string(d.Channel), "kind": d.Kind, "error": d.LastError}
	if d.Channel == approvals.ChannelEmail || d.Channel == approvals.ChannelWebhook {
		details["recipient"] = d.Recipient
	}
	return approvals.Event{At: now, Type: approvals.EventDeliveryFailed, RequestID: d.RequestID,
		Actor: approvals.NotifierActor, Details: details}
}

// retrySchedule is the delay before the n-th retry (n from 1): the first
// within 30 s, three within 5 minutes, then backing off to an hour.
var retrySchedule = []time.Duration{10 * time.Second, 30 * time.Second, time.Minute, 2 * time.Minute,
	5 * time.Minute, 10 * time.Minute, 30 * time.Minute, time.Hour}

// maxRetryAfter caps how long a receiver's Retry-After may hold a delivery.
const maxRetryAfter = 6 * time.Hour

// backoff returns the delay before retry number attempt (1 for the first
// retry): the schedule, with up to a tenth of jitter, or the receiver's
// Retry-After when it asks for longer.
func (n *Notifier) backoff(attempt int, retryAfter time.Duration) time.Duration {
	d := retrySchedule[min(max(attempt, 1), len(retrySchedule))-1]
	d += time.Duration(mrand.Int64N(int64(d/10) + 1))
	return max(d, min(retryAfter, maxRetryAfter))
}

// hold keeps a delivery whose store write failed from being claimed again
// at once: its lease is cut to 30 s from now.
func (n *Notifier) hold(ctx context.Context, l *lease) {
	until := n.cfg.Clock.Now().Add(30 * time.Second)
	l.stop()
	_, _ = n.cfg.Store.UpdateDelivery(ctx, l.id, l.owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
		d.Lease.Until = until
		return nil, nil
	}))
}

// errLeaseLost refuses a write of a worker whose lease on the delivery
// expired and was taken by another claim.
var errLeaseLost = &approvals.Error{Code: approvals.EConflict, Message: "the delivery's lease was lost: another worker holds it now"}

// lease is a running send's claim on its delivery: the token, and the
// heartbeat that renews it every third of Config.Lease.
type lease struct {
	n      *Notifier
	log    *slog.Logger
	id     string
	token  string
	ctx    context.Context // ended when the lease is lost
	cancel context.CancelFunc

	quit     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
}

func (n *Notifier) keepLease(ctx context.Context, log *slog.Logger, d *approvals.Delivery) *lease {
	l := &lease{n: n, log: log, id: d.ID, quit: make(chan struct{}), done: make(chan struct{})}
	if d.Lease != nil {
		l.token = d.Lease.Owner
	}
	l.ctx, l.cancel = context.WithCancel(ctx)
	go l.heartbeat(n.cfg.Lease / 3)
	return l
}

func (l *lease) heartbeat(every time.Duration) {
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
		_, err := l.n.cfg.Store.UpdateDelivery(l.ctx, l.id, l.owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
			d.Lease.Until = l.n.cfg.Clock.Now().Add(l.n.cfg.Lease)
			return nil, nil
		}))
		switch {
		case errors.Is(err, errLeaseLost):
			l.log.Warn("delivery: its lease was lost; stopping the send")
			l.cancel()
			return
		case err != nil && l.ctx.Err() == nil:
			l.log.Warn("delivery: cannot renew its lease", "error", err)
		}
	}
}

// stop ends the heartbeat and waits for it.
func (l *lease) stop() {
	l.stopOnce.Do(func() {
		close(l.quit)
		<-l.done
		l.cancel()
	})
}

// owned returns a mutation that applies m only while this claim holds the
// delivery's lease.
func (l *lease) owned(m approvals.DeliveryMutation) approvals.DeliveryMutation {
	return func(d *approvals.Delivery) ([]approvals.Event, error) {
		if !d.Lease.HeldBy(l.token) {
			return nil, errLeaseLost
		}
		return m(d)
	}
}
