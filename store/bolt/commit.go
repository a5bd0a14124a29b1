package bolt

import (
	"errors"
	"fmt"
	"sync"

	bbolt "go.etcd.io/bbolt"
)

// groupCommit runs concurrent writes in shared read-write transactions, so
// that one fsync makes many writes durable. It clocks itself instead of
// waiting on a timer as bbolt's DB.Batch does: a write that finds no
// commit running commits at once, alone; writes that arrive while a commit
// runs queue up, and the first of them commits the whole queue as soon as
// that commit ends. A lone client thus pays one transaction per write, and
// n clients share one transaction among up to n writes.
//
// Like DB.Batch, when one function of a shared transaction fails, the
// transaction rolls back, the failing function is run again alone by its
// own caller, and the others run again together: a function may run more
// than once.
type groupCommit struct {
	db *bbolt.DB

	mu         sync.Mutex
	queue      []*writeCall
	committing bool // a leader holds the queue
}

// writeCall is one write waiting for its transaction.
type writeCall struct {
	fn   func(*bbolt.Tx) error
	done chan error // receives errLead, errSolo or the result
}

// maxGroup bounds the writes of one transaction, so that it stays small
// enough to commit quickly.
const maxGroup = 1000

// The signals a waiting write may receive instead of its result.
var (
	errLead = errors.New("lead the next commit")
	errSolo = errors.New("run alone")
)

func (g *groupCommit) do(fn func(*bbolt.Tx) error) error {
	call := &writeCall{fn: fn, done: make(chan error, 1)}
	g.mu.Lock()
	g.queue = append(g.queue, call)
	if g.committing {
		g.mu.Unlock()
		err := <-call.done
		if err != errLead {
			return g.result(call, err)
		}
		g.mu.Lock() // the previous leader handed over: committing stays true
	}
	g.committing = true
	n := min(len(g.queue), maxGroup)
	group := g.queue[:n:n]
	g.queue = g.queue[n:]
	g.mu.Unlock()

	g.commit(group)

	g.mu.Lock()
	if len(g.queue) > 0 {
		g.queue[0].done <- errLead
	} else {
		g.committing = false
	}
	g.mu.Unlock()
	return g.result(call, <-call.done)
}

// result is what do returns for call once its transaction is over.
func (g *groupCommit) result(call *writeCall, err error) error {
	if err == errSolo {
		return g.db.Update(call.fn)
	}
	return err
}

// commit runs the group in one transaction and hands each write its result.
func (g *groupCommit) commit(group []*writeCall) {
	for len(group) > 0 {
		failed := -1
		err := g.db.Update(func(tx *bbolt.Tx) error {
			for i, call := range group {
				if err := safeCall(call.fn, tx); err != nil {
					failed = i
					return err
				}
			}
			return nil
		})
		if failed < 0 {
			for _, call := range group {
				call.done <- err
			}
			return
		}
		group[failed].done <- errSolo
		group = append(group[:failed:failed], group[failed+1:]...)
	}
}

// safeCall runs fn, turning a panic into an error: the write is then run
// alone, in its caller's goroutine, where the panic happens again.
func safeCall(fn func(*bbolt.Tx) error, tx *bbolt.Tx) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	return fn(tx)
}
