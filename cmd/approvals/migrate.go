package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/store/postgres"
)

// Migrate is `approvals migrate`: it copies the bbolt data file of a
// stopped server into an empty PostgreSQL database (requests with their
// provisioning state, the audit trail with its seqs, sessions and cookie
// keys), then verifies the counts.
type Migrate struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	db, dbURL string
	lockWait  time.Duration
	src       *bolt.Store
	dst       *postgres.Store
	every     int // progress line every this many rows
}

// ParseFlags reads the command's flags.
func (m *Migrate) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("approvals migrate", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: approvals migrate --db FILE --database-url URL\n\n"+
			"Copies a stopped server's bbolt data file into an empty PostgreSQL database and verifies\n"+
			"the counts. The URL may instead come from APPROVALS_DATABASE_URL or APPROVALS_DATABASE_URL_FILE.\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&m.db, "db", "", "bbolt data file to copy (required)")
	fs.StringVar(&m.dbURL, "database-url", "", "PostgreSQL URL of the empty database (default APPROVALS_DATABASE_URL)")
	fs.DurationVar(&m.lockWait, "lock-timeout", 2*time.Second, "how long to wait for a data file another process holds")
	if err := parseFlags(fs, args, m.Stdout); err != nil {
		return err
	}
	if m.db == "" {
		return errors.New("--db is required: name the data file to copy")
	}
	if m.dbURL == "" && m.Getenv != nil {
		v, _, err := lookupSetting(m.Getenv, settingByEnv("APPROVALS_DATABASE_URL"))
		if err != nil {
			return err
		}
		m.dbURL = v
	}
	if m.dbURL == "" {
		return errors.New("--database-url is required (or APPROVALS_DATABASE_URL): name the PostgreSQL database to copy into")
	}
	if m.every == 0 {
		m.every = 10000
	}
	return nil
}

func settingByEnv(env string) setting {
	for _, s := range settings {
		if s.env == env {
			return s
		}
	}
	panic("no setting " + env)
}

// Run copies and verifies.
func (m *Migrate) Run(ctx context.Context) (err error) {
	if _, err := os.Stat(m.db); err != nil {
		return fmt.Errorf("data file %s: %w", m.db, errors.Unwrap(err))
	}
	m.src, err = bolt.Open(m.db, bolt.Options{ReadOnly: true, Timeout: m.lockWait})
	if errors.Is(err, bolt.ErrLocked) {
		return fmt.Errorf("the data file %s is in use by a running server; stop it first", m.db)
	}
	if err != nil {
		return err
	}
	m.dst, err = postgres.Open(ctx, m.dbURL, postgres.Options{})
	if err != nil {
		return err
	}
	empty, err := m.dst.Empty(ctx)
	if err != nil {
		return err
	}
	if !empty {
		return fmt.Errorf("the database %s is not empty: migrate copies into an empty database only", postgres.Redact(m.dbURL))
	}
	start := time.Now()
	fmt.Fprintf(m.Stderr, "copying %s into %s\n", m.db, postgres.Redact(m.dbURL))

	// Requests, oldest first, a page at a time.
	nReq := 0
	q := approvals.ListQuery{Order: approvals.OldestFirst, Limit: approvals.MaxPageSize}
	for {
		page, err := m.src.List(ctx, q)
		if err != nil {
			return err
		}
		if err := m.dst.ImportRequests(ctx, page.Requests); err != nil {
			return err
		}
		before := nReq
		nReq += len(page.Requests)
		if nReq/m.every != before/m.every {
			fmt.Fprintf(m.Stderr, "  %d requests\n", nReq)
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	// The audit trail with its seqs.
	nEv := 0
	var lastSeq uint64
	aq := approvals.AuditQuery{Limit: approvals.MaxPageSize}
	for {
		evs, next, err := m.src.Audit(ctx, aq)
		if err != nil {
			return err
		}
		if err := m.dst.ImportEvents(ctx, evs); err != nil {
			return err
		}
		before := nEv
		nEv += len(evs)
		if len(evs) > 0 {
			lastSeq = evs[len(evs)-1].Seq
		}
		if nEv/m.every != before/m.every {
			fmt.Fprintf(m.Stderr, "  %d events\n", nEv)
		}
		if next == 0 {
			break
		}
		aq.AfterSeq = next
	}
	// The outbox, in its listing order.
	nDel := 0
	dq := approvals.DeliveryQuery{Limit: approvals.MaxPageSize}
	for {
		ds, next, err := m.src.ListDeliveries(ctx, dq)
		if err != nil {
			return err
		}
		if err := m.dst.ImportDeliveries(ctx, ds); err != nil {
			return err
		}
		nDel += len(ds)
		if next == "" {
			break
		}
		dq.After = next
	}
	sessions, keys, err := m.src.SessionsAndKeys(ctx)
	if err != nil {
		return err
	}
	if err := m.dst.ImportSessions(ctx, sessions); err != nil {
		return err
	}
	if err := m.dst.ImportCookieKeys(ctx, keys); err != nil {
		return err
	}

	// Verify: the same counts per status, events and last seq.
	want, err := m.src.Count(ctx)
	if err != nil {
		return err
	}
	got, err := m.dst.Count(ctx)
	if err != nil {
		return err
	}
	for _, st := range approvals.Statuses {
		if want[st] != got[st] {
			return fmt.Errorf("verification failed: %d %s requests in the file, %d in the database", want[st], st, got[st])
		}
	}
	reqs, events, seq, err := m.dst.Totals(ctx)
	if err != nil {
		return err
	}
	if reqs != nReq || events != nEv || seq != lastSeq {
		return fmt.Errorf("verification failed: copied %d requests and %d events up to seq %d; the database holds %d and %d up to %d", nReq, nEv, lastSeq, reqs, events, seq)
	}
	var copiedDel int
	if err := m.dst.Pool().QueryRow(ctx, "SELECT count(*) FROM deliveries").Scan(&copiedDel); err != nil {
		return fmt.Errorf("count deliveries: %w", err)
	}
	if copiedDel != nDel {
		return fmt.Errorf("verification failed: %d deliveries in the file, %d in the database", nDel, copiedDel)
	}
	fmt.Fprintf(m.Stdout, "copied %d requests (%d pending, %d approved, %d denied), %d audit events (last seq %d), %d outbox deliveries, %d sessions, %d cookie keys in %s; counts verified\n",
		nReq, got[approvals.StatusPending], got[approvals.StatusApproved], got[approvals.StatusDenied], nEv, lastSeq, nDel, len(sessions), len(keys), time.Since(start).Round(time.Millisecond))
	return nil
}

// Close closes both stores.
func (m *Migrate) Close() error {
	var errs []error
	if m.src != nil {
		errs = append(errs, m.src.Close())
	}
	if m.dst != nil {
		errs = append(errs, m.dst.Close())
	}
	return errors.Join(errs...)
}
