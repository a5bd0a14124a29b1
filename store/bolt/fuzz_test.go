package bolt

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// FuzzQueries feeds the query parameters a caller of the admin API
// controls (the listing's cursor, status and order, the audit trail's
// request id, cursor and since) to a store of 40 requests. A query either
// fails with code invalid or returns a well-formed page: never an internal
// error or a panic, requests in the promised order and status, at most
// the page size, and a next cursor that works.
func FuzzQueries(f *testing.F) {
	s := open(f, filepath.Join(f.TempDir(), "fuzz.db"), Options{})
	f.Cleanup(func() { _ = s.Close() })
	ctx := context.Background()
	base := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	var ids []string
	for i := range 40 {
		now := base.Add(time.Duration(i) * time.Minute)
		r := &approvals.Request{Email: fmt.Sprintf("p%d@example.com", i), Status: approvals.StatusPending, CreatedAt: now}
		r, _, err := s.Create(ctx, r, []approvals.Event{{At: now, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}})
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, r.ID)
		if i%3 == 0 {
			if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Deny(approvals.Actor{Kind: approvals.ActorAPIKey, ID: "fuzz"}, "no", now)
				return []approvals.Event{ev}, err
			}); err != nil {
				f.Fatal(err)
			}
		}
	}
	first, err := s.List(ctx, approvals.ListQuery{Limit: 7})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(first.NextCursor, "", "", 7, ids[3], uint64(0), int64(0))
	f.Add(first.NextCursor, "pending", "oldest", 3, "", uint64(5), base.UnixNano())
	f.Add("AQ", "denied", "newest", 0, "x", uint64(1<<63), int64(-1))
	f.Add("AQAAAAAAAAAAAA", "approved", "sideways", -1, string(make([]byte, 300)), uint64(2), int64(1))
	f.Add("////////////////", "", "", 1000, "\xff", uint64(40), base.Add(time.Hour).UnixNano())
	f.Fuzz(func(t *testing.T, cursor, status, order string, limit int, requestID string, afterSeq uint64, since int64) {
		q := approvals.ListQuery{Status: approvals.Status(status), Order: approvals.Order(order), Limit: limit, Cursor: cursor}
		page, err := s.List(ctx, q)
		if err != nil {
			if approvals.Code(err) != approvals.EInvalid {
				t.Fatalf("List(%+v): %v (code %s)", q, err, approvals.Code(err))
			}
		} else {
			checkPage(t, q, page)
			if page.NextCursor != "" {
				q.Cursor = page.NextCursor
				next, err := s.List(ctx, q)
				if err != nil {
					t.Fatalf("List with the next cursor %q: %v", page.NextCursor, err)
				}
				checkPage(t, q, next)
				if len(next.Requests) > 0 && page.Requests[len(page.Requests)-1].ID == next.Requests[0].ID {
					t.Fatalf("the next page repeats %s", next.Requests[0].ID)
				}
			}
		}
		aq := approvals.AuditQuery{RequestID: requestID, AfterSeq: afterSeq, Since: time.Unix(0, since).UTC(), Limit: limit}
		evs, next, err := s.Audit(ctx, aq)
		if err != nil {
			if approvals.Code(err) != approvals.EInvalid {
				t.Fatalf("Audit(%+v): %v (code %s)", aq, err, approvals.Code(err))
			}
			return
		}
		for i, ev := range evs {
			if ev.Seq <= afterSeq || (i > 0 && ev.Seq <= evs[i-1].Seq) || (requestID != "" && ev.RequestID != requestID) || ev.At.Before(aq.Since) {
				t.Fatalf("Audit(%+v) returned %+v", aq, ev)
			}
		}
		if next != 0 && (len(evs) == 0 || next != evs[len(evs)-1].Seq) {
			t.Fatalf("Audit(%+v): cursor %d after %d events", aq, next, len(evs))
		}
	})
}

// checkPage checks a page of List against its query.
func checkPage(t *testing.T, q approvals.ListQuery, p approvals.Page) {
	t.Helper()
	limit := q.Limit
	switch {
	case limit <= 0:
		limit = approvals.DefaultPageSize
	case limit > approvals.MaxPageSize:
		limit = approvals.MaxPageSize
	}
	if len(p.Requests) > limit {
		t.Fatalf("List(%+v): %d requests, limit %d", q, len(p.Requests), limit)
	}
	for i, r := range p.Requests {
		if q.Status != "" && r.Status != q.Status {
			t.Fatalf("List(%+v): a %s request", q, r.Status)
		}
		if i == 0 {
			continue
		}
		prev := p.Requests[i-1]
		if q.Order == approvals.OldestFirst && !prev.CreatedAt.Before(r.CreatedAt) ||
			q.Order != approvals.OldestFirst && !prev.CreatedAt.After(r.CreatedAt) {
			t.Fatalf("List(%+v): out of order: %s then %s", q, prev.CreatedAt, r.CreatedAt)
		}
	}
}
