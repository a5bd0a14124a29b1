package bolt

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
)

// A leased queue is work that workers claim under a lease: the requests
// whose provisioning is a job (requests.go) and the pending deliveries
// (outbox.go). Its items are stored in a bucket of their own; a due index
// queues those with work to do, under keys t8(due) id whose values carry
// the end of the item's lease, so that a claim, the next due time and the
// counts skip the leased items without decoding them.
//
//	index (jobs, deliveries_pending)
//	  t8(NextAttemptAt) id -> a value holding t8(Lease.Until) when leased
//
// leasedQueue holds what differs between the two: the bucket names, the
// index's value encoding and how an item is read, checked and written;
// its methods are the claim, update and index walks both share.
type leasedQueue[T queueItem[T]] struct {
	// noun names an item in messages: "job", "delivery".
	noun string
	// index is the due index's bucket.
	index []byte
	// leaseEnd returns the t8 end of the lease an index value records,
	// nil when it records none.
	leaseEnd func(v []byte) ([]byte, error)
	// get returns the item stored under id and where it is stored (a
	// delivery's seq; nil for a request), or the zero T when none is.
	get func(tx *bbolt.Tx, id []byte) (T, []byte, error)
	// check refuses a mutation's result next of cur that may not be
	// stored; its error is returned to the caller as is.
	check func(cur, next T) error
	// put stores next, at the place cur was read from, as the version
	// after cur, with the events appended, and moves its index entries.
	// updatedAt is the time of the change.
	put func(tx *bbolt.Tx, at []byte, cur, next T, events []approvals.Event, updatedAt time.Time) error
	// claimable reports whether an item may be claimed at now;
	// claimableAt when it may be.
	claimable   func(item T, now time.Time) bool
	claimableAt func(item T) time.Time
	// setLease gives an item a lease.
	setLease func(item T, l *approvals.Lease)
}

// queueItem is an item of a leased queue: a pointer (nil when missing) with
// a Clone method.
type queueItem[T any] interface {
	comparable
	Clone() T
}

// leaseHolds reports whether a lease ending at until (t8; nil for none)
// still holds at end (t8).
func leaseHolds(until, end []byte) bool {
	return until != nil && bytes.Compare(until, end) > 0
}

// indexed returns the item an index entry names, which must exist.
func (q *leasedQueue[T]) indexed(tx *bbolt.Tx, id []byte) (T, []byte, error) {
	item, at, err := q.get(tx, id)
	var none T
	if err == nil && item == none {
		err = fmt.Errorf("damaged data file: index %s holds %s %q, which does not exist", q.index, q.noun, id)
	}
	return item, at, err
}

// eachDue walks the index's entries due by end (t8) that no lease holds,
// soonest first, while fn returns true.
func (q *leasedQueue[T]) eachDue(tx *bbolt.Tx, end []byte, fn func(id []byte) (bool, error)) error {
	b := tx.Bucket(q.index)
	if b == nil { // a read-only file from before the outbox
		return nil
	}
	c := b.Cursor()
	for k, v := c.First(); k != nil; k, v = c.Next() {
		if bytes.Compare(k[:8], end) > 0 {
			return nil
		}
		until, err := q.leaseEnd(v)
		if err != nil {
			return err
		}
		if leaseHolds(until, end) {
			continue
		}
		if more, err := fn(k[8:]); err != nil || !more {
			return err
		}
	}
	return nil
}

// count counts every index entry at end (t8) in the counts that counter
// returns for its value (the jobs' counts, or those of a delivery's
// channel): as Leased while its lease holds, else Scheduled until it is
// due, else Due.
func (q *leasedQueue[T]) count(tx *bbolt.Tx, end []byte, counter func(v []byte) (*approvals.JobCounts, error)) error {
	b := tx.Bucket(q.index)
	if b == nil {
		return nil
	}
	return b.ForEach(func(k, v []byte) error {
		until, err := q.leaseEnd(v)
		if err != nil {
			return err
		}
		n, err := counter(v)
		if err != nil {
			return err
		}
		switch {
		case leaseHolds(until, end):
			n.Leased++
		case bytes.Compare(k[:8], end) > 0:
			n.Scheduled++
		default:
			n.Due++
		}
		return nil
	})
}

// claim leases up to limit claimable items until now+lease. One write
// transaction reads the due index from its start up to now, skips the
// entries whose value says a lease holds, and writes each claimed item
// with its lease and its index entry: concurrent claims are serialised by
// bbolt's single writer, so no item is returned twice while its lease
// holds.
func (q *leasedQueue[T]) claim(ctx context.Context, s *Store, now time.Time, lease time.Duration, limit int) (out []T, err error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if lease <= 0 {
		return nil, approvals.Errorf(approvals.EInvalid, "a %s lease must be positive, not %s", q.noun, lease)
	}
	if limit <= 0 {
		return nil, nil
	}
	end := t8(now)
	updatedAt := s.clock.Now().UTC()
	err = s.write(func(tx *bbolt.Tx) error {
		out = nil
		// Collect first: the claims move entries of the bucket the cursor
		// walks.
		var ids [][]byte
		if err := q.eachDue(tx, end, func(id []byte) (bool, error) {
			ids = append(ids, bytes.Clone(id))
			return len(ids) < limit, nil
		}); err != nil {
			return err
		}
		for _, id := range ids {
			cur, at, err := q.indexed(tx, id)
			if err != nil {
				return err
			}
			if !q.claimable(cur, now) { // only beyond t8's range
				continue
			}
			next := cur.Clone()
			q.setLease(next, &approvals.Lease{Owner: approvals.NewLeaseToken(), Until: now.Add(lease)})
			if err := q.put(tx, at, cur, next, nil, updatedAt); err != nil {
				return err
			}
			out = append(out, next)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// update runs m on a copy of the item stored under id inside the write
// transaction, possibly more than once (see write), and stores the copy
// unless m or check refuses it. With ErrUnchanged it returns the stored
// item.
func (q *leasedQueue[T]) update(ctx context.Context, s *Store, id string, m func(T) ([]approvals.Event, error)) (item T, err error) {
	var none T
	if err := ctx.Err(); err != nil {
		return none, err
	}
	var refused error
	err = s.write(func(tx *bbolt.Tx) error {
		item, refused = none, nil
		cur, at, err := q.get(tx, []byte(id))
		if err != nil {
			return err
		}
		if cur == none {
			refused = approvals.ErrNotFound
			return nil
		}
		next := cur.Clone()
		events, merr := m(next)
		switch {
		case errors.Is(merr, approvals.ErrUnchanged):
			item, refused = cur, merr
			return nil
		case merr != nil:
			refused = merr
			return nil
		}
		if err := q.check(cur, next); err != nil {
			refused = err
			return nil
		}
		if err := checkEvents(events); err != nil {
			refused = err
			return nil
		}
		if err := q.put(tx, at, cur, next, events, s.clock.Now().UTC()); err != nil {
			return err
		}
		item = next
		return nil
	})
	switch {
	case err != nil:
		return none, err
	case refused != nil:
		return item, refused // the stored item with ErrUnchanged, nil otherwise
	}
	return item, nil
}

// nextAt returns when the soonest item becomes claimable. It reads the
// index from its start while an entry is leased beyond the soonest time
// found so far: the first unleased entry ends the walk, so it reads at
// most one entry more than there are leased items before it.
func (q *leasedQueue[T]) nextAt(ctx context.Context, s *Store) (at time.Time, ok bool, err error) {
	if err := ctx.Err(); err != nil {
		return at, false, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		at, ok = time.Time{}, false
		b := tx.Bucket(q.index)
		if b == nil {
			return nil
		}
		var best, bestID []byte // the soonest claimable time (t8), and its item
		c := b.Cursor()
		for k, v := c.First(); k != nil; k, v = c.Next() {
			if best != nil && bytes.Compare(k[:8], best) >= 0 {
				break
			}
			until, err := q.leaseEnd(v)
			if err != nil {
				return err
			}
			when := k[:8]
			if until != nil && bytes.Compare(until, when) > 0 {
				when = until
			}
			if best == nil || bytes.Compare(when, best) < 0 {
				best, bestID = when, k[8:]
			}
		}
		if best == nil {
			return nil
		}
		item, _, err := q.indexed(tx, bestID)
		if err != nil {
			return err
		}
		at, ok = q.claimableAt(item), true
		return nil
	})
	return at, ok, err
}
