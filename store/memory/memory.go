// Package memory is an approvals.Store held in memory. It loses everything
// on exit: it serves tests and examples, and is the reference the bbolt
// store is checked against by the conformance suite.
package memory

import (
	"cmp"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Store is an in-memory approvals.Store. The zero value is not usable: call
// New.
type Store struct {
	clock approvals.Clock

	mu       sync.Mutex
	byID     map[string]*approvals.Request
	byPerson map[string]string
	events   []approvals.Event
	closed   bool

	sessions   map[string]*approvals.Session // by IDHash
	cookieKeys []approvals.CookieKey         // newest first

	outbox outbox // the deliveries (outbox.go)
}

// New returns an empty store using clock for UpdatedAt.
func New(clock approvals.Clock) *Store {
	if clock == nil {
		clock = approvals.SystemClock
	}
	return &Store{clock: clock, byID: map[string]*approvals.Request{}, byPerson: map[string]string{},
		sessions: map[string]*approvals.Session{}}
}

var _ approvals.Store = (*Store)(nil)

var errClosed = errors.New("store is closed")

func (s *Store) appendEvents(events []approvals.Event, id string) {
	for _, ev := range events {
		ev.Seq = uint64(len(s.events) + 1)
		if ev.RequestID == "" {
			ev.RequestID = id
		}
		ev.Details = maps.Clone(ev.Details) // the caller keeps its map
		s.events = append(s.events, ev)
	}
}

// checkStatus refuses a status the listings could not show.
func checkStatus(r *approvals.Request) error {
	if !r.Status.Valid() {
		return approvals.Errorf(approvals.EInvalid, "request %s has unknown status %q", r.ID, r.Status)
	}
	return nil
}

// Create implements approvals.Store.
func (s *Store) Create(_ context.Context, r *approvals.Request, events []approvals.Event) (*approvals.Request, bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false, errClosed
	}
	if id, ok := s.byPerson[r.Key()]; ok {
		return s.byID[id].Clone(), false, nil
	}
	if err := checkStatus(r); err != nil {
		return nil, false, err
	}
	c := r.Clone()
	if c.ID == "" {
		c.ID = approvals.NewID(c.CreatedAt)
	}
	if _, dup := s.byID[c.ID]; dup {
		return nil, false, approvals.Errorf(approvals.EConflict, "request id %s exists", c.ID)
	}
	c.Version = 1
	c.UpdatedAt = c.CreatedAt
	s.byID[c.ID] = c
	s.byPerson[c.Key()] = c.ID
	s.appendEvents(events, c.ID)
	s.outbox.announce(s.events[len(s.events)-len(events):], c)
	return c.Clone(), true, nil
}

// Get implements approvals.Store.
func (s *Store) Get(_ context.Context, id string) (*approvals.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.byID[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	return r.Clone(), nil
}

// FindByPerson implements approvals.Store.
func (s *Store) FindByPerson(_ context.Context, key string) (*approvals.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byPerson[key]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	return s.byID[id].Clone(), nil
}

// FindStanding implements approvals.Store.
func (s *Store) FindStanding(_ context.Context, key string) (approvals.Standing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.byPerson[key]
	if !ok {
		return approvals.Standing{}, approvals.ErrNotFound
	}
	return s.byID[id].Standing(), nil
}

// Update implements approvals.Store.
func (s *Store) Update(_ context.Context, id string, m approvals.Mutation) (*approvals.Request, error) {
	return s.jobQueue().update(id, m)
}

func (s *Store) sorted(status approvals.Status) []*approvals.Request {
	var out []*approvals.Request
	for _, r := range s.byID {
		if status == "" || r.Status == status {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *approvals.Request) int {
		return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// List implements approvals.Store.
func (s *Store) List(_ context.Context, q approvals.ListQuery) (approvals.Page, error) {
	if q.Status != "" && !q.Status.Valid() {
		return approvals.Page{}, approvals.Errorf(approvals.EInvalid, "unknown status %q", q.Status)
	}
	if q.Order != "" && q.Order != approvals.NewestFirst && q.Order != approvals.OldestFirst {
		return approvals.Page{}, approvals.Errorf(approvals.EInvalid, "unknown order %q; use %q or %q", q.Order, approvals.NewestFirst, approvals.OldestFirst)
	}
	limit := approvals.PageLimit(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	all := s.sorted(q.Status)
	if q.Order != approvals.OldestFirst {
		slices.Reverse(all)
	}
	start := 0
	if q.Cursor != "" {
		at, id, err := decodeCursor(q.Cursor)
		if err != nil {
			return approvals.Page{}, err
		}
		start = len(all)
		for i, r := range all {
			c := cmp.Or(r.CreatedAt.Compare(at), strings.Compare(r.ID, id))
			if (q.Order == approvals.OldestFirst && c > 0) || (q.Order != approvals.OldestFirst && c < 0) {
				start = i
				break
			}
		}
	}
	var p approvals.Page
	for i := start; i < len(all) && len(p.Requests) < limit; i++ {
		p.Requests = append(p.Requests, all[i].Clone())
	}
	if start+len(p.Requests) < len(all) && len(p.Requests) > 0 {
		last := p.Requests[len(p.Requests)-1]
		p.NextCursor = encodeCursor(last.CreatedAt, last.ID)
	}
	return p, nil
}

func encodeCursor(t time.Time, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(t.UnixNano(), 10) + ":" + id))
}

func decodeCursor(c string) (time.Time, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if ns, id, ok := strings.Cut(string(b), ":"); ok {
			if n, err := strconv.ParseInt(ns, 10, 64); err == nil {
				return time.Unix(0, n), id, nil
			}
		}
	}
	return time.Time{}, "", approvals.Errorf(approvals.EInvalid, "cursor %q is not valid", c)
}

// Count implements approvals.Store.
func (s *Store) Count(context.Context) (map[approvals.Status]int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[approvals.Status]int{}
	for _, st := range approvals.Statuses {
		n[st] = 0
	}
	for _, r := range s.byID {
		n[r.Status]++
	}
	return n, nil
}

func (s *Store) jobs() []*approvals.Request {
	var out []*approvals.Request
	for _, r := range s.byID {
		if r.Status == approvals.StatusApproved && r.Provisioning.Pending() {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, func(a, b *approvals.Request) int {
		return cmp.Or(a.Provisioning.NextAttemptAt.Compare(b.Provisioning.NextAttemptAt), strings.Compare(a.ID, b.ID))
	})
	return out
}

// jobQueue is the requests as the leased queue of their provisioning
// jobs (queue.go).
func (s *Store) jobQueue() *leasedQueue[*approvals.Request] {
	return &leasedQueue[*approvals.Request]{
		s:           s,
		noun:        "job",
		byID:        s.byID,
		items:       s.jobs,
		due:         func(r *approvals.Request) time.Time { return r.Provisioning.NextAttemptAt },
		claimable:   func(r *approvals.Request, now time.Time) bool { return r.Provisioning.Claimable(now) },
		claimableAt: func(r *approvals.Request) time.Time { return r.Provisioning.ClaimableAt() },
		lease:       func(r *approvals.Request) *approvals.Lease { return r.Provisioning.Lease },
		setLease:    func(r *approvals.Request, l *approvals.Lease) { r.Provisioning.Lease = l },
		check:       checkRequestChange,
		put: func(cur, c *approvals.Request, events []approvals.Event) {
			c.Version = cur.Version + 1
			c.UpdatedAt = s.clock.Now().UTC()
			s.byID[c.ID] = c
			s.appendEvents(events, c.ID)
			s.outbox.announce(s.events[len(s.events)-len(events):], c)
		},
	}
}

// checkRequestChange refuses a mutation's result c of cur that changes
// its identity or has an unknown status.
func checkRequestChange(cur, c *approvals.Request) error {
	if err := approvals.CheckMutation(cur, c); err != nil {
		return err
	}
	return checkStatus(c)
}

// ClaimJobs implements approvals.JobQueue: it finds and leases the jobs
// under the store's lock.
func (s *Store) ClaimJobs(_ context.Context, now time.Time, lease time.Duration, limit int) ([]*approvals.Request, error) {
	return s.jobQueue().claim(now, lease, limit)
}

// DueJobs implements approvals.JobQueue.
func (s *Store) DueJobs(_ context.Context, now time.Time, limit int) ([]*approvals.Request, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*approvals.Request
	for _, r := range s.jobs() {
		if len(out) >= limit || r.Provisioning.NextAttemptAt.After(now) {
			break
		}
		if r.Provisioning.Claimable(now) {
			out = append(out, r.Clone())
		}
	}
	return out, nil
}

// NextJobAt implements approvals.JobQueue.
func (s *Store) NextJobAt(context.Context) (time.Time, bool, error) {
	next, found := s.jobQueue().nextAt()
	return next, found, nil
}

// CountJobs implements approvals.JobQueue.
func (s *Store) CountJobs(_ context.Context, now time.Time) (approvals.JobCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n approvals.JobCounts
	s.jobQueue().count(now, func(*approvals.Request) *approvals.JobCounts { return &n })
	return n, nil
}

// Audit implements approvals.Store.
func (s *Store) Audit(_ context.Context, q approvals.AuditQuery) ([]approvals.Event, uint64, error) {
	limit := approvals.PageLimit(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	match := func(ev approvals.Event) bool {
		return !ev.At.Before(q.Since) && (q.RequestID == "" || ev.RequestID == q.RequestID)
	}
	var out []approvals.Event
	i := int(min(q.AfterSeq, uint64(len(s.events))))
	for ; i < len(s.events) && len(out) < limit; i++ {
		if ev := s.events[i]; match(ev) {
			ev.Details = maps.Clone(ev.Details)
			out = append(out, ev)
		}
	}
	// The cursor is 0 when no matching event is left, so that a client
	// never fetches an empty page.
	for ; i < len(s.events); i++ {
		if match(s.events[i]) {
			return out, out[len(out)-1].Seq, nil
		}
	}
	return out, 0, nil
}

// AppendEvents implements approvals.Store.
func (s *Store) AppendEvents(_ context.Context, events []approvals.Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	s.appendEvents(events, "")
	return nil
}

// Decisions implements approvals.Store.
func (s *Store) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error {
	if q.Status != "" && q.Status != approvals.StatusApproved && q.Status != approvals.StatusDenied {
		return approvals.Errorf(approvals.EInvalid, "status %q has no decisions; use approved or denied", q.Status)
	}
	s.mu.Lock()
	var out []approvals.DecisionRecord
	for _, r := range s.byID {
		d := r.Decision
		if d == nil || r.Status == approvals.StatusPending || (q.Status != "" && r.Status != q.Status) {
			continue
		}
		if (!q.Since.IsZero() && d.At.Before(q.Since)) || (!q.Until.IsZero() && !d.At.Before(q.Until)) {
			continue
		}
		out = append(out, approvals.NewDecisionRecord(r))
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b approvals.DecisionRecord) int {
		return cmp.Or(a.DecidedAt.Compare(b.DecidedAt), strings.Compare(a.ID, b.ID))
	})
	for _, r := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// Close implements approvals.Store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return fmt.Errorf("close: %w", errClosed)
	}
	s.closed = true
	return nil
}
