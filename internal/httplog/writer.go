package httplog

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The per-request line is the only log line a busy server writes many of:
// written one write(2) each, to a pipe as in a container, it costs about
// as much as the rest of a connector call (the write, and waking the
// process that reads the pipe for every line). A Writer batches those
// lines and writes every other line at once, so warnings and errors are
// never late and the order of lines is kept.

// Buffering limits of a Writer.
const (
	// DefaultFlushInterval is how long a request line may wait in the
	// buffer at most.
	DefaultFlushInterval = 100 * time.Millisecond
	// flushSize wakes the flusher early: a pipe holds 64 KiB.
	flushSize = 32 << 10
	// maxPending makes writers wait for the write instead of buffering
	// more, when the reader of the log does not keep up.
	maxPending = 1 << 20
)

// Writer is the log writer of the server: Write writes through at once,
// after the lines buffered so far; lines given to Deferred are buffered
// and written by a goroutine of the Writer every flush interval, or sooner
// when 32 KiB are waiting. Close writes what is buffered and stops the
// goroutine; writes after Close go straight through, so no line is lost
// on a clean shutdown. A line only waits in memory for the flush
// interval: a process killed outright (SIGKILL, a crash) loses at most
// that much of request lines, never a warning or an error. Writer is safe
// for concurrent use.
type Writer struct {
	out io.Writer

	// wmu is held while writing to out: it keeps the order of lines.
	wmu sync.Mutex

	mu      sync.Mutex // guards the fields below
	pending []byte
	spare   []byte
	closed  bool
	err     error // the first error of a write done by the flusher

	kick chan struct{}
	stop chan struct{}
	done chan struct{}
}

// NewWriter returns a Writer over out that flushes deferred lines every
// interval (DefaultFlushInterval when zero or less).
func NewWriter(out io.Writer, interval time.Duration) *Writer {
	if interval <= 0 {
		interval = DefaultFlushInterval
	}
	w := &Writer{out: out, kick: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go w.flusher(interval)
	return w
}

func (w *Writer) flusher(interval time.Duration) {
	defer close(w.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
		case <-w.kick:
		}
		if err := w.Flush(); err != nil {
			w.mu.Lock()
			if w.err == nil {
				w.err = err
			}
			w.mu.Unlock()
		}
	}
}

// Write writes the buffered lines and then p, in one write to the
// underlying writer.
func (w *Writer) Write(p []byte) (int, error) {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	buf := w.takeLocked()
	w.mu.Unlock()
	var err error
	if len(buf) == 0 {
		_, err = w.out.Write(p)
	} else {
		buf = append(buf, p...)
		_, err = w.out.Write(buf)
		w.recycle(buf)
	}
	if err != nil {
		return 0, err
	}
	return len(p), nil
}

// Flush writes the buffered lines now.
func (w *Writer) Flush() error {
	w.wmu.Lock()
	defer w.wmu.Unlock()
	w.mu.Lock()
	buf := w.takeLocked()
	w.mu.Unlock()
	if len(buf) == 0 {
		return nil
	}
	_, err := w.out.Write(buf)
	w.recycle(buf)
	return err
}

// takeLocked returns the buffered lines and leaves the buffer empty; w.mu
// held. The caller holds w.wmu, so only one taken buffer is out at once.
func (w *Writer) takeLocked() []byte {
	if len(w.pending) == 0 {
		return nil
	}
	buf := w.pending
	w.pending, w.spare = w.spare[:0], nil
	return buf
}

// recycle keeps buf as the next spare buffer unless it grew large.
func (w *Writer) recycle(buf []byte) {
	if cap(buf) > 4*flushSize {
		return
	}
	w.mu.Lock()
	w.spare = buf[:0]
	w.mu.Unlock()
}

// deferred appends p to the buffer (or writes it through once the Writer
// is closed).
func (w *Writer) deferred(p []byte) (int, error) {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.Write(p)
	}
	w.pending = append(w.pending, p...)
	n := len(w.pending)
	w.mu.Unlock()
	if n >= flushSize {
		select {
		case w.kick <- struct{}{}:
		default:
		}
	}
	if n >= maxPending {
		// The reader of the log is behind: wait for it, as an
		// unbuffered writer would.
		if err := w.Flush(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// Deferred returns the writer of lines that may wait: what is written to
// it is buffered.
func (w *Writer) Deferred() io.Writer { return deferredWriter{w} }

type deferredWriter struct{ w *Writer }

func (d deferredWriter) Write(p []byte) (int, error) { return d.w.deferred(p) }

// Close writes the buffered lines and stops the flusher; later writes go
// straight through. It returns the first error a write met, if any. It is
// safe to call more than once.
func (w *Writer) Close() error {
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return nil
	}
	w.closed = true
	w.mu.Unlock()
	close(w.stop)
	<-w.done
	err := w.Flush()
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	return err
}

// NewLogger returns the server's logger: JSON lines at level and above on
// w. The one line Middleware logs per request at info level (or below) is
// buffered by w; every other line, and any request line at warning level
// or above, is written at once (after the buffered ones). The caller
// closes w when it is done logging.
//
// String values with control or text-direction characters
// (approvals.UnsafeRune) have them replaced by U+FFFD: encoding/json
// escapes C0 controls but leaves C1 and bidirectional controls raw, and a
// log read in a terminal must not be rewritten by what a caller sent.
func NewLogger(w *Writer, level slog.Leveler) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level, ReplaceAttr: cleanAttr}
	return slog.New(&routeHandler{
		now:   slog.NewJSONHandler(w, opts),
		later: slog.NewJSONHandler(w.Deferred(), opts),
	})
}

// routeHandler sends the request lines Middleware marks as deferrable to
// later, and every other record to now.
type routeHandler struct {
	now, later slog.Handler
}

type deferKey struct{}

// deferrable marks ctx as the context of a request line that may wait in
// a Writer's buffer.
func deferrable(ctx context.Context) context.Context {
	return context.WithValue(ctx, deferKey{}, true)
}

func (h *routeHandler) Enabled(ctx context.Context, level slog.Level) bool {
	return h.now.Enabled(ctx, level)
}

func (h *routeHandler) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < slog.LevelWarn && ctx.Value(deferKey{}) != nil {
		return h.later.Handle(ctx, r)
	}
	return h.now.Handle(ctx, r)
}

func (h *routeHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return &routeHandler{now: h.now.WithAttrs(attrs), later: h.later.WithAttrs(attrs)}
}

func (h *routeHandler) WithGroup(name string) slog.Handler {
	return &routeHandler{now: h.now.WithGroup(name), later: h.later.WithGroup(name)}
}

// cleanAttr replaces the control and text-direction characters of a
// string value (NewLogger).
func cleanAttr(_ []string, a slog.Attr) slog.Attr {
	if a.Value.Kind() == slog.KindString {
		s := a.Value.String()
		if clean := approvals.ReplaceUnsafe(s, nil); clean != s {
			a.Value = slog.StringValue(clean)
		}
	}
	return a
}
