package httplog

import (
	"encoding/json"
	"io"
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

// A handler that cuts the connection on purpose (web/api does so when an
// export fails half-way) must cut it: the client sees a failed download,
// not a short one that looks complete. Middleware used to recover
// http.ErrAbortHandler like any panic, so net/http ended the chunked
// answer cleanly.
func TestLogRequestsLetsAbortCutTheConnection(t *testing.T) {
	var log logcapture.Buffer
	h := Middleware(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, "id,email\n1,a@example.com\n")
		_ = http.NewResponseController(w).Flush()
		panic(http.ErrAbortHandler)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/api/v1/decisions/export")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		t.Fatalf("the aborted answer ended cleanly: %q", body)
	}
	if !strings.Contains(log.String(), `"msg":"http request aborted"`) || strings.Contains(log.String(), "panic serving request") {
		t.Errorf("log: %s", log.String())
	}
}

// Any other panic is still recovered, logged and answered 500.
func TestLogRequestsRecoversPanics(t *testing.T) {
	var log logcapture.Buffer
	h := Middleware(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("bug")
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/x")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusInternalServerError || !strings.Contains(log.String(), "panic serving request") {
		t.Errorf("status %d; log %s", resp.StatusCode, log.String())
	}
}

// Every request gets an id, echoed in the answer and logged with the
// route and status, and a well-formed caller id is kept; nothing of the
// query string reaches the log.
func TestMiddlewareLogsOneLinePerRequest(t *testing.T) {
	var log logcapture.Buffer
	h := Middleware(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	for _, tt := range []struct{ sent, want string }{{"abc-123", "abc-123"}, {"bad id with spaces", ""}} {
		r := httptest.NewRequest("GET", "/x?email=secret@example.com", nil)
		r.Header.Set("X-Request-Id", tt.sent)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		got := w.Header().Get("X-Request-Id")
		if (tt.want != "" && got != tt.want) || got == "" || got == tt.sent && tt.want == "" {
			t.Errorf("sent %q, answered id %q", tt.sent, got)
		}
		if !strings.Contains(log.String(), `"http_request_id":"`+got+`"`) || !strings.Contains(log.String(), `"status":418`) {
			t.Errorf("log: %s", log.String())
		}
	}
	if strings.Contains(log.String(), "secret@example.com") {
		t.Error("the query string reached the log")
	}
}

// The latency carries its unit: milliseconds, as a number with the
// microseconds in its fraction, under a name that says so (it used to be
// "latency" in bare nanoseconds).
func TestMiddlewareLogsLatencyInMilliseconds(t *testing.T) {
	var log logcapture.Buffer
	clock := &stepClock{t: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), step: 1500 * time.Microsecond}
	h := Middleware(slog.New(slog.NewJSONHandler(&log, nil)), clock, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/x", nil))
	var line map[string]any
	if err := json.Unmarshal([]byte(log.String()), &line); err != nil {
		t.Fatalf("%v: %q", err, log.String())
	}
	if got, ok := line["latency_ms"].(float64); !ok || got != 1.5 {
		t.Errorf("latency_ms = %v (%T), want 1.5; line %s", line["latency_ms"], line["latency_ms"], log.String())
	}
	if _, ok := line["latency"]; ok {
		t.Errorf("the line still has a unitless latency: %s", log.String())
	}
}

// stepClock advances by step at every reading.
type stepClock struct {
	mu   sync.Mutex
	t    time.Time
	step time.Duration
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(c.step)
	return c.t
}

// A handler's Annotate lands on the request's one line and raises its
// level; outside Middleware it reports false so the caller logs itself.
func TestAnnotate(t *testing.T) {
	var log logcapture.Buffer
	h := Middleware(slog.New(slog.NewJSONHandler(&log, &slog.HandlerOptions{Level: slog.LevelWarn})), approvals.SystemClock,
		http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			level := slog.LevelInfo
			if r.URL.Path == "/warn" {
				level = slog.LevelWarn
			}
			if !Annotate(r.Context(), level, slog.String("step", "check"), slog.Int("n", 7)) {
				t.Error("Annotate inside Middleware reported false")
			}
		}))
	for _, path := range []string{"/info", "/warn"} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", path, nil))
	}
	lines := strings.Split(strings.TrimSpace(log.String()), "\n")
	if len(lines) != 1 || !strings.Contains(lines[0], `"level":"WARN"`) || !strings.Contains(lines[0], `"route":"/warn"`) ||
		!strings.Contains(lines[0], `"step":"check"`) || !strings.Contains(lines[0], `"n":7`) {
		t.Errorf("want only the /warn line, with the annotations; got:\n%s", log.String())
	}
	if Annotate(httptest.NewRequest("GET", "/", nil).Context(), slog.LevelInfo) {
		t.Error("Annotate outside Middleware reported true")
	}
}

// Ids the middleware makes are distinct and pass its own format check, so
// a proxy forwarding them keeps them.
func TestNewRequestIDs(t *testing.T) {
	seen := map[string]bool{}
	ids, other := newRequestIDs(), newRequestIDs()
	if ids.prefix == other.prefix {
		t.Errorf("two generators drew the same prefix %q", ids.prefix)
	}
	for range 1000 {
		id := ids.next()
		if seen[id] || !requestIDRE.MatchString(id) {
			t.Fatalf("id %q repeated or malformed", id)
		}
		seen[id] = true
	}
}
