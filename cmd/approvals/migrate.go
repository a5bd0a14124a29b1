package main

import (
	"context"
	"errors"
	"fmt"
	"io"
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

	storeSource // --db, and the --database-url to copy into
	src         *bolt.Store
	dst         *postgres.Store
	every       int // progress line every this many rows
}

// ParseFlags reads the command's flags.
func (m *Migrate) ParseFlags(args []string) error {
	fs := newFlagSet("approvals migrate", "Usage: approvals migrate --db FILE --database-url URL\n\n"+
		"Copies a stopped server's bbolt data file into an empty PostgreSQL database and verifies\n"+
		"the counts. The URL may instead come from APPROVALS_DATABASE_URL or APPROVALS_DATABASE_URL_FILE.\n\n")
	m.storeSource.register(fs, "bbolt data file to copy (required)", "PostgreSQL URL of the empty database (default APPROVALS_DATABASE_URL)")
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
	m.src, err = m.openFile("stop it first")
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
	q := approvals.ListQuery{Order: approvals.OldestFirst, Limit: approvals.MaxPageSize}
	nReq, err := copyPages(m, "requests", func(cursor string) ([]*approvals.Request, string, error) {
		q.Cursor = cursor
		page, err := m.src.List(ctx, q)
		return page.Requests, page.NextCursor, err
	}, func(rs []*approvals.Request) error { return m.dst.ImportRequests(ctx, rs) })
	if err != nil {
		return err
	}
	// The audit trail with its seqs.
	var lastSeq uint64
	aq := approvals.AuditQuery{Limit: approvals.MaxPageSize}
	nEv, err := copyPages(m, "events", func(after uint64) ([]approvals.Event, uint64, error) {
		aq.AfterSeq = after
		return m.src.Audit(ctx, aq)
	}, func(evs []approvals.Event) error {
		if len(evs) > 0 {
			lastSeq = evs[len(evs)-1].Seq
		}
		return m.dst.ImportEvents(ctx, evs)
	})
	if err != nil {
		return err
	}
	// The outbox, in its listing order.
	dq := approvals.DeliveryQuery{Limit: approvals.MaxPageSize}
	nDel, err := copyPages(m, "", func(after string) ([]*approvals.Delivery, string, error) {
		dq.After = after
		return m.src.ListDeliveries(ctx, dq)
	}, func(ds []*approvals.Delivery) error { return m.dst.ImportDeliveries(ctx, ds) })
	if err != nil {
		return err
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

// copyPages copies one listing page by page: list reads the page at a
// cursor (the zero cursor is the first page) and returns the next cursor,
// zero after the last page; put writes a page. Whenever the count passes a
// multiple of m.every it prints a progress line naming what, unless what
// is empty. It returns how many it copied.
func copyPages[T any, C comparable](m *Migrate, what string, list func(C) ([]T, C, error), put func([]T) error) (int, error) {
	var cursor, end C
	n := 0
	for {
		page, next, err := list(cursor)
		if err != nil {
			return n, err
		}
		if err := put(page); err != nil {
			return n, err
		}
		before := n
		n += len(page)
		if what != "" && n/m.every != before/m.every {
			fmt.Fprintf(m.Stderr, "  %d %s\n", n, what)
		}
		if next == end {
			return n, nil
		}
		cursor = next
	}
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
