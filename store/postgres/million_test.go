package postgres_test

import (
	"context"
	"flag"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/store/postgres"
)

var million = flag.Int("pg.requests", 0, "TestFirstPages: requests to load with COPY before timing the first pages (docs/BENCHMARKS.md: 1000000)")

// TestFirstPages loads -pg.requests requests (COPY, in batches) and times
// the first page of the queue (pending, oldest first) and of the API
// listing (every status, newest first), and a page deep in, by cursor:
// each is one index range scan of the keyset, whatever the row count.
func TestFirstPages(t *testing.T) {
	if *million <= 0 {
		t.Skip("set -pg.requests=1000000 to run")
	}
	s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	start := time.Now()
	const batch = 5000
	rs := make([]*approvals.Request, 0, batch)
	for i := range *million {
		r := &approvals.Request{ID: fmt.Sprintf("%024x", i), Source: approvals.SourceSignUp, Email: fmt.Sprintf("p%d@example.com", i),
			DisplayName: fmt.Sprintf("Person %d", i), Claims: map[string]any{"city": "Leeds", "extension_0123_Role": "supplier"},
			CreatedAt: t0.Add(time.Duration(i) * time.Second), UpdatedAt: t0.Add(time.Duration(i) * time.Second), Version: 1,
			Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}}
		switch i % 10 {
		case 0, 1, 2:
			r.Status = approvals.StatusPending
		case 3:
			r.Status = approvals.StatusDenied
			r.Decision = &approvals.Decision{By: "Ada", At: r.CreatedAt.Add(time.Hour)}
		default:
			r.Status = approvals.StatusApproved
			r.Decision = &approvals.Decision{By: "Ada", At: r.CreatedAt.Add(time.Hour)}
			r.Provisioning.State = approvals.ProvisioningSucceeded
		}
		rs = append(rs, r)
		if len(rs) == batch || i == *million-1 {
			if err := s.ImportRequests(ctx, rs); err != nil {
				t.Fatal(err)
			}
			rs = rs[:0]
		}
	}
	if _, err := s.Pool().Exec(ctx, "ANALYZE requests"); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d requests in %s", *million, time.Since(start).Round(time.Second))
	for _, tt := range []struct {
		name string
		q    approvals.ListQuery
	}{
		{"queue (pending, oldest first, 50)", approvals.ListQuery{Status: approvals.StatusPending, Order: approvals.OldestFirst}},
		{"API (all, newest first, 50)", approvals.ListQuery{}},
		{"API (approved, newest first, 500)", approvals.ListQuery{Status: approvals.StatusApproved, Limit: 500}},
	} {
		var times []time.Duration
		var p approvals.Page
		for range 21 {
			t1 := time.Now()
			p, err = s.List(ctx, tt.q)
			times = append(times, time.Since(t1))
			if err != nil || len(p.Requests) == 0 || p.NextCursor == "" {
				t.Fatalf("%s: %d requests, %v", tt.name, len(p.Requests), err)
			}
		}
		sort.Slice(times, func(i, j int) bool { return times[i] < times[j] })
		deep := tt.q
		deep.Cursor = p.NextCursor
		t1 := time.Now()
		if _, err := s.List(ctx, deep); err != nil {
			t.Fatal(err)
		}
		second := time.Since(t1)
		t.Logf("RESULT first page %s with %d requests: median %s, max %s over 21; next page by cursor %s",
			tt.name, *million, times[10].Round(10*time.Microsecond), times[20].Round(10*time.Microsecond), second.Round(10*time.Microsecond))
		if times[10] > 50*time.Millisecond {
			t.Errorf("%s: median %s; the goal is under 50 ms", tt.name, times[10])
		}
	}
}
