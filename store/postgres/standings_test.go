package postgres_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// TestFindStandingConcurrent runs many look-ups at once, so that they share
// queries, while requests are created and decided: each answer must be the
// one a query of its own would give. A person created before the look-up
// began is found with a status it has had (read your writes); a person
// never created is not found; the same person asked twice at once gets
// the same request.
func TestFindStandingConcurrent(t *testing.T) {
	rs := replicas(t, 2)
	ctx := context.Background()
	const people = 200
	key := func(i int) string {
		return approvals.PersonKeyIn(approvals.SourceSignUp, fmt.Sprintf("p%d@example.com", i), nil)
	}
	ids := make([]string, people)
	var mu sync.Mutex
	created := make([]bool, people)
	var wg sync.WaitGroup
	wg.Go(func() { // the writer: creates everyone in turn, approves every third
		for i := range people {
			r, _, err := rs[0].Create(ctx, signUp(i), received(t0))
			if err != nil {
				t.Error(err)
				return
			}
			if i%3 == 0 {
				if _, err := rs[0].Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
					ev, err := r.Approve(approvals.Actor{ID: "rev", Admin: true}, "", t0, 0)
					return []approvals.Event{ev}, err
				}); err != nil {
					t.Error(err)
					return
				}
			}
			mu.Lock()
			ids[i], created[i] = r.ID, true
			mu.Unlock()
		}
	})
	for w := range 32 {
		wg.Go(func() {
			for n := range 300 {
				i := (w*7919 + n*104729) % (people + people/4) // a fifth never exist
				mu.Lock()
				was, id := i < people && created[i], ""
				if was {
					id = ids[i]
				}
				mu.Unlock()
				st, err := rs[w%2].FindStanding(ctx, key(i))
				switch {
				case i >= people:
					if err != approvals.ErrNotFound {
						t.Errorf("person %d never created: %+v, %v; want not found", i, st, err)
					}
				case was && err != nil:
					t.Errorf("person %d created before the look-up: %v", i, err)
				case err == nil && (st.ID == "" || was && st.ID != id):
					t.Errorf("person %d: standing %+v; want request %s", i, st, id)
				case err == nil && st.Status != approvals.StatusPending && !(st.Status == approvals.StatusApproved && i%3 == 0):
					t.Errorf("person %d: status %s, which it never had", i, st.Status)
				case err != nil && err != approvals.ErrNotFound:
					t.Errorf("person %d: %v", i, err)
				}
				if t.Failed() {
					return
				}
			}
		})
	}
	wg.Wait()
	// A cancelled caller gives up at once; the others' answers are not
	// affected.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := rs[1].FindStanding(cctx, key(1)); err == nil {
		t.Errorf("FindStanding with a cancelled context: %v", err)
	}
	if st, err := rs[1].FindStanding(ctx, key(1)); err != nil || st.ID != ids[1] {
		t.Errorf("FindStanding after a cancelled call: %+v, %v", st, err)
	}
}
