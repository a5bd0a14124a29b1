package bolt

import (
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// txID returns the id of the last committed transaction: it grows by one
// per commit.
func txID(t testing.TB, db *bbolt.DB) int {
	t.Helper()
	tx, err := db.Begin(false)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	return tx.ID()
}

// queued starts the writes while a transaction blocks every commit, waits
// until the first write leads and the rest wait in the queue, then lets
// them run and returns their results.
func queued(t *testing.T, g *groupCommit, fns []func(*bbolt.Tx) error) []error {
	t.Helper()
	blocker, err := g.db.Begin(true)
	if err != nil {
		t.Fatal(err)
	}
	results := make([]error, len(fns))
	var wg sync.WaitGroup
	for i, fn := range fns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() {
				if p := recover(); p != nil {
					results[i] = fmt.Errorf("panicked: %v", p)
				}
			}()
			results[i] = g.do(fn)
		}()
		// The first leads, alone; each other one queues before the next
		// starts, so that the queue holds them in the order given (the
		// failure test depends on it).
		waitFor(t, func() bool { c, q := state(g); return c && q == i })
	}
	if err := blocker.Rollback(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	return results
}

// state returns whether a leader is committing and how many writes wait.
func state(g *groupCommit) (committing bool, queued int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.committing, len(g.queue)
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		if cond() {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("condition never held")
		}
		time.Sleep(time.Millisecond)
	}
}

func newGroup(t *testing.T) *groupCommit {
	t.Helper()
	db, err := bbolt.Open(filepath.Join(t.TempDir(), "g.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	return &groupCommit{db: db}
}

func put(key string) func(*bbolt.Tx) error {
	return func(tx *bbolt.Tx) error { return tx.Bucket([]byte("b")).Put([]byte(key), []byte("v")) }
}

func stored(t *testing.T, db *bbolt.DB, key string) bool {
	t.Helper()
	var ok bool
	if err := db.View(func(tx *bbolt.Tx) error {
		ok = tx.Bucket([]byte("b")).Get([]byte(key)) != nil
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return ok
}

func TestGroupCommitShares(t *testing.T) {
	g := newGroup(t)
	const n = 50
	var fns []func(*bbolt.Tx) error
	for i := range n {
		fns = append(fns, put(fmt.Sprint(i)))
	}
	before := txID(t, g.db)
	for i, err := range queued(t, g, fns) {
		if err != nil {
			t.Errorf("write %d = %v", i, err)
		}
	}
	// The leader commits alone; the 49 queued behind it share one commit.
	if commits := txID(t, g.db) - before; commits != 2 {
		t.Errorf("%d writes took %d commits; want 2", n, commits)
	}
	for i := range n {
		if !stored(t, g.db, fmt.Sprint(i)) {
			t.Errorf("write %d was lost", i)
		}
	}
	// A lone write commits at once.
	start := time.Now()
	if err := g.do(put("alone")); err != nil || time.Since(start) > 5*time.Second {
		t.Errorf("lone write = %v after %v", err, time.Since(start))
	}
}

func TestGroupCommitFailures(t *testing.T) {
	g := newGroup(t)
	boom := errors.New("boom")
	var mu sync.Mutex
	runs := map[string]int{}
	counted := func(key string, fn func(*bbolt.Tx) error) func(*bbolt.Tx) error {
		return func(tx *bbolt.Tx) error {
			mu.Lock()
			runs[key]++
			mu.Unlock()
			return fn(tx)
		}
	}
	results := queued(t, g, []func(*bbolt.Tx) error{
		put("leader"),
		counted("a", put("a")),
		counted("fails", func(tx *bbolt.Tx) error {
			if err := put("fails")(tx); err != nil {
				return err
			}
			return boom
		}),
		counted("b", put("b")),
		counted("panics", func(*bbolt.Tx) error { panic("bad write") }),
		counted("c", put("c")),
	})
	want := []string{"", "", "boom", "", "panicked: bad write", ""}
	for i, err := range results {
		got := ""
		if err != nil {
			got = err.Error()
		}
		if got != want[i] {
			t.Errorf("write %d = %q; want %q", i, got, want[i])
		}
	}
	for key, want := range map[string]bool{"leader": true, "a": true, "b": true, "c": true, "fails": false} {
		if got := stored(t, g.db, key); got != want {
			t.Errorf("key %s stored = %v; want %v", key, got, want)
		}
	}
	// The failing writes ran once in the group and once alone; the others
	// ran again after each failure rolled their transaction back.
	if runs["fails"] != 2 || runs["panics"] != 2 || runs["a"] < 2 {
		t.Errorf("runs = %v", runs)
	}
	if c, q := state(g); c || q != 0 {
		t.Errorf("group left committing=%v with %d queued", c, q)
	}
}
