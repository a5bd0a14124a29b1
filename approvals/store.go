package approvals

import (
	"context"
	"crypto/rand"
	"encoding/hex"
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
	// EventDeliveryFailed records a delivery (email, webhook, Teams,
	// Slack) that failed permanently (outbox.go).
	EventDeliveryFailed EventType = "notification.failed"
	// EventDeliveryResent records an admin's resend of a delivery.
	EventDeliveryResent EventType = "notification.resent"
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
	// DefaultPageSize when it is zero (PageLimit).
	Limit int
	// Cursor is the NextCursor of the previous page; empty for the first.
	Cursor string
}

// Page sizes for listings.
const (
	DefaultPageSize = 50
	MaxPageSize     = 500
)

// PageLimit returns the page size a listing asked for as limit means,
// the rule every store applies: DefaultPageSize for zero (or less), at
// most MaxPageSize.
func PageLimit(limit int) int {
	switch {
	case limit <= 0:
		return DefaultPageSize
	case limit > MaxPageSize:
		return MaxPageSize
	}
	return limit
}

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

// CheckMutation returns an EInternal error when a Mutation turned cur into
// next with another identity (ID, person key or creation time), which no
// store may write. Stores call it on the result of every mutation.
func CheckMutation(cur, next *Request) error {
	if next.ID != cur.ID || next.Key() != cur.Key() || !next.CreatedAt.Equal(cur.CreatedAt) {
		return Errorf(EInternal, "a mutation may not change the identity of request %s", cur.ID)
	}
	return nil
}

// ErrUnchanged may be returned by a Mutation to say there is nothing to
// write, for example when a decision is repeated.
var ErrUnchanged = &Error{Code: EConflict, Message: "unchanged"}

// Store is everything the server keeps: the requests, the provisioning job
// queue, the audit trail and the export read model, each described by its
// own interface below. A backend implements all of them over one set of
// data: a change through RequestStore.Update is seen at once by the job
// queue, the audit log and the read model, in the same transaction.
//
// Every method of every part is safe for concurrent use, by goroutines of
// one process and, for a backend that several processes share, by those
// processes. Every write is durable (fsynced or committed) when the method
// returns. store/storetest is the conformance suite a backend must pass;
// its tests are the executable form of these comments.
type Store interface {
	RequestStore
	JobQueue
	AuditLog
	DecisionLog
	SessionStore // the web UI's sessions (session.go)
	Outbox       // the deliveries to send (outbox.go)
	// Close releases the store. Calls after Close fail.
	Close() error
}

// RequestStore keeps the requests and the indexes that find them: one
// request per person, listings by creation time and status, and counts.
type RequestStore interface {
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
	// store, and the store keeps its indexes (status, person, the job
	// queue with its leases, the decision rows) in step with the change in
	// the same transaction. The mutation must not change ID, Email,
	// Identity or CreatedAt. Update is also how a job's lease is checked,
	// renewed and released: the mutation reads and sets
	// Provisioning.Lease like any other field (see JobQueue).
	Update(ctx context.Context, id string, m Mutation) (*Request, error)
	// List returns one page of requests ordered by creation time. Paging is
	// stable under concurrent inserts: a request is never shown twice, and
	// one created during paging may appear only on a page not yet read.
	List(ctx context.Context, q ListQuery) (Page, error)
	// Count returns the number of requests per status.
	Count(ctx context.Context) (map[Status]int, error)
}

// JobQueue is the provisioning job queue. A job is an approved request
// whose provisioning is in progress (ProvisioningInProgress); it is due
// when its Provisioning.NextAttemptAt is at or before now, and claimable
// when it is due and not leased: its Provisioning.Lease is nil or expired
// (Until at or before now).
//
// Workers take jobs with ClaimJobs, which leases them: until the lease
// expires no other ClaimJobs call, in this process or another, returns
// the job. The lease is stored with the job (Provisioning.Lease), so the
// worker's writes check it: a worker changes a job only through Update
// mutations that first check Lease.HeldBy(its token), and a worker whose
// lease was lost (expired and claimed by another) is refused there and
// stops. A worker renews its lease with Update while it works, and the
// provisioning transitions that end or reschedule an attempt
// (SucceedProvisioning, FailProvisioning, ScheduleRetry) release it, so
// that a rescheduled job is claimable again at its new NextAttemptAt. A
// lease held by a process that died expires, and the job is claimed again.
type JobQueue interface {
	// ClaimJobs leases up to limit claimable jobs at now to the caller,
	// soonest NextAttemptAt first, and returns them as stored after the
	// claim: each has a Provisioning.Lease with a new Owner token, unique
	// to this claim, and Until = now+lease. Finding and leasing the jobs is
	// one atomic step: concurrent calls never return the same job while
	// its lease holds. A claim changes the request (Version and UpdatedAt,
	// like Update) but appends no audit event. It returns nothing when
	// limit is zero or less, and an error with code EInvalid when lease is
	// not positive. (In SQL: one UPDATE of the rows a SELECT ... ORDER BY
	// next_attempt_at LIMIT n FOR UPDATE SKIP LOCKED picks.)
	ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*Request, error)
	// DueJobs returns, without claiming them, up to limit of the jobs
	// ClaimJobs would claim at now, soonest NextAttemptAt first.
	DueJobs(ctx context.Context, now time.Time, limit int) ([]*Request, error)
	// NextJobAt returns when the soonest job becomes claimable: the later
	// of its NextAttemptAt and, while it is leased, its lease's Until. It
	// returns false when there is no job. A dispatcher waits until then.
	NextJobAt(ctx context.Context) (time.Time, bool, error)
	// CountJobs counts the jobs at now: claimable ones, leased ones, and
	// those scheduled for later (neither). It is read for gauges every few
	// seconds and should not decode every job.
	CountJobs(ctx context.Context, now time.Time) (JobCounts, error)
}

// JobCounts is how many provisioning jobs a JobQueue holds, by state.
type JobCounts struct {
	// Due jobs are claimable now: due and not leased (or with an expired
	// lease).
	Due int
	// Leased jobs are held by a worker under a lease that has not expired.
	Leased int
	// Scheduled jobs are waiting for their NextAttemptAt, unleased.
	Scheduled int
}

// Lease is a worker's claim on a provisioning job, stored with the job
// (Provisioning.Lease) by JobQueue.ClaimJobs.
type Lease struct {
	// Owner is the token of one claim: stores make a new one for every
	// job they lease, so that a worker can tell its own lease from a later
	// one, even one taken by its own process.
	Owner string `json:"owner"`
	// Until is when the lease expires unless it is renewed.
	Until time.Time `json:"until"`
}

// HeldBy reports whether the lease is the one given to the claim with the
// token owner. A nil lease is held by nobody.
func (l *Lease) HeldBy(owner string) bool { return l != nil && owner != "" && l.Owner == owner }

// Expired reports whether the lease no longer holds at now. A nil lease
// has expired.
func (l *Lease) Expired(now time.Time) bool { return l == nil || !l.Until.After(now) }

// Claimable reports whether p is a job ClaimJobs may claim at now: in
// progress, due, and not under a lease that holds. Stores use it to decide
// and conformance tests to check.
func (p Provisioning) Claimable(now time.Time) bool {
	return p.State == ProvisioningInProgress && !p.NextAttemptAt.After(now) && p.Lease.Expired(now)
}

// ClaimableAt returns when p becomes claimable, if it is in progress: the
// later of NextAttemptAt and the expiry of its lease.
func (p Provisioning) ClaimableAt() time.Time { return p.Lease.freeAt(p.NextAttemptAt) }

// freeAt returns when work due at next and held under l may be claimed:
// the later of next and the lease's expiry (next when there is no lease).
func (l *Lease) freeAt(next time.Time) time.Time {
	if l != nil && l.Until.After(next) {
		return l.Until
	}
	return next
}

// NewLeaseToken returns a new random lease owner token: 32 lower-case hex
// digits.
func NewLeaseToken() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}

// AuditLog is the append-only audit trail. Events of a request change are
// appended by RequestStore.Create and Update in the change's transaction;
// AppendEvents is for events that belong to no change.
type AuditLog interface {
	// Audit returns events in Seq order matching q, and the cursor (the
	// last Seq) to pass as AfterSeq for the next page; 0 when there is no
	// more.
	Audit(ctx context.Context, q AuditQuery) ([]Event, uint64, error)
	// AppendEvents appends events that belong to no change of a request.
	AppendEvents(ctx context.Context, events []Event) error
}

// DecisionLog is the read model of decisions the export reads. A backend
// may keep its rows beside the requests (store/bolt does), but every row
// must be the NewDecisionRecord of the request as it is now.
type DecisionLog interface {
	// Decisions calls fn with the DecisionRecord of every decided request
	// matching q, in decision time order, without holding all of them in
	// memory. It stops at the first error fn returns.
	Decisions(ctx context.Context, q DecisionQuery, fn func(DecisionRecord) error) error
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
