package httplog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/logcapture"
)

// writeCounter is a log sink that counts its writes.
type writeCounter struct {
	logcapture.Buffer
	mu     sync.Mutex
	writes int
}

func (c *writeCounter) Write(p []byte) (int, error) {
	c.mu.Lock()
	c.writes++
	c.mu.Unlock()
	return c.Buffer.Write(p)
}

func (c *writeCounter) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.writes
}

// serveN sends n requests through Middleware with logger.
func serveN(logger *slog.Logger, n int, status int) {
	h := Middleware(logger, approvals.SystemClock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(status)
	}))
	for range n {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/connector/check-approval-status", nil))
	}
}

// Request lines at info level wait in the buffer, and many are written
// at once; a warning is written at once, after them, in order.
func TestNewLoggerBuffersRequestLinesOnly(t *testing.T) {
	var out writeCounter
	w := NewWriter(&out, time.Hour)
	defer w.Close()
	logger := NewLogger(w, slog.LevelInfo)
	logger.Info("approvals serving", "address", "127.0.0.1:1")
	if !strings.Contains(out.String(), `"msg":"approvals serving"`) {
		t.Fatalf("a line other than a request line waited in the buffer: %q", out.String())
	}
	serveN(logger, 50, http.StatusOK)
	if strings.Contains(out.String(), `"msg":"http request"`) {
		t.Fatalf("request lines at info level were written through:\n%s", out.String())
	}
	serveN(logger, 1, http.StatusServiceUnavailable) // logged as an error
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != 52 || !strings.Contains(lines[51], `"level":"ERROR"`) || !strings.Contains(lines[50], `"level":"INFO"`) {
		t.Fatalf("after an error line, want the 50 buffered request lines before it; got %d lines:\n%s", len(lines), out.String())
	}
	if out.count() != 2 {
		t.Errorf("%d writes for 52 lines, want 2 (the start line, then the batch with the error)", out.count())
	}
}

// The flusher writes buffered lines within the interval, without a
// Close.
func TestWriterFlushesPeriodically(t *testing.T) {
	var out logcapture.Buffer
	w := NewWriter(&out, 5*time.Millisecond)
	defer w.Close()
	serveN(NewLogger(w, slog.LevelInfo), 3, http.StatusOK)
	deadline := time.Now().Add(5 * time.Second)
	for strings.Count(out.String(), "\n") < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("buffered lines not written after 5 s: %q", out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// A clean shutdown (Close) writes every buffered line, and lines logged
// after Close (a request that outlived the server's shutdown timeout) are
// written through, not lost.
func TestWriterCloseLosesNoLine(t *testing.T) {
	var out logcapture.Buffer
	w := NewWriter(&out, time.Hour)
	logger := NewLogger(w, slog.LevelInfo)
	serveN(logger, 100, http.StatusOK)
	if n := strings.Count(out.String(), "\n"); n == 100 {
		t.Fatal("nothing was buffered: the test proves nothing")
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), `"msg":"http request"`); n != 100 {
		t.Fatalf("%d request lines after Close, want 100", n)
	}
	serveN(logger, 1, http.StatusOK)
	if n := strings.Count(out.String(), `"msg":"http request"`); n != 101 {
		t.Errorf("a line logged after Close was lost: %d lines", n)
	}
	if err := w.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// Many goroutines logging through one Writer, with the flusher, explicit
// flushes and a Close racing them: every line arrives whole, exactly
// once, and each goroutine's lines keep their order. Run with -race.
func TestWriterConcurrentUse(t *testing.T) {
	var out logcapture.Buffer
	w := NewWriter(&out, time.Millisecond)
	logger := NewLogger(w, slog.LevelInfo)
	const goroutines, perG = 8, 500
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			h := Middleware(logger, approvals.SystemClock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				Annotate(r.Context(), slog.LevelInfo, slog.Int("g", g), slog.String("pad", strings.Repeat("x", 100)))
			}))
			for i := range perG {
				if i%50 == 49 {
					logger.Warn("a warning", "g", g, "i", i)
					continue
				}
				r := httptest.NewRequest("GET", fmt.Sprintf("/g%d/%d", g, i), nil)
				h.ServeHTTP(httptest.NewRecorder(), r)
			}
		})
	}
	wg.Go(func() {
		for range 100 {
			_ = w.Flush()
			time.Sleep(100 * time.Microsecond)
		}
	})
	wg.Wait()
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	next := make([]int, goroutines)
	seen := 0
	for _, line := range bytes.Split(bytes.TrimSuffix([]byte(out.String()), []byte("\n")), []byte("\n")) {
		var v struct {
			Msg   string
			Route string
			G     int
			I     int
		}
		if err := json.Unmarshal(line, &v); err != nil {
			t.Fatalf("a torn line %q: %v", line, err)
		}
		i := v.I
		if v.Msg == "http request" {
			if _, err := fmt.Sscanf(v.Route, "/g%d/%d", &v.G, &i); err != nil {
				t.Fatalf("route %q", v.Route)
			}
		}
		if i != next[v.G] {
			t.Fatalf("goroutine %d: line %d came where %d was due", v.G, i, next[v.G])
		}
		next[v.G]++
		seen++
	}
	if seen != goroutines*perG {
		t.Errorf("%d lines, want %d", seen, goroutines*perG)
	}
}

// A string value with control or text-direction characters is logged with
// each replaced, in attributes and groups alike: C1 and bidirectional
// controls, which encoding/json leaves raw, never reach the log.
func TestNewLoggerCleansUnsafeCharacters(t *testing.T) {
	var out logcapture.Buffer
	w := NewWriter(&out, time.Hour)
	logger := NewLogger(w, slog.LevelInfo)
	logger.Warn("refused", "name", "Ada\u202eLovelace\u0085", slog.Group("req", "path", "/x\u200f"), "n", 3)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	line := out.String()
	for _, bad := range []string{"\u202e", "\u0085", "\u200f"} {
		if strings.Contains(line, bad) {
			t.Fatalf("%q reached the log: %s", bad, line)
		}
	}
	var rec struct {
		Name string `json:"name"`
		Req  struct {
			Path string `json:"path"`
		} `json:"req"`
		N int `json:"n"`
	}
	if err := json.Unmarshal([]byte(line), &rec); err != nil {
		t.Fatal(err)
	}
	if rec.Name != "Ada\ufffdLovelace\ufffd" || rec.Req.Path != "/x\ufffd" || rec.N != 3 {
		t.Fatalf("logged %+v", rec)
	}
}
