package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"text/tabwriter"
	"time"
)

// target is one thing a run puts under load: an HTTP endpoint or an
// in-process operation, driven by Conc workers in a closed loop (each
// sends its next call when the previous one is answered).
type target struct {
	Name string
	Conc int
	// newWorker returns the operation worker w repeats; it returns an
	// error for a failed call or a wrong answer. It is called at the start
	// of every phase.
	newWorker func(w int) func() error
	// close releases what the target holds (idle connections).
	close func()
	// dials counts the connections an HTTP target opened.
	dials *atomic.Int64
}

// PhaseResult is one target run for one round.
type PhaseResult struct {
	Target      string  `json:"target"`
	Round       int     `json:"round"`
	Concurrency int     `json:"concurrency"`
	Ops         uint64  `json:"ops"`
	Errors      uint64  `json:"errors"`
	FirstError  string  `json:"first_error,omitempty"`
	Seconds     float64 `json:"seconds"`
	PerSecond   float64 `json:"per_second"`
	Latency     Latency `json:"latency_ms"`
	// Connections is how many connections an HTTP target opened during
	// the phase: more than Concurrency means it reconnected.
	Connections int64 `json:"connections"`
	// CPUSeconds is the CPU time this process used during the phase, the
	// in-process server's included (with -url, only the load
	// generator's); CPUPerCall divides it by the calls, in microseconds.
	// On a shared machine it varies much less than calls/s.
	CPUSeconds float64 `json:"cpu_seconds"`
	CPUPerCall float64 `json:"cpu_us_per_call"`

	hist *histogram
}

// add adds a round's errors, time, connections and CPU time to the sum s
// and keeps the first error; the caller sums the calls (from the
// histograms, or wrk's counts).
func (s *PhaseResult) add(p PhaseResult) {
	s.Errors += p.Errors
	s.Seconds += p.Seconds
	s.Connections += p.Connections
	s.CPUSeconds += p.CPUSeconds
	if s.FirstError == "" {
		s.FirstError = p.FirstError
	}
}

// setRates sets PerSecond and CPUPerCall from the sums of calls, time and
// CPU time.
func (s *PhaseResult) setRates() {
	if s.Seconds > 0 {
		s.PerSecond = float64(s.Ops) / s.Seconds
	}
	if s.Ops > 0 {
		s.CPUPerCall = s.CPUSeconds / float64(s.Ops) * 1e6
	}
}

// Latency holds latency percentiles in milliseconds.
type Latency struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

func latencyOf(h *histogram) Latency {
	ms := func(d time.Duration) float64 { return float64(d) / 1e6 }
	return Latency{P50: ms(h.quantile(0.50)), P90: ms(h.quantile(0.90)), P99: ms(h.quantile(0.99)), Max: ms(h.max), Mean: ms(h.mean())}
}

// maxConsecutiveErrors stops a worker whose every call fails (a server that
// is gone), so that it does not spin for the rest of the phase.
const maxConsecutiveErrors = 100

// runPhase drives t for d and returns what it measured. Workers start
// their last call before the deadline, so a phase lasts d plus one call.
func runPhase(ctx context.Context, t target, d time.Duration) PhaseResult {
	hists := make([]histogram, t.Conc)
	errs := make([]uint64, t.Conc)
	firstErr := make([]error, t.Conc)
	ops := make([]func() error, t.Conc)
	for w := range t.Conc {
		ops[w] = t.newWorker(w)
	}
	var dialsBefore int64
	if t.dials != nil {
		dialsBefore = t.dials.Load()
	}
	var wg sync.WaitGroup
	cpu0 := cpuTime()
	start := time.Now()
	deadline := start.Add(d)
	for w := range t.Conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			h, op := &hists[w], ops[w]
			failing := 0
			for ctx.Err() == nil {
				t0 := time.Now()
				if !t0.Before(deadline) {
					return
				}
				err := op()
				h.record(time.Since(t0))
				if err == nil {
					failing = 0
					continue
				}
				errs[w]++
				if firstErr[w] == nil {
					firstErr[w] = err
				}
				if failing++; failing >= maxConsecutiveErrors {
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	r := PhaseResult{Target: t.Name, Concurrency: t.Conc, Seconds: elapsed.Seconds(), CPUSeconds: (cpuTime() - cpu0).Seconds(), hist: &histogram{}}
	for w := range t.Conc {
		r.hist.merge(&hists[w])
		r.Errors += errs[w]
		if r.FirstError == "" && firstErr[w] != nil {
			r.FirstError = firstErr[w].Error()
		}
	}
	r.Ops = r.hist.n
	if t.dials != nil {
		r.Connections = t.dials.Load() - dialsBefore
	}
	r.PerSecond = float64(r.Ops) / elapsed.Seconds()
	if r.Ops > 0 {
		r.CPUPerCall = r.CPUSeconds / float64(r.Ops) * 1e6
	}
	r.Latency = latencyOf(r.hist)
	return r
}

// cpuTime returns the user and system CPU time this process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// LoadResult is the outcome of interleaved rounds over several targets.
type LoadResult struct {
	Phases  []PhaseResult `json:"phases"`
	Targets []PhaseResult `json:"targets"` // all rounds of each target together; Round is 0
	Ratios  []Ratio       `json:"ratios,omitempty"`
}

// Ratio compares the throughput of a target with a baseline's: over all
// rounds, and round by round (each round runs both within seconds of each
// other, so its ratio is what the machine's noise disturbs least).
type Ratio struct {
	Target   string    `json:"target"`
	Baseline string    `json:"baseline"`
	Overall  float64   `json:"overall"`
	PerRound []float64 `json:"per_round"`
	Median   float64   `json:"median"`
	// CPU compares CPU time per call instead: the baseline's divided by
	// the target's, over all rounds. It is the throughput ratio the two
	// would have if both had the machine's CPU to themselves. Zero when
	// it means nothing (a -url target, or an I/O-bound baseline).
	CPU float64 `json:"cpu,omitempty"`
}

// runRounds warms every target up, then runs rounds of d each, rotating
// the order of the targets from round to round so that none always runs
// first (or last) in a minute of heavier load. It prints each phase as it
// ends.
//
// around, when not nil, is called before each measured phase and returns
// what to call after it (to profile one target only).
func runRounds(ctx context.Context, out io.Writer, targets []target, rounds int, d, warmup time.Duration, around func(target string, round int) func()) (LoadResult, error) {
	var res LoadResult
	if warmup > 0 {
		for _, t := range targets {
			if p := runPhase(ctx, t, warmup); p.Ops > 0 && p.Errors == p.Ops {
				return res, fmt.Errorf("%s: every call failed during the warm-up: %s", t.Name, p.FirstError)
			}
		}
	}
	printPhaseHeader(out)
	for r := range rounds {
		for i := range targets {
			if err := ctx.Err(); err != nil {
				return res, err
			}
			t := targets[(i+r)%len(targets)]
			after := func() {}
			if around != nil {
				after = around(t.Name, r+1)
			}
			p := runPhase(ctx, t, d)
			after()
			p.Round = r + 1
			res.Phases = append(res.Phases, p)
			printPhase(out, fmt.Sprint(p.Round), p)
		}
	}
	for _, t := range targets {
		sum := PhaseResult{Target: t.Name, Concurrency: t.Conc, hist: &histogram{}}
		for _, p := range res.Phases {
			if p.Target != t.Name {
				continue
			}
			sum.hist.merge(p.hist)
			sum.add(p)
		}
		sum.Ops = sum.hist.n
		sum.setRates()
		sum.Latency = latencyOf(sum.hist)
		res.Targets = append(res.Targets, sum)
	}
	fmt.Fprintln(out)
	fmt.Fprintln(out, "all rounds:")
	printPhaseHeader(out)
	for _, p := range res.Targets {
		printPhase(out, "all", p)
	}
	for _, p := range res.Targets {
		if p.FirstError != "" {
			fmt.Fprintf(out, "%s: %d errors, the first: %s\n", p.Target, p.Errors, p.FirstError)
		}
	}
	return res, nil
}

// ratio compares target with baseline in res. With cpu, it also compares
// their CPU time per call: only meaningful when both are CPU-bound and
// served in this process.
func (res *LoadResult) ratio(target, baseline string, cpu bool) Ratio {
	rt := Ratio{Target: target, Baseline: baseline}
	var t, b PhaseResult
	for _, p := range res.Targets {
		switch p.Target {
		case target:
			t = p
		case baseline:
			b = p
		}
	}
	if b.PerSecond > 0 {
		rt.Overall = t.PerSecond / b.PerSecond
	}
	if cpu && t.CPUPerCall > 0 {
		rt.CPU = b.CPUPerCall / t.CPUPerCall
	}
	rounds := map[int][2]float64{}
	for _, p := range res.Phases {
		v := rounds[p.Round]
		switch p.Target {
		case target:
			v[0] = p.PerSecond
		case baseline:
			v[1] = p.PerSecond
		}
		rounds[p.Round] = v
	}
	keys := make([]int, 0, len(rounds))
	for k := range rounds {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	for _, k := range keys {
		if v := rounds[k]; v[1] > 0 {
			rt.PerRound = append(rt.PerRound, v[0]/v[1])
		}
	}
	rt.Median = median(rt.PerRound)
	res.Ratios = append(res.Ratios, rt)
	return rt
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := slices.Clone(v)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func printRatio(out io.Writer, r Ratio) {
	fmt.Fprintf(out, "%s / %s: %.2fx over all rounds; per round", r.Target, r.Baseline, r.Overall)
	for _, v := range r.PerRound {
		fmt.Fprintf(out, " %.2f", v)
	}
	fmt.Fprintf(out, " (median %.2fx)", r.Median)
	if r.CPU > 0 {
		fmt.Fprintf(out, "; by CPU time per call %.2fx", r.CPU)
	}
	fmt.Fprintln(out)
}

func newTable(out io.Writer) *tabwriter.Writer {
	return tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
}

// The phase table has fixed columns, so that rows printed one by one as
// phases end line up.
const phaseFormat = "%5s  %-9s %5s %6s %9s %7s %7s %9s %8s %8s %8s %8s %11s\n"

func printPhaseHeader(out io.Writer) {
	fmt.Fprintf(out, phaseFormat, "round", "target", "conns", "dials", "calls", "errors", "seconds", "calls/s", "p50 ms", "p90 ms", "p99 ms", "max ms", "cpu us/call")
}

func printPhase(out io.Writer, round string, p PhaseResult) {
	fmt.Fprintf(out, phaseFormat, round, p.Target, fmt.Sprint(p.Concurrency), fmt.Sprint(p.Connections), fmt.Sprint(p.Ops), fmt.Sprint(p.Errors),
		fmt.Sprintf("%.1f", p.Seconds), fmt.Sprintf("%.0f", p.PerSecond), fmt.Sprintf("%.2f", p.Latency.P50),
		fmt.Sprintf("%.2f", p.Latency.P90), fmt.Sprintf("%.2f", p.Latency.P99), fmt.Sprintf("%.1f", p.Latency.Max), fmt.Sprintf("%.1f", p.CPUPerCall))
}

// newClient returns an HTTP/1.1 client that keeps conc connections to one
// host open, as a load generator must: the default keeps only two idle
// connections per host and would open and close the rest on every call.
//
// dials, when not nil, counts the connections opened: a load generator
// that keeps reconnecting measures TCP set-up, not the server.
func newClient(conc int, dials *atomic.Int64) *http.Client {
	dialer := &net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}
	return &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
				if dials != nil {
					dials.Add(1)
				}
				return dialer.DialContext(ctx, network, addr)
			},
			MaxIdleConns:        conc,
			MaxIdleConnsPerHost: conc,
			MaxConnsPerHost:     conc,
			IdleConnTimeout:     90 * time.Second,
			DisableCompression:  true,
		},
		Timeout: 60 * time.Second,
	}
}

// call is one HTTP call of a worker: the body to send, and the connector
// action the answer must carry.
type call struct {
	body []byte
	want string
}

// httpTarget posts the calls next returns to url with conc connections,
// checking that every answer has the wanted action.
func httpTarget(name, url, auth string, conc int, next func(w int) func() call) target {
	var dials atomic.Int64
	client := newClient(conc, &dials)
	return target{
		Name:  name,
		Conc:  conc,
		dials: &dials,
		newWorker: func(w int) func() error {
			nextCall := next(w)
			var buf bytes.Buffer
			return func() error { return doCall(client, url, auth, nextCall(), &buf) }
		},
		close: client.CloseIdleConnections,
	}
}

// doCall posts c.body to url and checks the answer, reading it into buf.
func doCall(client *http.Client, url, auth string, c call, buf *bytes.Buffer) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(c.body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	buf.Reset()
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	return checkAnswer(resp.StatusCode, buf.Bytes(), c.want)
}

// checkAnswer checks a connector answer: 200 with the wanted action, or
// 400 for a ValidationError.
func checkAnswer(status int, body []byte, want string) error {
	wantStatus := http.StatusOK
	if want == "ValidationError" {
		wantStatus = http.StatusBadRequest
	}
	if status != wantStatus || !bytes.Contains(body, []byte(`"action":"`+want+`"`)) {
		if len(body) > 200 {
			body = body[:200]
		}
		return fmt.Errorf("answer %d %s, want %d %s", status, bytes.TrimSpace(body), wantStatus, want)
	}
	return nil
}
