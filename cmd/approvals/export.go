package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
	"github.com/approvals-dev/approvals/store/postgres"
)

// Export is `approvals export`: it writes the decisions of a data file that
// no server holds open, in the same format as the HTTP export.
type Export struct {
	Stdout, Stderr io.Writer
	// Progress forces (true) or suppresses (false) the progress line; nil
	// shows it when stderr is a terminal.
	Progress *bool

	storeSource // --db, or --database-url to export from PostgreSQL instead
	out         string
	format      export.Format
	query       approvals.DecisionQuery
	store       interface {
		approvals.DecisionLog
		Close() error
	}
}

// ParseFlags reads the export's flags.
func (e *Export) ParseFlags(args []string) error {
	fs := newFlagSet("approvals export", "Usage: approvals export --db FILE [--format csv|json|ndjson] [--status S] [--since T] [--until T] [--out FILE]\n\n"+
		"Exports decisions from a data file while the server is stopped. For a running server use\n"+
		"GET /api/v1/decisions/export. Times are RFC 3339 (2026-11-21T09:00:00Z) or dates (2026-11-21, UTC).\n\n")
	e.storeSource.register(fs, "bbolt data file to read (this or --database-url)",
		"PostgreSQL URL to read from instead of a data file (the servers may keep running)")
	format := fs.String("format", "csv", "csv, json or ndjson")
	status := fs.String("status", "", "approved or denied (default: both)")
	since := fs.String("since", "", "decisions at or after this time")
	until := fs.String("until", "", "decisions before this time")
	fs.StringVar(&e.out, "out", "", "write to this file instead of standard output")
	if err := parseFlags(fs, args, e.Stdout); err != nil {
		return err
	}
	if (e.db == "") == (e.dbURL == "") {
		return errors.New("give one of --db (the data file) or --database-url (PostgreSQL) to export from")
	}
	var err error
	if e.format, err = export.ParseFormat(*format); err != nil {
		return errors.New(approvals.Message(err))
	}
	switch s := approvals.Status(*status); s {
	case "", approvals.StatusApproved, approvals.StatusDenied:
		e.query.Status = s
	default:
		return fmt.Errorf("--status %q: use approved or denied", *status)
	}
	if e.query.Since, err = parseTime("--since", *since); err != nil {
		return err
	}
	if e.query.Until, err = parseTime("--until", *until); err != nil {
		return err
	}
	if !e.query.Since.IsZero() && !e.query.Until.IsZero() && !e.query.Until.After(e.query.Since) {
		return errors.New("--until must be after --since")
	}
	return nil
}

// parseTime reads an RFC 3339 time or a date (midnight UTC); empty is the
// zero time.
func parseTime(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, fmt.Errorf("%s %q: use RFC 3339 (2026-11-21T09:00:00Z) or a date (2026-11-21)", name, v)
}

// Run writes the export. With --out it writes a temporary file beside the
// target and renames it at the end, so a failed export leaves no partial
// file behind.
func (e *Export) Run(ctx context.Context) error {
	var err error
	if e.dbURL != "" {
		// PostgreSQL serves many readers: no need to stop the servers.
		if e.store, err = postgres.Open(ctx, e.dbURL, postgres.Options{}); err != nil {
			e.store = nil
			return err
		}
	} else {
		s, err := e.openFile("stop it first, or export over HTTP: GET /api/v1/decisions/export")
		if err != nil {
			return err
		}
		e.store = s
	}
	w := e.Stdout
	var tmp *os.File
	if e.out != "" {
		tmp, err = os.CreateTemp(filepath.Dir(e.out), "."+filepath.Base(e.out)+".*")
		if err != nil {
			return err
		}
		defer os.Remove(tmp.Name())
		defer tmp.Close()
		w = tmp
	}
	progress := e.progress()
	start := time.Now()
	n, err := export.Decisions(ctx, w, e.store, e.query, e.format, progress)
	if progress != nil {
		fmt.Fprintf(e.Stderr, "\rexported %d decisions in %s\n", n, time.Since(start).Round(time.Millisecond))
	}
	if err != nil {
		return err
	}
	if tmp != nil {
		if err := tmp.Sync(); err != nil {
			return err
		}
		if err := tmp.Close(); err != nil {
			return err
		}
		if err := os.Rename(tmp.Name(), e.out); err != nil {
			return err
		}
	}
	return nil
}

// progress returns a callback that redraws a count on stderr at most ten
// times a second, or nil when stderr is not a terminal.
func (e *Export) progress() func(int) {
	show := false
	if e.Progress != nil {
		show = *e.Progress
	} else if f, ok := e.Stderr.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			show = true
		}
	}
	if !show {
		return nil
	}
	var last time.Time
	return func(n int) {
		if now := time.Now(); now.Sub(last) >= 100*time.Millisecond {
			last = now
			fmt.Fprintf(e.Stderr, "\rexporting... %d decisions", n)
		}
	}
}

// Close closes the data file.
func (e *Export) Close() error {
	if e.store == nil {
		return nil
	}
	return e.store.Close()
}
