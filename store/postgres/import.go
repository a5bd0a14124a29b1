package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// The import side of `approvals migrate`, which copies a stopped server's
// bbolt file into an empty database: the values are stored as they are
// (IDs, versions, times and audit seqs kept), which the Store methods,
// which assign them, cannot do.

// Empty reports whether the database holds no request, event, session,
// cookie key or delivery: migrate refuses any other.
func (s *Store) Empty(ctx context.Context) (bool, error) {
	var any bool
	err := s.pool.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM requests) OR EXISTS (SELECT 1 FROM events)
		OR EXISTS (SELECT 1 FROM sessions) OR EXISTS (SELECT 1 FROM cookie_keys) OR EXISTS (SELECT 1 FROM deliveries)`).Scan(&any)
	if err != nil {
		return false, fmt.Errorf("check the database is empty: %w", mapErr(err))
	}
	return !any, nil
}

// ImportRequests stores rs as they are, in one transaction.
func (s *Store) ImportRequests(ctx context.Context, rs []*approvals.Request) error {
	rows := make([][]any, 0, len(rs))
	for _, r := range rs {
		w, err := rowOf(r)
		if err != nil {
			return err
		}
		rows = append(rows, []any{r.ID, []byte(w.personKey), w.status, w.provisioning, w.createdNs, w.version, w.jobNext, w.leaseUntil, w.decided, w.doc})
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		_, err := tx.CopyFrom(ctx, pgx.Identifier{"requests"},
			[]string{"id", "person_key", "status", "provisioning", "created_ns", "version", "job_next_ns", "lease_until_ns", "decided_ns", "doc"},
			pgx.CopyFromRows(rows))
		return err
	})
	if err != nil {
		return fmt.Errorf("import requests: %w", err)
	}
	return nil
}

// ImportEvents stores events with their seqs, which must be above every
// seq handed out, and moves audit_seq to the last.
func (s *Store) ImportEvents(ctx context.Context, evs []approvals.Event) error {
	if len(evs) == 0 {
		return nil
	}
	rows := make([][]any, 0, len(evs))
	for _, ev := range evs {
		doc, err := jsonEvent(ev)
		if err != nil {
			return err
		}
		rows = append(rows, []any{int64(ev.Seq), ns(ev.At), string(ev.Type), ev.RequestID, doc})
	}
	err := s.tx(ctx, func(tx pgx.Tx) error {
		// The exclusive audit lock waits for appends in flight and keeps
		// new ones out until the sequence has moved past the imported seqs.
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(auditLock)); err != nil {
			return err
		}
		var last int64
		if err := tx.QueryRow(ctx, lastSeqSQL).Scan(&last); err != nil {
			return err
		}
		for _, ev := range evs {
			if int64(ev.Seq) <= last {
				return approvals.Errorf(approvals.EInvalid, "event seq %d is not above the last stored %d", ev.Seq, last)
			}
			last = int64(ev.Seq)
		}
		if _, err := tx.CopyFrom(ctx, pgx.Identifier{"events"}, []string{"seq", "at_ns", "type", "request_id", "doc"}, pgx.CopyFromRows(rows)); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, "SELECT setval('audit_seq', $1)", last)
		return err
	})
	if err != nil {
		return fmt.Errorf("import events: %w", err)
	}
	return nil
}

// ImportCookieKeys stores the cookie keys as they are.
func (s *Store) ImportCookieKeys(ctx context.Context, keys []approvals.CookieKey) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, k := range keys {
			if _, err := tx.Exec(ctx, "INSERT INTO cookie_keys (id, secret, created_ns) VALUES ($1, $2, $3)", int64(k.ID), k.Secret, ns(k.CreatedAt)); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import cookie keys: %w", err)
	}
	return nil
}

// ImportSessions stores sessions as they are.
func (s *Store) ImportSessions(ctx context.Context, ss []*approvals.Session) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, x := range ss {
			doc, err := jsonSession(x)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, "INSERT INTO sessions (id_hash, expires_ns, doc) VALUES ($1, $2, $3)", x.IDHash, ns(x.ExpiresAt), doc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import sessions: %w", err)
	}
	return nil
}

// Totals counts what the database holds, for migrate's verification.
func (s *Store) Totals(ctx context.Context) (requests, events int, lastSeq uint64, err error) {
	var last int64
	err = s.pool.QueryRow(ctx, "SELECT (SELECT count(*) FROM requests), (SELECT count(*) FROM events), ("+lastSeqSQL+")").Scan(&requests, &events, &last)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("count: %w", mapErr(err))
	}
	return requests, events, uint64(last), nil
}

// ImportDeliveries stores outbox deliveries as they are (state, attempts,
// lease and version kept), in the order given, which becomes their
// listing order.
func (s *Store) ImportDeliveries(ctx context.Context, ds []*approvals.Delivery) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		for _, d := range ds {
			if err := approvals.CheckDelivery(d); err != nil {
				return err
			}
			w, err := deliveryRowOf(d)
			if err != nil {
				return err
			}
			if _, err := tx.Exec(ctx, `INSERT INTO deliveries (id, channel, state, request_id, next_ns, lease_until_ns, sent_ns, doc)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
				d.ID, string(d.Channel), string(d.State), d.RequestID, w.next, w.leaseUntil, w.sent, w.doc); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("import deliveries: %w", err)
	}
	return nil
}
