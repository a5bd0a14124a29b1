package api

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/fakeclock"
	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/store/memory"
)

// The API keys every test server accepts.
const (
	opsKey    = "ops-secret-0123456789abcdef"
	reportKey = "report-secret-0123456789abcdef"
)

// newClock returns the tests' clock: settable, and moving on a millisecond
// at every reading, so that requests created one after another have
// distinct times.
func newClock() *fakeclock.Clock {
	return fakeclock.NewTicking(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC), time.Millisecond)
}

// wakeCounter is an approvals.Provisioner that counts its wake-ups.
type wakeCounter struct{ n atomic.Int64 }

func (w *wakeCounter) Wake() { w.n.Add(1) }

// env is one API over an in-memory store.
type env struct {
	t       *testing.T
	clock   *fakeclock.Clock
	store   approvals.Store
	mem     *memory.Store
	svc     *approvals.Service
	wakes   *wakeCounter
	handler http.Handler
	logs    *logcapture.Buffer
}

// newEnv builds an API; configure may change the Config before New.
func newEnv(t *testing.T, configure ...func(*Config)) *env {
	t.Helper()
	clock := newClock()
	mem := memory.New(clock)
	e := &env{t: t, clock: clock, store: mem, mem: mem, wakes: &wakeCounter{}, logs: &logcapture.Buffer{}}
	e.svc = &approvals.Service{Store: mem, Clock: clock, Provisioner: e.wakes,
		Policy: approvals.Policy{AutoApproveDomains: []string{"partner.example"}, AutoDenyDomains: []string{"spam.example"}}}
	cfg := Config{
		Service: e.svc,
		APIKeys: map[string]string{"ops": opsKey, "reporting": reportKey},
		Logger:  slog.New(slog.NewTextHandler(e.logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range configure {
		f(&cfg)
	}
	if cfg.Store != nil {
		e.store = cfg.Store
		e.svc.Store = cfg.Store
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	e.handler = h
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", e.log())
		}
	})
	return e
}

func (e *env) log() string { return e.logs.String() }

// signUp records a pending sign-up and returns it.
func (e *env) signUp(email string) *approvals.Request {
	e.t.Helper()
	r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{
		Email: email, DisplayName: "Person " + email,
		Identity: &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "fb-" + email},
		Claims:   map[string]any{"givenName": "Pat", "city": "Redmond"}, Locale: "en-US",
	})
	if err != nil {
		e.t.Fatalf("RequestApproval(%s): %v", email, err)
	}
	return r
}

// answer is a recorded response.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// do sends a request with the ops key; key "" sends no Authorization.
func (e *env) do(method, path, body string) answer {
	e.t.Helper()
	return e.doAuth(method, path, "Bearer "+opsKey, body)
}

func (e *env) doAuth(method, path, authorization, body string) answer {
	e.t.Helper()
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, path, rd)
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	rec := httptest.NewRecorder()
	e.handler.ServeHTTP(rec, req)
	return answer{status: rec.Code, header: rec.Header(), body: rec.Body.Bytes()}
}

// json decodes the answer's body into v.
func (a answer) json(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(a.body, v); err != nil {
		t.Fatalf("answer %d is not JSON: %v\n%s", a.status, err, a.body)
	}
}

// want checks the status.
func (a answer) want(t *testing.T, status int) answer {
	t.Helper()
	if a.status != status {
		t.Fatalf("status %d, want %d; body: %s", a.status, status, a.body)
	}
	return a
}

// wantError checks a JSON error answer: status, code, and that the
// message contains each of the fragments.
func (a answer) wantError(t *testing.T, status int, code string, fragments ...string) errorDetail {
	t.Helper()
	a.want(t, status)
	if ct := a.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("error Content-Type %q, want application/json", ct)
	}
	var raw map[string]json.RawMessage
	a.json(t, &raw)
	var body errorBody
	a.json(t, &body)
	if _, ok := raw["error"]; !ok || body.Error.Code == "" || body.Error.Message == "" {
		t.Fatalf("not a JSON error: %s", a.body)
	}
	if body.Error.Code != code {
		t.Errorf("error code %q, want %q (message %q)", body.Error.Code, code, body.Error.Message)
	}
	for _, f := range fragments {
		if !strings.Contains(body.Error.Message, f) {
			t.Errorf("error message %q does not mention %q", body.Error.Message, f)
		}
	}
	return body.Error
}

// events returns every audit event of the store.
func (e *env) events() []approvals.Event {
	e.t.Helper()
	var all []approvals.Event
	var after uint64
	for {
		evs, next, err := e.store.Audit(context.Background(), approvals.AuditQuery{AfterSeq: after, Limit: approvals.MaxPageSize})
		if err != nil {
			e.t.Fatal(err)
		}
		all = append(all, evs...)
		if next == 0 {
			return all
		}
		after = next
	}
}

// eventsOf returns the events of the given type.
func (e *env) eventsOf(t approvals.EventType) []approvals.Event {
	var out []approvals.Event
	for _, ev := range e.events() {
		if ev.Type == t {
			out = append(out, ev)
		}
	}
	return out
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(fmt.Sprintf("mustJSON: %v", err))
	}
	return string(b)
}
