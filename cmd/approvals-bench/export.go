package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
	"github.com/approvals-dev/approvals/store/bolt"
)

// ExportResult is what -mode export measured.
type ExportResult struct {
	Path   string      `json:"path"`
	Binary string      `json:"binary"`
	Format string      `json:"format"`
	Runs   []ExportRun `json:"runs"`
	// MedianRowsPerSecond is the median of the runs; the peaks are the
	// largest of any run.
	MedianRowsPerSecond float64 `json:"median_rows_per_second"`
	PeakRSSMB           float64 `json:"peak_rss_mb"`
	PeakAnonMB          float64 `json:"peak_anon_mb"`
}

// ExportRun is one `approvals export`.
type ExportRun struct {
	Cold          bool    `json:"cold"`
	Rows          int     `json:"rows"`
	OutputBytes   int64   `json:"output_bytes"`
	Seconds       float64 `json:"seconds"`
	RowsPerSecond float64 `json:"rows_per_second"`
	UserSeconds   float64 `json:"user_seconds"`
	SysSeconds    float64 `json:"sys_seconds"`
	// MaxRSSMB is the kernel's peak resident set (getrusage ru_maxrss):
	// the process's memory plus the pages of the data file it mapped.
	MaxRSSMB float64 `json:"max_rss_mb"`
	// PeakAnonMB and PeakFileMB split the sampled peak: the process's own
	// memory (heap, stacks) and the mapped data file's pages.
	PeakAnonMB float64 `json:"peak_anon_mb"`
	PeakFileMB float64 `json:"peak_file_mb"`
}

// runExport times `approvals export` over a seeded file, -rounds times.
func (b *Bench) runExport(ctx context.Context) error {
	if _, err := os.Stat(b.db); err != nil {
		return err
	}
	bin := "(in process)"
	if !b.inProcess {
		var err error
		if bin, err = b.approvalsBinary(ctx); err != nil {
			return err
		}
	}
	res := &ExportResult{Path: b.db, Binary: bin, Format: b.format}
	b.result.Export = res
	const format = "%3s  %-5s %9s %9s %7s %8s %6s %6s %10s %12s %12s\n"
	fmt.Fprintf(b.Stdout, format, "run", "cache", "rows", "output MB", "seconds", "rows/s", "user s", "sys s", "max RSS MB", "peak anon MB", "peak file MB")
	var rates []float64
	for i := range b.rounds {
		if b.cold {
			if err := evict(b.db); err != nil {
				return err
			}
		}
		export := b.exportOnce
		if b.inProcess {
			export = b.exportInProcess
		}
		run, err := export(ctx, bin, i)
		if err != nil {
			return err
		}
		run.Cold = b.cold
		res.Runs = append(res.Runs, run)
		rates = append(rates, run.RowsPerSecond)
		res.PeakRSSMB = max(res.PeakRSSMB, run.MaxRSSMB)
		res.PeakAnonMB = max(res.PeakAnonMB, run.PeakAnonMB)
		cache := "warm"
		if run.Cold {
			cache = "cold"
		}
		fmt.Fprintf(b.Stdout, format, fmt.Sprint(i+1), cache, fmt.Sprint(run.Rows), fmt.Sprintf("%.1f", mb(run.OutputBytes)),
			fmt.Sprintf("%.2f", run.Seconds), fmt.Sprintf("%.0f", run.RowsPerSecond), fmt.Sprintf("%.2f", run.UserSeconds),
			fmt.Sprintf("%.2f", run.SysSeconds), fmt.Sprintf("%.1f", run.MaxRSSMB), fmt.Sprintf("%.1f", run.PeakAnonMB), fmt.Sprintf("%.1f", run.PeakFileMB))
	}
	res.MedianRowsPerSecond = median(rates)
	rows := res.Runs[len(res.Runs)-1].Rows
	b.goal(fmt.Sprintf("export of %d decisions at 100,000 rows/s or more", rows), res.MedianRowsPerSecond >= 100_000, fmt.Sprintf("%.0f rows/s (median of runs)", res.MedianRowsPerSecond))
	b.goal("export resident memory under 150 MB (ru_maxrss, mapped data file included)", res.PeakRSSMB < 150, fmt.Sprintf("%.1f MB; %.1f MB of it the process's own (anonymous) memory", res.PeakRSSMB, res.PeakAnonMB))
	return nil
}

// exportOnce runs `approvals export --db FILE --format F --out OUT` and
// measures it.
func (b *Bench) exportOnce(ctx context.Context, bin string, i int) (ExportRun, error) {
	out := filepath.Join(b.workDir, fmt.Sprintf("export-%d.%s", i+1, b.format))
	defer os.Remove(out)
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "export", "--db", b.db, "--format", b.format, "--out", out)
	cmd.Stdout, cmd.Stderr = io.Discard, &stderr
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return ExportRun{}, err
	}
	sampler := sampleMemory(cmd.Process.Pid, 10*time.Millisecond)
	err := cmd.Wait()
	elapsed := time.Since(start)
	peaks := sampler.Stop()
	if err != nil {
		return ExportRun{}, fmt.Errorf("approvals export: %w: %s", err, bytes.TrimSpace(stderr.Bytes()))
	}
	run := ExportRun{Seconds: elapsed.Seconds(), PeakAnonMB: mb(peaks.Anon), PeakFileMB: mb(peaks.File)}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		run.MaxRSSMB = float64(ru.Maxrss) / 1024 // kB on Linux
		run.UserSeconds = time.Duration(ru.Utime.Nano()).Seconds()
		run.SysSeconds = time.Duration(ru.Stime.Nano()).Seconds()
	}
	lines, size, err := countLines(out)
	if err != nil {
		return run, err
	}
	run.OutputBytes = size
	// CSV has a header line and JSON a closing "]" line; NDJSON neither.
	run.Rows = lines
	if b.format != "ndjson" {
		run.Rows--
	}
	run.RowsPerSecond = float64(run.Rows) / elapsed.Seconds()
	return run, nil
}

func countLines(path string) (lines int, size int64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	r := bufio.NewReaderSize(f, 1<<20)
	buf := make([]byte, 1<<20)
	for {
		n, err := r.Read(buf)
		lines += bytes.Count(buf[:n], []byte{'\n'})
		size += int64(n)
		if err == io.EOF {
			return lines, size, nil
		}
		if err != nil {
			return lines, size, err
		}
	}
}

// exportInProcess runs what `approvals export` runs (a read-only store and
// export.Decisions) in this process, so that -cpuprofile can see
// it. Memory is this process's: the Go heap's peak is sampled as "anon".
func (b *Bench) exportInProcess(ctx context.Context, _ string, i int) (ExportRun, error) {
	out := filepath.Join(b.workDir, fmt.Sprintf("export-%d.%s", i+1, b.format))
	defer os.Remove(out)
	f, err := os.Create(out)
	if err != nil {
		return ExportRun{}, err
	}
	defer f.Close()
	var before syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &before)
	sampler := sampleMemory(os.Getpid(), 10*time.Millisecond)
	if b.cpuProfile != "" {
		stop, err := startCPUProfile(fmt.Sprintf("%s.export.%d", b.cpuProfile, i+1))
		if err != nil {
			return ExportRun{}, err
		}
		defer stop()
	}
	start := time.Now()
	s, err := bolt.Open(b.db, bolt.Options{ReadOnly: true})
	if err != nil {
		return ExportRun{}, err
	}
	n, err := export.Decisions(ctx, f, s, approvals.DecisionQuery{}, export.Format(b.format), nil)
	if cerr := s.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = f.Sync()
	}
	elapsed := time.Since(start)
	peaks := sampler.Stop()
	if err != nil {
		return ExportRun{}, err
	}
	var after syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &after)
	st, err := f.Stat()
	if err != nil {
		return ExportRun{}, err
	}
	return ExportRun{
		Rows: n, OutputBytes: st.Size(), Seconds: elapsed.Seconds(), RowsPerSecond: float64(n) / elapsed.Seconds(),
		UserSeconds: time.Duration(after.Utime.Nano() - before.Utime.Nano()).Seconds(),
		SysSeconds:  time.Duration(after.Stime.Nano() - before.Stime.Nano()).Seconds(),
		MaxRSSMB:    mb(peaks.RSS), PeakAnonMB: mb(peaks.Anon), PeakFileMB: mb(peaks.File),
	}, nil
}
