package main

// The test harness of the process-level tests: `approvals serve` and
// `approvals demo` run in process until the test ends, and the pieces of a
// fake webhook receiver. The child-process servers of the crash and
// replica tests are in child_test.go.

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// runUntilReady runs run (a command's Run) in the background and waits
// until ready is closed; the test fails when the command stops first or is
// not ready within a minute (log is its stderr, shown then). The stop it
// returns cancels the command, waits for it and closes it (close), each
// error failing the test; stop runs at most once, and when the test ends.
func runUntilReady(t *testing.T, name string, run func(context.Context) error, close func() error, ready <-chan struct{}, log *logcapture.Buffer) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- run(ctx) }()
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("%s run: %v", name, err)
			}
			if err := close(); err != nil {
				t.Errorf("%s close: %v", name, err)
			}
		})
	}
	select {
	case <-ready:
	case err := <-done:
		cancel()
		t.Fatalf("%s stopped: %v; log: %s", name, err, log.String())
	case <-time.After(60 * time.Second):
		t.Cleanup(stop)
		t.Fatalf("%s did not start", name)
	}
	t.Cleanup(stop)
	return stop
}

// startServer runs `approvals serve` in process on the data file db, with
// the crash tests' settings, a fake Graph, the log level and the time
// limits given; it stops when the test ends.
func startServer(t *testing.T, db, logLevel string, limits serverTimeouts) (*Main, string, *logcapture.Buffer) {
	t.Helper()
	g := graphtest.New(graphtest.Options{})
	t.Cleanup(g.Close)
	env := crashEnv(db)
	env["APPROVALS_LOG_LEVEL"] = logLevel
	return startServerEnv(t, g, env, limits)
}

// startServerEnv is startServer with the environment given (the fake
// Graph's URL is added to it) on a new loopback listener; it returns the
// server's base URL too.
func startServerEnv(t *testing.T, g *graphtest.Server, env map[string]string, limits serverTimeouts) (*Main, string, *logcapture.Buffer) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, log := startServerOn(t, ln, g, env, limits)
	return m, "http://" + ln.Addr().String(), log
}

// startServerOn runs `approvals serve` in process on ln with the
// environment env, the fake Graph g (its URL is added to env, its
// credentials and transport replace Azure's) and the time limits given
// (zero: the production ones). It returns once the server is ready, with
// its stderr; the server stops when the test ends.
func startServerOn(t *testing.T, ln net.Listener, g *graphtest.Server, env map[string]string, limits serverTimeouts) (*Main, *logcapture.Buffer) {
	t.Helper()
	env["APPROVALS_GRAPH_URL"] = g.URL()
	var stdout, stderr logcapture.Buffer
	m := &Main{
		Stdout: &stdout, Stderr: &stderr,
		Getenv: func(k string) string { return env[k] },
		credentials: &provisioner.CredentialConfig{
			TenantID: g.TenantID(), ClientID: g.ClientID(), ClientSecret: g.ClientSecret(),
			AuthorityHost: g.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: g.Client(),
		},
		graphTransport: g.Transport(),
		listener:       ln,
		timeouts:       limits,
	}
	if err := m.ParseFlags(nil); err != nil {
		t.Fatal(err)
	}
	ready := make(chan struct{})
	m.onReady = func(*Main) { close(ready) }
	runUntilReady(t, "serve", m.Run, m.Close, ready, &stderr)
	return m, &stderr
}

// startDemo runs `approvals demo` on a free port in a temporary folder and
// returns it once it serves; the demo stops when the test ends, or
// earlier when the test calls the stop returned.
func startDemo(t *testing.T, args ...string) (*Demo, *logcapture.Buffer, func()) {
	t.Helper()
	return startDemoEnv(t, nil, args...)
}

// startDemoEnv is startDemo with the environment env.
func startDemoEnv(t *testing.T, env map[string]string, args ...string) (*Demo, *logcapture.Buffer, func()) {
	t.Helper()
	var stdout, stderr logcapture.Buffer
	d := &Demo{Stdout: &stdout, Stderr: &stderr, Getenv: func(k string) string { return env[k] }}
	ready := make(chan struct{})
	d.Ready = func(*Demo) { close(ready) }
	if err := d.ParseFlags(append([]string{"--dir", t.TempDir(), "--listen", "127.0.0.1:0"}, args...)); err != nil {
		t.Fatal(err)
	}
	stop := runUntilReady(t, "demo", d.Run, d.Close, ready, &stderr)
	return d, &stderr, stop
}

// webhookEvent is what the tests read of a webhook's JSON body.
type webhookEvent struct {
	Type string `json:"type"`
	Data struct {
		Request struct {
			ID string `json:"id"`
		} `json:"request"`
	} `json:"data"`
}

// readWebhook reads a webhook request as a fake receiver does: its
// webhook-id, its event, and whether webhook-signature is the Standard
// Webhooks HMAC-SHA256 of id, timestamp and body under key.
func readWebhook(r *http.Request, key []byte) (id string, ev webhookEvent, signed bool) {
	body, _ := io.ReadAll(r.Body)
	id = r.Header.Get("webhook-id")
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + r.Header.Get("webhook-timestamp") + "." + string(body)))
	_ = json.Unmarshal(body, &ev)
	return id, ev, r.Header.Get("webhook-signature") == "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
