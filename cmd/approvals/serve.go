package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/connector"
	"github.com/approvals-dev/approvals/internal/clientip"
	"github.com/approvals-dev/approvals/internal/httplog"
	"github.com/approvals-dev/approvals/internal/unitext"
	"github.com/approvals-dev/approvals/notify"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/web"
	"github.com/approvals-dev/approvals/web/api"
)

// Main is `approvals serve`: it parses the configuration, wires the store,
// the provisioner and the HTTP handlers, serves until its context is
// cancelled, and shuts down gracefully. Tests drive it on port :0.
type Main struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string
	Clock          approvals.Clock

	Config Config

	// Wiring hooks used by `approvals demo` and tests; zero in production.
	credentials    *provisioner.CredentialConfig // replaces the AZURE_* environment
	graphTransport http.RoundTripper             // for a Graph with a private CA
	oidcClient     *http.Client                  // for an issuer with a private CA
	listener       net.Listener                  // opened by the caller; Config.Listen otherwise
	onReady        func(m *Main)                 // called once the listener is open
	extraRoutes    map[string]http.Handler       // more routes on the main listener (the demo's sign-in provider)
	demoMail       func() []web.DemoMail         // the demo's mailbox, for the UI's Mail page
	timeouts       serverTimeouts                // zero: the constants of httpserver.go

	logger      *slog.Logger
	logw        *httplog.Writer // under logger; closed last
	store       approvals.Store
	prov        *provisioner.Provisioner
	srv         *http.Server
	metrics     *http.Server
	metricsAddr net.Addr
	wg          sync.WaitGroup
	cancel      context.CancelFunc
	closed      bool
}

// ParseFlags reads the configuration from args and the environment and
// validates it.
func (m *Main) ParseFlags(args []string) error {
	fs := newFlagSet("approvals serve", "Usage: approvals serve [flags]\n\nEvery flag can also be set by the environment variable it names.\n\n")
	apply := registerFlags(fs, m.Getenv)
	if err := parseFlags(fs, args, m.Stdout); err != nil {
		return err
	}
	if err := apply(&m.Config); err != nil {
		return err
	}
	return m.Config.Validate()
}

// MetricsAddr returns the address /metrics is served on, once Run has
// opened it: the actual port when APPROVALS_METRICS_LISTEN names port 0.
func (m *Main) MetricsAddr() net.Addr { return m.metricsAddr }

// Addr returns the address the server listens on, once Run has opened it.
func (m *Main) Addr() net.Addr {
	if m.listener == nil {
		return nil
	}
	return m.listener.Addr()
}

func (m *Main) clock() approvals.Clock {
	if m.Clock == nil {
		return approvals.SystemClock
	}
	return m.Clock
}

// newLogger returns the server's logger, JSON lines on w at level and
// above, and the writer under it, which Close must close: the one line per
// request at info level is buffered for up to httplog.DefaultFlushInterval
// (one write to a pipe per request cost as much as serving a check call),
// every other line is written at once.
func newLogger(w io.Writer, level string) (*slog.Logger, *httplog.Writer) {
	var l slog.Level
	_ = l.UnmarshalText([]byte(strings.ToUpper(level)))
	lw := httplog.NewWriter(w, 0)
	return httplog.NewLogger(lw, l), lw
}

// Run opens the data file and serves until ctx is cancelled.
func (m *Main) Run(ctx context.Context) (err error) {
	c := &m.Config
	m.logger, m.logw = newLogger(m.Stderr, c.LogLevel)
	clock := m.clock()

	tlsCert, err := loadTLS(c)
	if err != nil {
		return err
	}
	// A data file from an older version is upgraded here, with progress
	// lines in the log, before anything is served.
	m.store, err = openStore(c, storeOptions{Clock: clock, Logger: m.logger})
	if err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	registerStoreMetrics(reg, m.store, clock) // postgres.go

	dir, err := m.newDirectory(c, clock, reg)
	if err != nil {
		return err
	}
	notifier, err := m.newNotifier(c, dir, clock, reg)
	if err != nil {
		return err
	}
	// Changes through the service, the provisioner and the APIs wake the notifier.
	notifying := notify.WakeOnAnnounce(m.store, notifier)
	svc, err := m.newService(c, notifying, dir, clock, reg)
	if err != nil {
		return err
	}
	handler, metricsHandler, metricsOnMain, err := m.newHandler(c, svc, notifying, clock, reg)
	if err != nil {
		return err
	}
	if err := m.listen(c, handler, tlsCert, metricsHandler, metricsOnMain); err != nil {
		return err
	}

	ctx, m.cancel = context.WithCancel(ctx)
	m.startProvisioner(ctx)
	m.startNotifier(ctx, notifier)
	return m.serve(ctx, c, tlsCert)
}

// loadTLS loads the listener's certificate, or returns nil when the
// server speaks plain HTTP (behind a TLS-terminating proxy).
func loadTLS(c *Config) (*tls.Certificate, error) {
	if c.TLSCertFile == "" {
		return nil, nil
	}
	cert, err := tls.LoadX509KeyPair(c.TLSCertFile, c.TLSKeyFile)
	if err != nil {
		return nil, fmt.Errorf("loading the TLS certificate: %w", err)
	}
	return &cert, nil
}

// newDirectory builds the Graph credential and the directory adapter the
// provisioner, the invitation look-up and the Graph mail transport use.
func (m *Main) newDirectory(c *Config, clock approvals.Clock, reg prometheus.Registerer) (*provisioner.Directory, error) {
	credCfg := provisioner.CredentialConfigFromEnv(m.Getenv)
	credCfg.DisableInstanceDiscovery = c.AzureDisableInstanceDiscover
	credCfg.ClientSecret = c.AzureClientSecret // AZURE_CLIENT_SECRET or its _FILE
	if m.credentials != nil {
		credCfg = *m.credentials
	}
	cred, err := provisioner.NewCredential(credCfg)
	if err != nil {
		return nil, fmt.Errorf("credentials for Microsoft Graph: %w", err)
	}
	return provisioner.NewDirectory(provisioner.GraphConfig{
		URL: c.GraphURL, Credential: cred, Transport: m.graphTransport, Logger: m.logger, Metrics: reg, Clock: clock,
	})
}

// newService builds the provisioner (m.prov) and the domain's Service
// over store: every state change goes through them.
func (m *Main) newService(c *Config, store approvals.Store, dir *provisioner.Directory, clock approvals.Clock, reg prometheus.Registerer) (*approvals.Service, error) {
	var err error
	m.prov, err = provisioner.New(provisioner.Config{
		Store:                 store,
		Clock:                 clock,
		Directory:             dir,
		TenantDomain:          c.TenantDomain,
		InviteRedirectURL:     c.InviteRedirectURL,
		SendInvitationMessage: c.SendInvitationMessage,
		GroupIDs:              c.GroupIDs,
		Workers:               c.ProvisioningWorkers,
		Logger:                m.logger,
		Metrics:               reg,
	})
	if err != nil {
		return nil, err
	}
	return &approvals.Service{
		Store:       store,
		Clock:       clock,
		Policy:      approvals.Policy{AutoApproveDomains: c.AutoApproveDomains, AutoDenyDomains: c.AutoDenyDomains},
		Provisioner: m.prov,
		Directory:   dir,
		Unicode:     unitext.Rules,

		InviteRedirectURL:     c.InviteRedirectURL,
		SendInvitationMessage: c.SendInvitationMessage,
	}, nil
}

// newHandler builds the HTTP surface: the two wire contracts (connector,
// External ID), the admin API, the reviewer UI and the probes, behind the
// client-address and request-log middleware; and the /metrics handler,
// with whether it is served on the main listener too.
func (m *Main) newHandler(c *Config, svc *approvals.Service, store approvals.Store, clock approvals.Clock, reg *prometheus.Registry) (h http.Handler, metrics http.Handler, metricsOnMain bool, err error) {
	conn, err := connector.New(connector.Config{
		Service: svc,
		Auth:    connector.Auth{Username: c.ConnectorUsername, Password: c.ConnectorPassword, Thumbprints: c.ConnectorThumbprints},
		Logger:  m.logger,
		Clock:   clock,
	})
	if err != nil {
		return nil, nil, false, err
	}
	extID, err := newExternalID(c, svc, m.logger, clock)
	if err != nil {
		return nil, nil, false, err
	}
	adminAPI, err := api.New(api.Config{
		Service: svc,
		Store:   store,
		Clock:   clock,
		APIKeys: c.APIKeys,
		Token: api.TokenConfig{
			Issuer: c.Issuer(), Audience: c.OIDCClientID, AdminRole: c.AdminRole, HTTPClient: m.oidcClient,
		},
		Backup:   backupOf(m.store),
		NoBackup: noBackupMessage(m.store), // postgres.go
		Logger:   m.logger,
	})
	if err != nil {
		return nil, nil, false, err
	}
	ui, err := web.New(web.Config{
		Service:      svc,
		Store:        store,
		Clock:        clock,
		PublicURL:    c.PublicURL,
		OIDC:         web.OIDCConfig{Issuer: c.Issuer(), ClientID: c.OIDCClientID, ClientSecret: c.OIDCClientSecret, HTTPClient: m.oidcClient},
		ReviewerRole: c.ReviewerRole,
		AdminRole:    c.AdminRole,
		Logger:       m.logger,
		DemoMail:     m.demoMail,
	})
	if err != nil {
		return nil, nil, false, err
	}

	healthz, readyz := health(m.store)
	mux := http.NewServeMux()
	mux.Handle("/connector/", conn)
	mux.Handle("/external-id/", extID)
	mux.Handle(api.Prefix+"/", adminAPI)
	mux.HandleFunc("GET /healthz", healthz)
	mux.HandleFunc("GET /readyz", readyz)
	// /metrics is on its own listener, loopback by default, unless
	// APPROVALS_METRICS_LISTEN names the main listener's address.
	metrics = promhttp.HandlerFor(reg, promhttp.HandlerOpts{Registry: reg})
	metricsOnMain = c.metricsOnMainListener()
	if metricsOnMain {
		mux.Handle("GET /metrics", metrics)
	}
	for pattern, h := range m.extraRoutes {
		mux.Handle(pattern, h)
	}
	mux.Handle("/", ui)

	// The client address is decided once, before the request log and the
	// limiters read it.
	proxies, err := clientip.ParseTrusted(c.TrustedProxies)
	if err != nil {
		return nil, nil, false, err
	}
	return proxies.Middleware(httplog.Middleware(m.logger, clock, mux)), metrics, metricsOnMain, nil
}

// listen opens the main listener (unless a test gave one) and the metrics
// listener, and starts serving /metrics on the latter.
func (m *Main) listen(c *Config, handler http.Handler, tlsCert *tls.Certificate, metrics http.Handler, metricsOnMain bool) (err error) {
	m.srv = newHTTPServer(handler, tlsCert, m.logger, m.timeouts)
	if m.listener == nil {
		m.listener, err = net.Listen("tcp", c.Listen)
		if err != nil {
			return fmt.Errorf("listening on %s: %w", c.Listen, err)
		}
	}
	if metricsOnMain {
		m.metricsAddr = m.listener.Addr()
		return nil
	}
	ml, err := net.Listen("tcp", c.MetricsAddr)
	if err != nil {
		return fmt.Errorf("listening on %s for metrics (APPROVALS_METRICS_LISTEN): %w", c.MetricsAddr, err)
	}
	m.metricsAddr = ml.Addr()
	mmux := http.NewServeMux()
	mmux.Handle("GET /metrics", metrics)
	m.metrics = newHTTPServer(mmux, nil, m.logger, m.timeouts)
	m.wg.Add(1)
	go func() { defer m.wg.Done(); _ = m.metrics.Serve(ml) }()
	return nil
}

// startProvisioner runs the provisioner until ctx ends; Close waits for it.
func (m *Main) startProvisioner(ctx context.Context) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := m.prov.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			m.logger.Error("provisioner stopped", "error", err)
		}
	}()
}

// serve serves the main listener until ctx ends (nil) or serving fails.
func (m *Main) serve(ctx context.Context, c *Config, tlsCert *tls.Certificate) error {
	serveErr := make(chan error, 1)
	go func() {
		if tlsCert != nil {
			serveErr <- m.srv.ServeTLS(m.listener, "", "")
		} else {
			serveErr <- m.srv.Serve(m.listener)
		}
	}()
	scheme := "http"
	if tlsCert != nil {
		scheme = "https"
	}
	m.logger.Info("approvals serving", "version", buildVersion(), "address", m.listener.Addr().String(), "scheme", scheme,
		"metrics_address", m.metricsAddr.String(), "public_url", c.PublicURL, "db", storeDescription(c), "graph_url", c.GraphURL, "tenant_domain", c.TenantDomain)
	if m.onReady != nil {
		m.onReady(m)
	}
	select {
	case <-ctx.Done():
		return nil
	case err := <-serveErr:
		return fmt.Errorf("serving: %w", err)
	}
}

// Close stops accepting connections, lets in-flight requests finish (up to
// a bound), stops the provisioner after its current Graph step, and closes
// the data file.
func (m *Main) Close() error {
	if m.closed {
		return nil
	}
	m.closed = true
	var errs []error
	if m.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
		if err := m.srv.Shutdown(ctx); err != nil {
			errs = append(errs, fmt.Errorf("shutting down HTTP: %w", err))
		}
		cancel()
	}
	if m.metrics != nil {
		_ = m.metrics.Close()
	}
	if m.cancel != nil {
		m.cancel()
	}
	done := make(chan struct{})
	go func() { m.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(shutdownTimeout):
		errs = append(errs, errors.New("provisioner did not stop in time"))
	}
	if m.store != nil {
		if err := m.store.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	if m.logger != nil {
		m.logger.Info("approvals stopped")
	}
	if m.logw != nil {
		// Writes the request lines still buffered; a line logged later
		// (a request that outlived the shutdown timeout) is written
		// straight through. As before the buffering, a log that cannot
		// be written is not an error of the server.
		_ = m.logw.Close()
	}
	return errors.Join(errs...)
}
