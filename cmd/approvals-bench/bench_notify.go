package main

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/notify"
)

// benchWebhookKey signs the benchmark's webhooks.
var benchWebhookKey = []byte("bench-webhook-secret-0123456789abcdef")

// startNotifier runs a notifier sending every announced event of the
// system's store to url, and returns the store the service must use so
// that changes wake it.
func (s *system) startNotifier(url string, logger *slog.Logger) (approvals.Store, error) {
	n, err := notify.New(notify.Config{
		Store:    s.Store,
		Couriers: map[approvals.Channel]approvals.Courier{approvals.ChannelWebhook: &notify.Webhook{Key: benchWebhookKey}},
		Fanout:   notify.Fanout{WebhookURLs: []string{url}},
		Workers:  32,
		Logger:   logger,
	})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = n.Run(ctx) }()
	s.stopNotifier = func() { cancel(); <-done }
	return notify.WakeOnAnnounce(s.Store, n), nil
}

// webhookReceiver is the loopback endpoint the benchmark's webhooks go
// to: it reads each body and answers 204, counting the calls.
type webhookReceiver struct {
	srv   *httptest.Server
	calls atomic.Int64
}

func newWebhookReceiver() *webhookReceiver {
	r := &webhookReceiver{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		_, _ = io.Copy(io.Discard, req.Body)
		r.calls.Add(1)
		w.WriteHeader(http.StatusNoContent)
	}))
	return r
}

// webhookSystem starts a second system under test, on its own data file,
// with webhooks on, for -webhooks in the request mode.
func (b *Bench) webhookSystem(policy approvals.Policy) (url string, rc *webhookReceiver, err error) {
	rc = newWebhookReceiver()
	b.closers = append(b.closers, func() error { rc.srv.Close(); return nil })
	s, err := startSystem(systemOptions{DB: filepath.Join(b.workDir, "approvals-webhooks.db"), Policy: policy, WebhookURL: rc.srv.URL + "/hook"})
	if err != nil {
		return "", nil, err
	}
	b.closers = append(b.closers, s.Close)
	return s.URL, rc, nil
}
