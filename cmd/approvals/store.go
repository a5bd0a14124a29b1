package main

import (
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/unitext"
	"github.com/approvals-dev/approvals/store/bolt"
)

// storeOptions is what every backend is opened with.
type storeOptions struct {
	Clock  approvals.Clock
	Logger *slog.Logger
}

// openStoreFunc opens one store backend from the configuration.
type openStoreFunc func(c *Config, opts storeOptions) (approvals.Store, error)

// storeBackends maps each backend's name to its opener: the one place a
// backend is added (a PostgreSQL backend is one more entry, and
// Config.StoreBackend names it when APPROVALS_DATABASE_URL is set). An
// explicit map, not registration from init(), so that what the binary can
// open is read here.
func storeBackends() map[string]openStoreFunc {
	return map[string]openStoreFunc{
		"bolt":     openBolt,
		"postgres": openPostgres, // postgres.go
	}
}

// StoreBackend names the backend the configuration selects: "postgres"
// when APPROVALS_DATABASE_URL is set, else "bolt", the file APPROVALS_DB
// names.
func (c *Config) StoreBackend() string {
	if c.DatabaseURL != "" {
		return "postgres"
	}
	return "bolt"
}

// openStore opens the backend the configuration selects.
func openStore(c *Config, opts storeOptions) (approvals.Store, error) {
	name := c.StoreBackend()
	open, ok := storeBackends()[name]
	if !ok {
		names := make([]string, 0, len(storeBackends()))
		for n := range storeBackends() {
			names = append(names, n)
		}
		sort.Strings(names)
		return nil, fmt.Errorf("no store backend %q in this build (it has %s)", name, strings.Join(names, ", "))
	}
	return open(c, opts)
}

// openBolt opens (creating or upgrading) the bbolt file APPROVALS_DB
// names. An upgrade first copies the file aside (docs/STORE.md).
func openBolt(c *Config, opts storeOptions) (approvals.Store, error) {
	return bolt.Open(c.DB, bolt.Options{Clock: opts.Clock, Logger: opts.Logger, Unicode: unitext.Rules})
}

// backuper is what a store offers when it can write a consistent snapshot
// of itself while in use; GET /api/v1/backup serves it. A backend without
// it answers that route 501.
type backuper interface {
	Backup(w io.Writer) (int64, error)
}

// backupOf returns the store's snapshot writer, or nil when it has none.
func backupOf(s approvals.Store) func(w io.Writer) (int64, error) {
	if b, ok := s.(backuper); ok {
		return b.Backup
	}
	return nil
}
