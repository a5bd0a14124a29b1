// Package pgtest gives tests a real PostgreSQL server: the one
// APPROVALS_TEST_DATABASE_URL names, or else a throwaway cluster it starts
// itself from the PostgreSQL binaries under /usr/lib/postgresql/*/bin
// (initdb, pg_ctl), run as the user postgres (or nobody) when the test runs
// as root. Each test gets a database of its own. Without either, tests
// skip with a message saying what to install or set.
package pgtest

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// EnvURL names the variable that points tests at an existing server; its
// user must be allowed to create databases.
const EnvURL = "APPROVALS_TEST_DATABASE_URL"

// EnvRequire, set to 1 (CI sets it), makes a test without PostgreSQL fail
// instead of skipping.
const EnvRequire = "APPROVALS_TEST_REQUIRE_POSTGRES"

func skipOrFail(t testing.TB, format string, args ...any) {
	t.Helper()
	if os.Getenv(EnvRequire) == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

// StartClusterFor starts a cluster of t's own (for a test that stops and
// starts it), destroyed when t ends; without PostgreSQL it skips t (or
// fails it, under APPROVALS_TEST_REQUIRE_POSTGRES=1).
func StartClusterFor(t testing.TB) *Cluster {
	t.Helper()
	c, err := StartCluster()
	if err != nil {
		skipOrFail(t, "no PostgreSQL cluster for this test: %v", err)
	}
	t.Cleanup(c.Destroy)
	return c
}

// Server is a PostgreSQL server tests create databases in.
type Server struct {
	// URL connects to its maintenance database (postgres).
	URL string
	// Cluster is set when pgtest started the server itself; nil for
	// APPROVALS_TEST_DATABASE_URL.
	Cluster *Cluster
}

var (
	once    sync.Once
	shared  *Server
	skipMsg string
	dbSeq   atomic.Int64
)

// Main runs a test binary's tests and stops the cluster pgtest started, if
// any. Call it from TestMain: os.Exit(pgtest.Main(m)).
func Main(m *testing.M) int {
	code := m.Run()
	if shared != nil && shared.Cluster != nil {
		shared.Cluster.Destroy()
	}
	return code
}

// Get returns the shared server, starting a cluster on first use, or skips
// the test when there is none.
func Get(t testing.TB) *Server {
	t.Helper()
	once.Do(func() {
		if u := os.Getenv(EnvURL); u != "" {
			shared = &Server{URL: u}
			return
		}
		c, err := StartCluster()
		if err != nil {
			skipMsg = err.Error()
			return
		}
		shared = &Server{URL: c.URL("postgres"), Cluster: c}
	})
	if shared == nil {
		skipOrFail(t, "no PostgreSQL for this test: %s (set %s, or install PostgreSQL: apt-get install postgresql)", skipMsg, EnvURL)
	}
	return shared
}

// NewDatabase creates an empty database for t, dropped when t ends, and
// returns its URL.
func NewDatabase(t testing.TB) string {
	t.Helper()
	s := Get(t)
	name := fmt.Sprintf("approvals_test_%d_%d", os.Getpid(), dbSeq.Add(1))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := s.exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("create test database: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := s.exec(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)"); err != nil {
			t.Logf("drop test database %s: %v", name, err)
		}
	})
	return WithDatabase(s.URL, name)
}

func (s *Server) exec(ctx context.Context, sql string) error {
	conn, err := pgx.Connect(ctx, s.URL)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

// WithDatabase returns u naming the database name instead.
func WithDatabase(u, name string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	p.Path = "/" + name
	return p.String()
}

// Cluster is a PostgreSQL cluster in a temporary directory.
type Cluster struct {
	Dir  string
	Port int
	bin  string
	as   string // the user to run the binaries as; "" for the current one
}

// URL returns the URL of database name on the cluster.
func (c *Cluster) URL(name string) string {
	return fmt.Sprintf("postgres://postgres@127.0.0.1:%d/%s?sslmode=disable", c.Port, name)
}

// binDir finds the newest /usr/lib/postgresql/*/bin with initdb.
func binDir() (string, error) {
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	if len(dirs) == 0 {
		return "", errors.New("no initdb on PATH or under /usr/lib/postgresql/*/bin")
	}
	sort.Strings(dirs)
	return filepath.Dir(dirs[len(dirs)-1]), nil
}

// StartCluster initialises and starts a cluster listening on 127.0.0.1 on
// a free port, trusting local connections (it is reachable only from this
// machine and lives for one test run).
func StartCluster() (*Cluster, error) {
	bin, err := binDir()
	if err != nil {
		return nil, err
	}
	c := &Cluster{bin: bin}
	if os.Geteuid() == 0 {
		for _, name := range []string{"postgres", "nobody"} {
			if _, err := user.Lookup(name); err == nil {
				c.as = name
				break
			}
		}
		if c.as == "" {
			return nil, errors.New("running as root and there is no user postgres or nobody to run PostgreSQL as")
		}
		if _, err := exec.LookPath("runuser"); err != nil {
			return nil, errors.New("running as root without runuser to run PostgreSQL as another user")
		}
	}
	dir, err := os.MkdirTemp("", "approvals-pg-")
	if err != nil {
		return nil, err
	}
	c.Dir = dir
	if c.as != "" {
		u, _ := user.Lookup(c.as)
		if out, err := exec.Command("chown", u.Username, dir).CombinedOutput(); err != nil {
			os.RemoveAll(dir)
			return nil, fmt.Errorf("chown %s: %v: %s", dir, err, out)
		}
	}
	if out, err := c.run("initdb", "-D", c.data(), "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("initdb: %v: %s", err, out)
	}
	if c.Port, err = freePort(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := c.Start(); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return c, nil
}

func (c *Cluster) data() string { return filepath.Join(c.Dir, "data") }

func (c *Cluster) run(prog string, args ...string) ([]byte, error) {
	path := filepath.Join(c.bin, prog)
	var cmd *exec.Cmd
	if c.as != "" {
		cmd = exec.Command("runuser", append([]string{"-u", c.as, "--", path}, args...)...)
	} else {
		cmd = exec.Command(path, args...)
	}
	cmd.Dir = c.Dir
	return cmd.CombinedOutput()
}

// Start starts the (stopped) cluster and waits until it accepts
// connections.
func (c *Cluster) Start() error {
	opts := fmt.Sprintf("-p %d -k %s -c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300", c.Port, c.Dir)
	if out, err := c.run("pg_ctl", "-D", c.data(), "-l", filepath.Join(c.Dir, "log"), "-w", "-t", "60", "-o", opts, "start"); err != nil {
		return fmt.Errorf("pg_ctl start: %v: %s%s", err, out, c.logTail())
	}
	return nil
}

// Stop stops the cluster at once (fast mode: connections are cut).
func (c *Cluster) Stop() error {
	if out, err := c.run("pg_ctl", "-D", c.data(), "-m", "fast", "-w", "stop"); err != nil {
		return fmt.Errorf("pg_ctl stop: %v: %s", err, out)
	}
	return nil
}

// Destroy stops the cluster and removes its directory.
func (c *Cluster) Destroy() {
	_, _ = c.run("pg_ctl", "-D", c.data(), "-m", "immediate", "-w", "stop")
	os.RemoveAll(c.Dir)
}

func (c *Cluster) logTail() string {
	b, _ := os.ReadFile(filepath.Join(c.Dir, "log"))
	s := string(b)
	if len(s) > 2000 {
		s = s[len(s)-2000:]
	}
	return strings.TrimSpace("\n" + s)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
