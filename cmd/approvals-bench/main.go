// Command approvals-bench measures the approvals server under load and at
// scale, and compares it with baselines measured in the same run, so that
// its results survive a noisy, shared machine.
//
//	approvals-bench -mode check     check-approval-status vs a bare Echo handler
//	approvals-bench -mode wrk       check-approval-status of a separate `approvals serve`
//	                                process vs a separate Echo process, driven by wrk
//	approvals-bench -mode request   request-approval (a new person, a durable write, per call)
//	                                vs the Echo handler and raw bbolt fsyncs
//	approvals-bench -mode rawfsync  raw bbolt: one transaction and fsync per write
//	approvals-bench -mode seed      build a data file of -n requests (decided ones too)
//	approvals-bench -mode queue     first pages of the queue and GET /api/v1/requests
//	                                on a seeded file, and start-up time
//	approvals-bench -mode export    `approvals export` of a seeded file: rows/s, memory
//
// The load modes start the server in this process (the handler stack of
// `approvals serve` over a bbolt file in a temporary folder, on a loopback
// port) or drive a running one given by -url. Targets run in interleaved
// rounds, and results are printed as tables and ratios; -out writes them
// as JSON. docs/BENCHMARKS.md has the commands and the numbers.
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/approvals-dev/approvals/cmd/internal/command"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// run runs one benchmark and returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	return command.Run(ctx, &Bench{Stdout: stdout, Stderr: stderr}, args, stderr, "approvals-bench", errUsage)
}

var errUsage = errors.New("usage")

// Bench is one run of the benchmark tool.
type Bench struct {
	Stdout, Stderr io.Writer

	mode           string
	conc           int
	duration       time.Duration
	warmup         time.Duration
	rounds         int
	url            string
	user           string
	password       string
	out            string
	dir            string
	keep           bool
	people         int
	mix            string
	approveDomain  string
	denyDomain     string
	db             string
	databaseURL    string // wrk: serve on PostgreSQL
	n              int
	pending        float64
	denied         float64
	bin            string
	format         string
	samples        int
	startups       int
	cold           bool
	inProcess      bool
	cpuProfile     string
	profileTarget  string
	memProfile     string
	wrk            string
	wrkThreads     int
	serverLogLevel string
	listen         string

	tag     string // keeps the people of this run apart from earlier runs'
	workDir string
	system  *system
	// webhooks adds the request mode's webhooks-on target.
	webhooks bool
	closers  []func() error
	result   Result
}

// Result is what -out writes.
type Result struct {
	Mode    string         `json:"mode"`
	Args    []string       `json:"args"`
	Started time.Time      `json:"started"`
	Machine Machine        `json:"machine"`
	Load    *LoadResult    `json:"load,omitempty"`
	Seed    *SeedResult    `json:"seed,omitempty"`
	Queue   *QueueResult   `json:"queue,omitempty"`
	Export  *ExportResult  `json:"export,omitempty"`
	Goals   []GoalResult   `json:"goals,omitempty"`
	Extra   map[string]any `json:"extra,omitempty"`
}

// GoalResult is one goal of issue 6 and whether this run met it.
type GoalResult struct {
	Goal     string `json:"goal"`
	Met      bool   `json:"met"`
	Measured string `json:"measured"`
}

const usage = `Usage: approvals-bench -mode MODE [flags]

Modes:
  check     check-approval-status (people of every status) vs a bare Echo handler
  wrk       the same as processes: a real "approvals serve" (its log on a pipe) vs an Echo
            process (-mode echo), both driven by wrk; needs -bin or the repository, and wrk
  request   request-approval, a new person per call, vs the Echo handler and raw bbolt fsyncs
  rawfsync  raw bbolt, one transaction and fsync per 1 KB write, one writer
  seed      write a data file of -n requests (-db), fast, decided ones too
  queue     on a seeded file (-db): start-up time, first page of the queue and of GET /api/v1/requests
  export    on a seeded file (-db): time "approvals export" (rows/s) and its peak memory
  echo      serve the bare Echo baseline on -listen until interrupted
  extid     External ID start and submit, each call's bearer token checked, vs a bare Echo handler

Flags:
`

// ParseFlags reads the flags.
func (b *Bench) ParseFlags(args []string) error {
	b.result.Args = args
	fs := flag.NewFlagSet("approvals-bench", flag.ContinueOnError)
	fs.SetOutput(b.Stderr)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	fs.StringVar(&b.mode, "mode", "", "check, wrk, request, rawfsync, seed, queue, export, echo or extid (required)")
	fs.IntVar(&b.conc, "c", 64, "connections (concurrent callers) of the load modes")
	fs.DurationVar(&b.duration, "d", 5*time.Second, "duration of each target in each round")
	fs.DurationVar(&b.warmup, "warmup", time.Second, "warm-up of each target before the rounds")
	fs.IntVar(&b.rounds, "rounds", 3, "rounds; each runs every target once, in a rotating order")
	fs.StringVar(&b.url, "url", "", "drive a running server at this base URL instead of one in this process (check, request)")
	fs.StringVar(&b.user, "user", os.Getenv("APPROVALS_CONNECTOR_USERNAME"), "connector Basic user name for -url (default $APPROVALS_CONNECTOR_USERNAME)")
	fs.StringVar(&b.password, "password", os.Getenv("APPROVALS_CONNECTOR_PASSWORD"), "connector Basic password for -url (default $APPROVALS_CONNECTOR_PASSWORD)")
	fs.StringVar(&b.out, "out", "", "also write the results to this JSON file")
	fs.StringVar(&b.dir, "dir", os.TempDir(), "folder for temporary data files (put it on the disk to measure)")
	fs.BoolVar(&b.keep, "keep", false, "keep the temporary folder")
	fs.BoolVar(&b.webhooks, "webhooks", false, "request: also measure a second server with a webhook per sign-up (the notifier on), against webhooks off")
	fs.IntVar(&b.people, "people", 10000, "check: people seeded before the run")
	fs.StringVar(&b.mix, "mix", "50,20,20,10", "check: weights of unknown, approved, pending and denied people among the checks")
	fs.StringVar(&b.approveDomain, "approve-domain", autoApproveDomain, "email domain the server approves by policy (with -url: as configured there)")
	fs.StringVar(&b.denyDomain, "deny-domain", autoDenyDomain, "email domain the server denies by policy (with -url: as configured there)")
	fs.StringVar(&b.db, "db", "", "seed: data file to write; queue, export: data file to read")
	fs.StringVar(&b.databaseURL, "database-url", "", "wrk: run approvals serve on this (empty) PostgreSQL database instead of a bbolt file")
	fs.IntVar(&b.n, "n", 1_000_000, "seed: number of requests")
	fs.Float64Var(&b.pending, "pending", 0.2, "seed: fraction of requests left pending")
	fs.Float64Var(&b.denied, "denied", 0.2, "seed: fraction of requests denied (the rest is approved)")
	fs.StringVar(&b.bin, "bin", "", "queue, export: the approvals binary (default: go build ./cmd/approvals into the temporary folder)")
	fs.StringVar(&b.format, "format", "csv", "export: csv, json or ndjson")
	fs.IntVar(&b.samples, "samples", 20, "queue: timed loads of each page")
	fs.IntVar(&b.startups, "startups", 3, "queue: start-ups of the real binary to time")
	fs.BoolVar(&b.cold, "cold", false, "queue, export: evict the data file from the page cache first (posix_fadvise), as after a reboot")
	fs.BoolVar(&b.inProcess, "inprocess", false, "export: run the export's library calls in this process instead of the binary (for -cpuprofile)")
	fs.StringVar(&b.cpuProfile, "cpuprofile", "", "write a CPU profile of this process (the in-process server included) during the measured rounds")
	fs.StringVar(&b.profileTarget, "profile", "", "with -cpuprofile: profile only the phases of this target (e.g. check; all: every target apart), one file per phase, FILE.TARGET.ROUND")
	fs.StringVar(&b.memProfile, "memprofile", "", "write a heap profile of this process at the end")
	fs.StringVar(&b.wrk, "wrk", "wrk", "wrk: the wrk binary")
	fs.IntVar(&b.wrkThreads, "wrk-threads", 2, "wrk: wrk's threads")
	fs.StringVar(&b.serverLogLevel, "server-log-level", "info", "wrk: APPROVALS_LOG_LEVEL of the approvals serve process (info is the default of serve)")
	fs.StringVar(&b.listen, "listen", "127.0.0.1:0", "echo: address to serve on")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	checks := []struct {
		bad bool
		msg string
	}{
		{!validMode(b.mode), fmt.Sprintf("-mode %q: use check, wrk, request, rawfsync, seed, queue, export, echo or extid", b.mode)},
		{b.mode == "wrk" && (b.wrkThreads < 1 || b.wrkThreads > 64 || b.wrkThreads > b.conc), "-wrk-threads must be between 1 and 64, and at most -c"},
		{b.conc < 1 || b.conc > 10000, "-c must be between 1 and 10000"},
		{b.duration <= 0 || b.duration > time.Hour, "-d must be between 0 and 1h"},
		{b.warmup < 0 || b.warmup > time.Hour, "-warmup must be between 0 and 1h"},
		{b.rounds < 1 || b.rounds > 100, "-rounds must be between 1 and 100"},
		{b.url != "" && b.mode != "check" && b.mode != "request", "-url works with -mode check and request only"},
		{b.url != "" && b.user == "", "-url needs the connector's -user and -password"},
		{b.people < 1 || b.people > 10_000_000, "-people must be between 1 and 10000000"},
		{(b.mode == "seed" || b.mode == "queue" || b.mode == "export") && b.db == "", "-mode " + b.mode + " needs -db FILE"},
		{b.n < 1 || b.n > 100_000_000, "-n must be between 1 and 100000000"},
		{b.pending < 0 || b.denied < 0 || b.pending+b.denied > 1, "-pending and -denied are fractions that add up to 1 at most"},
		{b.format != "csv" && b.format != "json" && b.format != "ndjson", "-format must be csv, json or ndjson"},
		{b.samples < 1 || b.samples > 10000, "-samples must be between 1 and 10000"},
		{b.startups < 0 || b.startups > 100, "-startups must be between 0 and 100"},
	}
	for _, c := range checks {
		if c.bad {
			return errors.New(c.msg)
		}
	}
	return nil
}

// benchModes maps each -mode to the method that runs it.
func benchModes() map[string]func(*Bench, context.Context) error {
	return map[string]func(*Bench, context.Context) error{
		"check":    (*Bench).runCheck,
		"wrk":      (*Bench).runWrk,
		"echo":     (*Bench).runEcho,
		"request":  (*Bench).runRequest,
		"rawfsync": (*Bench).runRawFsync,
		"seed":     (*Bench).runSeed,
		"queue":    (*Bench).runQueue,
		"export":   (*Bench).runExport,
		"extid":    (*Bench).runExtID,
	}
}

func validMode(m string) bool {
	_, ok := benchModes()[m]
	return ok
}

// Run runs the mode.
func (b *Bench) Run(ctx context.Context) (err error) {
	b.result.Mode = b.mode
	b.result.Started = time.Now().UTC()
	b.result.Machine = describeMachine()
	var tag [3]byte
	_, _ = rand.Read(tag[:])
	b.tag = hex.EncodeToString(tag[:])
	fmt.Fprintf(b.Stdout, "approvals-bench -mode %s: %s\n", b.mode, b.result.Machine)
	if b.workDir, err = os.MkdirTemp(b.dir, "approvals-bench-*"); err != nil {
		return err
	}
	err = benchModes()[b.mode](b, ctx)
	b.result.Machine.LoadEnd = loadAverage()
	fmt.Fprintf(b.Stdout, "load average: %s at the start, %s at the end\n", b.result.Machine.LoadStart, b.result.Machine.LoadEnd)
	if err != nil {
		return err
	}
	if b.memProfile != "" {
		if err := writeHeapProfile(b.memProfile); err != nil {
			return err
		}
	}
	if b.out != "" {
		data, err := json.MarshalIndent(b.result, "", "  ")
		if err != nil {
			return err
		}
		if err := os.WriteFile(b.out, append(data, '\n'), 0o644); err != nil {
			return err
		}
	}
	return nil
}

func writeHeapProfile(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	runtime.GC()
	if err := pprof.WriteHeapProfile(f); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// load runs the targets in rounds, under the CPU profiler when asked.
func (b *Bench) load(ctx context.Context, targets []target) (LoadResult, error) {
	for _, t := range targets {
		if t.close != nil {
			b.closers = append(b.closers, func() error { t.close(); return nil })
		}
	}
	fmt.Fprintf(b.Stdout, "%d rounds of %s per target after a %s warm-up, %d connections\n", b.rounds, b.duration, b.warmup, b.conc)
	var around func(string, int) func()
	var profErr error
	switch {
	case b.cpuProfile != "" && b.profileTarget == "":
		stop, err := startCPUProfile(b.cpuProfile)
		if err != nil {
			return LoadResult{}, err
		}
		defer stop()
	case b.cpuProfile != "":
		// One profile per phase of the target: go tool pprof merges them.
		around = func(name string, round int) func() {
			if name != b.profileTarget && b.profileTarget != "all" {
				return func() {}
			}
			stop, err := startCPUProfile(fmt.Sprintf("%s.%s.%d", b.cpuProfile, name, round))
			if err != nil {
				profErr = err
				return func() {}
			}
			return stop
		}
	}
	res, err := runRounds(ctx, b.Stdout, targets, b.rounds, b.duration, b.warmup, around)
	if err == nil {
		err = profErr
	}
	return res, err
}

func startCPUProfile(path string) (stop func(), err error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, err
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, err
	}
	return func() { pprof.StopCPUProfile(); f.Close() }, nil
}

// goal records and prints whether a goal was met.
func (b *Bench) goal(goal string, met bool, measured string) {
	b.result.Goals = append(b.result.Goals, GoalResult{Goal: goal, Met: met, Measured: measured})
	verdict := "MISSED"
	if met {
		verdict = "met"
	}
	fmt.Fprintf(b.Stdout, "goal %s: %s (%s)\n", verdict, goal, measured)
}

// Close stops what Run started and removes the temporary folder unless
// -keep was given.
func (b *Bench) Close() error {
	var errs []error
	for i := len(b.closers) - 1; i >= 0; i-- {
		if err := b.closers[i](); err != nil {
			errs = append(errs, err)
		}
	}
	b.closers = nil
	if b.system != nil {
		if err := b.system.Close(); err != nil {
			errs = append(errs, err)
		}
		b.system = nil
	}
	if b.workDir != "" {
		if b.keep {
			fmt.Fprintf(b.Stdout, "kept %s\n", b.workDir)
		} else if err := os.RemoveAll(b.workDir); err != nil {
			errs = append(errs, err)
		}
		b.workDir = ""
	}
	return errors.Join(errs...)
}
