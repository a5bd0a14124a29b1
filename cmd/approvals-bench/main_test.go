package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
	"github.com/approvals-dev/approvals/store/bolt"
)

// fakeEnv makes the test binary stand in for the approvals binary, so that
// the smoke test need not build it (a minute with the Graph SDK): export
// and serve run the same library code as the real commands.
const fakeEnv = "BENCH_FAKE_APPROVALS_BINARY"

func TestMain(m *testing.M) {
	if os.Getenv(fakeEnv) == "1" && len(os.Args) > 1 && strings.HasPrefix(os.Args[1], "-") {
		// The tool itself, as the wrk mode runs it for -mode echo.
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
		stop()
		os.Exit(code)
	}
	if os.Getenv(fakeEnv) == "1" {
		if err := fakeApprovals(os.Args[1:]); err != nil {
			fmt.Fprintln(os.Stderr, "fake approvals:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// fakeApprovals runs `export --db F --format X --out O` or `serve` (with
// APPROVALS_LISTEN and APPROVALS_DB, until SIGTERM).
func fakeApprovals(args []string) error {
	if len(args) == 0 {
		return errors.New("no command")
	}
	switch args[0] {
	case "export":
		opts := map[string]string{}
		for i := 1; i+1 < len(args); i += 2 {
			opts[strings.TrimPrefix(args[i], "--")] = args[i+1]
		}
		s, err := bolt.Open(opts["db"], bolt.Options{ReadOnly: true})
		if err != nil {
			return err
		}
		defer s.Close()
		f, err := os.Create(opts["out"])
		if err != nil {
			return err
		}
		if _, err := export.Decisions(context.Background(), f, s, approvals.DecisionQuery{}, export.Format(opts["format"]), nil); err != nil {
			f.Close()
			return err
		}
		return f.Close()
	case "serve":
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
		defer stop()
		// The log goes to stderr, as serve's does (the wrk mode reads it).
		sys, err := startSystem(systemOptions{DB: os.Getenv("APPROVALS_DB"), Listen: os.Getenv("APPROVALS_LISTEN"), Log: "/dev/stderr",
			Policy: approvals.Policy{AutoApproveDomains: envList("APPROVALS_AUTO_APPROVE_DOMAINS"), AutoDenyDomains: envList("APPROVALS_AUTO_DENY_DOMAINS")}})
		if err != nil {
			return err
		}
		<-ctx.Done()
		return sys.Close()
	}
	return fmt.Errorf("unknown command %q", args[0])
}

func envList(k string) []string {
	if v := os.Getenv(k); v != "" {
		return strings.Split(v, ",")
	}
	return nil
}

// TestModes runs every mode briefly, as CI does, so that the tool is known
// to work; the numbers mean nothing at this size.
func TestModes(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "seeded.db")
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv(fakeEnv, "1") // inherited by the children only: TestMain already ran
	short := []string{"-d", "150ms", "-rounds", "2", "-warmup", "0", "-dir", dir}
	for _, tc := range []struct {
		name string
		args []string
		want []string // in the output
	}{
		{"check", append([]string{"-mode", "check", "-c", "4", "-people", "40"}, short...),
			[]string{"check / baseline:", "goal met: no failed calls"}},
		{"request", append([]string{"-mode", "request", "-c", "4"}, short...),
			[]string{"request / rawfsync:", "goal met: no failed calls"}},
		{"request-1", append([]string{"-mode", "request", "-c", "1"}, short...),
			[]string{"request-approval at 1 connection"}},
		{"rawfsync", append([]string{"-mode", "rawfsync"}, short...),
			[]string{"rawfsync"}},
		{"seed", []string{"-mode", "seed", "-n", "400", "-db", db, "-dir", dir},
			[]string{"seeded 400 requests", "bytes per request", "requests"}},
		{"queue", []string{"-mode", "queue", "-db", db, "-samples", "2", "-startups", "1", "-bin", self, "-dir", dir},
			[]string{"UI: queue (pending, oldest first)", "start 1: /readyz answered", "start-up under 2 s"}},
		{"export", []string{"-mode", "export", "-db", db, "-rounds", "1", "-bin", self, "-dir", dir},
			[]string{"export of ", "resident memory"}},
		{"wrk", []string{"-mode", "wrk", "-c", "4", "-wrk-threads", "1", "-people", "40", "-d", "1s", "-rounds", "1", "-warmup", "0", "-bin", self, "-dir", dir},
			[]string{"check / baseline:", "goal met: no failed calls", "goal met: one log line per request"}},
		{"export-inprocess", []string{"-mode", "export", "-db", db, "-rounds", "1", "-inprocess", "-format", "ndjson", "-dir", dir},
			[]string{"export of "}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "wrk" {
				if _, err := exec.LookPath("wrk"); err != nil {
					t.Skip("wrk is not installed (Debian package wrk)")
				}
			}
			out := filepath.Join(dir, tc.name+".json")
			var stdout, stderr bytes.Buffer
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if code := run(ctx, append(tc.args, "-out", out), &stdout, &stderr); code != 0 {
				t.Fatalf("exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
			}
			for _, w := range tc.want {
				if !strings.Contains(stdout.String(), w) {
					t.Errorf("output lacks %q:\n%s", w, stdout.String())
				}
			}
			var res Result
			if data, err := os.ReadFile(out); err != nil {
				t.Fatal(err)
			} else if err := json.Unmarshal(data, &res); err != nil {
				t.Fatalf("-out: %v", err)
			}
			if res.Mode == "" || res.Machine.CPUs == 0 {
				t.Errorf("-out lacks the mode or the machine: %+v", res)
			}
		})
	}
	// The seeded file holds every status, and the export found every
	// decision.
	data, err := os.ReadFile(filepath.Join(dir, "seed.json"))
	if err != nil {
		t.Fatal(err)
	}
	var seed Result
	if err := json.Unmarshal(data, &seed); err != nil {
		t.Fatal(err)
	}
	data, err = os.ReadFile(filepath.Join(dir, "export.json"))
	if err != nil {
		t.Fatal(err)
	}
	var export Result
	if err := json.Unmarshal(data, &export); err != nil {
		t.Fatal(err)
	}
	st := seed.Seed.ByStatus
	if st["pending"] == 0 || st["approved"] == 0 || st["denied"] == 0 {
		t.Errorf("seeded statuses %v, want some of each", st)
	}
	if got, want := export.Export.Runs[0].Rows, st["approved"]+st["denied"]; got != want {
		t.Errorf("exported %d rows, want %d decisions", got, want)
	}
}

func TestFlags(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"-mode", "nope"},
		{"-mode", "seed"},
		{"-mode", "check", "-c", "0"},
		{"-mode", "queue", "-url", "http://127.0.0.1:1"},
		{"-mode", "check", "-mix", "1,2"},
		{"-mode", "seed", "-db", "x", "-pending", "0.8", "-denied", "0.5"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(context.Background(), args, &stdout, &stderr); code == 0 {
			t.Errorf("%q: exit 0, want an error", args)
		}
	}
}

func TestHistogram(t *testing.T) {
	var h histogram
	for i := 1; i <= 1000; i++ {
		h.record(time.Duration(i) * time.Microsecond)
	}
	for _, tc := range []struct {
		q    float64
		want time.Duration
	}{{0.5, 500 * time.Microsecond}, {0.9, 900 * time.Microsecond}, {0.99, 990 * time.Microsecond}, {1, time.Millisecond}} {
		got := h.quantile(tc.q)
		if d := got - tc.want; d < -tc.want/50 || d > tc.want/50 {
			t.Errorf("quantile(%v) = %v, want %v within 2%%", tc.q, got, tc.want)
		}
	}
	for _, v := range []uint64{0, 1, 63, 64, 65, 127, 128, 1 << 20, 1<<40 + 12345} {
		got := uint64(histValue(histIndex(v)))
		if d := float64(got) - float64(v); d < -float64(v)/50-1 || d > float64(v)/50+1 {
			t.Errorf("bucket of %d is worth %d", v, got)
		}
	}
}

// parseWrk reads wrk's report, units included.
func TestParseWrk(t *testing.T) {
	const report = `Running 1s test @ http://127.0.0.1:18777/connector/check-approval-status
  1 threads and 4 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.80ms    5.72ms  51.26ms   95.27%
    Req/Sec    18.92k    14.80k   43.37k    80.00%
  Latency Distribution
     50%   82.00us
     75%    1.07ms
     90%    3.69ms
     99%    1.20s
  18820 requests in 1.00s, 3.21MB read
  Socket errors: connect 0, read 2, write 0, timeout 1
  Non-2xx or 3xx responses: 17
Requests/sec:  18735.56
Transfer/sec:      3.20MB
`
	p, err := parseWrk(report)
	if err != nil {
		t.Fatal(err)
	}
	want := PhaseResult{Ops: 18820, Errors: 20, Seconds: 1, PerSecond: 18820, FirstError: "Non-2xx or 3xx responses: 17",
		Latency: Latency{P50: 0.082, P90: 3.69, P99: 1200, Max: 51.26, Mean: 1.8}}
	p.FirstError = strings.TrimSpace(p.FirstError)
	if p.Ops != want.Ops || p.Errors != want.Errors || p.Seconds != want.Seconds || p.PerSecond != want.PerSecond ||
		p.Latency != want.Latency || p.FirstError != want.FirstError {
		t.Errorf("parsed %+v\nwant   %+v", p, want)
	}
	if _, err := parseWrk("unable to connect to 127.0.0.1:1 Connection refused\n"); err == nil {
		t.Error("a report without a total parsed")
	}
}

// The wrk script carries every body as a Lua string, quotes and
// backslashes escaped.
func TestLuaQuote(t *testing.T) {
	if got, want := luaQuote([]byte("{\"a\":\"b\\\\c\nd\"} Tomás")), `"{\"a\":\"b\\\\c\010d\"} Tomás"`; got != want {
		t.Errorf("luaQuote = %s, want %s", got, want)
	}
}
