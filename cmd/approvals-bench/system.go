package main

import (
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/connector"
	"github.com/approvals-dev/approvals/internal/httplog"
	"github.com/approvals-dev/approvals/store/bolt"
	"github.com/approvals-dev/approvals/web"
	"github.com/approvals-dev/approvals/web/api"
	"github.com/approvals-dev/approvals/web/oidctest"
)

// Credentials of the in-process system. They only ever travel over
// loopback.
const (
	benchUser     = "entra-connector"
	benchPassword = "bench-password-0123456789"
	benchAPIKey   = "bench-api-key-0123456789abcdef"
	benchClientID = "bench-client-id"
	benchSecret   = "bench-client-secret"
)

// Domains the in-process system decides by policy, as `approvals demo`
// does: check mode seeds approved and denied people with them.
const (
	autoApproveDomain = "partner.example"
	autoDenyDomain    = "spam.example"
	pendingDomain     = "example.com"
)

// The server timeouts of cmd/approvals (httpserver.go), so that the
// in-process server behaves like `approvals serve`.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 30 * time.Second
	writeTimeout      = 60 * time.Second
	idleTimeout       = 120 * time.Second
)

func newServer(h http.Handler, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// system is the server under test, in this process: the handler stack of
// `approvals serve` (connector, admin API, reviewer UI, health) over
// approvals.Service over store/bolt, served by net/http on a loopback
// port. Only the provisioner is left out: none of the measured paths
// wakes it.
type system struct {
	URL   string
	Store *bolt.Store
	// Started is when startSystem began; Ready when the store was open
	// and the server listening.
	Started, Ready time.Time

	idp     *oidctest.Server
	srv     *http.Server
	logFile *os.File
	logw    *httplog.Writer
	done    chan struct{}
	// stopNotifier stops the notifier when WebhookURL started one.
	stopNotifier func()
}

type systemOptions struct {
	// DB is the data file, created when it does not exist.
	DB     string
	Policy approvals.Policy
	// SignIn starts an OpenID Connect provider that signs a reviewer in
	// without a page, so that the reviewer UI can be measured.
	SignIn bool
	// IdPKey signs the provider's tokens; made on the spot when nil.
	IdPKey *rsa.PrivateKey
	// Log receives the JSON log lines; os.DevNull when empty.
	Log string
	// Listen is the address to serve on; 127.0.0.1:0 when empty.
	Listen string
	// WebhookURL, when set, runs the notifier with a webhook to it, as
	// APPROVALS_WEBHOOK_URLS does (bench_notify.go).
	WebhookURL string
}

func startSystem(opts systemOptions) (s *system, err error) {
	s = &system{Started: time.Now(), done: make(chan struct{})}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	logPath := opts.Log
	if logPath == "" {
		logPath = os.DevNull
	}
	if s.logFile, err = os.OpenFile(logPath, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600); err != nil {
		return s, err
	}
	// `approvals serve` logs JSON lines at info level to stderr, the
	// request lines buffered.
	s.logw = httplog.NewWriter(s.logFile, 0)
	logger := httplog.NewLogger(s.logw, slog.LevelInfo)

	if s.Store, err = bolt.Open(opts.DB, bolt.Options{}); err != nil {
		return s, err
	}
	listen := opts.Listen
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return s, err
	}
	defer func() {
		if err != nil {
			ln.Close() // not served yet
		}
	}()
	s.URL = "http://" + ln.Addr().String()
	issuer := "http://127.0.0.1:1/unused"
	if opts.SignIn {
		s.idp, err = oidctest.NewServer(oidctest.Config{
			Clients:   []oidctest.Client{{ID: benchClientID, Secret: benchSecret, RedirectURIs: []string{s.URL + "/auth/callback"}}},
			AutoLogin: "ada",
			Key:       opts.IdPKey,
		}, false)
		if err != nil {
			return s, err
		}
		issuer = s.idp.Issuer()
	}

	var store approvals.Store = s.Store
	if opts.WebhookURL != "" {
		if store, err = s.startNotifier(opts.WebhookURL, logger); err != nil {
			return s, err
		}
	}
	svc := &approvals.Service{Store: store, Clock: approvals.SystemClock, Policy: opts.Policy}
	conn, err := connector.New(connector.Config{
		Service: svc,
		Auth:    connector.Auth{Username: benchUser, Password: benchPassword},
		Logger:  logger,
	})
	if err != nil {
		return s, err
	}
	adminAPI, err := api.New(api.Config{
		Service: svc,
		APIKeys: map[string]string{"bench": benchAPIKey},
		Token:   api.TokenConfig{Issuer: issuer, Audience: benchClientID, AdminRole: "Approvals.Admin"},
		Backup:  s.Store.Backup,
		Logger:  logger,
	})
	if err != nil {
		return s, err
	}
	ui, err := web.New(web.Config{
		Service:   svc,
		PublicURL: s.URL,
		OIDC:      web.OIDCConfig{Issuer: issuer, ClientID: benchClientID, ClientSecret: benchSecret},
		Logger:    logger,

		ReviewerRole: "Approvals.Reviewer", AdminRole: "Approvals.Admin",
	})
	if err != nil {
		return s, err
	}
	mux := http.NewServeMux()
	mux.Handle("/connector/", conn)
	mux.Handle(api.Prefix+"/", adminAPI)
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		if _, err := s.Store.Count(r.Context()); err != nil {
			w.WriteHeader(http.StatusServiceUnavailable)
			_, _ = w.Write([]byte(`{"status":"unavailable"}` + "\n"))
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}` + "\n"))
	})
	mux.Handle("/", ui)
	s.srv = newServer(httplog.Middleware(logger, approvals.SystemClock, mux), logger)
	s.Ready = time.Now()
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Close stops the server and closes the store.
func (s *system) Close() error {
	var errs []error
	if s.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		if err := s.srv.Shutdown(ctx); err != nil {
			errs = append(errs, err)
		}
		cancel()
		<-s.done
	}
	if s.stopNotifier != nil {
		s.stopNotifier()
	}
	if s.idp != nil {
		s.idp.Close()
	}
	if s.Store != nil {
		if err := s.Store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if s.logw != nil {
		_ = s.logw.Close()
	}
	if s.logFile != nil {
		_ = s.logFile.Close()
	}
	return errors.Join(errs...)
}

// baseline is the yardstick of the connector: a bare Echo handler on both
// connector paths that decodes the body into a map and answers Continue,
// with no authentication, validation, store or log. It listens on listen
// (127.0.0.1:0 when empty).
type baseline struct {
	URL  string
	srv  *http.Server
	done chan struct{}
}

func startBaseline(listen string) (*baseline, error) {
	if listen == "" {
		listen = "127.0.0.1:0"
	}
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	handle := func(c echo.Context) error {
		var m map[string]any
		if err := json.NewDecoder(c.Request().Body).Decode(&m); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"version": "1.0.0", "action": "ShowBlockPage", "userMessage": "bad request"})
		}
		return c.JSON(http.StatusOK, map[string]string{"version": "1.0.0", "action": "Continue"})
	}
	e.POST(connector.CheckApprovalStatusPath, handle)
	e.POST(connector.RequestApprovalPath, handle)
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	b := &baseline{URL: "http://" + ln.Addr().String(), done: make(chan struct{})}
	b.srv = newServer(e, slog.New(slog.DiscardHandler))
	go func() {
		defer close(b.done)
		_ = b.srv.Serve(ln)
	}()
	return b, nil
}

func (b *baseline) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := b.srv.Shutdown(ctx)
	<-b.done
	if err != nil {
		return fmt.Errorf("baseline: %w", err)
	}
	return nil
}
