package postgres

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// appendEvents appends events in tx. The UPDATE of audit_counter's one row
// takes that row's lock until tx ends, so appending transactions are
// serialized from their append to their commit: seqs are assigned in
// commit order, gap-free, and a reader that saw seq n has already seen
// every seq below it, so an AfterSeq cursor never skips an event that
// committed late. The lock is taken after the request row's, in every
// transaction that takes both, so the two never deadlock.
//
// When r is not nil (the change of a request), every event whose type is
// Announced is announced in the same transaction (approvals.NewAnnouncement).
func (s *Store) appendEvents(ctx context.Context, tx pgx.Tx, events []approvals.Event, r *approvals.Request) error {
	if len(events) == 0 {
		return nil
	}
	var last uint64
	if err := tx.QueryRow(ctx, "UPDATE audit_counter SET last = last + $1 WHERE id = 1 RETURNING last", len(events)).Scan(&last); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	first := last - uint64(len(events)) + 1
	seqs := make([]int64, len(events))
	ats := make([]int64, len(events))
	types := make([]string, len(events))
	reqs := make([]string, len(events))
	docs := make([][]byte, len(events))
	var announce []approvals.Delivery
	for i, ev := range events {
		ev.Seq = first + uint64(i)
		if ev.RequestID == "" && r != nil {
			ev.RequestID = r.ID
		}
		doc, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("encode event: %w", err)
		}
		seqs[i], ats[i], types[i], reqs[i], docs[i] = int64(ev.Seq), ns(ev.At), string(ev.Type), ev.RequestID, doc
		if r != nil && ev.Type.Announced() {
			announce = append(announce, approvals.NewAnnouncement(ev, r))
		}
	}
	if _, err := tx.Exec(ctx, `INSERT INTO events (seq, at_ns, type, request_id, doc)
		SELECT s, a, t, r, d FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[], $5::bytea[]) AS u(s, a, t, r, d)`,
		seqs, ats, types, reqs, docs); err != nil {
		return fmt.Errorf("append events: %w", err)
	}
	if len(announce) > 0 {
		if err := enqueue(ctx, tx, announce); err != nil {
			return fmt.Errorf("announce: %w", err)
		}
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
	limit := clamp(q.Limit)
	after := int64(q.AfterSeq)
	if q.AfterSeq > 1<<63-1 {
		return nil, 0, nil
	}
	since := int64(-1 << 63)
	if !q.Since.IsZero() {
		since = ns(q.Since)
	}
	rows, err := s.pool.Query(ctx, `SELECT doc FROM events WHERE seq > $1 AND at_ns >= $2 AND ($3 = '' OR request_id = $3)
		ORDER BY seq LIMIT $4`, after, since, q.RequestID, limit+1)
	if err != nil {
		return nil, 0, fmt.Errorf("audit: %w", mapErr(err))
	}
	defer rows.Close()
	var out []approvals.Event
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, 0, fmt.Errorf("audit: %w", mapErr(err))
		}
		var ev approvals.Event
		if err := json.Unmarshal(doc, &ev); err != nil {
			return nil, 0, fmt.Errorf("audit: decode event: %w", err)
		}
		out = append(out, ev)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, fmt.Errorf("audit: %w", mapErr(err))
	}
	if len(out) > limit {
		out = out[:limit]
		return out, out[limit-1].Seq, nil
	}
	return out, 0, nil
}

func jsonEvent(ev approvals.Event) ([]byte, error) {
	b, err := json.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("encode event: %w", err)
	}
	return b, nil
}
