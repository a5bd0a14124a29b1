// Package httplog is the HTTP middleware both the server and the benchmark
// tool put in front of their handlers: a request id, panic recovery, and
// one structured log line per request that never carries a body, a query
// string or a header.
package httplog

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/clientip"
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// requestIDs makes request ids: a random prefix, drawn once, and a
// counter, so that ids are unique across restarts and replicas without a
// system call per request.
type requestIDs struct {
	prefix string
	n      atomic.Uint64
}

func newRequestIDs() *requestIDs {
	var b [6]byte
	_, _ = rand.Read(b[:])
	return &requestIDs{prefix: hex.EncodeToString(b[:]) + "-"}
}

// next returns the next id.
func (g *requestIDs) next() string {
	return g.prefix + strconv.FormatUint(g.n.Add(1), 36)
}

// annotations are what a handler adds to its request's log line.
type annotations struct {
	level slog.Level
	attrs []slog.Attr
}

type annotationsKey struct{}

// Annotate adds attrs to the one line Middleware logs for the request
// whose context is ctx, and raises that line's level to level when it is
// higher. It must be called from the goroutine serving the request, before
// the handler returns. It reports false when the request does not pass
// through Middleware: the caller then logs a line of its own.
func Annotate(ctx context.Context, level slog.Level, attrs ...slog.Attr) bool {
	a, ok := ctx.Value(annotationsKey{}).(*annotations)
	if !ok {
		return false
	}
	a.level = max(a.level, level)
	a.attrs = append(a.attrs, attrs...)
	return true
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	n, err := w.ResponseWriter.Write(b)
	w.bytes += int64(n)
	return n, err
}

// Unwrap lets http.ResponseController reach the underlying writer (for
// flushing streamed exports and extending their deadlines).
func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// latency is the latency field of a request line: milliseconds, with a
// fraction to the microsecond, so that the unit is in the name.
func latency(d time.Duration) slog.Attr {
	return slog.Float64("latency_ms", float64(d.Microseconds())/1000)
}

// Middleware gives every request an id (the caller's X-Request-Id when it
// is well-formed, otherwise a new one), echoes it in the response, recovers
// from panics, and logs one line per request: http_request_id, method,
// route, status, bytes, latency_ms (the time to serve it, in
// milliseconds, to the microsecond) and client (the address
// internal/clientip decided), then whatever the handler added with
// Annotate. A logger from NewLogger buffers the line when it is at info
// level or below. It never logs bodies, query strings or headers, so no claim or
// secret reaches the log.
func Middleware(logger *slog.Logger, clock approvals.Clock, next http.Handler) http.Handler {
	ids := newRequestIDs()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clock.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			id = ids.next()
			r.Header.Set("X-Request-Id", id)
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		notes := &annotations{level: slog.LevelInfo}
		r = r.WithContext(context.WithValue(r.Context(), annotationsKey{}, notes))
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// A handler cutting the connection on purpose (a
					// stream that failed half-way): net/http must see
					// it, or the client gets a short answer that looks
					// complete.
					logger.LogAttrs(r.Context(), slog.LevelWarn, "http request aborted", slog.String("http_request_id", id),
						slog.String("method", r.Method), slog.String("route", r.URL.Path), slog.Int("status", rec.status),
						slog.Int64("bytes", rec.bytes), latency(clock.Now().Sub(start)))
					panic(p)
				}
				logger.Error("panic serving request", "http_request_id", id, "route", r.URL.Path, "panic", p)
				if rec.status == 0 {
					http.Error(rec, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
				}
			}
			level := notes.level
			if rec.status >= 500 {
				level = slog.LevelError
			}
			ctx := r.Context()
			if !logger.Enabled(ctx, level) {
				return
			}
			attrs := append([]slog.Attr{
				slog.String("http_request_id", id),
				slog.String("method", r.Method),
				slog.String("route", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				latency(clock.Now().Sub(start)),
				slog.String("client", clientip.String(r)),
			}, notes.attrs...)
			if level < slog.LevelWarn {
				// The busiest line of all may wait in the log's buffer
				// (see Writer); a warning or an error is written at once.
				ctx = deferrable(ctx)
			}
			logger.LogAttrs(ctx, level, "http request", attrs...)
		}()
		next.ServeHTTP(rec, r)
	})
}
