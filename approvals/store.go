package approvals

import (
	"context"
	"time"
)

// EventType names what happened in an audit event.
type EventType string

// The audit event types.
const (
	EventReceived              EventType = "request.received"
	EventResubmitted           EventType = "request.resubmitted"
	EventAutoApproved          EventType = "request.auto_approved"
	EventAutoDenied            EventType = "request.auto_denied"
	EventApproved              EventType = "request.approved"
	EventDenied                EventType = "request.denied"
	EventReopened              EventType = "request.reopened"
	EventProvisioningStep      EventType = "provisioning.step"
	EventProvisioningRetry     EventType = "provisioning.retry_scheduled"
	EventProvisioningSucceeded EventType = "provisioning.succeeded"
	EventProvisioningFailed    EventType = "provisioning.failed"
	EventProvisioningRequeued  EventType = "provisioning.requeued"
	EventInvitationCreated     EventType = "invitation.created"
	// EventInvitationLinked records an invitation that used an existing
	// directory user (use_existing_id) instead of inviting.
	EventInvitationLinked EventType = "invitation.linked_existing"
	// EventInvitationFailed recorded, before invitations became requests
	// provisioned like any other, an invitation Graph refused; stores
	// written by older versions hold it.
	EventInvitationFailed EventType = "invitation.failed"
	EventBlockedAtCheck   EventType = "request.blocked_at_check"
)

// Event is one entry of the append-only audit trail.
type Event struct {
	// Seq is assigned by the store: strictly increasing, never reused.
	Seq       uint64            `json:"seq"`
	At        time.Time         `json:"at"`
	Type      EventType         `json:"type"`
	RequestID string            `json:"request_id,omitempty"`
	Actor     Actor             `json:"actor"`
	Details   map[string]string `json:"details,omitempty"`
}

// Order is the order of a listing by creation time.
type Order string

// The listing orders.
const (
	NewestFirst Order = "newest"
	OldestFirst Order = "oldest"
)

// ListQuery selects a page of requests.
type ListQuery struct {
	// Status filters by status; empty means every status.
	Status Status
	// Order defaults to NewestFirst.
	Order Order
	// Limit is the page size; stores clamp it to [1, MaxPageSize] and use
	// DefaultPageSize when it is zero.
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
}

// Page sizes for listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// Page is one page of a listing.
type Page struct {
	Requests []*Request
	// NextCursor is empty on the last page.
	NextCursor string
}

// AuditQuery selects a page of the audit trail, oldest first.
type AuditQuery struct {
	// Since keeps events at or after this time.
	Since time.Time
	// RequestID keeps the events of one request only.
	RequestID string
	// AfterSeq keeps events with a larger Seq (the cursor).
	AfterSeq uint64
	Limit    int
}

// DecisionQuery selects the decided requests to export, oldest decision
// first.
type DecisionQuery struct {
	Status Status    // empty: approved and denied
	Since  time.Time // decision time, inclusive; zero: no bound
	Until  time.Time // decision time, exclusive; zero: no bound
}

// Mutation changes one stored request inside a store transaction. It gets a
// private copy of the current request and returns the audit events to
// append with the change. Returning an error aborts the transaction and
// changes nothing. Returning ErrUnchanged stores nothing: Update then
// returns the current request together with ErrUnchanged.
type Mutation func(r *Request) ([]Event, error)

// ErrUnchanged may be returned by a Mutation to say there is nothing to
// write, for example when a decision is repeated.
var ErrUnchanged = &Error{Code: EConflict, Message: "unchanged"}

// Store keeps requests, their indexes and the audit trail. Every method is
// safe for concurrent use. Every write is durable (fsynced) when the method
// returns.
type Store interface {
	SessionStore // the web UI's sessions (session.go)
	// Create stores r under a new ID (set by the store when empty) unless a
	// request with the same PersonKey exists; then it returns that one and
	// created=false and stores nothing. The events are appended only when
	// r is created. Concurrent Creates for one person yield one request.
	Create(ctx context.Context, r *Request, events []Event) (stored *Request, created bool, err error)
	// Get returns the request with the given id, or an error with code
	// ENotFound.
	Get(ctx context.Context, id string) (*Request, error)
	// FindByPerson returns the request of the person with the given
	// PersonKey, or an error with code ENotFound.
	FindByPerson(ctx context.Context, key string) (*Request, error)
	// FindStanding returns the Standing of the request FindByPerson would
	// return, or an error with code ENotFound. The connector calls it on
	// every sign-in, so a store should answer it without decoding the
	// request.
	FindStanding(ctx context.Context, key string) (Standing, error)
	// Update applies m to the request with the given id in one transaction
	// and returns the stored result; Version and UpdatedAt are set by the
	// store, and the store keeps its indexes (status, person, provisioning
	// jobs) in step with the change in the same transaction. The mutation
	// must not change ID, Email, Identity or CreatedAt.
	Update(ctx context.Context, id string, m Mutation) (*Request, error)
	// List returns one page of requests ordered by creation time. Paging is
	// stable under concurrent inserts: a request is never shown twice, and
	// one created during paging may appear only on a page not yet read.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Count returns the number of requests per status.
	Count(ctx context.Context) (map[Status]int, error)
	// DueJobs returns up to limit requests whose provisioning is in
	// progress and due at or before now, soonest first.
	DueJobs(ctx context.Context, now time.Time, limit int) ([]*Request, error)
	// NextJobAt returns when the soonest provisioning job is due, and false
	// when there is none.
	NextJobAt(ctx context.Context) (time.Time, bool, error)
	// Audit returns events in Seq order matching q, and the cursor (the
	// last Seq) to pass as AfterSeq for the next page; 0 when there is no
	// more.
	Audit(ctx context.Context, q AuditQuery) ([]Event, uint64, error)
	// AppendEvents appends events that belong to no change of a request.
	AppendEvents(ctx context.Context, events []Event) error
	// Decisions calls fn with the DecisionRecord of every decided request
	// matching q, in decision time order, without holding all of them in
	// memory. It stops at the first error fn returns.
	Decisions(ctx context.Context, q DecisionQuery, fn func(DecisionRecord) error) error
	// Close releases the store.
	Close() error
}

// Clock tells the time. Production code uses the system clock; tests use
// a fake one.
type Clock interface {
	Now() time.Time
}

// ClockFunc adapts a function to Clock.
type ClockFunc func() time.Time

// Now implements Clock.
func (f ClockFunc) Now() time.Time { return f() }

// SystemClock is the real clock.
var SystemClock Clock = ClockFunc(time.Now)
