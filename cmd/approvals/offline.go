package main

import (
	"errors"
	"flag"
	"fmt"
	"os"
	"time"

	"github.com/approvals-dev/approvals/store/bolt"
)

// storeSource is where an offline command (export, migrate) reads: a
// stopped server's bbolt data file (--db) or a PostgreSQL database
// (--database-url), with how long to wait for a file another process
// holds (--lock-timeout).
type storeSource struct {
	db, dbURL string
	lockWait  time.Duration
}

// register adds --db, --database-url and --lock-timeout to fs, with the
// command's own help for the first two.
func (s *storeSource) register(fs *flag.FlagSet, dbUsage, dbURLUsage string) {
	fs.StringVar(&s.db, "db", "", dbUsage)
	fs.StringVar(&s.dbURL, "database-url", "", dbURLUsage)
	fs.DurationVar(&s.lockWait, "lock-timeout", 2*time.Second, "how long to wait for a data file another process holds")
}

// openFile opens the data file read-only. A missing file, or one a
// running server holds, is an error saying so; inUse is what to do about
// the latter.
func (s *storeSource) openFile(inUse string) (*bolt.Store, error) {
	if _, err := os.Stat(s.db); err != nil {
		return nil, fmt.Errorf("data file %s: %w", s.db, errors.Unwrap(err))
	}
	st, err := bolt.Open(s.db, bolt.Options{ReadOnly: true, Timeout: s.lockWait})
	if errors.Is(err, bolt.ErrLocked) {
		return nil, fmt.Errorf("the data file %s is in use by a running server; %s", s.db, inUse)
	}
	return st, err
}
