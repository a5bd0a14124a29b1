// Package httplog is the HTTP middleware both the server and the benchmark
// tool put in front of their handlers: a request id, panic recovery, and
// one structured log line per request that never carries a body, a query
// string or a header.
package httplog

import (
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"

	"github.com/approvals-dev/approvals/approvals"
)

var requestIDRE = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

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

// Middleware gives every request an id (the caller's X-Request-Id when it
// is well-formed, otherwise a new one), echoes it in the response, recovers
// from panics, and logs one line per request: id, method, route, status,
// bytes and latency. It never logs bodies, query strings or headers, so no
// claim or secret reaches the log.
func Middleware(logger *slog.Logger, clock approvals.Clock, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := clock.Now()
		id := r.Header.Get("X-Request-Id")
		if !requestIDRE.MatchString(id) {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
			r.Header.Set("X-Request-Id", id)
		}
		w.Header().Set("X-Request-Id", id)
		rec := &statusRecorder{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				if p == http.ErrAbortHandler {
					// A handler cutting the connection on purpose (a
					// stream that failed half-way): net/http must see
					// it, or the client gets a short answer that looks
					// complete.
					logger.LogAttrs(r.Context(), slog.LevelWarn, "http request aborted", slog.String("request_id", id),
						slog.String("method", r.Method), slog.String("route", r.URL.Path), slog.Int("status", rec.status),
						slog.Int64("bytes", rec.bytes), slog.Duration("latency", clock.Now().Sub(start)))
					panic(p)
				}
				logger.Error("panic serving request", "request_id", id, "route", r.URL.Path, "panic", p)
				if rec.status == 0 {
					http.Error(rec, `{"error":{"code":"internal","message":"internal error"}}`, http.StatusInternalServerError)
				}
			}
			level := slog.LevelInfo
			if rec.status >= 500 {
				level = slog.LevelError
			}
			logger.LogAttrs(r.Context(), level, "http request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", r.URL.Path),
				slog.Int("status", rec.status),
				slog.Int64("bytes", rec.bytes),
				slog.Duration("latency", clock.Now().Sub(start)),
			)
		}()
		next.ServeHTTP(rec, r)
	})
}
