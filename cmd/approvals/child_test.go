package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// childEnv, set to "serve" in the environment of the test binary, makes it
// run `approvals serve` instead of the tests: the crash tests start the
// server in a separate process they can SIGKILL, without building the
// binary separately.
const childEnv = "APPROVALS_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "serve" {
		// Exactly what main does.
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		code := run(ctx, []string{"serve"}, os.Stdout, os.Stderr, os.Getenv)
		stop()
		os.Exit(code)
	}
	os.Exit(pgtest.Main(m)) // stops the PostgreSQL cluster the tests started, if any
}

// childServer is `approvals serve` running in a child process.
type childServer struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *childLog
	addr string // host:port, once ready
	done chan struct{}
	err  error // of cmd.Wait, once done is closed
}

// startChild starts the test binary as `approvals serve` with env (the
// configuration) on top of the parent's environment minus every APPROVALS_
// and AZURE_ variable. It does not wait for the server to be ready.
func startChild(t *testing.T, env map[string]string) *childServer {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APPROVALS_") && !strings.HasPrefix(kv, "AZURE_") && !strings.HasPrefix(kv, "SSL_CERT_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, childEnv+"=serve")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	c := &childServer{t: t, cmd: cmd, log: newChildLog(), done: make(chan struct{})}
	cmd.Stdout = io.Discard
	cmd.Stderr = c.log
	dieWithParent(cmd)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		c.err = cmd.Wait()
		close(c.done)
	}()
	return c
}

// waitReady waits for the "approvals serving" log line and returns the
// address the server listens on.
func (c *childServer) waitReady(timeout time.Duration) (string, error) {
	select {
	case addr := <-c.log.ready:
		c.addr = addr
		return addr, nil
	case <-c.done:
		return "", fmt.Errorf("the server exited before it was ready (%v); its log ends:\n%s", c.err, c.log.tail())
	case <-time.After(timeout):
		return "", fmt.Errorf("the server was not ready after %s; its log ends:\n%s", timeout, c.log.tail())
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (c *childServer) kill() {
	_ = c.cmd.Process.Signal(syscall.SIGKILL)
	<-c.done
}

// stop sends SIGTERM, waits for a graceful exit and returns its error.
func (c *childServer) stop(timeout time.Duration) error {
	_ = c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
		return c.err
	case <-time.After(timeout):
		c.kill()
		return errors.New("the server did not stop after SIGTERM")
	}
}

// problems returns the log lines that must never appear: data races found
// by the race detector in the child, panics, errors logged by the server.
func (c *childServer) problems() []string { return c.log.problemLines() }

// childLog scans the child's stderr (JSON log lines, and whatever the
// runtime or the race detector print) for the ready line and for problems,
// and keeps the last lines for error messages.
type childLog struct {
	ready chan string

	mu       sync.Mutex
	partial  []byte
	last     []string
	problems []string
	sawReady bool
	lines    int
}

func newChildLog() *childLog { return &childLog{ready: make(chan string, 1)} }

func (l *childLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.partial = append(l.partial, p...)
	for {
		i := bytes.IndexByte(l.partial, '\n')
		if i < 0 {
			break
		}
		l.line(string(l.partial[:i]))
		l.partial = l.partial[i+1:]
	}
	return len(p), nil
}

// line looks at one line; l.mu held.
func (l *childLog) line(s string) {
	l.lines++
	l.last = append(l.last, s)
	if len(l.last) > 40 {
		l.last = l.last[1:]
	}
	switch {
	case strings.Contains(s, "DATA RACE"), strings.HasPrefix(s, "panic:"), strings.HasPrefix(s, "fatal error:"),
		strings.Contains(s, `"level":"ERROR"`), strings.Contains(s, "panic serving request"):
		if len(l.problems) < 50 {
			l.problems = append(l.problems, s)
		}
	case !l.sawReady && strings.Contains(s, `"msg":"approvals serving"`):
		var v struct{ Address string }
		if json.Unmarshal([]byte(s), &v) == nil && v.Address != "" {
			l.sawReady = true
			l.ready <- v.Address
		}
	}
}

func (l *childLog) tail() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return strings.Join(l.last, "\n") + string(l.partial)
}

func (l *childLog) problemLines() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]string(nil), l.problems...)
}

// writeServerCert fetches the certificate a TLS server on addr presents
// and writes it as PEM to a file in dir, for SSL_CERT_FILE in a child
// process: the fake Graph's certificate is self-signed, so the child
// trusts it as a root.
func writeServerCert(t *testing.T, addr, dir string) string {
	t.Helper()
	conn, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", addr,
		&tls.Config{InsecureSkipVerify: true}) //nolint:gosec // reading the certificate to trust, not trusting the peer
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	certs := conn.ConnectionState().PeerCertificates
	if len(certs) == 0 {
		t.Fatal("the fake Graph presented no certificate")
	}
	path := filepath.Join(dir, "graphtest-ca.pem")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriter(f)
	for _, c := range certs {
		if err := pem.Encode(w, &pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return path
}

// provisioningGraph starts the fake Graph of the provisioning crash and
// replica tests (25 ms a call, two groups; closed when the test ends) and
// returns it, its groups and the settings that point a child server at
// it: its certificate trusted (the file is written to dir), every approved
// person added to both groups by four workers, no invitation email.
func provisioningGraph(t *testing.T, dir string) (*graphtest.Server, []string, map[string]string) {
	t.Helper()
	g := graphtest.New(graphtest.Options{Latency: 25 * time.Millisecond})
	t.Cleanup(g.Close)
	groups := []string{g.AddGroup(""), g.AddGroup("")}
	graphHost := strings.TrimSuffix(strings.TrimPrefix(g.URL(), "https://"), "/v1.0")
	return g, groups, map[string]string{
		"APPROVALS_GRAPH_URL":               g.URL(),
		"AZURE_AUTHORITY_HOST":              g.AuthorityURL(),
		"AZURE_TENANT_ID":                   g.TenantID(),
		"AZURE_CLIENT_ID":                   g.ClientID(),
		"AZURE_CLIENT_SECRET":               g.ClientSecret(),
		"APPROVALS_TENANT_DOMAIN":           g.TenantDomain(),
		"APPROVALS_GROUP_IDS":               strings.Join(groups, ","),
		"APPROVALS_PROVISIONING_WORKERS":    "4",
		"APPROVALS_SEND_INVITATION_MESSAGE": "false",
		"SSL_CERT_FILE":                     writeServerCert(t, graphHost, dir),
	}
}
