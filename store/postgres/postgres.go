// Package postgres is an approvals.Store kept in PostgreSQL, for several
// replicas of the server sharing one database (SPEC "Several replicas on
// PostgreSQL", docs/STORE.md). It uses pgx's pool; the schema is created
// and upgraded at Open by versioned SQL migrations embedded in the binary,
// applied under a session advisory lock so that replicas starting together
// do not race.
package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net/url"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/approvals-dev/approvals/approvals"
)

// Options configures Open.
type Options struct {
	// Clock stamps UpdatedAt; the system clock when nil.
	Clock approvals.Clock
}

// Defaults applied when the URL does not set them. The pool settings are
// pgxpool's own URL parameters (pool_max_conns, pool_min_conns,
// pool_max_conn_lifetime, pool_max_conn_idle_time,
// pool_health_check_period); statement_timeout and lock_timeout are
// PostgreSQL settings pgx passes on as run-time parameters.
const (
	DefaultStatementTimeout = "10s"
	DefaultLockTimeout      = "5s"
	DefaultConnectTimeout   = 5 * time.Second
)

// Store is an approvals.Store on PostgreSQL. It is safe for concurrent use
// by goroutines and by processes sharing the database.
type Store struct {
	pool      *pgxpool.Pool
	clock     approvals.Clock
	closed    atomic.Bool
	standings standings
}

var _ approvals.Store = (*Store)(nil)
var _ approvals.Outbox = (*Store)(nil)

// Open connects to the database the URL names, applies the migrations it
// lacks, and returns the store. It fails when the database cannot be
// reached, so that a server does not start without its data.
func Open(ctx context.Context, dbURL string, opts Options) (s *Store, err error) {
	defer wrap(&err, "open PostgreSQL store %s", Redact(dbURL))
	cfg, err := pgxpool.ParseConfig(dbURL)
	if err != nil {
		// pgx's message may quote the URL, password included.
		return nil, approvals.Errorf(approvals.EInvalid, "the database URL is not valid (postgres://user:password@host:port/dbname?options)")
	}
	rp := cfg.ConnConfig.RuntimeParams
	if _, ok := rp["statement_timeout"]; !ok {
		rp["statement_timeout"] = DefaultStatementTimeout
	}
	if _, ok := rp["lock_timeout"]; !ok {
		rp["lock_timeout"] = DefaultLockTimeout
	}
	if _, ok := rp["application_name"]; !ok {
		rp["application_name"] = "approvals"
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, mapErr(err)
	}
	if err := migrate(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	}
	clock := opts.Clock
	if clock == nil {
		clock = approvals.SystemClock
	}
	return &Store{pool: pool, clock: clock}, nil
}

// Redact returns the URL with its password replaced, for logs and errors.
func Redact(dbURL string) string {
	u, err := url.Parse(dbURL)
	if err != nil {
		return "(an unparsable URL)"
	}
	if _, has := u.User.Password(); has {
		u.User = url.UserPassword(u.User.Username(), "xxxxx")
	}
	q := u.Query()
	if q.Has("password") {
		q.Set("password", "xxxxx")
		u.RawQuery = q.Encode()
	}
	return u.String()
}

// Pool returns the connection pool, for metrics (Stat) and health checks.
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// Ping checks that the database answers; /readyz calls it.
func (s *Store) Ping(ctx context.Context) error {
	if err := s.live(); err != nil {
		return err
	}
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping PostgreSQL: %w", mapErr(err))
	}
	return nil
}

// Close closes the pool. Calls after Close fail.
func (s *Store) Close() error {
	if s.closed.Swap(true) {
		return errors.New("close PostgreSQL store: already closed")
	}
	s.pool.Close()
	return nil
}

var errClosed = approvals.Errorf(approvals.EUnavailable, "the store is closed")

func (s *Store) live() error {
	if s.closed.Load() {
		return errClosed
	}
	return nil
}

// tx runs fn in a READ COMMITTED transaction and commits it when fn
// returns nil. Row locks (FOR UPDATE), the unique constraints and the
// audit trail's advisory lock give the guarantees; see docs/STORE.md.
func (s *Store) tx(ctx context.Context, fn func(pgx.Tx) error) error {
	if err := s.live(); err != nil {
		return err
	}
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if err := fn(tx); err != nil {
		return mapErr(err)
	}
	if err := tx.Commit(ctx); err != nil {
		return mapErr(err)
	}
	return nil
}

// mapErr gives database errors the approvals code the edges answer by:
// EConflict for a unique violation, EUnavailable when the database cannot
// be reached, is shutting down, timed out or gave up a serialization; the
// cause stays in the chain for logs.
func mapErr(err error) error {
	if err == nil {
		return nil
	}
	var ae *approvals.Error
	if errors.As(err, &ae) {
		return err
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch {
		case pe.Code == "23505":
			return fmt.Errorf("%w: %w", approvals.Errorf(approvals.EConflict, "a stored value with this key exists"), err)
		case pe.Code == "23514", pe.Code == "22P02", pe.Code == "22023", pe.Code == "22021":
			return fmt.Errorf("%w: %w", approvals.Errorf(approvals.EInvalid, "the database refused a value"), err)
		case len(pe.Code) == 2+3 && (pe.Code[:2] == "08" || pe.Code[:2] == "53" || pe.Code[:2] == "57" || pe.Code[:2] == "40" || pe.Code == "55P03"):
			return fmt.Errorf("%w: %w", approvals.Errorf(approvals.EUnavailable, "the database is unavailable; try again later"), err)
		}
		return err
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	// Anything else from pgx (refused connection, reset, timeout, closed
	// pool) means the database is out of reach.
	return fmt.Errorf("%w: %w", approvals.Errorf(approvals.EUnavailable, "the database is unavailable; try again later"), err)
}

func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *err)
	}
}

// ns returns t in Unix nanoseconds, clamped to int64 (the zero time is the
// smallest value).
func ns(t time.Time) int64 {
	if t.Before(minTime) {
		return math.MinInt64
	}
	if t.After(maxTime) {
		return math.MaxInt64
	}
	return t.UnixNano()
}

var (
	minTime = time.Unix(0, math.MinInt64)
	maxTime = time.Unix(0, math.MaxInt64)
)

// decodeDoc decodes a stored document (the doc column) as a T; what names
// it in the error.
func decodeDoc[T any](doc []byte, what string) (*T, error) {
	v := new(T)
	if err := json.Unmarshal(doc, v); err != nil {
		return nil, fmt.Errorf("decode stored %s: %w", what, err)
	}
	return v, nil
}

// scanDocs decodes the doc column of every row, and closes rows.
func scanDocs[T any](rows pgx.Rows, what string) ([]*T, error) {
	defer rows.Close()
	var out []*T
	for rows.Next() {
		var doc []byte
		if err := rows.Scan(&doc); err != nil {
			return nil, mapErr(err)
		}
		v, err := decodeDoc[T](doc, what)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, mapErr(err)
	}
	return out, nil
}
