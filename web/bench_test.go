package web_test

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/web"
)

// bigStore pretends to hold a million requests: it answers every listing
// with one page and the counts of a million, so that the benchmark measures
// what the UI adds to the store's own cost of one page.
type bigStore struct {
	approvals.Store
	page []*approvals.Request
}

func (s *bigStore) List(_ context.Context, q approvals.ListQuery) (approvals.Page, error) {
	n := min(max(q.Limit, 1), len(s.page))
	return approvals.Page{Requests: s.page[:n], NextCursor: "next"}, nil
}

func (s *bigStore) Count(context.Context) (map[approvals.Status]int, error) {
	return map[approvals.Status]int{approvals.StatusPending: 250_000, approvals.StatusApproved: 700_000, approvals.StatusDenied: 50_000}, nil
}

func BenchmarkQueuePage(b *testing.B) {
	big := &bigStore{}
	e := newEnv(b, func(c *web.Config) { c.Store = big })
	big.Store = e.store
	for i := range approvals.MaxPageSize {
		big.page = append(big.page, &approvals.Request{ID: fmt.Sprintf("%024x", i), Email: fmt.Sprintf("user%d@example.com", i), DisplayName: fmt.Sprintf("User %d", i),
			Status: approvals.StatusPending, CreatedAt: t0.Add(-time.Duration(i) * time.Minute), Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "x"}})
	}
	br, _ := e.login("rob")
	for _, path := range []string{"/", "/?status=all", "/?q=user+4"} {
		b.Run(path, func(b *testing.B) {
			for b.Loop() {
				if p := br.get(path); p.resp.StatusCode != http.StatusOK {
					b.Fatalf("status %d", p.resp.StatusCode)
				}
			}
		})
	}
}
