package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// approvalsBinary returns -bin, or builds the approvals command into the
// temporary folder (from the module this tool is run in).
func (b *Bench) approvalsBinary(ctx context.Context) (string, error) {
	if b.bin != "" {
		return b.bin, nil
	}
	out := filepath.Join(b.workDir, "approvals")
	fmt.Fprintln(b.Stdout, "building github.com/approvals-dev/approvals/cmd/approvals (give -bin to skip) ...")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", out, "github.com/approvals-dev/approvals/cmd/approvals")
	cmd.Stdout, cmd.Stderr = b.Stderr, b.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("building approvals (run from the repository, or give -bin): %w", err)
	}
	return out, nil
}

// evict drops the file's pages from the page cache, as after a reboot,
// so that the next reads come from the disk. Pages another process maps
// stay.
func evict(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		return err
	}
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("evicting %s from the page cache: %w", path, err)
	}
	return nil
}

// memPeaks are the largest memory figures /proc/PID/status showed while a
// process ran, in bytes. RSS counts the pages of the mapped data file
// (RssFile) besides the process's own memory (RssAnon).
type memPeaks struct {
	RSS, Anon, File int64
}

// memSampler polls a child's /proc/PID/status until stopped or until the
// process is gone.
type memSampler struct {
	mu    sync.Mutex
	peaks memPeaks
	stop  chan struct{}
	done  chan struct{}
}

func sampleMemory(pid int, every time.Duration) *memSampler {
	m := &memSampler{stop: make(chan struct{}), done: make(chan struct{})}
	path := "/proc/" + strconv.Itoa(pid) + "/status"
	go func() {
		defer close(m.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			data, err := os.ReadFile(path)
			if err != nil {
				return
			}
			rss, anon, file := statusKB(data, "VmRSS"), statusKB(data, "RssAnon"), statusKB(data, "RssFile")
			m.mu.Lock()
			m.peaks.RSS = max(m.peaks.RSS, rss*1024)
			m.peaks.Anon = max(m.peaks.Anon, anon*1024)
			m.peaks.File = max(m.peaks.File, file*1024)
			m.mu.Unlock()
			select {
			case <-m.stop:
				return
			case <-t.C:
			}
		}
	}()
	return m
}

// Stop ends the sampling and returns the peaks.
func (m *memSampler) Stop() memPeaks {
	close(m.stop)
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.peaks
}

// statusKB returns the value in kB of a line "key:   123 kB".
func statusKB(status []byte, key string) int64 {
	for line := range strings.Lines(string(status)) {
		k, v, ok := strings.Cut(line, ":")
		if ok && k == key {
			n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			return n
		}
	}
	return 0
}

func mb(bytes int64) float64 { return float64(bytes) / (1 << 20) }

func ms(d time.Duration) float64 { return float64(d) / 1e6 }
