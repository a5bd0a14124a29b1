package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// auditLock is the key of the advisory lock that orders the audit trail's
// visibility: an appending transaction holds it shared from the moment it
// takes its seqs until it ends; auditFrontier takes it exclusively.
const auditLock = 0x61756474 // "audt"

// appendEvents appends events in tx. Their seqs come from audit_seq, taken
// under auditLock held shared until tx ends, so appends never wait for one
// another (a counter row locked to commit made them commit one at a time)
// and a reader bounded by auditFrontier never skips an event that commits
// after a larger seq: see Audit. Seqs strictly increase; a rolled-back
// append leaves a gap. The lock is taken after every row lock the
// transaction takes, never before, and nothing waits on a row after it.
//
// When r is not nil (the change of a request), every event whose type is
// Announced is announced in the same transaction (approvals.NewAnnouncement).
func (s *Store) appendEvents(ctx context.Context, tx pgx.Tx, events []approvals.Event, r *approvals.Request) error {
	if len(events) == 0 {
		return nil
	}
	lock := &pgx.Batch{}
	lock.Queue("SELECT pg_advisory_xact_lock_shared($1)", int64(auditLock))
	lock.Queue("SELECT nextval('audit_seq') FROM generate_series(1, $1)", len(events))
	br := tx.SendBatch(ctx, lock)
	_, err := br.Exec()
	var seqs []int64
	if err == nil {
		var rows pgx.Rows
		if rows, err = br.Query(); err == nil {
			seqs, err = pgx.CollectRows(rows, pgx.RowTo[int64])
		}
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	if len(seqs) != len(events) {
		return fmt.Errorf("append events: %d seqs for %d events", len(seqs), len(events))
	}
	ats := make([]int64, len(events))
	types := make([]string, len(events))
	reqs := make([]string, len(events))
	docs := make([][]byte, len(events))
	var announce []approvals.Delivery
	for i, ev := range events {
		ev.Seq = uint64(seqs[i])
		if ev.RequestID == "" && r != nil {
			ev.RequestID = r.ID
		}
		doc, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		ats[i], types[i], reqs[i], docs[i] = ns(ev.At), string(ev.Type), ev.RequestID, doc
		if r != nil && ev.Type.Announced() {
			announce = append(announce, approvals.NewAnnouncement(ev, r))
		}
	}
	// The events and their announcements go in one round trip.
	b := &pgx.Batch{}
	b.Queue(`INSERT INTO events (seq, at_ns, type, request_id, doc)
		SELECT s, a, t, r, d FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[]) AS u(s, a, t, r, d)`,
		seqs, ats, types, reqs, docs)
	if err := queueDeliveries(b, announce); err != nil {
		return fmt.Errorf("announce: %w", err)
	}
	if err := sendBatch(ctx, tx, b); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	return nil
}

// AppendEvents implements approvals.AuditLog.
func (s *Store) AppendEvents(ctx context.Context, events []approvals.Event) error {
	if len(events) == 0 {
		return s.live()
	}
	return s.tx(ctx, func(tx pgx.Tx) error { return s.appendEvents(ctx, tx, events, nil) })
}

// Audit implements approvals.AuditLog: events in seq order after the
// cursor, reading one more than the page to know whether a matching event
// is left (the cursor is 0 when none is).
func (s *Store) Audit(ctx context.Context, q approvals.AuditQuery) ([]approvals.Event, uint64, error) {
	if err := s.live(); err != nil {
		return nil, 0, err
	}
	limit := approvals.PageLimit(q.Limit)
	after := int64(q.AfterSeq)
	if q.AfterSeq > 1<<63-1 {
		return nil, 0, nil
	}
	since := int64(-1 << 63)
	if !q.Since.IsZero() {
		since = ns(q.Since)
	}
	upTo, err := s.auditFrontier(ctx)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", mapErr(err))
	}
	rows, err := s.pool.Query(ctx, `SELECT doc FROM events WHERE seq > $1 AND seq <= $5 AND at_ns >= $2 AND ($3 = '' OR request_id = $3)
		ORDER BY seq LIMIT $4`, after, since, q.RequestID, limit+1, upTo)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", mapErr(err))
	}
	evs, err := scanDocs[approvals.Event](rows, "event")
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", err)
	}
	var out []approvals.Event
	for _, ev := range evs {
		out = append(out, *ev)
	}
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Seq, nil
	}
	return out, 0, nil
}

// lastSeqSQL reads the last seq audit_seq handed out (0 before the first).
const lastSeqSQL = "SELECT CASE WHEN is_called THEN last_value ELSE last_value - 1 END FROM audit_seq"

// auditFrontier returns the largest seq below which every seq handed out
// is settled (committed or rolled back): it takes auditLock exclusively,
// which waits for the appends in flight to end, and reads audit_seq while
// holding it; the lock goes with the batch's implicit transaction, so
// appends wait at most for that instant. An event that commits later has
// a seq above the frontier, so a cursor at or below it misses nothing, and
// an append that ended before the call is inside it (read your writes).
func (s *Store) auditFrontier(ctx context.Context) (int64, error) {
	b := &pgx.Batch{}
	b.Queue("SELECT pg_advisory_xact_lock($1)", int64(auditLock))
	b.Queue(lastSeqSQL)
	br := s.pool.SendBatch(ctx, b)
	_, err := br.Exec()
	var upTo int64
	if err == nil {
		err = br.QueryRow().Scan(&upTo)
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return upTo, err
}

func jsonEvent(ev approvals.Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}
