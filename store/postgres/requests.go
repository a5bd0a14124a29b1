package postgres

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// row is the columns of a request beside its document.
type row struct {
	personKey    string
	status       string
	provisioning string
	createdNs    int64
	version      int64
	jobNext      *int64
	leaseUntil   *int64
	decided      *int64
	doc          []byte
}

func rowOf(r *approvals.Request) (row, error) {
	doc, err := json.Marshal(r)
	if err != nil {
		return row{}, fmt.Errorf("encode request %s: %w", r.ID, err)
	}
	w := row{personKey: r.Key(), status: string(r.Status), provisioning: string(r.Provisioning.State),
		createdNs: ns(r.CreatedAt), version: int64(r.Version), doc: doc}
	if r.Status == approvals.StatusApproved && r.Provisioning.Pending() {
		n := ns(r.Provisioning.NextAttemptAt)
		w.jobNext = &n
		if l := r.Provisioning.Lease; l != nil {
			u := ns(l.Until)
			w.leaseUntil = &u
		}
	}
	if r.Decision != nil && r.Status != approvals.StatusPending {
		d := ns(r.Decision.At)
		w.decided = &d
	}
	return w, nil
}

func decodeRequest(doc []byte) (*approvals.Request, error) {
	return decodeDoc[approvals.Request](doc, "request")
}

func checkStatus(r *approvals.Request) error {
	if !r.Status.Valid() {
		return approvals.Errorf(approvals.EInvalid, "request %s has unknown status %q", r.ID, r.Status)
	}
	return nil
}

// Create implements approvals.RequestStore. The person_key unique
// constraint decides between concurrent Creates of one person: INSERT ...
// ON CONFLICT DO NOTHING waits for the other transaction and then stores
// nothing, and the existing request is read after it.
func (s *Store) Create(ctx context.Context, r *approvals.Request, events []approvals.Event) (stored *approvals.Request, created bool, err error) {
	defer wrap(&err, "create request")
	if err := checkStatus(r); err != nil {
		return nil, false, err
	}
	c := r.Clone()
	if c.ID == "" {
		c.ID = approvals.NewID(c.CreatedAt)
	}
	c.Version = 1
	c.UpdatedAt = c.CreatedAt
	w, err := rowOf(c)
	if err != nil {
		return nil, false, err
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `INSERT INTO requests (id, person_key, status, provisioning, created_ns, version, job_next_ns, lease_until_ns, decided_ns, doc)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (person_key) DO NOTHING`,
			c.ID, []byte(w.personKey), w.status, w.provisioning, w.createdNs, w.version, w.jobNext, w.leaseUntil, w.decided, w.doc)
		if err != nil {
			var ae *approvals.Error
			if m := mapErr(err); errors.As(m, &ae) && ae.Code == approvals.EConflict {
				return fmt.Errorf("%w: %w", approvals.Errorf(approvals.EConflict, "request id %s exists", c.ID), err)
			}
			return err
		}
		if tag.RowsAffected() == 0 {
			var doc []byte
			if err := tx.QueryRow(ctx, "SELECT doc FROM requests WHERE person_key = $1", []byte(w.personKey)).Scan(&doc); err != nil {
				return err
			}
			stored, err = decodeRequest(doc)
			return err
		}
		created, stored = true, c
		return s.appendEvents(ctx, tx, events, c)
	})
	if err != nil {
		return nil, false, err
	}
	return stored.Clone(), created, nil
}

// Get implements approvals.RequestStore.
func (s *Store) Get(ctx context.Context, id string) (*approvals.Request, error) {
	return s.getBy(ctx, "id", []byte(id))
}

// FindByPerson implements approvals.RequestStore.
func (s *Store) FindByPerson(ctx context.Context, key string) (*approvals.Request, error) {
	return s.getBy(ctx, "person_key", []byte(key))
}

func (s *Store) getBy(ctx context.Context, col string, v []byte) (*approvals.Request, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var doc []byte
	arg := any(v)
	if col == "id" {
		arg = string(v)
	}
	err := s.pool.QueryRow(ctx, "SELECT doc FROM requests WHERE "+col+" = $1", arg).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, approvals.ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get request by %s: %w", col, mapErr(err))
	}
	return decodeRequest(doc)
}

// Update implements approvals.RequestStore: SELECT ... FOR UPDATE locks the
// row, the mutation runs on a copy, and the row, its index columns and the
// events are written in the same transaction.
func (s *Store) Update(ctx context.Context, id string, m approvals.Mutation) (out *approvals.Request, err error) {
	defer func() {
		if !errors.Is(err, approvals.ErrUnchanged) {
			wrap(&err, "update request %s", id)
		}
	}()
	var unchanged bool
	err = s.tx(ctx, func(tx pgx.Tx) error {
		var doc []byte
		err := tx.QueryRow(ctx, "SELECT doc FROM requests WHERE id = $1 FOR UPDATE", id).Scan(&doc)
		if errors.Is(err, pgx.ErrNoRows) {
			return approvals.ErrNotFound
		}
		if err != nil {
			return err
		}
		cur, err := decodeRequest(doc)
		if err != nil {
			return err
		}
		c := cur.Clone()
		events, err := m(c)
		if errors.Is(err, approvals.ErrUnchanged) {
			out, unchanged = cur, true
			return nil // nothing written; the commit is empty
		}
		if err != nil {
			return err
		}
		if err := approvals.CheckMutation(cur, c); err != nil {
			return err
		}
		if err := checkStatus(c); err != nil {
			return err
		}
		c.Version = cur.Version + 1
		c.UpdatedAt = s.clock.Now().UTC()
		if err := writeRequest(ctx, tx, c); err != nil {
			return err
		}
		out = c
		return s.appendEvents(ctx, tx, events, c)
	})
	if err != nil {
		return nil, err
	}
	if unchanged {
		return out, approvals.ErrUnchanged
	}
	return out.Clone(), nil
}

func writeRequest(ctx context.Context, tx pgx.Tx, c *approvals.Request) error {
	w, err := rowOf(c)
	if err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `UPDATE requests SET status = $2, provisioning = $3, version = $4, job_next_ns = $5,
		lease_until_ns = $6, decided_ns = $7, doc = $8 WHERE id = $1`,
		c.ID, w.status, w.provisioning, w.version, w.jobNext, w.leaseUntil, w.decided, w.doc)
	return err
}

// List implements approvals.RequestStore with a keyset page on
// (created_ns, id), which the requests_by_creation and requests_by_status
// indexes serve: the page costs the same on the last page as on the first.
func (s *Store) List(ctx context.Context, q approvals.ListQuery) (p approvals.Page, err error) {
	defer wrap(&err, "list requests")
	if q.Status != "" && !q.Status.Valid() {
		return approvals.Page{}, approvals.Errorf(approvals.EInvalid, "unknown status %q", q.Status)
	}
	if q.Order != "" && q.Order != approvals.NewestFirst && q.Order != approvals.OldestFirst {
		return approvals.Page{}, approvals.Errorf(approvals.EInvalid, "unknown order %q; use %q or %q", q.Order, approvals.NewestFirst, approvals.OldestFirst)
	}
	if err := s.live(); err != nil {
		return approvals.Page{}, err
	}
	limit := approvals.PageLimit(q.Limit)
	var where []string
	var args []any
	if q.Status != "" {
		args = append(args, string(q.Status))
		where = append(where, "status = $1")
	}
	cmpOp, dir := "<", "DESC"
	if q.Order == approvals.OldestFirst {
		cmpOp, dir = ">", "ASC"
	}
	if q.Cursor != "" {
		at, id, err := decodeCursor(q.Cursor)
		if err != nil {
			return approvals.Page{}, err
		}
		args = append(args, at, id)
		where = append(where, fmt.Sprintf("(created_ns, id) %s ($%d, $%d)", cmpOp, len(args)-1, len(args)))
	}
	sql := "SELECT doc FROM requests"
	if len(where) > 0 {
		sql += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, limit+1)
	sql += fmt.Sprintf(" ORDER BY created_ns %s, id %s LIMIT $%d", dir, dir, len(args))
	rows, err := s.pool.Query(ctx, sql, args...)
	if err != nil {
		return approvals.Page{}, mapErr(err)
	}
	reqs, err := scanRequests(rows)
	if err != nil {
		return approvals.Page{}, err
	}
	if len(reqs) > limit {
		reqs = reqs[:limit]
		last := reqs[limit-1]
		p.NextCursor = encodeCursor(ns(last.CreatedAt), last.ID)
	}
	p.Requests = reqs
	return p, nil
}

func scanRequests(rows pgx.Rows) ([]*approvals.Request, error) {
	return scanDocs[approvals.Request](rows, "request")
}

func encodeCursor(at int64, id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(at, 10) + ":" + id))
}

func decodeCursor(c string) (int64, string, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err == nil {
		if s, id, ok := strings.Cut(string(b), ":"); ok && id != "" {
			if n, err := strconv.ParseInt(s, 10, 64); err == nil {
				return n, id, nil
			}
		}
	}
	return 0, "", approvals.Errorf(approvals.EInvalid, "cursor %q is not valid", c)
}

// Count implements approvals.RequestStore.
func (s *Store) Count(ctx context.Context) (map[approvals.Status]int, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	n := map[approvals.Status]int{}
	for _, st := range approvals.Statuses {
		n[st] = 0
	}
	rows, err := s.pool.Query(ctx, "SELECT status, count(*) FROM requests GROUP BY status")
	if err != nil {
		return nil, fmt.Errorf("count requests: %w", mapErr(err))
	}
	defer rows.Close()
	for rows.Next() {
		var st string
		var c int
		if err := rows.Scan(&st, &c); err != nil {
			return nil, fmt.Errorf("count requests: %w", mapErr(err))
		}
		n[approvals.Status(st)] = c
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count requests: %w", mapErr(err))
	}
	return n, nil
}

const claimableJobs = `job_next_ns IS NOT NULL AND job_next_ns <= $1 AND (lease_until_ns IS NULL OR lease_until_ns <= $1)`

// ClaimJobs implements approvals.JobQueue: the claimable rows are picked
// with FOR UPDATE SKIP LOCKED, so concurrent claimers, in any replica,
// take different jobs without waiting for one another, and leased in the
// same transaction.
func (s *Store) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) (out []*approvals.Request, err error) {
	if lease <= 0 {
		return nil, approvals.Errorf(approvals.EInvalid, "a job lease must be positive, not %s", lease)
	}
	if limit <= 0 {
		return nil, s.live()
	}
	defer wrap(&err, "claim jobs")
	err = s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, "SELECT doc FROM requests WHERE "+claimableJobs+
			" ORDER BY job_next_ns, id LIMIT $2 FOR UPDATE SKIP LOCKED", ns(now), limit)
		if err != nil {
			return err
		}
		jobs, err := scanRequests(rows)
		if err != nil {
			return err
		}
		stamp := s.clock.Now().UTC()
		for _, c := range jobs {
			c.Provisioning.Lease = &approvals.Lease{Owner: approvals.NewLeaseToken(), Until: now.Add(lease)}
			c.Version++
			c.UpdatedAt = stamp
			if err := writeRequest(ctx, tx, c); err != nil {
				return err
			}
		}
		out = jobs
		return nil
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// DueJobs implements approvals.JobQueue.
func (s *Store) DueJobs(ctx context.Context, now time.Time, limit int) ([]*approvals.Request, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	if limit <= 0 {
		return nil, nil
	}
	rows, err := s.pool.Query(ctx, "SELECT doc FROM requests WHERE "+claimableJobs+" ORDER BY job_next_ns, id LIMIT $2", ns(now), limit)
	if err != nil {
		return nil, fmt.Errorf("due jobs: %w", mapErr(err))
	}
	jobs, err := scanRequests(rows)
	if err != nil {
		return nil, fmt.Errorf("due jobs: %w", err)
	}
	return jobs, nil
}

// NextJobAt implements approvals.JobQueue.
func (s *Store) NextJobAt(ctx context.Context) (time.Time, bool, error) {
	if err := s.live(); err != nil {
		return time.Time{}, false, err
	}
	return s.nextAt(ctx, "next job", "SELECT min(greatest(job_next_ns, coalesce(lease_until_ns, job_next_ns))) FROM requests WHERE job_next_ns IS NOT NULL")
}

// nextAt runs a query for the earliest time a queue's item becomes
// claimable (its due time, or its lease's end when later), in Unix
// nanoseconds or NULL when the queue is empty.
func (s *Store) nextAt(ctx context.Context, what, query string) (time.Time, bool, error) {
	var next *int64
	if err := s.pool.QueryRow(ctx, query).Scan(&next); err != nil {
		return time.Time{}, false, fmt.Errorf("%s: %w", what, mapErr(err))
	}
	if next == nil {
		return time.Time{}, false, nil
	}
	return time.Unix(0, *next).UTC(), true, nil
}

// CountJobs implements approvals.JobQueue from the index columns.
func (s *Store) CountJobs(ctx context.Context, now time.Time) (approvals.JobCounts, error) {
	if err := s.live(); err != nil {
		return approvals.JobCounts{}, err
	}
	var n approvals.JobCounts
	err := s.pool.QueryRow(ctx, `SELECT
			count(*) FILTER (WHERE lease_until_ns > $1),
			count(*) FILTER (WHERE (lease_until_ns IS NULL OR lease_until_ns <= $1) AND job_next_ns > $1),
			count(*) FILTER (WHERE (lease_until_ns IS NULL OR lease_until_ns <= $1) AND job_next_ns <= $1)
		FROM requests WHERE job_next_ns IS NOT NULL`, ns(now)).Scan(&n.Leased, &n.Scheduled, &n.Due)
	if err != nil {
		return approvals.JobCounts{}, fmt.Errorf("count jobs: %w", mapErr(err))
	}
	return n, nil
}

// Decisions implements approvals.DecisionLog from the decided_ns column,
// streaming the rows.
func (s *Store) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) (err error) {
	if q.Status != "" && q.Status != approvals.StatusApproved && q.Status != approvals.StatusDenied {
		return approvals.Errorf(approvals.EInvalid, "status %q has no decisions; use approved or denied", q.Status)
	}
	if err := s.live(); err != nil {
		return err
	}
	defer wrap(&err, "decisions")
	since, until := int64(-1<<63), int64(1<<63-1)
	if !q.Since.IsZero() {
		since = ns(q.Since)
	}
	sql := "SELECT doc FROM requests WHERE decided_ns IS NOT NULL AND decided_ns >= $1 AND ($3 = '' OR status = $3)"
	if !q.Until.IsZero() {
		until = ns(q.Until)
		sql += " AND decided_ns < $2"
	} else {
		sql += " AND $2::bigint IS NOT NULL"
	}
	rows, err := s.pool.Query(ctx, sql+" ORDER BY decided_ns, id", since, until, string(q.Status))
	if err != nil {
		return mapErr(err)
	}
	defer rows.Close()
	for rows.Next() {
		if err := ctx.Err(); err != nil {
			return err // the rows already read must not outlive a cancel
		}
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return mapErr(err)
		}
		r, err := decodeRequest(doc)
		if err != nil {
			return err
		}
		if err := fn(approvals.NewDecisionRecord(r)); err != nil {
			return err
		}
	}
	return mapErr(rows.Err())
}
