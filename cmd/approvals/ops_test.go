package main

import (
	"bytes"
	"context"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/store/memory"
)

// Every command answers a flag it does not know with one line on stderr
// that points at --help, as the README promises, never the usage text.
func TestEveryCommandRefusesAnUnknownFlagInOneLine(t *testing.T) {
	for _, name := range []string{"serve", "demo", "export", "migrate", "healthcheck"} {
		t.Run(name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), []string{name, "--bogus"}, &stdout, &stderr, func(string) string { return "" })
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if code != 1 || len(lines) != 1 || !strings.Contains(lines[0], "-bogus") || !strings.Contains(lines[0], "approvals "+name+" --help") {
				t.Errorf("exit %d, stderr %q; want 1 and one line naming -bogus and --help", code, stderr.String())
			}
			if stdout.Len() != 0 {
				t.Errorf("stdout %q, want nothing", stdout.String())
			}
		})
	}
	var stdout, stderr bytes.Buffer
	if code := run(context.Background(), []string{"serve", "--help"}, &stdout, &stderr, func(string) string { return "" }); code != 0 ||
		!strings.Contains(stdout.String(), "APPROVALS_METRICS_LISTEN") || stderr.Len() != 0 {
		t.Errorf("serve --help: exit %d, stdout %.80q, stderr %q; want 0 and the flags on stdout", code, stdout.String(), stderr.String())
	}
}

// secretFile writes content to a file of its own and returns its path.
func secretFile(t *testing.T, content string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Every secret SPEC lists can come from a file named by its _FILE
// variable (Docker and Kubernetes secrets), whatever the setting is.
func TestSecretsComeFromFiles(t *testing.T) {
	specSecrets := []string{"APPROVALS_CONNECTOR_PASSWORD", "APPROVALS_API_KEYS", "APPROVALS_OIDC_CLIENT_SECRET", "AZURE_CLIENT_SECRET"}
	secret := map[string]bool{}
	for _, s := range settings {
		secret[s.env] = s.secret
	}
	for _, name := range specSecrets {
		if !secret[name] {
			t.Errorf("%s is not a secret setting: it gets no _FILE variant and shows in --help", name)
		}
	}

	values := map[string]string{
		"APPROVALS_CONNECTOR_PASSWORD": "from-a-file-0123456789",
		"APPROVALS_API_KEYS":           "ops=api-key-from-a-file-0123456789",
		"APPROVALS_OIDC_CLIENT_SECRET": "oidc-secret-from-a-file",
		"AZURE_CLIENT_SECRET":          "azure-secret-from-a-file",
	}
	env := validEnv()
	for name, v := range values {
		delete(env, name)
		// The newline an editor or echo leaves is not part of the secret.
		env[name+"_FILE"] = secretFile(t, v+"\n")
	}
	c, err := loadConfig(t, env)
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectorPassword != values["APPROVALS_CONNECTOR_PASSWORD"] || c.APIKeys["ops"] != "api-key-from-a-file-0123456789" ||
		c.OIDCClientSecret != values["APPROVALS_OIDC_CLIENT_SECRET"] || c.AzureClientSecret != values["AZURE_CLIENT_SECRET"] {
		t.Errorf("config from files: password %q, keys %v, oidc %q, azure %q", c.ConnectorPassword, c.APIKeys, c.OIDCClientSecret, c.AzureClientSecret)
	}

	// A CRLF file, as Windows editors write it.
	env = validEnv()
	delete(env, "APPROVALS_CONNECTOR_PASSWORD")
	env["APPROVALS_CONNECTOR_PASSWORD_FILE"] = secretFile(t, "crlf-password-0123456789\r\n")
	if c, err := loadConfig(t, env); err != nil || c.ConnectorPassword != "crlf-password-0123456789" {
		t.Errorf("CRLF file: %q, %v", c.ConnectorPassword, err)
	}
}

func TestSecretFileErrorsNameTheVariables(t *testing.T) {
	tests := []struct {
		name string
		env  func(env map[string]string)
		want []string
	}{
		{"both set", func(env map[string]string) {
			env["APPROVALS_OIDC_CLIENT_SECRET_FILE"] = secretFile(t, "x")
		}, []string{"APPROVALS_OIDC_CLIENT_SECRET", "APPROVALS_OIDC_CLIENT_SECRET_FILE", "both"}},
		{"missing file", func(env map[string]string) {
			delete(env, "APPROVALS_CONNECTOR_PASSWORD")
			env["APPROVALS_CONNECTOR_PASSWORD_FILE"] = "/nonexistent/connector-password"
		}, []string{"APPROVALS_CONNECTOR_PASSWORD_FILE", "/nonexistent/connector-password", "no such file"}},
		{"a directory", func(env map[string]string) {
			delete(env, "APPROVALS_CONNECTOR_PASSWORD")
			env["APPROVALS_CONNECTOR_PASSWORD_FILE"] = t.TempDir()
		}, []string{"APPROVALS_CONNECTOR_PASSWORD_FILE", "cannot read"}},
		{"empty file", func(env map[string]string) {
			env["AZURE_CLIENT_SECRET_FILE"] = secretFile(t, "\n")
		}, []string{"AZURE_CLIENT_SECRET_FILE", "empty"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := validEnv()
			tt.env(env)
			_, err := loadConfig(t, env)
			for _, w := range tt.want {
				if err == nil || !strings.Contains(err.Error(), w) {
					t.Errorf("error %v; want it to mention %q", err, w)
				}
			}
		})
	}
	// A plain setting has no _FILE variant: the variable is ignored.
	env := validEnv()
	env["APPROVALS_TENANT_DOMAIN_FILE"] = "/nonexistent"
	if _, err := loadConfig(t, env); err != nil {
		t.Errorf("APPROVALS_TENANT_DOMAIN_FILE: %v", err)
	}
}

func TestMetricsListenDefaultsToLoopback(t *testing.T) {
	c, err := loadConfig(t, validEnv())
	if err != nil {
		t.Fatal(err)
	}
	if c.MetricsAddr != "127.0.0.1:9464" || c.metricsOnMainListener() {
		t.Errorf("default metrics address %q (on main: %v); want 127.0.0.1:9464, separate", c.MetricsAddr, c.metricsOnMainListener())
	}
	env := validEnv()
	env["APPROVALS_METRICS_LISTEN"] = "nowhere"
	if _, err := loadConfig(t, env); err == nil || !strings.Contains(err.Error(), "APPROVALS_METRICS_LISTEN") {
		t.Errorf("bad APPROVALS_METRICS_LISTEN: %v", err)
	}
}

// startMetricsServer runs serve on ln with crashEnv plus extra.
func startMetricsServer(t *testing.T, ln net.Listener, extra map[string]string) (*Main, *logcapture.Buffer) {
	t.Helper()
	g := graphtest.New(graphtest.Options{})
	t.Cleanup(g.Close)
	env := crashEnv(filepath.Join(t.TempDir(), "approvals.db"))
	env["APPROVALS_LOG_LEVEL"] = "info"
	maps.Copy(env, extra)
	return startServerOn(t, ln, g, env, serverTimeouts{})
}

func isPrometheus(t *testing.T, url string) bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var b bytes.Buffer
	_, _ = b.ReadFrom(resp.Body)
	return resp.StatusCode == 200 && strings.Contains(b.String(), "# TYPE go_goroutines")
}

// /metrics is not on the listener the internet reaches: it has its own,
// here on an ephemeral port whose address is logged at start.
func TestMetricsAreNotOnThePublicListener(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m, log := startMetricsServer(t, ln, map[string]string{"APPROVALS_METRICS_LISTEN": "127.0.0.1:0"})
	main := "http://" + m.Addr().String()
	if isPrometheus(t, main+"/metrics") {
		t.Errorf("GET %s/metrics on the main listener serves the metrics", main)
	}
	addr := m.MetricsAddr().String()
	if addr == m.Addr().String() || strings.HasSuffix(addr, ":0") {
		t.Fatalf("metrics address %s (main %s)", addr, m.Addr())
	}
	if !isPrometheus(t, "http://"+addr+"/metrics") {
		t.Errorf("GET http://%s/metrics does not serve the metrics", addr)
	}
	if !strings.Contains(log.String(), `"metrics_address":"`+addr+`"`) {
		t.Errorf("the start line does not log the metrics address %s:\n%s", addr, log.String())
	}
}

// Naming the main listener's address in APPROVALS_METRICS_LISTEN puts
// /metrics there, for a deployment whose scraper only reaches that port.
func TestMetricsOnTheMainListenerWhenConfigured(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	m, _ := startMetricsServer(t, ln, map[string]string{"APPROVALS_LISTEN": addr, "APPROVALS_METRICS_LISTEN": addr})
	if !isPrometheus(t, "http://"+addr+"/metrics") || m.MetricsAddr().String() != addr {
		t.Errorf("metrics not on the main listener %s (metrics address %v)", addr, m.MetricsAddr())
	}
}

func TestHealthcheck(t *testing.T) {
	ready := true
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" {
			http.NotFound(w, r)
			return
		}
		if !ready {
			http.Error(w, `{"status":"unavailable"}`, http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte(`{"status":"ready"}`))
	}))
	defer srv.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closed.Close()

	noEnv := func(string) string { return "" }
	tests := []struct {
		name   string
		args   []string
		ready  bool
		code   int
		stderr string
	}{
		{"ready", []string{"--url", srv.URL}, true, 0, ""},
		{"ready, trailing slash", []string{"--url", srv.URL + "/"}, true, 0, ""},
		{"not ready", []string{"--url", srv.URL}, false, 1, "503"},
		{"nobody listening", []string{"--url", closed.URL, "--timeout", "2s"}, true, 1, "GET " + closed.URL + "/readyz"},
		{"bad url", []string{"--url", "ftp://x"}, true, 1, "--url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ready = tt.ready
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), append([]string{"healthcheck"}, tt.args...), &stdout, &stderr, noEnv)
			lines := strings.Split(strings.TrimRight(stderr.String(), "\n"), "\n")
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			if tt.stderr != "" && (len(lines) != 1 || !strings.Contains(lines[0], tt.stderr)) {
				t.Errorf("stderr %q; want one line mentioning %q", stderr.String(), tt.stderr)
			}
		})
	}

	// Without --url: SPEC's default, or the port APPROVALS_LISTEN names.
	for _, tt := range []struct {
		env      map[string]string
		url      string
		insecure bool
	}{
		{nil, "http://127.0.0.1:8080", false},
		{map[string]string{"APPROVALS_LISTEN": ":9000"}, "http://127.0.0.1:9000", false},
		{map[string]string{"APPROVALS_LISTEN": "0.0.0.0:8443", "APPROVALS_TLS_CERT_FILE": "/tls/cert.pem"}, "https://127.0.0.1:8443", true},
	} {
		h := &Healthcheck{Getenv: func(k string) string { return tt.env[k] }}
		if err := h.ParseFlags(nil); err != nil || h.url != tt.url || h.insecure != tt.insecure {
			t.Errorf("env %v: url %q insecure %v (%v); want %q %v", tt.env, h.url, h.insecure, err, tt.url, tt.insecure)
		}
	}
}

// The example env file documents every setting, each secret's _FILE
// variant, and nothing that is not a setting.
func TestEnvExampleNamesEverySetting(t *testing.T) {
	b, err := os.ReadFile("../../deploy/approvals.env.example")
	if err != nil {
		t.Fatal(err)
	}
	named := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, _, ok := strings.Cut(line, "=")
		if !ok || strings.ContainsAny(name, " \t\"'") {
			t.Errorf("line %q is not VAR=value", line)
		}
		named[name] = true
	}
	for _, s := range settings {
		if !named[s.env] {
			t.Errorf("%s is missing from deploy/approvals.env.example", s.env)
		}
		if s.secret && !named[s.env+"_FILE"] {
			t.Errorf("%s_FILE is missing from deploy/approvals.env.example", s.env)
		}
	}
}

func TestStoreBackendsAreAnExplicitMap(t *testing.T) {
	c := &Config{DB: filepath.Join(t.TempDir(), "approvals.db")}
	if _, ok := storeBackends()[c.StoreBackend()]; !ok || c.StoreBackend() != "bolt" {
		t.Fatalf("backend %q not in the map %v", c.StoreBackend(), storeBackends())
	}
	s, err := openStore(c, storeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	// bbolt offers backups; a backend without them leaves the route off.
	if backupOf(s) == nil {
		t.Error("the bolt store offers no backup")
	}
	if backupOf(memory.New(nil)) != nil {
		t.Error("the memory store offers a backup it has not")
	}
}
