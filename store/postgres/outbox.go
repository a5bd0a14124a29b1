package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// The outbox (approvals.Outbox) lives in the deliveries table: claims work
// like the job queue's (FOR UPDATE SKIP LOCKED, the lease stored with the
// delivery), and announcements are enqueued by appendEvents in the
// transaction of the change that causes them.

type deliveryRow struct {
	next, leaseUntil, sent *int64
	doc                    []byte
}

func deliveryRowOf(d *approvals.Delivery) (deliveryRow, error) {
	doc, err := json.Marshal(d)
	if err != nil {
		return deliveryRow{}, fmt.Errorf("encode delivery %s: %w", d.ID, err)
	}
	w := deliveryRow{doc: doc}
	n := ns(d.NextAttemptAt)
	w.next = &n
	if d.Lease != nil {
		u := ns(d.Lease.Until)
		w.leaseUntil = &u
	}
	if d.State == approvals.DeliverySent {
		t := ns(d.SentAt)
		w.sent = &t
	}
	return w, nil
}

// enqueue stores the deliveries whose IDs are new, in tx.
func enqueue(ctx context.Context, tx pgx.Tx, ds []approvals.Delivery) error {
	b := &pgx.Batch{}
	if err := queueDeliveries(b, ds); err != nil {
		return err
	}
	return sendBatch(ctx, tx, b)
}

// queueDeliveries queues on b the insertion of the deliveries whose IDs
// are new.
func queueDeliveries(b *pgx.Batch, ds []approvals.Delivery) error {
	checked, err := approvals.CheckEnqueue(ds)
	if err != nil {
		return err
	}
	for _, d := range checked {
		d.Version = 1
		w, err := deliveryRowOf(d)
		if err != nil {
			return err
		}
		b.Queue(`INSERT INTO deliveries (id, channel, state, request_id, next_ns, lease_until_ns, sent_ns, doc)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (id) DO NOTHING`,
			d.ID, string(d.Channel), string(d.State), d.RequestID, w.next, w.leaseUntil, w.sent, w.doc)
	}
	return nil
}

// sendBatch runs b's statements in tx in one round trip, in order, and
// returns the first error.
func sendBatch(ctx context.Context, tx pgx.Tx, b *pgx.Batch) error {
	if b.Len() == 0 {
		return nil
	}
	br := tx.SendBatch(ctx, b)
	for range b.Len() {
		if _, err := br.Exec(); err != nil {
			_ = br.Close()
			return err
		}
	}
	return br.Close()
}

// EnqueueDeliveries implements approvals.Outbox.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []approvals.Delivery) error {
	if len(ds) == 0 {
		return s.live()
	}
	if err := s.tx(ctx, func(tx pgx.Tx) error { return enqueue(ctx, tx, ds) }); err != nil {
		return fmt.Errorf("enqueue deliveries: %w", err)
	}
	return nil
}

func decodeDelivery(doc []byte) (*approvals.Delivery, error) {
	return decodeDoc[approvals.Delivery](doc, "delivery")
}

func scanDeliveries(rows pgx.Rows) ([]*approvals.Delivery, error) {
	return scanDocs[approvals.Delivery](rows, "delivery")
}

func writeDelivery(ctx context.Context, tx pgx.Tx, d *approvals.Delivery) error {
	w, err := deliveryRowOf(d)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE deliveries SET state = $2, next_ns = $3, lease_until_ns = $4, sent_ns = $5, doc = $6 WHERE id = $1`,
		d.ID, string(d.State), w.next, w.leaseUntil, w.sent, w.doc)
	return err
}

// ClaimDeliveries implements approvals.Outbox.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) (out []*approvals.Delivery, err error) {
	if lease <= 0 {
		return nil, approvals.Errorf(approvals.EInvalid, "a delivery lease must be positive, not %s", lease)
	}
	if limit <= 0 {
		return nil, s.live()
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		rows, err := tx.Query(ctx, `SELECT doc FROM deliveries WHERE state = 'pending' AND next_ns <= $1
			AND (lease_until_ns IS NULL OR lease_until_ns <= $1) ORDER BY next_ns, id LIMIT $2 FOR UPDATE SKIP LOCKED`, ns(now), limit)
		if err != nil {
			return err
		}
		ds, err := scanDeliveries(rows)
		if err != nil {
			return err
		}
		for _, d := range ds {
			d.Lease = &approvals.Lease{Owner: approvals.NewLeaseToken(), Until: now.Add(lease)}
			d.Version++
			if err := writeDelivery(ctx, tx, d); err != nil {
				return err
			}
		}
		out = ds
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim deliveries: %w", err)
	}
	return out, nil
}

// UpdateDelivery implements approvals.Outbox: SELECT ... FOR UPDATE, the
// mutation on a copy, the write and its events in one transaction.
func (s *Store) UpdateDelivery(ctx context.Context, id string, m approvals.DeliveryMutation) (out *approvals.Delivery, err error) {
	var unchanged bool
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var doc []byte
		err := tx.QueryRow(ctx, "SELECT doc FROM deliveries WHERE id = $1 FOR UPDATE", id).Scan(&doc)
		if errors.Is(err, pgx.ErrNoRows) {
			return approvals.Errorf(approvals.ENotFound, "delivery %s not found", id)
		}
		if err != nil {
			return err
		}
		cur, err := decodeDelivery(doc)
		if err != nil {
			return err
		}
		c, err := decodeDelivery(doc) // a private copy
		if err != nil {
			return err
		}
		events, err := m(c)
		if errors.Is(err, approvals.ErrUnchanged) {
			out, unchanged = cur, true
			return nil
		}
		if err != nil {
			return err
		}
		if c.ID != cur.ID || c.Channel != cur.Channel {
			return approvals.Errorf(approvals.EInternal, "a mutation may not change the id or channel of delivery %s", id)
		}
		if err := approvals.CheckDelivery(c); err != nil {
			return err
		}
		c.Version = cur.Version + 1
		if err := writeDelivery(ctx, tx, c); err != nil {
			return err
		}
		out = c
		return s.appendEvents(ctx, tx, events, nil)
	})
	if unchanged && err == nil {
		return out, approvals.ErrUnchanged
	}
	if err != nil {
		return nil, fmt.Errorf("update delivery %s: %w", id, err)
	}
	return out, nil
}

// GetDelivery implements approvals.Outbox.
func (s *Store) GetDelivery(ctx context.Context, id string) (*approvals.Delivery, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM deliveries WHERE id = $1", id).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, approvals.Errorf(approvals.ENotFound, "delivery %s not found", id)
	}
	if err != nil {
		return nil, fmt.Errorf("get delivery: %w", mapErr(err))
	}
	return decodeDelivery(doc)
}

// ListDeliveries implements approvals.Outbox, in enqueue order (enq).
func (s *Store) ListDeliveries(ctx context.Context, q approvals.DeliveryQuery) ([]*approvals.Delivery, string, error) {
	if err := s.live(); err != nil {
		return nil, "", err
	}
	if q.State != "" && !q.State.Valid() {
		return nil, "", approvals.Errorf(approvals.EInvalid, "unknown delivery state %q", q.State)
	}
	if q.Channel != "" && !q.Channel.Valid() {
		return nil, "", approvals.Errorf(approvals.EInvalid, "unknown channel %q", q.Channel)
	}
	if q.After != "" {
		var known bool
		if err := s.pool.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM deliveries WHERE id = $1)", q.After).Scan(&known); err != nil {
			return nil, "", fmt.Errorf("list deliveries: %w", mapErr(err))
		}
		if !known {
			return nil, "", approvals.Errorf(approvals.EInvalid, "cursor %q names no delivery", q.After)
		}
	}
	limit := approvals.PageLimit(q.Limit)
	where := []string{"true"}
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if q.RequestID != "" {
		add("request_id = $%d", q.RequestID)
	}
	if q.State != "" {
		add("state = $%d", string(q.State))
	}
	if q.Channel != "" {
		add("channel = $%d", string(q.Channel))
	}
	if q.After != "" {
		add("enq > (SELECT enq FROM deliveries WHERE id = $%d)", q.After)
	}
	args = append(args, limit+1)
	rows, err := s.pool.Query(ctx, fmt.Sprintf("SELECT doc FROM deliveries WHERE %s ORDER BY enq LIMIT $%d", strings.Join(where, " AND "), len(args)), args...)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", mapErr(err))
	}
	ds, err := scanDeliveries(rows)
	if err != nil {
		return nil, "", fmt.Errorf("list deliveries: %w", err)
	}
	next := ""
	if len(ds) > limit {
		ds = ds[:limit]
		next = ds[limit-1].ID
	}
	return ds, next, nil
}

// NextDeliveryAt implements approvals.Outbox.
func (s *Store) NextDeliveryAt(ctx context.Context) (time.Time, bool, error) {
	if err := s.live(); err != nil {
		return time.Time{}, false, err
	}
	return s.nextAt(ctx, "next delivery", "SELECT min(greatest(next_ns, coalesce(lease_until_ns, next_ns))) FROM deliveries WHERE state = 'pending'")
}

// CountDeliveries implements approvals.Outbox from the columns.
func (s *Store) CountDeliveries(ctx context.Context, now time.Time) (map[approvals.Channel]approvals.DeliveryCounts, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	rows, err := s.pool.Query(ctx, `SELECT channel,
			count(*) FILTER (WHERE state = 'pending' AND (lease_until_ns IS NULL OR lease_until_ns <= $1) AND next_ns <= $1),
			count(*) FILTER (WHERE state = 'pending' AND lease_until_ns > $1),
			count(*) FILTER (WHERE state = 'pending' AND (lease_until_ns IS NULL OR lease_until_ns <= $1) AND next_ns > $1),
			count(*) FILTER (WHERE state = 'sent'),
			count(*) FILTER (WHERE state = 'failed')
		FROM deliveries GROUP BY channel`, ns(now))
	if err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	defer rows.Close()
	out := map[approvals.Channel]approvals.DeliveryCounts{}
	for _, c := range approvals.Channels {
		out[c] = approvals.DeliveryCounts{}
	}
	for rows.Next() {
		var ch string
		var n approvals.DeliveryCounts
		if err := rows.Scan(&ch, &n.Due, &n.Leased, &n.Scheduled, &n.Sent, &n.Failed); err != nil {
			return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
		}
		out[approvals.Channel(ch)] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count deliveries: %w", mapErr(err))
	}
	return out, nil
}

// PurgeDeliveries implements approvals.Outbox.
func (s *Store) PurgeDeliveries(ctx context.Context, sentBefore time.Time) (int, error) {
	if err := s.live(); err != nil {
		return 0, err
	}
	tag, err := s.pool.Exec(ctx, "DELETE FROM deliveries WHERE state = 'sent' AND sent_ns < $1", ns(sentBefore))
	if err != nil {
		return 0, fmt.Errorf("purge deliveries: %w", mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}
