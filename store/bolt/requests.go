package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
)

// appendFill is the fill percent of buckets whose keys mostly grow at the
// end (request ids, creation and decision times and Seqs grow with time):
// their pages split nearly full instead of half full (bbolt's default), as
// later writes seldom land in them to fill the rest.
const appendFill = 0.9

// appendBuckets are the buckets written with appendFill. by_person (hashed
// keys) and jobs (retry times) take writes anywhere.
var appendBuckets = [][]byte{bucketRequests, bucketByCreated, bucketByStatus, bucketDecisions,
	bucketEvents, bucketEventsByRequest, bucketEventsByTime}

// writeBucket returns the bucket name of tx, to write to: set to split its
// pages as its keys call for.
func writeBucket(tx *bbolt.Tx, name []byte) *bbolt.Bucket {
	b := tx.Bucket(name)
	for _, a := range appendBuckets {
		if bytes.Equal(a, name) {
			b.FillPercent = appendFill
			break
		}
	}
	return b
}

// decodeRequest decodes a stored request. Every read decodes whole
// requests (an export decodes a million), so it uses json v2's decoder,
// which reads the value once where encoding/json reads it twice: about a
// third less CPU per request (docs/BENCHMARKS.md). Values are written by
// encoding/json, whose output v2 reads the same way.
func decodeRequest(v []byte) (*approvals.Request, error) {
	var r approvals.Request
	if err := jsonv2.Unmarshal(v, &r); err != nil {
		return nil, fmt.Errorf("damaged data file: decode request: %w", err)
	}
	return &r, nil
}

// getRequest returns the request stored under id, or nil.
func getRequest(tx *bbolt.Tx, id []byte) (*approvals.Request, error) {
	v := tx.Bucket(bucketRequests).Get(id)
	if v == nil {
		return nil, nil
	}
	return decodeRequest(v)
}

// indexedRequest returns the request an index entry points to, which must
// exist.
func indexedRequest(tx *bbolt.Tx, id []byte, index []byte) (*approvals.Request, error) {
	r, err := getRequest(tx, id)
	if err == nil && r == nil {
		err = fmt.Errorf("damaged data file: index %s holds request %q, which does not exist", index, id)
	}
	return r, err
}

// jobQueue is the requests as the leased queue of their provisioning
// jobs (queue.go), indexed by the jobs bucket.
func jobQueue() *leasedQueue[*approvals.Request] {
	return &leasedQueue[*approvals.Request]{
		noun:     "job",
		index:    bucketJobs,
		leaseEnd: jobLeaseEnd,
		get: func(tx *bbolt.Tx, id []byte) (*approvals.Request, []byte, error) {
			r, err := getRequest(tx, id)
			return r, nil, err
		},
		check:       checkRequestChange,
		put:         putRequest,
		claimable:   func(r *approvals.Request, now time.Time) bool { return r.Provisioning.Claimable(now) },
		claimableAt: func(r *approvals.Request) time.Time { return r.Provisioning.ClaimableAt() },
		setLease:    func(r *approvals.Request, l *approvals.Lease) { r.Provisioning.Lease = l },
	}
}

// Get implements approvals.Store.
func (s *Store) Get(ctx context.Context, id string) (r *approvals.Request, err error) {
	defer wrap(&err, "Get(%q)", id)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		r, err = getRequest(tx, []byte(id))
		if err == nil && r == nil {
			err = approvals.ErrNotFound
		}
		return err
	})
	return r, err
}

// FindByPerson implements approvals.Store.
func (s *Store) FindByPerson(ctx context.Context, key string) (r *approvals.Request, err error) {
	defer wrap(&err, "FindByPerson")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		r, err = findByPerson(tx, key)
		if err == nil && r == nil {
			err = approvals.ErrNotFound
		}
		return err
	})
	return r, err
}

// FindStanding implements approvals.Store. It reads only the by_person
// entry, which holds the standing. Unlike findByPerson it does not read
// the request to rule out a hash collision: two PersonKeys with one
// SHA-256 are not a case to handle.
func (s *Store) FindStanding(ctx context.Context, key string) (st approvals.Standing, err error) {
	// Not found is the answer for everyone signing up for the first time:
	// returned as is, not wrapped in a formatted message per call.
	defer func() {
		if err != approvals.ErrNotFound {
			wrap(&err, "FindStanding")
		}
	}()
	if err := ctx.Err(); err != nil {
		return st, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		v := tx.Bucket(bucketByPerson).Get(personKey(key))
		if v == nil {
			return approvals.ErrNotFound
		}
		st, err = decodeStanding(v)
		return err
	})
	return st, err
}

// findByPerson returns the request of the person with the given
// PersonKey, or nil.
func findByPerson(tx *bbolt.Tx, key string) (*approvals.Request, error) {
	v := tx.Bucket(bucketByPerson).Get(personKey(key))
	if v == nil {
		return nil, nil
	}
	id, err := standingID(v)
	if err != nil {
		return nil, err
	}
	r, err := indexedRequest(tx, id, bucketByPerson)
	if err != nil || r.Key() != key { // a hash collision: another person
		return nil, err
	}
	return r, nil
}

// Create implements approvals.Store.
func (s *Store) Create(ctx context.Context, r *approvals.Request, events []approvals.Event) (stored *approvals.Request, created bool, err error) {
	defer wrap(&err, "Create")
	if err := ctx.Err(); err != nil {
		return nil, false, err
	}
	if r == nil {
		return nil, false, approvals.Errorf(approvals.EInvalid, "no request to create")
	}
	key := r.Key()
	// A person who asked before (Entra retries after 20 s) needs no write.
	// The check is repeated in the write transaction, where it decides.
	if err := s.db.View(func(tx *bbolt.Tx) error {
		stored, err = findByPerson(tx, key)
		return err
	}); err != nil || stored != nil {
		return stored, false, err
	}
	if _, ok := statusCode(r.Status); !ok {
		return nil, false, approvals.Errorf(approvals.EInvalid, "request has unknown status %q", r.Status)
	}
	c := r.Clone()
	if c.ID == "" {
		c.ID = approvals.NewID(c.CreatedAt)
	}
	if len(c.ID) > maxIDLen {
		return nil, false, approvals.Errorf(approvals.EInvalid, "request id is longer than %d bytes", maxIDLen)
	}
	if err := checkEvents(events); err != nil {
		return nil, false, err
	}
	c.Version = 1
	c.UpdatedAt = c.CreatedAt
	value, err := json.Marshal(c)
	if err != nil {
		return nil, false, fmt.Errorf("encode request: %w", err)
	}
	id := []byte(c.ID)

	var refused error
	err = s.write(func(tx *bbolt.Tx) error {
		stored, created, refused = nil, false, nil
		existing, err := findByPerson(tx, key)
		if err != nil || existing != nil {
			stored = existing
			return err
		}
		requests := writeBucket(tx, bucketRequests)
		if requests.Get(id) != nil {
			refused = approvals.Errorf(approvals.EConflict, "request id %s exists", c.ID)
			return nil
		}
		if err := storeRequest(tx, nil, c, value, events); err != nil {
			return err
		}
		stored, created = c, true
		return nil
	})
	switch {
	case err != nil:
		return nil, false, err
	case refused != nil:
		return nil, false, refused
	}
	return stored, created, nil
}

// Update implements approvals.Store. The mutation runs inside the write
// transaction, possibly more than once (see write), each time on a fresh
// copy of the stored request.
func (s *Store) Update(ctx context.Context, id string, m approvals.Mutation) (r *approvals.Request, err error) {
	defer wrap(&err, "Update(%q)", id)
	return jobQueue().update(ctx, s, id, m)
}

// checkRequestChange refuses a mutation's result next of cur that
// changes its identity or has a status the indexes cannot hold.
func checkRequestChange(cur, next *approvals.Request) error {
	if err := approvals.CheckMutation(cur, next); err != nil {
		return err
	}
	if _, ok := statusCode(next.Status); !ok {
		return approvals.Errorf(approvals.EInvalid, "request %s would get unknown status %q", cur.ID, next.Status)
	}
	return nil
}

// putRequest stores next as the version after cur, updated at
// updatedAt, with events (see storeRequest).
func putRequest(tx *bbolt.Tx, _ []byte, cur, next *approvals.Request, events []approvals.Event, updatedAt time.Time) error {
	next.Version = cur.Version + 1
	next.UpdatedAt = updatedAt
	value, err := json.Marshal(next)
	if err != nil {
		return fmt.Errorf("encode request: %w", err)
	}
	return storeRequest(tx, cur, next, value, events)
}

// storeRequest writes r, encoded as value, in the place of old (nil for a
// new request) with its index entries, status counters and events, and
// the announcements of those events.
func storeRequest(tx *bbolt.Tx, old, r *approvals.Request, value []byte, events []approvals.Event) error {
	if err := writeBucket(tx, bucketRequests).Put([]byte(r.ID), value); err != nil {
		return err
	}
	if err := reindex(tx, old, r); err != nil {
		return err
	}
	if old == nil || old.Status != r.Status {
		if old != nil {
			if err := addCount(tx, old.Status, -1); err != nil {
				return err
			}
		}
		if err := addCount(tx, r.Status, 1); err != nil {
			return err
		}
	}
	assigned, err := appendEvents(tx, events, r.ID)
	if err != nil {
		return err
	}
	return announce(tx, assigned, r)
}

// reindex moves r's index entries from what old needed to what r needs:
// it deletes the keys r no longer has and writes the entries whose key or
// value is new (a provisioning step changes the export row and the
// standing, not their keys). old is nil for a new request.
func reindex(tx *bbolt.Tx, old, r *approvals.Request) error {
	var before []indexEntry
	if old != nil {
		before = indexEntries(old)
	}
	after := indexEntries(r)
	find := func(list []indexEntry, e indexEntry) *indexEntry {
		for i, x := range list {
			if bytes.Equal(x.bucket, e.bucket) && bytes.Equal(x.key, e.key) {
				return &list[i]
			}
		}
		return nil
	}
	for _, e := range before {
		if find(after, e) == nil {
			if err := tx.Bucket(e.bucket).Delete(e.key); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
	}
	for _, e := range after {
		if was := find(before, e); was == nil || !bytes.Equal(was.value, e.value) {
			if bytes.Equal(e.bucket, bucketByPerson) && !holdsPerson(tx, e.key, r.ID) {
				continue // the person's older request answers (upgradeBatch)
			}
			if err := writeBucket(tx, e.bucket).Put(e.key, e.value); err != nil {
				return fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
	}
	return nil
}

// holdsPerson reports whether the by_person entry key is id's or free.
func holdsPerson(tx *bbolt.Tx, key []byte, id string) bool {
	v := tx.Bucket(bucketByPerson).Get(key)
	if v == nil {
		return true
	}
	held, err := standingID(v)
	return err != nil || string(held) == id
}

// addCount adds delta to the counter of requests with the status.
func addCount(tx *bbolt.Tx, status approvals.Status, delta int64) error {
	meta := tx.Bucket(bucketMeta)
	k := countKey(status)
	var n int64
	if v := meta.Get(k); v != nil {
		n = int64(getU64(v))
	}
	if n += delta; n < 0 {
		return fmt.Errorf("damaged data file: the count of %s requests would fall below zero", status)
	}
	return meta.Put(k, u64(uint64(n)))
}

// List implements approvals.Store. It reads one page from the by_created
// or by_status index, starting after the cursor: its cost depends on the
// page size, not on the number of requests.
func (s *Store) List(ctx context.Context, q approvals.ListQuery) (p approvals.Page, err error) {
	defer wrap(&err, "List")
	if err := ctx.Err(); err != nil {
		return p, err
	}
	bucket, prefix := bucketByCreated, []byte(nil)
	if q.Status != "" {
		code, ok := statusCode(q.Status)
		if !ok {
			return p, approvals.Errorf(approvals.EInvalid, "unknown status %q", q.Status)
		}
		bucket, prefix = bucketByStatus, []byte{code}
	}
	newest := true
	switch q.Order {
	case "", approvals.NewestFirst:
	case approvals.OldestFirst:
		newest = false
	default:
		return p, approvals.Errorf(approvals.EInvalid, "unknown order %q; use %q or %q", q.Order, approvals.NewestFirst, approvals.OldestFirst)
	}
	var after []byte
	if q.Cursor != "" {
		if after, err = decodeCursor(q.Cursor); err != nil {
			return p, err
		}
		after = cat(prefix, after)
	}
	limit := approvals.PageLimit(q.Limit)

	err = s.db.View(func(tx *bbolt.Tx) error {
		p = approvals.Page{}
		c := tx.Bucket(bucket).Cursor()
		var k []byte
		switch {
		case !newest && after == nil:
			k, _ = c.Seek(prefix)
		case !newest:
			if k, _ = c.Seek(after); bytes.Equal(k, after) {
				k, _ = c.Next()
			}
		case after == nil && prefix == nil:
			k, _ = c.Last()
		case after == nil:
			k = before(c, []byte{prefix[0] + 1})
		default:
			k = before(c, after)
		}
		move := c.Next
		if newest {
			move = c.Prev
		}
		var last []byte
		for ; k != nil && bytes.HasPrefix(k, prefix); k, _ = move() {
			if len(p.Requests) == limit {
				p.NextCursor = encodeCursor(last[len(prefix):])
				break
			}
			r, err := indexedRequest(tx, k[len(prefix)+8:], bucket)
			if err != nil {
				return err
			}
			p.Requests = append(p.Requests, r)
			last = append(last[:0], k...)
		}
		return nil
	})
	return p, err
}

// before positions c on the last key less than k and returns it.
func before(c *bbolt.Cursor, k []byte) []byte {
	if found, _ := c.Seek(k); found == nil {
		k, _ = c.Last()
		return k
	}
	k, _ = c.Prev()
	return k
}

// Count implements approvals.Store. It reads the counters kept in the meta
// bucket.
func (s *Store) Count(ctx context.Context) (n map[approvals.Status]int, err error) {
	defer wrap(&err, "Count")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	n = make(map[approvals.Status]int, len(approvals.Statuses))
	err = s.db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		for _, st := range approvals.Statuses {
			n[st] = 0
			if v := meta.Get(countKey(st)); v != nil {
				n[st] = int(getU64(v))
			}
		}
		return nil
	})
	return n, err
}

// ClaimJobs implements approvals.JobQueue, as leasedQueue.claim does.
func (s *Store) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) (jobs []*approvals.Request, err error) {
	defer wrap(&err, "ClaimJobs")
	return jobQueue().claim(ctx, s, now, lease, limit)
}

// DueJobs implements approvals.JobQueue. It reads the jobs index from its
// start up to now, skipping leased jobs.
func (s *Store) DueJobs(ctx context.Context, now time.Time, limit int) (jobs []*approvals.Request, err error) {
	defer wrap(&err, "DueJobs")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	q := jobQueue()
	err = s.db.View(func(tx *bbolt.Tx) error {
		jobs = nil
		return q.eachDue(tx, t8(now), func(id []byte) (bool, error) {
			r, _, err := q.indexed(tx, id)
			if err != nil {
				return false, err
			}
			if r.Provisioning.Claimable(now) { // only beyond t8's range
				jobs = append(jobs, r)
			}
			return len(jobs) < limit, nil
		})
	})
	return jobs, err
}

// NextJobAt implements approvals.JobQueue, as leasedQueue.nextAt does.
func (s *Store) NextJobAt(ctx context.Context) (at time.Time, ok bool, err error) {
	defer wrap(&err, "NextJobAt")
	return jobQueue().nextAt(ctx, s)
}

// CountJobs implements approvals.JobQueue. It reads the keys and values of
// the whole jobs index, and decodes no request.
func (s *Store) CountJobs(ctx context.Context, now time.Time) (n approvals.JobCounts, err error) {
	defer wrap(&err, "CountJobs")
	if err := ctx.Err(); err != nil {
		return n, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		n = approvals.JobCounts{}
		return jobQueue().count(tx, t8(now), func([]byte) (*approvals.JobCounts, error) { return &n, nil })
	})
	return n, err
}
