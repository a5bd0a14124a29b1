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
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
	"github.com/approvals-dev/approvals/internal/leasework"
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
	c.Clock = defaults.Clock(c.Clock)
	c.Logger = defaults.Logger(c.Logger)
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.Lease = defaults.Positive(c.Lease, DefaultLease)
	c.PollInterval = defaults.Positive(c.PollInterval, DefaultPollInterval)
	c.RetryFor = defaults.Positive(c.RetryFor, DefaultRetryFor)
	c.PurgeAfter = defaults.Positive(c.PurgeAfter, DefaultPurgeAfter)
	c.PurgeInterval = defaults.Positive(c.PurgeInterval, DefaultPurgeInterval)
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
	pool    *leasework.Pool[*approvals.Delivery]

	// lastPurge is when old sent deliveries were last purged; only the
	// Run goroutine touches it.
	lastPurge time.Time
}

// lease is a running send's claim on its delivery.
type lease = leasework.Lease[*approvals.Delivery]

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
	n := &Notifier{cfg: cfg, log: cfg.Logger, metrics: m}
	st := cfg.Store
	n.pool = leasework.New(leasework.Config[*approvals.Delivery]{
		Queue: leasework.Queue[*approvals.Delivery]{
			Next:  st.NextDeliveryAt,
			Claim: st.ClaimDeliveries,
			Update: func(ctx context.Context, id string, m leasework.Mutation[*approvals.Delivery]) error {
				_, err := st.UpdateDelivery(ctx, id, m)
				return err
			},
			ID:    func(d *approvals.Delivery) string { return d.ID },
			Lease: func(d *approvals.Delivery) *approvals.Lease { return d.Lease },
		},
		Name: "notifier", Noun: "delivery", Source: "the outbox",
		StartAttrs: []any{"channels", len(cfg.Couriers)},
		Workers:    cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval,
		LeaseLost: errLeaseLost, Clock: cfg.Clock, Logger: cfg.Logger,
		LogAttrs: func(d *approvals.Delivery) []any {
			return []any{"delivery", d.ID, "channel", d.Channel, "request_id", d.RequestID}
		},
		Work:         n.work,
		Fail:         n.fail,
		Count:        n.count,
		Housekeeping: n.purge,
	})
	return n, nil
}

// Wake tells the Notifier that a delivery may be due now. It never
// blocks.
func (n *Notifier) Wake() { n.pool.Wake() }

// Run sends deliveries until ctx ends, then waits for the sends in flight
// (each bounded by its timeout) and returns. Run may be called once.
func (n *Notifier) Run(ctx context.Context) error { return n.pool.Run(ctx) }

// count refreshes the gauges.
func (n *Notifier) count(ctx context.Context, now time.Time) error {
	c, err := n.cfg.Store.CountDeliveries(ctx, now)
	if err == nil {
		n.metrics.setCounts(c)
	}
	return err
}

// purge purges old sent deliveries every PurgeInterval.
func (n *Notifier) purge(ctx context.Context, now time.Time) {
	if now.Sub(n.lastPurge) < n.cfg.PurgeInterval {
		return
	}
	n.lastPurge = now
	k, err := n.cfg.Store.PurgeDeliveries(ctx, now.Add(-n.cfg.PurgeAfter))
	switch {
	case err != nil && ctx.Err() == nil:
		n.log.Warn("notifier: cannot purge old deliveries", "error", err)
	case k > 0:
		n.log.Info("notifier: purged old sent deliveries", "count", k, "sent_before", now.Add(-n.cfg.PurgeAfter))
	}
}

// work sends one claimed delivery on a worker goroutine. Its writes use
// the job context, which outlives Run's: the sends in flight finish after
// Run's context ends (their own timeouts bound them), so that their
// outcome is recorded.
func (n *Notifier) work(_ context.Context, log *slog.Logger, l *lease, d *approvals.Delivery) {
	ctx := l.Parent()
	if d.Channel == approvals.ChannelAnnouncement {
		n.fanOut(ctx, log, l, d)
		return
	}
	courier := n.cfg.Couriers[d.Channel]
	var err error
	if courier == nil {
		err = &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("no %s transport is configured", d.Channel)}
	} else {
		sendCtx, cancel := context.WithTimeout(l.Context(), n.timeout(d.Channel))
		err = courier.Deliver(sendCtx, d)
		cancel()
	}
	l.Stop()
	n.record(ctx, log, l, d, err)
}

// fail records a send that panicked as failed for good.
func (n *Notifier) fail(ctx context.Context, log *slog.Logger, l *lease, d *approvals.Delivery, err error) {
	n.record(ctx, log, l, d, &approvals.DeliveryError{Permanent: true, Err: err})
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
	l.Stop()
	now := n.cfg.Clock.Now()
	_, err := n.cfg.Store.UpdateDelivery(ctx, a.ID, l.Owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
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
	_, err := n.cfg.Store.UpdateDelivery(ctx, d.ID, l.Owned(func(d *approvals.Delivery) ([]approvals.Event, error) {
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
	l.Stop()
	_ = l.Hold(ctx, until)
}

// errLeaseLost refuses a write of a worker whose lease on the delivery
// expired and was taken by another claim.
var errLeaseLost = &approvals.Error{Code: approvals.EConflict, Message: "the delivery's lease was lost: another worker holds it now"}
