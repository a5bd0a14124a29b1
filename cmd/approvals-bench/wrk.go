package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/approvals-dev/approvals/connector"
)

// The wrk mode measures check-approval-status as a deployment sees it:
// the server is a process of its own (the real `approvals serve`, its
// JSON log on a pipe, as in a container), the Echo baseline is another
// (this tool in -mode echo), and the load comes from wrk, a load
// generator written in C that costs far less CPU per call than Go's
// client does, so that the ratio is not pulled towards 1 by a cost both
// sides share.

// wrkBodies is how many distinct check bodies the wrk script cycles
// through, drawn from the -mix.
const wrkBodies = 1024

// proc is a child process of the wrk mode.
type proc struct {
	name string
	cmd  *exec.Cmd
	// exited is closed when the process is gone; err is then its
	// exit status.
	exited chan struct{}
	err    error
	// lines counts the lines it wrote to its stderr pipe.
	lines atomic.Int64
	// tail keeps its last stderr lines, for error messages.
	mu   sync.Mutex
	tail []string
	// readDone is closed when its stderr reached EOF.
	readDone chan struct{}
}

// startProc starts cmd with its stderr on a pipe that this process reads
// (and counts, and otherwise throws away), as a log collector would.
func startProc(name string, cmd *exec.Cmd) (*proc, error) {
	p := &proc{name: name, cmd: cmd, exited: make(chan struct{}), readDone: make(chan struct{})}
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	go func() {
		defer close(p.readDone)
		r := bufio.NewReaderSize(stderr, 64<<10)
		for {
			line, err := r.ReadSlice('\n')
			if len(line) > 0 && line[len(line)-1] == '\n' {
				p.lines.Add(1)
				if n := p.lines.Load(); n <= 20 || line[0] != '{' || bytes.Contains(line, []byte(`"level":"ERROR"`)) {
					p.keep(string(bytes.TrimSpace(line)))
				}
			}
			if err != nil && !errors.Is(err, bufio.ErrBufferFull) {
				return
			}
		}
	}()
	go func() {
		<-p.readDone
		p.err = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

func (p *proc) keep(line string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.tail = append(p.tail, line)
	if len(p.tail) > 40 {
		p.tail = p.tail[1:]
	}
}

func (p *proc) lastLines() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() error {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.exited:
		if p.err != nil {
			return fmt.Errorf("%s exited: %v; its log ends:\n%s", p.name, p.err, p.lastLines())
		}
		return nil
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
		return fmt.Errorf("%s did not stop within 30 s of SIGTERM", p.name)
	}
}

// cpuTime returns the user and system CPU time the process has used so
// far, from /proc/PID/stat (in clock ticks of 10 ms).
func (p *proc) cpuTime() time.Duration {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/stat")
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may hold spaces: count fields
	// after it. utime and stime are fields 14 and 15 of the line.
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(string(data[i+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond
}

// waitAnswer polls until a check call on url is answered as wanted.
func waitAnswer(ctx context.Context, p *proc, url, auth string, c call) error {
	client := newClient(1, nil)
	defer client.CloseIdleConnections()
	var buf bytes.Buffer
	deadline := time.Now().Add(60 * time.Second)
	for {
		err := doCall(client, url, auth, c, &buf)
		if err == nil {
			return nil
		}
		select {
		case <-p.exited:
			return fmt.Errorf("%s exited (%v); its log ends:\n%s", p.name, p.err, p.lastLines())
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s did not answer within 60 s: %v", p.name, err)
		}
	}
}

// serverEnv is the environment of the `approvals serve` process of the
// HTTP benchmarks: people approved by the rule get their account from
// Entra (no job).
func (b *Bench) serverEnv(addr string) []string {
	store := "APPROVALS_DB=" + filepath.Join(b.workDir, "approvals.db")
	if b.databaseURL != "" {
		store = "APPROVALS_DATABASE_URL=" + b.databaseURL // an empty database: the seeding fills it
	}
	return serverEnv(addr, store,
		"APPROVALS_AUTO_APPROVE_DOMAINS="+b.approveDomain,
		"APPROVALS_AUTO_DENY_DOMAINS="+b.denyDomain,
		"APPROVALS_LOG_LEVEL="+b.serverLogLevel,
	)
}

// serverEnv is the environment of an `approvals serve` child on addr
// whose store is the setting store (APPROVALS_DB=... or
// APPROVALS_DATABASE_URL=...): this process's, but for the server's
// configuration, which is all set here, extra last. Graph and the sign-in
// provider are never called (the benchmarks start no provisioning job and
// nobody signs in), so they point at a closed port.
func serverEnv(addr, store string, extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "APPROVALS_") && !strings.HasPrefix(kv, "AZURE_") {
			env = append(env, kv)
		}
	}
	env = append(env,
		"APPROVALS_LISTEN="+addr,
		store,
		"APPROVALS_PUBLIC_URL=http://"+addr,
		"APPROVALS_CONNECTOR_USERNAME="+benchUser,
		"APPROVALS_CONNECTOR_PASSWORD="+benchPassword,
		"APPROVALS_TENANT_DOMAIN=contoso.onmicrosoft.com",
		"APPROVALS_GRAPH_URL=http://127.0.0.1:1/v1.0",
		"AZURE_TENANT_ID=00000000-0000-0000-0000-0000000000e1",
		"AZURE_CLIENT_ID=00000000-0000-0000-0000-0000000000c1",
		"AZURE_CLIENT_SECRET=bench-unused",
		"APPROVALS_OIDC_ISSUER=http://127.0.0.1:1/unused",
		"APPROVALS_OIDC_CLIENT_ID="+benchClientID,
		"APPROVALS_OIDC_CLIENT_SECRET="+benchSecret,
		"APPROVALS_API_KEYS=bench="+benchAPIKey,
	)
	return append(env, extra...)
}

// runWrk measures check-approval-status of a separate `approvals serve`
// process against a separate Echo baseline process, both driven by wrk.
func (b *Bench) runWrk(ctx context.Context) error {
	wrk, err := exec.LookPath(b.wrk)
	if err != nil {
		return fmt.Errorf("-mode wrk needs wrk (the Debian package wrk, or -wrk PATH): %w", err)
	}
	cats, err := b.checkCategories()
	if err != nil {
		return err
	}
	bin, err := b.approvalsBinary(ctx)
	if err != nil {
		return err
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}

	addr, err := freePort()
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, bin, "serve")
	cmd.Env = b.serverEnv(addr)
	server, err := startProc("approvals serve", cmd)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, server.stop)
	serverURL := "http://" + addr
	auth := basicAuth(benchUser, benchPassword)

	baseAddr, err := freePort()
	if err != nil {
		return err
	}
	cmd = exec.CommandContext(ctx, self, "-mode", "echo", "-listen", baseAddr)
	base, err := startProc("the Echo baseline", cmd)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, base.stop)
	baseURL := "http://" + baseAddr

	seeds := b.checkPeople(cats)
	unknown := call{body: appendSignUp(nil, b.tag, "probe", 0, pendingDomain, false), want: "Continue"}
	if err := waitAnswer(ctx, server, serverURL+connector.CheckApprovalStatusPath, auth, unknown); err != nil {
		return err
	}
	if err := waitAnswer(ctx, base, baseURL+connector.CheckApprovalStatusPath, "", unknown); err != nil {
		return err
	}
	fmt.Fprintf(b.Stdout, "approvals serve (log level %s, stderr on a pipe) at %s, the Echo baseline at %s\n", b.serverLogLevel, serverURL, baseURL)
	fmt.Fprintf(b.Stdout, "seeding %d people through %s ...\n", len(seeds), connector.RequestApprovalPath)
	if err := postAll(ctx, serverURL+connector.RequestApprovalPath, auth, seeds, 32); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	// wrk does not read the answers: check a few of each kind here.
	var probes []call
	for _, c := range cats {
		for i := 0; i < len(c.bodies) && i < 5; i++ {
			probes = append(probes, call{body: c.bodies[i], want: c.checkWant})
		}
	}
	if err := postAll(ctx, serverURL+connector.CheckApprovalStatusPath, auth, probes, 1); err != nil {
		return fmt.Errorf("checking the answers: %w", err)
	}

	pick := pickCategory(cats, 0)
	bodies := make([][]byte, wrkBodies)
	for i := range bodies {
		c := pick()
		bodies[i] = c.bodies[i%len(c.bodies)]
	}
	script := filepath.Join(b.workDir, "check.lua")
	if err := os.WriteFile(script, wrkScript(connector.CheckApprovalStatusPath, auth, bodies), 0o600); err != nil {
		return err
	}
	targets := []wrkTarget{
		{name: "baseline", url: baseURL + connector.CheckApprovalStatusPath, proc: base},
		{name: "check", url: serverURL + connector.CheckApprovalStatusPath, proc: server},
	}
	run := func(t wrkTarget, d time.Duration) (PhaseResult, error) {
		return b.wrkPhase(ctx, wrk, script, t, d)
	}
	fmt.Fprintf(b.Stdout, "%d rounds of %s per target after a %s warm-up, wrk with %d threads and %d connections\n", b.rounds, b.duration, b.warmup, b.wrkThreads, b.conc)
	if b.warmup > 0 {
		for _, t := range targets {
			if _, err := run(t, b.warmup); err != nil {
				return err
			}
		}
	}
	var res LoadResult
	printPhaseHeader(b.Stdout)
	for r := range b.rounds {
		for i := range targets {
			t := targets[(i+r)%len(targets)]
			p, err := run(t, b.duration)
			if err != nil {
				return err
			}
			p.Round = r + 1
			res.Phases = append(res.Phases, p)
			printPhase(b.Stdout, fmt.Sprint(p.Round), p)
		}
	}
	for _, t := range targets {
		res.Targets = append(res.Targets, sumWrkPhases(t.name, b.conc, res.Phases))
	}
	fmt.Fprintln(b.Stdout)
	fmt.Fprintln(b.Stdout, "all rounds (latencies: the median of the rounds'; cpu: the server process's and its log reader's, not wrk's):")
	printPhaseHeader(b.Stdout)
	for _, p := range res.Targets {
		printPhase(b.Stdout, "all", p)
	}
	r := res.ratio("check", "baseline", true)
	printRatio(b.Stdout, r)
	b.result.Load = &res

	// Stop the server now: a clean stop must have written a line for
	// every request it answered.
	served := server.lines.Load()
	b.closers = b.closers[:len(b.closers)-2]
	stopErr := server.stop()
	_ = base.stop()
	if stopErr != nil {
		return stopErr
	}
	lines := server.lines.Load()
	var answered uint64
	for _, p := range res.Phases {
		if p.Target == "check" {
			answered += p.Ops
		}
	}
	fmt.Fprintf(b.Stdout, "server log: %d lines in all (%d of them written after SIGTERM), for %d check calls measured (and %d seeding calls and the warm-up)\n",
		lines, lines-served, answered, len(seeds))
	if b.result.Extra == nil {
		b.result.Extra = map[string]any{}
	}
	b.result.Extra["server_log_lines"] = lines
	b.result.Extra["server_log_level"] = b.serverLogLevel
	check := res.Targets[1]
	b.goal(fmt.Sprintf("check-approval-status at %d connections, measured with wrk: at least 0.8x the bare Echo baseline", b.conc), r.Median >= 0.8, fmt.Sprintf("%.2fx (median of rounds)", r.Median))
	b.goal(fmt.Sprintf("check-approval-status at %d connections, measured with wrk: p99 under 25 ms", b.conc), check.Latency.P99 < 25, fmt.Sprintf("p99 %.2f ms", check.Latency.P99))
	b.goal("no failed calls", check.Errors == 0 && res.Targets[0].Errors == 0, fmt.Sprintf("%d errors", check.Errors+res.Targets[0].Errors))
	if b.serverLogLevel == "info" {
		b.goal("one log line per request, none lost on SIGTERM", lines >= int64(answered)+int64(len(seeds)), fmt.Sprintf("%d lines for at least %d requests", lines, answered+uint64(len(seeds))))
	}
	return nil
}

// wrkTarget is one server wrk drives.
type wrkTarget struct {
	name, url string
	proc      *proc
}

// wrkPhase runs wrk against t for d.
func (b *Bench) wrkPhase(ctx context.Context, wrk, script string, t wrkTarget, d time.Duration) (PhaseResult, error) {
	secs := max(1, int(d.Round(time.Second)/time.Second))
	cmd := exec.CommandContext(ctx, wrk, "-t", strconv.Itoa(b.wrkThreads), "-c", strconv.Itoa(b.conc), "-d", strconv.Itoa(secs)+"s",
		"--latency", "-s", script, t.url)
	var out, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	// The CPU time of a call is the server's, and this process's: during
	// a phase it only reads the server's log from the pipe, the work a
	// log collector does for every line.
	cpu0, self0 := t.proc.cpuTime(), cpuTime()
	if err := cmd.Run(); err != nil {
		return PhaseResult{}, fmt.Errorf("wrk against %s: %v: %s%s", t.name, err, stderr.String(), out.String())
	}
	cpu := t.proc.cpuTime() - cpu0 + cpuTime() - self0
	p, err := parseWrk(out.String())
	if err != nil {
		return p, fmt.Errorf("wrk against %s: %w:\n%s", t.name, err, out.String())
	}
	p.Target, p.Concurrency = t.name, b.conc
	p.CPUSeconds = cpu.Seconds()
	if p.Ops > 0 {
		p.CPUPerCall = p.CPUSeconds / float64(p.Ops) * 1e6
	}
	return p, nil
}

// sumWrkPhases adds up the rounds of one target. wrk reports percentiles,
// not samples, so the latencies are the median of the rounds'.
func sumWrkPhases(name string, conc int, phases []PhaseResult) PhaseResult {
	sum := PhaseResult{Target: name, Concurrency: conc}
	var p50, p90, p99, mx, mean []float64
	for _, p := range phases {
		if p.Target != name {
			continue
		}
		sum.Ops += p.Ops
		sum.add(p)
		p50, p90, p99 = append(p50, p.Latency.P50), append(p90, p.Latency.P90), append(p99, p.Latency.P99)
		mx, mean = append(mx, p.Latency.Max), append(mean, p.Latency.Mean)
	}
	sum.setRates()
	sum.Latency = Latency{P50: median(p50), P90: median(p90), P99: median(p99), Max: median(mx), Mean: median(mean)}
	return sum
}

// wrkScript is a wrk Lua script that posts the bodies in turn, each
// thread from its own starting point, with the connector's headers. The
// requests are formatted once, in init, so that wrk spends no time in Lua
// per call.
func wrkScript(path, auth string, bodies [][]byte) []byte {
	var s bytes.Buffer
	s.WriteString("-- written by approvals-bench -mode wrk\nlocal bodies = {\n")
	for _, body := range bodies {
		s.WriteString(luaQuote(body))
		s.WriteString(",\n")
	}
	fmt.Fprintf(&s, `}
local path, auth = %q, %q
local threads = 0
function setup(thread)
  thread:set("offset", threads * 97)
  threads = threads + 1
end
local reqs, i = {}, 0
function init(args)
  local headers = { ["Content-Type"] = "application/json", ["Authorization"] = auth }
  for k, b in ipairs(bodies) do reqs[k] = wrk.format("POST", path, headers, b) end
  i = (offset or 0) %% #reqs
end
function request()
  i = i %% #reqs + 1
  return reqs[i]
end
`, path, auth)
	return s.Bytes()
}

// luaQuote returns b as a Lua string literal: quotes, backslashes and
// control bytes escaped, UTF-8 as is.
func luaQuote(b []byte) string {
	var s strings.Builder
	s.WriteByte('"')
	for _, c := range b {
		switch {
		case c == '"' || c == '\\':
			s.WriteByte('\\')
			s.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&s, "\\%03d", c)
		default:
			s.WriteByte(c)
		}
	}
	s.WriteByte('"')
	return s.String()
}

var (
	wrkTotalRE    = regexp.MustCompile(`(?m)^\s*(\d+) requests in ([\d.]+)(us|ms|s|m|h),`)
	wrkLatencyRE  = regexp.MustCompile(`(?m)^\s*Latency\s+([\d.]+)(us|ms|s|m|h)\s+[\d.]+\w+\s+([\d.]+)(us|ms|s|m|h)`)
	wrkPercentRE  = regexp.MustCompile(`(?m)^\s*(50|90|99)%\s+([\d.]+)(us|ms|s|m|h)\s*$`)
	wrkNon2xxRE   = regexp.MustCompile(`(?m)^\s*Non-2xx or 3xx responses: (\d+)`)
	wrkSocketErrs = regexp.MustCompile(`(?m)^\s*Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`)
)

// parseWrk reads the report of `wrk --latency`.
func parseWrk(out string) (PhaseResult, error) {
	var p PhaseResult
	m := wrkTotalRE.FindStringSubmatch(out)
	if m == nil {
		return p, errors.New("no 'N requests in T' line")
	}
	p.Ops, _ = strconv.ParseUint(m[1], 10, 64)
	p.Seconds = wrkMillis(m[2], m[3]) / 1000
	if p.Seconds > 0 {
		p.PerSecond = float64(p.Ops) / p.Seconds
	}
	if m := wrkLatencyRE.FindStringSubmatch(out); m != nil {
		p.Latency.Mean, p.Latency.Max = wrkMillis(m[1], m[2]), wrkMillis(m[3], m[4])
	}
	for _, m := range wrkPercentRE.FindAllStringSubmatch(out, -1) {
		v := wrkMillis(m[2], m[3])
		switch m[1] {
		case "50":
			p.Latency.P50 = v
		case "90":
			p.Latency.P90 = v
		case "99":
			p.Latency.P99 = v
		}
	}
	if m := wrkNon2xxRE.FindStringSubmatch(out); m != nil {
		n, _ := strconv.ParseUint(m[1], 10, 64)
		p.Errors += n
		p.FirstError = m[0]
	}
	if m := wrkSocketErrs.FindStringSubmatch(out); m != nil {
		for _, s := range m[1:] {
			n, _ := strconv.ParseUint(s, 10, 64)
			p.Errors += n
		}
		if p.FirstError == "" && m[0] != "Socket errors: connect 0, read 0, write 0, timeout 0" {
			p.FirstError = strings.TrimSpace(m[0])
		}
	}
	return p, nil
}

// wrkMillis converts one of wrk's numbers with its unit to milliseconds.
func wrkMillis(v, unit string) float64 {
	f, _ := strconv.ParseFloat(v, 64)
	switch unit {
	case "us":
		return f / 1000
	case "s":
		return f * 1000
	case "m":
		return f * 60_000
	case "h":
		return f * 3_600_000
	}
	return f
}

// runEcho serves the bare Echo baseline on -listen until interrupted:
// the wrk mode runs it as a process of its own.
func (b *Bench) runEcho(ctx context.Context) error {
	base, err := startBaseline(b.listen)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.Stdout, "Echo baseline serving at %s\n", base.URL)
	<-ctx.Done()
	return base.Close()
}
