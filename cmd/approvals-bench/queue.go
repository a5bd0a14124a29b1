package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// QueueResult is what -mode queue measured.
type QueueResult struct {
	Path      string `json:"path"`
	Requests  int    `json:"requests"`
	FileBytes int64  `json:"file_bytes"`
	Cold      bool   `json:"cold"`
	// InProcessOpenMs is the in-process start-up up to an open store and
	// a listening server; InProcessReadyMs up to the first answer of
	// GET /readyz.
	InProcessOpenMs  float64       `json:"in_process_open_ms"`
	InProcessReadyMs float64       `json:"in_process_ready_ms"`
	Pages            []PageTiming  `json:"pages"`
	Startups         []StartupTime `json:"startups,omitempty"`
}

// PageTiming is the time to load one page, the first time and then
// again.
type PageTiming struct {
	Name    string  `json:"name"`
	Path    string  `json:"path"`
	Goal    bool    `json:"goal"` // counted in the goal
	Rows    int     `json:"rows"`
	Bytes   int     `json:"bytes"`
	FirstMs float64 `json:"first_ms"`
	P50Ms   float64 `json:"p50_ms"`
	MaxMs   float64 `json:"max_ms"`
}

// StartupTime is one start of the real `approvals serve` on the file.
type StartupTime struct {
	Cold bool `json:"cold"`
	// ReadyMs runs from the exec to the first 200 of GET /readyz;
	// FirstPageMs to the end of the first GET /api/v1/requests.
	ReadyMs     float64 `json:"ready_ms"`
	FirstPageMs float64 `json:"first_page_ms"`
}

// runQueue times, on a seeded data file, the start-up of the server and
// the first page of the reviewer queue and of GET /api/v1/requests.
func (b *Bench) runQueue(ctx context.Context) error {
	st, err := os.Stat(b.db)
	if err != nil {
		return err
	}
	res := &QueueResult{Path: b.db, FileBytes: st.Size(), Cold: b.cold}
	b.result.Queue = res
	if err := b.queueInProcess(ctx, res); err != nil {
		return err
	}
	if b.startups > 0 {
		if err := b.queueStartups(ctx, res); err != nil {
			return err
		}
	}
	// The goal is judged on the first load after start-up and on the
	// median of the repeats; single repeats on a shared machine catch
	// other processes' bursts (the maximum is reported beside).
	worst, worstMax := 0.0, 0.0
	for _, p := range res.Pages {
		if p.Goal {
			worst = max(worst, p.FirstMs, p.P50Ms)
			worstMax = max(worstMax, p.MaxMs)
		}
	}
	b.goal(fmt.Sprintf("with %d stored requests: first page of the queue and of GET /api/v1/requests under 50 ms", res.Requests),
		worst < 50, fmt.Sprintf("slowest first load or median %.1f ms; slowest single load %.1f ms", worst, worstMax))
	// The real binary's start is the one that counts; in process only
	// when it was not run.
	startup, what := res.InProcessReadyMs, "in process"
	if len(res.Startups) > 0 {
		startup, what = 0, "approvals serve"
		for _, s := range res.Startups {
			startup = max(startup, s.ReadyMs)
		}
	}
	b.goal(fmt.Sprintf("with %d stored requests: start-up under 2 s", res.Requests), startup < 2000, fmt.Sprintf("slowest %.0f ms (%s, to the first answer of /readyz)", startup, what))
	b.goal("database size per request documented", true, fmt.Sprintf("%.0f bytes per request (%d bytes / %d requests)", float64(res.FileBytes)/float64(max(res.Requests, 1)), res.FileBytes, res.Requests))
	return nil
}

func (b *Bench) queueInProcess(ctx context.Context, res *QueueResult) error {
	// The sign-in provider's key is made before the clock starts: it is
	// part of the test rig, not of the server's start-up.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	if b.cold {
		if err := evict(b.db); err != nil {
			return err
		}
	}
	sys, err := startSystem(systemOptions{DB: b.db, SignIn: true, IdPKey: key})
	if err != nil {
		return err
	}
	b.system = sys
	client := &http.Client{Timeout: 30 * time.Second}
	if _, err := get(ctx, client, sys.URL+"/readyz", ""); err != nil {
		return err
	}
	res.InProcessOpenMs = ms(sys.Ready.Sub(sys.Started))
	res.InProcessReadyMs = ms(time.Since(sys.Started))
	counts, err := sys.Store.Count(ctx)
	if err != nil {
		return err
	}
	for _, n := range counts {
		res.Requests += n
	}
	fmt.Fprintf(b.Stdout, "%s: %d requests, %.0f MB; in-process start-up: store open and listening in %.1f ms, first /readyz answered at %.1f ms\n",
		b.db, res.Requests, mb(res.FileBytes), res.InProcessOpenMs, res.InProcessReadyMs)

	// The reviewer signs in (not timed): the provider signs Ada in at once.
	jar, _ := cookiejar.New(nil)
	browser := &http.Client{Jar: jar, Timeout: 30 * time.Second}
	if body, err := get(ctx, browser, sys.URL+"/", ""); err != nil {
		return fmt.Errorf("signing in to the reviewer UI: %w", err)
	} else if !bytes.Contains(body, []byte("<table")) && !bytes.Contains(body, []byte("queue")) {
		return errors.New("signing in to the reviewer UI: the queue page did not come back")
	}
	// The goal covers the queue as a reviewer first sees it and the API's
	// first pages; the other tabs are shown for comparison.
	pages := []struct {
		name, path string
		c          *http.Client
		auth       string
		goal       bool
	}{
		{"API: GET /api/v1/requests (all, newest first)", "/api/v1/requests", client, "Bearer " + benchAPIKey, true},
		{"API: GET /api/v1/requests?status=pending", "/api/v1/requests?status=pending", client, "Bearer " + benchAPIKey, true},
		{"UI: queue (pending, oldest first)", "/", browser, "", true},
		{"UI: queue, all statuses", "/?status=all", browser, "", false},
		{"UI: queue, denied", "/?status=denied", browser, "", false},
	}
	tw := newTable(b.Stdout)
	fmt.Fprintln(tw, "page\trows\tKB\tfirst ms\tp50 ms\tmax ms\t")
	for _, p := range pages {
		var h histogram
		pt := PageTiming{Name: p.name, Path: p.path, Goal: p.goal}
		for i := range b.samples {
			t0 := time.Now()
			body, err := get(ctx, p.c, sys.URL+p.path, p.auth)
			d := time.Since(t0)
			if err != nil {
				return fmt.Errorf("%s: %w", p.path, err)
			}
			if i == 0 {
				pt.FirstMs = ms(d)
				pt.Bytes = len(body)
				pt.Rows = countRows(body, strings.HasPrefix(p.path, "/api/"))
				if pt.Rows == 0 {
					return fmt.Errorf("%s: the page has no requests", p.path)
				}
			} else {
				h.record(d)
			}
		}
		if h.n > 0 {
			pt.P50Ms, pt.MaxMs = ms(h.quantile(0.5)), ms(h.max)
		}
		res.Pages = append(res.Pages, pt)
		fmt.Fprintf(tw, "%s\t%d\t%.1f\t%.2f\t%.2f\t%.2f\t\n", pt.Name, pt.Rows, float64(pt.Bytes)/1024, pt.FirstMs, pt.P50Ms, pt.MaxMs)
	}
	tw.Flush()
	b.system = nil
	return sys.Close()
}

// countRows counts the requests on a page: the API's JSON list, or the
// UI's links to request pages.
func countRows(body []byte, api bool) int {
	if api {
		var page struct {
			Requests []json.RawMessage `json:"requests"`
		}
		if json.Unmarshal(body, &page) != nil {
			return 0
		}
		return len(page.Requests)
	}
	return bytes.Count(body, []byte(`href="/requests/`))
}

// get fetches url and returns the body of a 200 answer.
func get(ctx context.Context, c *http.Client, url, auth string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		if len(body) > 300 {
			body = body[:300]
		}
		return nil, fmt.Errorf("GET %s: %d %s", url, resp.StatusCode, bytes.TrimSpace(body))
	}
	return body, nil
}

// queueStartups starts the real `approvals serve` on the file, times its
// first answers, and stops it, -startups times.
func (b *Bench) queueStartups(ctx context.Context, res *QueueResult) error {
	bin, err := b.approvalsBinary(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(b.Stdout, "approvals serve on %s, %d starts:\n", b.db, b.startups)
	for i := range b.startups {
		if b.cold {
			if err := evict(b.db); err != nil {
				return err
			}
		}
		s, err := b.startOnce(ctx, bin, i)
		if err != nil {
			return err
		}
		s.Cold = b.cold
		res.Startups = append(res.Startups, s)
		fmt.Fprintf(b.Stdout, "  start %d: /readyz answered %.0f ms after exec, first page of GET /api/v1/requests done at %.0f ms\n", i+1, s.ReadyMs, s.FirstPageMs)
	}
	return nil
}

func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

// startOnce runs one start of approvals serve.
func (b *Bench) startOnce(ctx context.Context, bin string, i int) (StartupTime, error) {
	addr, err := freePort()
	if err != nil {
		return StartupTime{}, err
	}
	logPath := filepath.Join(b.workDir, fmt.Sprintf("serve-%d.log", i+1))
	logFile, err := os.Create(logPath)
	if err != nil {
		return StartupTime{}, err
	}
	defer logFile.Close()
	base := "http://" + addr
	cmd := exec.CommandContext(ctx, bin, "serve")
	// No job is due: Graph is not called.
	cmd.Env = serverEnv(addr, "APPROVALS_DB="+b.db, "APPROVALS_METRICS_LISTEN=127.0.0.1:0")
	cmd.Stdout, cmd.Stderr = logFile, logFile
	client := &http.Client{Timeout: 5 * time.Second}
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return StartupTime{}, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() error {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			return err
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			return errors.New("approvals serve did not stop within 30 s of SIGTERM")
		}
	}
	var s StartupTime
	deadline := start.Add(30 * time.Second)
	for {
		if _, err := get(ctx, client, base+"/readyz", ""); err == nil {
			s.ReadyMs = ms(time.Since(start))
			break
		}
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return s, fmt.Errorf("approvals serve exited (%v): %s", err, lastLine(log))
		case <-time.After(2 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			_ = stop()
			return s, errors.New("approvals serve did not answer /readyz within 30 s")
		}
	}
	if _, err := get(ctx, client, base+"/api/v1/requests", "Bearer "+benchAPIKey); err != nil {
		_ = stop()
		return s, err
	}
	s.FirstPageMs = ms(time.Since(start))
	if err := stop(); err != nil {
		return s, fmt.Errorf("stopping approvals serve: %w", err)
	}
	return s, nil
}

func lastLine(b []byte) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return lines[len(lines)-1]
}
