package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net/http"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
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
	t.readHeader = defaults.Positive(t.readHeader, readHeaderTimeout)
	t.read = defaults.Positive(t.read, readTimeout)
	t.write = defaults.Positive(t.write, writeTimeout)
	t.idle = defaults.Positive(t.idle, idleTimeout)
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
			reason := "data file not readable"
			if _, shared := store.(interface{ Ping(context.Context) error }); shared {
				reason = "database not reachable" // it recovers by itself when the database is back
			}
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable","reason":"` + reason + `"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	}
	return healthz, readyz
}
