package storetest

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// byCreation orders requests as an oldest-first listing does.
func byCreation(a, b *approvals.Request) int {
	return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), strings.Compare(a.ID, b.ID))
}

// expectedList returns the ids a full listing of rs must show.
func expectedList(rs []*approvals.Request, status approvals.Status, order approvals.Order) []string {
	var out []*approvals.Request
	for _, r := range rs {
		if status == "" || r.Status == status {
			out = append(out, r)
		}
	}
	slices.SortFunc(out, byCreation)
	if order != approvals.OldestFirst {
		slices.Reverse(out)
	}
	return ids(out)
}

// listAll pages through a listing and returns every page's ids, as
// listPages checks them.
func listAll(t *testing.T, s approvals.Store, q approvals.ListQuery, pageSize int) [][]string {
	t.Helper()
	var pages [][]string
	listPages(t, s, q, pageSize, func(p approvals.Page) { pages = append(pages, ids(p.Requests)) })
	return pages
}

// listPages pages through a listing, calling each with every page. It
// fails the test when a page is larger than the limit, when a page other
// than the last is short, or when the last page has a cursor.
func listPages(t *testing.T, s approvals.Store, q approvals.ListQuery, pageSize int, each func(approvals.Page)) {
	t.Helper()
	for n := 1; ; n++ {
		p, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatalf("List(%+v) = %v", q, err)
		}
		if len(p.Requests) > pageSize {
			t.Fatalf("List(%+v) returned %d requests; the page size is %d", q, len(p.Requests), pageSize)
		}
		each(p)
		if p.NextCursor == "" {
			return
		}
		if len(p.Requests) != pageSize {
			t.Fatalf("List(%+v) returned a short page of %d with a cursor; want %d", q, len(p.Requests), pageSize)
		}
		if n > 10000 {
			t.Fatalf("List(%+v) never ends", q)
		}
		q.Cursor = p.NextCursor
	}
}

func testListPaging(t *testing.T, s approvals.Store, c *Clock) {
	var all []*approvals.Request
	for i := range 37 {
		at := base.Add(time.Duration(i) * time.Minute)
		if i >= 10 && i < 14 {
			at = base.Add(10 * time.Minute) // equal creation times order by id
		}
		if i == 20 {
			at = base.Add(-time.Hour) // created out of order: sorts first
		}
		r := create(t, s, person(i, at))
		switch i % 3 {
		case 1:
			r = update(t, s, r.ID, approve(c.Now()))
		case 2:
			r = update(t, s, r.ID, deny(c.Now(), "spam"))
		}
		all = append(all, r)
	}
	for _, status := range []approvals.Status{"", approvals.StatusPending, approvals.StatusApproved, approvals.StatusDenied} {
		for _, order := range []approvals.Order{"", approvals.NewestFirst, approvals.OldestFirst} {
			want := expectedList(all, status, order)
			for _, limit := range []int{1, 5, 12, 13, 36, 37, 38, 0} {
				name := fmt.Sprintf("status=%s/order=%s/limit=%d", status, order, limit)
				t.Run(name, func(t *testing.T) {
					pageSize := limit
					if limit == 0 {
						pageSize = approvals.DefaultPageSize
					}
					pages := listAll(t, s, approvals.ListQuery{Status: status, Order: order, Limit: limit}, pageSize)
					got := slices.Concat(pages...)
					if !slices.Equal(got, want) {
						t.Errorf("listing = %v\nwant %v", got, want)
					}
					if wantPages := max(1, (len(want)+pageSize-1)/pageSize); len(pages) != wantPages {
						t.Errorf("listing took %d pages; want %d", len(pages), wantPages)
					}
				})
			}
		}
	}
	t.Run("ContentsMatchGet", func(t *testing.T) {
		p, err := s.List(context.Background(), approvals.ListQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range p.Requests {
			got, _ := s.Get(context.Background(), r.ID)
			checkSame(t, "listed request", r, got)
		}
	})
}

func testListLimits(t *testing.T, s approvals.Store, c *Clock) {
	n := approvals.MaxPageSize + 20
	createMany(t, s, 0, n, c)
	tests := []struct {
		limit, want int
	}{
		{0, approvals.DefaultPageSize},
		{-1, approvals.DefaultPageSize},
		{1, 1},
		{approvals.MaxPageSize, approvals.MaxPageSize},
		{approvals.MaxPageSize + 1, approvals.MaxPageSize},
		{1 << 30, approvals.MaxPageSize},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint(tt.limit), func(t *testing.T) {
			p, err := s.List(context.Background(), approvals.ListQuery{Limit: tt.limit})
			if err != nil {
				t.Fatal(err)
			}
			if len(p.Requests) != tt.want || p.NextCursor == "" {
				t.Errorf("List(limit %d) = %d requests, cursor %q; want %d and a cursor", tt.limit, len(p.Requests), p.NextCursor, tt.want)
			}
		})
	}
}

// createMany creates people first..first+n-1, a second apart from the
// clock's time, from a few goroutines, and returns them.
func createMany(t *testing.T, s approvals.Store, first, n int, c *Clock) []*approvals.Request {
	t.Helper()
	start := c.Advance(time.Second)
	out := make([]*approvals.Request, n)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += workers {
				r := person(first+i, start.Add(time.Duration(i)*time.Second))
				got, created, err := s.Create(context.Background(), r, received(r.CreatedAt))
				if err != nil || !created {
					errs <- fmt.Errorf("Create(%s) = created %v, %v", r.Email, created, err)
					continue
				}
				out[i] = got
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	c.Advance(time.Duration(n) * time.Second)
	return out
}

func testListBadQueries(t *testing.T, s approvals.Store, c *Clock) {
	createMany(t, s, 0, 3, c)
	tests := []struct {
		name string
		q    approvals.ListQuery
	}{
		{"UnknownStatus", approvals.ListQuery{Status: "maybe"}},
		{"UnknownOrder", approvals.ListQuery{Order: "sideways"}},
		{"CursorNotBase64", approvals.ListQuery{Cursor: "%%% not a cursor %%%"}},
		{"CursorTooShort", approvals.ListQuery{Cursor: "AA"}},
		{"CursorGarbage", approvals.ListQuery{Cursor: "bm90IGEgY3Vyc29y"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := s.List(context.Background(), tt.q)
			checkCode(t, "List", err, approvals.EInvalid)
			if len(p.Requests) != 0 {
				t.Errorf("List with a bad query returned %d requests", len(p.Requests))
			}
		})
	}
}

func testListStableUnderInserts(t *testing.T, s approvals.Store, c *Clock) {
	const before, during, pageSize = 120, 60, 7
	old := createMany(t, s, 0, before, c)
	next := 1000 // the first person each subtest creates
	for _, status := range []approvals.Status{"", approvals.StatusPending} {
		for _, order := range []approvals.Order{approvals.NewestFirst, approvals.OldestFirst} {
			first := next
			next += during
			t.Run(fmt.Sprintf("status=%s/order=%s", status, order), func(t *testing.T) {
				done := make(chan struct{})
				go func() {
					defer close(done)
					for i := range during {
						r := person(first+i, c.Advance(time.Second))
						if _, _, err := s.Create(context.Background(), r, received(r.CreatedAt)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
				var got []*approvals.Request
				listPages(t, s, approvals.ListQuery{Status: status, Order: order, Limit: pageSize}, pageSize, func(p approvals.Page) {
					got = append(got, p.Requests...)
					time.Sleep(time.Millisecond) // let inserts land between pages
				})
				<-done
				seen := map[string]bool{}
				for i, r := range got {
					if seen[r.ID] {
						t.Fatalf("request %s listed twice", r.ID)
					}
					seen[r.ID] = true
					if i > 0 {
						c := byCreation(got[i-1], r)
						if (order == approvals.OldestFirst && c >= 0) || (order == approvals.NewestFirst && c <= 0) {
							t.Fatalf("listing out of order at %d: %s then %s", i, got[i-1].ID, r.ID)
						}
					}
				}
				for _, r := range old {
					if !seen[r.ID] {
						t.Errorf("request %s created before paging was never listed", r.ID)
					}
				}
			})
		}
	}
}

func testCount(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	counts := func(p, a, d int) map[approvals.Status]int {
		return map[approvals.Status]int{approvals.StatusPending: p, approvals.StatusApproved: a, approvals.StatusDenied: d}
	}
	var rs []*approvals.Request
	steps := []struct {
		name string
		do   func()
		want map[approvals.Status]int
	}{
		{"Empty", func() {}, counts(0, 0, 0)},
		{"Created", func() { rs = createMany(t, s, 0, 6, c) }, counts(6, 0, 0)},
		{"Approved", func() { update(t, s, rs[0].ID, approve(c.Now())); update(t, s, rs[1].ID, approve(c.Now())) }, counts(4, 2, 0)},
		{"Denied", func() { update(t, s, rs[2].ID, deny(c.Now(), "spam")) }, counts(3, 2, 1)},
		{"RepeatedDecision", func() { _, _ = s.Update(ctx, rs[2].ID, deny(c.Now(), "again")) }, counts(3, 2, 1)},
		{"Reopened", func() { update(t, s, rs[2].ID, reopen(c.Now())) }, counts(4, 2, 0)},
		{"FailedMutation", func() { _, _ = s.Update(ctx, rs[0].ID, deny(c.Now(), "no")) }, counts(4, 2, 0)},
		{"Provisioned", func() { update(t, s, rs[0].ID, fail(c.Now())) }, counts(4, 2, 0)},
		{"DuplicateCreate", func() { _, _, _ = s.Create(ctx, person(3, c.Now()), nil) }, counts(4, 2, 0)},
		{"AutoDeniedCreate", func() {
			r := person(50, c.Now())
			r.Status = approvals.StatusDenied
			r.Decision = &approvals.Decision{By: "policy:x", At: c.Now(), Automatic: true}
			create(t, s, r)
		}, counts(4, 2, 1)},
	}
	for _, st := range steps {
		st.do()
		got, err := s.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if !sameJSON(got, st.want) {
			t.Errorf("%s: Count = %v; want %v", st.name, got, st.want)
		}
	}
}
