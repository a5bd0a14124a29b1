package postgres

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The check step's look-up (FindStanding) is the call Entra makes on
// every sign-up, answered from one index. Under load, most of its cost is
// the round trip, not the look-up: pgx's encoding, two socket wake-ups, a
// backend's parse of the message. So concurrent look-ups share round trips:
// while standingQueries queries are in flight, the keys that arrive wait
// and go together in the next one (SELECT ... WHERE person_key = ANY($1)).
// Nothing waits for a timer: a look-up alone goes out at once. Each query
// starts after every look-up it answers was asked, so it sees every
// change committed before the call (read your writes), as one query per
// look-up would; nothing is cached.

// standingQueries is how many batched look-ups may be in flight at once.
const standingQueries = 4

// maxStandingBatch bounds the keys of one query.
const maxStandingBatch = 256

// standingTimeout bounds a batched query, which no caller's context
// cancels: a database that stops answering must not hold the in-flight
// slots for longer than a caller would wait (callers stop waiting at their
// own deadline).
const standingTimeout = 10 * time.Second

type lookup struct {
	key  []byte
	st   approvals.Standing
	err  error
	done chan struct{}
}

type standings struct {
	mu       sync.Mutex
	waiting  []*lookup
	inFlight int
}

// FindStanding implements approvals.RequestStore from the columns beside
// the person index, without decoding the request, in a query it may share
// with concurrent calls (see standings).
func (s *Store) FindStanding(ctx context.Context, key string) (approvals.Standing, error) {
	if err := s.live(); err != nil {
		return approvals.Standing{}, err
	}
	if err := ctx.Err(); err != nil {
		return approvals.Standing{}, fmt.Errorf("find standing: %w", mapErr(err))
	}
	l := &lookup{key: []byte(key), done: make(chan struct{})}
	b := &s.standings
	b.mu.Lock()
	b.waiting = append(b.waiting, l)
	var batch []*lookup
	if b.inFlight < standingQueries {
		b.inFlight++
		batch = b.take()
	}
	b.mu.Unlock()
	if batch != nil {
		s.lookUp(batch)
	}
	select {
	case <-l.done:
		return l.st, l.err
	case <-ctx.Done():
		return approvals.Standing{}, fmt.Errorf("find standing: %w", mapErr(ctx.Err()))
	}
}

// take removes up to maxStandingBatch waiting look-ups; b.mu is held.
func (b *standings) take() []*lookup {
	n := min(len(b.waiting), maxStandingBatch)
	batch := b.waiting[:n:n]
	b.waiting = b.waiting[n:]
	if len(b.waiting) == 0 {
		b.waiting = nil
	}
	return batch
}

// lookUp answers batch with one query, then hands the look-ups that
// arrived meanwhile to a goroutine of their own, so that the caller
// returns with its answer rather than serving the next batch.
func (s *Store) lookUp(batch []*lookup) {
	s.answer(batch)
	b := &s.standings
	b.mu.Lock()
	if len(b.waiting) == 0 {
		b.inFlight--
		b.mu.Unlock()
		return
	}
	next := b.take()
	b.mu.Unlock()
	go s.lookUp(next)
}

// answer runs one query for the batch's keys and completes each look-up.
// The query runs on a context of its own, bounded by standingTimeout: a
// caller that gives up does not fail the others' query.
func (s *Store) answer(batch []*lookup) {
	ctx, cancel := context.WithTimeout(context.Background(), standingTimeout)
	defer cancel()
	keys := make([][]byte, len(batch))
	for i, l := range batch {
		keys[i] = l.key
	}
	found := make(map[string]approvals.Standing, len(batch))
	err := s.queryStandings(ctx, keys, found)
	for _, l := range batch {
		switch st, ok := found[string(l.key)]; {
		case err != nil:
			l.err = fmt.Errorf("find standing: %w", mapErr(err))
		case ok:
			l.st = st
		default:
			l.err = approvals.ErrNotFound
		}
		close(l.done)
	}
}

func (s *Store) queryStandings(ctx context.Context, keys [][]byte, found map[string]approvals.Standing) error {
	rows, err := s.pool.Query(ctx, "SELECT person_key, id, status, provisioning FROM requests WHERE person_key = ANY($1)", keys)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var key []byte
		var st approvals.Standing
		var status, prov string
		if err := rows.Scan(&key, &st.ID, &status, &prov); err != nil {
			return err
		}
		st.Status, st.Provisioning = approvals.Status(status), approvals.ProvisioningState(prov)
		found[string(key)] = st
	}
	return rows.Err()
}
