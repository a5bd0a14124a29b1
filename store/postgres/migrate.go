package postgres

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The migrations: migrations/NNNN_name.sql, applied in order, each in its
// own transaction, once. A small runner rather than a migration library:
// it is the only place schema changes are applied, it needs the advisory
// lock and nothing else, and it adds no dependency.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrationLock is the key of the session advisory lock migrate holds, so
// that replicas starting together apply the migrations once, one after
// the other.
const migrationLock = 0x617070726f76 // "approv"

type migration struct {
	version int
	name    string
	sql     string
}

func migrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, n := range names {
		base := strings.TrimPrefix(n, "migrations/")
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("migration %s is not named NNNN_name.sql", n)
		}
		b, err := fs.ReadFile(fsys, n)
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: base, sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	for i := range out {
		if out[i].version != i+1 {
			return nil, fmt.Errorf("migration %s: want version %d", out[i].name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion is the schema version this build's migrations reach.
func SchemaVersion() int {
	ms, _ := migrations(migrationFiles)
	return len(ms)
}

// migrate applies the migrations the database lacks under the advisory
// lock. A database at a newer version than this build knows is refused:
// an older binary must not write to a schema it does not understand.
func migrate(ctx context.Context, pool *pgxpool.Pool) (err error) {
	defer wrap(&err, "migrate")
	ms, err := migrations(migrationFiles)
	if err != nil {
		return err
	}
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return mapErr(err)
	}
	defer conn.Release()
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", int64(migrationLock)); err != nil {
		return mapErr(err)
	}
	defer func() {
		_, _ = conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", int64(migrationLock))
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return mapErr(err)
	}
	var have int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&have); err != nil {
		return mapErr(err)
	}
	if have > len(ms) {
		return fmt.Errorf("the database schema is at version %d, newer than this build's %d: run a newer approvals", have, len(ms))
	}
	for _, m := range ms[have:] {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return mapErr(err)
		}
		if _, err := tx.Exec(ctx, m.sql); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("%s: %w", m.name, mapErr(err))
		}
		if _, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name); err != nil {
			_ = tx.Rollback(ctx)
			return fmt.Errorf("%s: %w", m.name, mapErr(err))
		}
		if err := tx.Commit(ctx); err != nil {
			return fmt.Errorf("%s: %w", m.name, mapErr(err))
		}
	}
	return nil
}
