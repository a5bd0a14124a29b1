package storetest

import (
	"context"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// testReopen checks that everything a store answered survives Close and
// reopening its file, and that writes carry on where they stopped.
func testReopen(t *testing.T, open PathOpener) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approvals.db")
	c := NewClock(base)
	rng := rand.New(rand.NewPCG(3, 4))
	m := newModel()

	s := open(t, path, c)
	for range 300 {
		m.step(t, s, rng, c, 150)
	}
	m.verify(t, s, c)
	before := auditOf(t, s, "")
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	for round := range 2 {
		s = open(t, path, c)
		m.verify(t, s, c)
		if round == 0 {
			checkSame(t, "audit after reopening", auditOf(t, s, ""), before)
		}
		last := auditOf(t, s, "")
		for range 100 {
			m.step(t, s, rng, c, 200)
		}
		// Seqs carry on from the stored ones: never reused.
		if err := s.AppendEvents(ctx, []approvals.Event{{At: c.Advance(time.Second), Type: approvals.EventBlockedAtCheck}}); err != nil {
			t.Fatal(err)
		}
		m.events[""]++
		m.total++
		after := auditOf(t, s, "")
		checkSeqs(t, after)
		checkSame(t, "audit before the new writes", after[:len(last)], last)
		m.verify(t, s, c)
		if err := s.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
}
