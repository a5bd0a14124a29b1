package memory

import (
	"errors"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// leasedQueue is work that workers claim under a lease: the requests
// whose provisioning is a job, or the pending deliveries. It holds what
// differs between the two; its methods are the claim, update and next
// due time both share, each under the store's lock.
type leasedQueue[T queueItem[T]] struct {
	// s is the store whose lock guards the items.
	s *Store
	// noun names an item in messages: "job", "delivery".
	noun string
	// byID holds the items by id.
	byID map[string]T
	// items returns the items with work to do, soonest NextAttemptAt
	// first.
	items func() []T
	// due returns an item's NextAttemptAt.
	due func(item T) time.Time
	// claimable reports whether an item may be claimed at now;
	// claimableAt when it may be.
	claimable   func(item T, now time.Time) bool
	claimableAt func(item T) time.Time
	// lease returns an item's lease; setLease gives it one.
	lease    func(item T) *approvals.Lease
	setLease func(item T, l *approvals.Lease)
	// check refuses a mutation's result next of cur that may not be
	// stored; its error is returned to the caller as is.
	check func(cur, next T) error
	// put stores next in the place of cur, as the version after it, with
	// the events appended.
	put func(cur, next T, events []approvals.Event)
}

// queueItem is an item of a leased queue: a pointer with a Clone method.
type queueItem[T any] interface {
	comparable
	Clone() T
}

// count counts every item with work at now in the counts that counter
// returns for it (the jobs' counts, or those of a delivery's channel): as
// Leased while its lease holds, else Scheduled until it is due, else Due.
// The caller holds the store's lock.
func (q *leasedQueue[T]) count(now time.Time, counter func(item T) *approvals.JobCounts) {
	for _, item := range q.items() {
		n := counter(item)
		switch {
		case !q.lease(item).Expired(now):
			n.Leased++
		case q.due(item).After(now):
			n.Scheduled++
		default:
			n.Due++
		}
	}
}

// claim leases up to limit claimable items until now+lease and returns
// copies of them.
func (q *leasedQueue[T]) claim(now time.Time, lease time.Duration, limit int) ([]T, error) {
	if lease <= 0 {
		return nil, approvals.Errorf(approvals.EInvalid, "a %s lease must be positive, not %s", q.noun, lease)
	}
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if q.s.closed {
		return nil, errClosed
	}
	var out []T
	for _, cur := range q.items() {
		if len(out) >= limit || q.due(cur).After(now) {
			break
		}
		if !q.claimable(cur, now) {
			continue
		}
		c := cur.Clone()
		q.setLease(c, &approvals.Lease{Owner: approvals.NewLeaseToken(), Until: now.Add(lease)})
		q.put(cur, c, nil)
		out = append(out, c.Clone())
	}
	return out, nil
}

// update runs m on a copy of the item stored under id and stores the
// copy unless m or check refuses it. It returns a copy of what is stored:
// with ErrUnchanged, the item's.
func (q *leasedQueue[T]) update(id string, m func(T) ([]approvals.Event, error)) (T, error) {
	var none T
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	if q.s.closed {
		return none, errClosed
	}
	cur, ok := q.byID[id]
	if !ok {
		return none, approvals.ErrNotFound
	}
	c := cur.Clone()
	events, err := m(c)
	if errors.Is(err, approvals.ErrUnchanged) {
		return cur.Clone(), approvals.ErrUnchanged
	}
	if err != nil {
		return none, err
	}
	if err := q.check(cur, c); err != nil {
		return none, err
	}
	q.put(cur, c, events)
	return c.Clone(), nil
}

// nextAt returns when the soonest item becomes claimable.
func (q *leasedQueue[T]) nextAt() (time.Time, bool) {
	q.s.mu.Lock()
	defer q.s.mu.Unlock()
	var next time.Time
	found := false
	for _, item := range q.items() {
		if at := q.claimableAt(item); !found || at.Before(next) {
			next, found = at, true
		}
	}
	return next, found
}
