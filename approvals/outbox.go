package approvals

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"maps"
	"strconv"
	"time"
)

// The outbox: every message the server sends out (an email, a webhook, a
// Teams or Slack post) is a Delivery, kept by the store and sent by a
// worker afterwards, never on the path of the change that caused it.
//
// It works in two steps, both through the same queue:
//
//  1. Announcement. When RequestStore.Create or Update appends an event
//     whose type is Announced, the store, in the same transaction, enqueues
//     the Delivery NewAnnouncement returns: channel ChannelAnnouncement,
//     holding the event and the request as stored by that change. A crash
//     can therefore not lose it: either the change and its announcement
//     are stored, or neither is.
//  2. Fan-out. The notifier claims the announcement, decides from its
//     configuration who hears of it (reviewer emails, the applicant,
//     webhook URLs, Teams, Slack) and enqueues one Delivery per recipient
//     and channel with IDs derived from the announcement's ID
//     (ChildDeliveryID), then marks the announcement sent. Enqueueing is
//     idempotent on the ID, so a crash between the two steps enqueues the
//     same children again, which the store ignores.
//
// A Delivery's ID is stable across retries and restarts: the email's
// Message-ID and the webhook's webhook-id are made from it, so a receiver
// can recognise the repeat a crash between send and record may cause.

// Channel names where a Delivery goes.
type Channel string

// The channels.
const (
	// ChannelAnnouncement is an announced event waiting to be fanned out
	// into the deliveries of the other channels.
	ChannelAnnouncement Channel = "announcement"
	ChannelEmail        Channel = "email"
	ChannelWebhook      Channel = "webhook"
	ChannelTeams        Channel = "teams"
	ChannelSlack        Channel = "slack"
)

// Channels lists every channel, in the order metrics and pages show them.
var Channels = []Channel{ChannelAnnouncement, ChannelEmail, ChannelWebhook, ChannelTeams, ChannelSlack}

// The kinds of email deliveries (Delivery.Kind of ChannelEmail). Webhook,
// Teams and Slack deliveries and announcements have the event type as
// their kind.
const (
	MailReviewerPending   = "reviewer.pending"   // one new pending request, to a reviewer
	MailReviewerDigest    = "reviewer.digest"    // the requests that became pending in a period
	MailReviewerReminder  = "reviewer.reminder"  // a request pending for too long
	MailApplicantReceived = "applicant.received" // to the person: the request is recorded
	MailApplicantApproved = "applicant.approved" // to the person: the account is ready
	MailApplicantDenied   = "applicant.denied"   // to the person: the request was denied
)

// DeliveryState is where a Delivery is in its life.
type DeliveryState string

// The delivery states.
const (
	// DeliveryPending deliveries are waiting for their NextAttemptAt or
	// being sent.
	DeliveryPending DeliveryState = "pending"
	// DeliverySent deliveries were accepted by the receiver.
	DeliverySent DeliveryState = "sent"
	// DeliveryFailed deliveries failed permanently or ran out of
	// attempts; an admin may resend them.
	DeliveryFailed DeliveryState = "failed"
)

// Delivery is one message to send: an announcement to fan out, or one
// email, webhook call, Teams or Slack post.
type Delivery struct {
	// ID is unique in the store and stable across retries; Enqueue
	// ignores a delivery whose ID is stored already.
	ID      string  `json:"id"`
	Channel Channel `json:"channel"`
	// Kind is what is sent: the event type for announcements and events
	// out, one of the Mail* constants for email.
	Kind string `json:"kind"`
	// RequestID is the request the delivery is about; empty for a digest.
	RequestID string `json:"request_id,omitempty"`
	// Recipient is the email address, or the URL a webhook is posted to.
	// It is not secret: webhook URLs with tokens in them (Teams, Slack)
	// are kept out of it and read from the configuration by channel.
	Recipient string `json:"recipient,omitempty"`
	// Event is the announced event (its Seq set), for announcements and
	// the deliveries fanned out of them.
	Event *Event `json:"event,omitempty"`
	// Request is the request as the announced change stored it.
	Request *Request `json:"request,omitempty"`
	// Data is channel-specific detail the fan-out adds (for example the
	// period of a digest).
	Data json.RawMessage `json:"data,omitempty"`

	State         DeliveryState `json:"state"`
	Attempts      int           `json:"attempts"`
	CreatedAt     time.Time     `json:"created_at"`
	NextAttemptAt time.Time     `json:"next_attempt_at"`
	SentAt        time.Time     `json:"sent_at,omitzero"`
	// LastError is the last failure, as the receiver gave it (no secret).
	LastError string `json:"last_error,omitempty"`
	// Lease is the claim of the worker sending it, as for provisioning
	// jobs (JobQueue).
	Lease *Lease `json:"lease,omitempty"`
	// Version is set by the store and incremented on every change.
	Version uint64 `json:"version"`
}

// Clone returns a deep copy of d: the copy shares no map, slice or
// pointer with d.
func (d *Delivery) Clone() *Delivery {
	if d == nil {
		return nil
	}
	c := *d
	if d.Event != nil {
		e := *d.Event
		e.Details = maps.Clone(d.Event.Details)
		c.Event = &e
	}
	c.Request = d.Request.Clone()
	c.Data = bytes.Clone(d.Data)
	if d.Lease != nil {
		l := *d.Lease
		c.Lease = &l
	}
	return &c
}

// Claimable reports whether d may be claimed at now: pending, due and not
// under a lease that holds.
func (d *Delivery) Claimable(now time.Time) bool {
	return d.State == DeliveryPending && !d.NextAttemptAt.After(now) && d.Lease.Expired(now)
}

// ClaimableAt returns when a pending d becomes claimable: the later of
// NextAttemptAt and the expiry of its lease.
func (d *Delivery) ClaimableAt() time.Time { return d.Lease.freeAt(d.NextAttemptAt) }

// MarkSent records a successful send and releases the lease.
func (d *Delivery) MarkSent(now time.Time) {
	d.State, d.SentAt, d.LastError, d.Lease = DeliverySent, now, "", nil
	d.Attempts++
}

// ScheduleRetry records a temporary failure: the delivery is tried again
// at next. The lease is released.
func (d *Delivery) ScheduleRetry(next time.Time, reason string) {
	d.Attempts++
	d.NextAttemptAt, d.LastError, d.Lease = next, reason, nil
}

// MarkFailed records a permanent failure and releases the lease.
func (d *Delivery) MarkFailed(reason string) {
	d.Attempts++
	d.State, d.LastError, d.Lease = DeliveryFailed, reason, nil
}

// Resend makes a failed or sent delivery pending again, due at now, with
// the same ID (so the receiver can tell it is a repeat).
func (d *Delivery) Resend(now time.Time) error {
	if d.State == DeliveryPending {
		return Errorf(EConflict, "delivery %s is still pending", d.ID)
	}
	d.State, d.NextAttemptAt, d.Lease = DeliveryPending, now, nil
	return nil
}

// Announced reports whether events of type t are announced: the store
// enqueues an announcement for them in the change's transaction. These
// are the event types of the webhooks (SPEC "Events out") and the ones
// emails are sent for.
func (t EventType) Announced() bool {
	switch t {
	case EventReceived, EventResubmitted, EventAutoApproved, EventAutoDenied,
		EventApproved, EventDenied, EventReopened,
		EventProvisioningSucceeded, EventProvisioningFailed:
		return true
	}
	return false
}

// NewAnnouncement returns the announcement a store enqueues for the event
// ev (its Seq assigned) appended with the change that stored r. Its ID is
// "evt-" and the event's Seq, so one event is announced once.
func NewAnnouncement(ev Event, r *Request) Delivery {
	e := ev
	return Delivery{
		ID:            "evt-" + strconv.FormatUint(ev.Seq, 10),
		Channel:       ChannelAnnouncement,
		Kind:          string(ev.Type),
		RequestID:     ev.RequestID,
		Event:         &e,
		Request:       r.Clone(),
		State:         DeliveryPending,
		CreatedAt:     ev.At,
		NextAttemptAt: ev.At,
	}
}

// ChildDeliveryID returns the ID of the delivery fanned out of the
// announcement parent to channel c and recipient key (an address, a URL's
// index): the same on every fan-out of that announcement.
func ChildDeliveryID(parent string, c Channel, key string) string {
	return parent + "." + string(c) + "." + key
}

// DeliveryQuery selects deliveries to list, oldest first.
type DeliveryQuery struct {
	RequestID string        // empty: every request
	State     DeliveryState // empty: every state
	Channel   Channel       // empty: every channel
	// After is the cursor: the ID of the last delivery of the previous
	// page; deliveries are listed in the order they were enqueued.
	After string
	Limit int // clamped to [1, MaxPageSize]; DefaultPageSize when zero
}

// DeliveryCounts is how many deliveries a channel holds, by state.
type DeliveryCounts struct {
	Due       int // pending, claimable now
	Leased    int // pending, being sent under a lease
	Scheduled int // pending, waiting for a retry
	Sent      int
	Failed    int
}

// DeliveryMutation changes one stored delivery inside a store transaction,
// like Mutation for requests: it gets a private copy and returns audit
// events to append with the change; ErrUnchanged stores nothing.
type DeliveryMutation func(d *Delivery) ([]Event, error)

// Outbox is the store's queue of deliveries. Claims and leases work as in
// JobQueue: a worker changes a delivery only through UpdateDelivery
// mutations that first check Lease.HeldBy(its token).
type Outbox interface {
	// EnqueueDeliveries stores the deliveries whose IDs are not stored yet
	// and ignores the others, in one transaction. State, when empty, is
	// DeliveryPending.
	EnqueueDeliveries(ctx context.Context, ds []Delivery) error
	// ClaimDeliveries leases up to limit claimable deliveries at now,
	// soonest NextAttemptAt first, each with a new Lease owner token and
	// Until = now+lease; concurrent calls never return the same delivery
	// while its lease holds. EInvalid when lease is not positive.
	ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Delivery, error)
	// UpdateDelivery applies m to the delivery with the given id in one
	// transaction and returns the stored result (Version set by the
	// store). ENotFound for an unknown id.
	UpdateDelivery(ctx context.Context, id string, m DeliveryMutation) (*Delivery, error)
	// GetDelivery returns one delivery, or ENotFound.
	GetDelivery(ctx context.Context, id string) (*Delivery, error)
	// ListDeliveries returns a page of deliveries matching q in the order
	// they were enqueued, and the cursor of the next page (empty on the
	// last).
	ListDeliveries(ctx context.Context, q DeliveryQuery) ([]*Delivery, string, error)
	// NextDeliveryAt returns when the soonest pending delivery becomes
	// claimable, or false when none is pending.
	NextDeliveryAt(ctx context.Context) (time.Time, bool, error)
	// CountDeliveries counts deliveries per channel and state at now,
	// for gauges; it should not decode every delivery.
	CountDeliveries(ctx context.Context, now time.Time) (map[Channel]DeliveryCounts, error)
	// PurgeDeliveries removes sent deliveries sent before the given time
	// and returns how many it removed. Failed and pending ones are kept.
	PurgeDeliveries(ctx context.Context, sentBefore time.Time) (int, error)
}

// DeliveryError is a failed send, as a Courier reports it.
type DeliveryError struct {
	// Permanent failures are not retried (an SMTP 5xx, a webhook 4xx
	// other than 408 and 429).
	Permanent bool
	// RetryAfter is how long the receiver asked to wait (Retry-After);
	// zero when it did not say.
	RetryAfter time.Duration
	Err        error
}

// Error implements error.
func (e *DeliveryError) Error() string { return e.Err.Error() }

// Unwrap returns the cause.
func (e *DeliveryError) Unwrap() error { return e.Err }

// IsPermanentDelivery reports whether err says a delivery will never
// succeed as it is.
func IsPermanentDelivery(err error) bool {
	var de *DeliveryError
	return errors.As(err, &de) && de.Permanent
}

// Courier sends deliveries of one channel. Deliver sends d once and
// returns nil when the receiver accepted it, a *DeliveryError otherwise
// (any other error is temporary). It must honour ctx's deadline.
type Courier interface {
	Deliver(ctx context.Context, d *Delivery) error
}

// MaxDeliveryIDLen is the longest Delivery.ID a store accepts.
const MaxDeliveryIDLen = 512

// Valid reports whether c is one of Channels.
func (c Channel) Valid() bool {
	for _, k := range Channels {
		if c == k {
			return true
		}
	}
	return false
}

// Valid reports whether s is one of the delivery states.
func (s DeliveryState) Valid() bool {
	return s == DeliveryPending || s == DeliverySent || s == DeliveryFailed
}

// CheckEnqueue returns the deliveries ds as Outbox.EnqueueDeliveries
// stores them: copies, DeliveryPending where State is empty, each checked
// by CheckDelivery. A batch with one invalid delivery is refused whole.
func CheckEnqueue(ds []Delivery) ([]*Delivery, error) {
	out := make([]*Delivery, 0, len(ds))
	for i := range ds {
		d := ds[i].Clone()
		if d.State == "" {
			d.State = DeliveryPending
		}
		if err := CheckDelivery(d); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, nil
}

// CheckDelivery returns an EInvalid error when a store cannot keep d: no
// ID or one longer than MaxDeliveryIDLen, an unknown channel or state.
// Stores call it on every delivery they enqueue or update.
func CheckDelivery(d *Delivery) error {
	switch {
	case d.ID == "":
		return Errorf(EInvalid, "a delivery needs an id")
	case len(d.ID) > MaxDeliveryIDLen:
		return Errorf(EInvalid, "delivery id is longer than %d bytes", MaxDeliveryIDLen)
	case !d.Channel.Valid():
		return Errorf(EInvalid, "delivery %s has unknown channel %q", d.ID, d.Channel)
	case !d.State.Valid():
		return Errorf(EInvalid, "delivery %s has unknown state %q", d.ID, d.State)
	}
	return nil
}
