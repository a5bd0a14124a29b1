package main

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"log/slog"
	"net/http"
	"regexp"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Server timeouts. A slow client cannot hold a connection open for long:
// headers must arrive in 5 s and a whole body in 30 s. Long downloads
// (exports, backups) extend their own write deadline.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
	shutdownTimeout   = 25 * time.Second
	maxHeaderBytes    = 64 << 10
)

// serverTimeouts are the HTTP server's time limits. Zero fields take the
// constants above; only tests shorten them (Main.timeouts).
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

func (t serverTimeouts) withDefaults() serverTimeouts {
	if t.readHeader <= 0 {
		t.readHeader = readHeaderTimeout
	}
	if t.read <= 0 {
		t.read = readTimeout
	}
	if t.write <= 0 {
		t.write = writeTimeout
	}
	if t.idle <= 0 {
		t.idle = idleTimeout
	}
	return t
}

// newHTTPServer returns a server with the timeouts above and, when tls is
// not nil, TLS 1.2 or later that asks for (but does not require) a client
// certificate, for connector certificate authentication.
func newHTTPServer(h http.Handler, tlsCert *tls.Certificate, logger *slog.Logger, limits serverTimeouts) *http.Server {
	limits = limits.withDefaults()
	srv := &http.Server{
		Handler:           h,
		ReadHeaderTimeout: limits.readHeader,
		ReadTimeout:       limits.read,
		WriteTimeout:      limits.write,
		IdleTimeout:       limits.idle,
		MaxHeaderBytes:    maxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	if tlsCert != nil {
		srv.TLSConfig = &tls.Config{
			MinVersion:   tls.VersionTLS12,
			Certificates: []tls.Certificate{*tlsCert},
			// Entra presents the certificate uploaded to the API connector;
			// it is checked by thumbprint, not by a CA chain.
			ClientAuth: tls.RequestClientCert,
		}
	}
	return srv
}

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

// logRequests gives every request an id (the caller's X-Request-Id when it
// is well-formed, otherwise a new one), echoes it in the response, recovers
// from panics, and logs one line per request: id, method, route, status,
// bytes and latency. It never logs bodies, query strings or headers, so no
// claim or secret reaches the log.
func logRequests(logger *slog.Logger, clock approvals.Clock, next http.Handler) http.Handler {
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

// health serves /healthz (the process is up) and /readyz (the data file
// answers).
func health(store approvals.Store) (healthz, readyz http.HandlerFunc) {
	healthz = func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"status":"ok"}` + "\n"))
	}
	readyz = func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		w.Header().Set("Content-Type", "application/json")
		if _, err := store.Count(ctx); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable","reason":"data file not readable"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	}
	return healthz, readyz
}
