package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/fakeclock"
	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/internal/unitext"
	"github.com/approvals-dev/approvals/store/memory"
)

// Test credentials.
const (
	testUser     = "entra-connector"
	testPassword = "correct horse battery staple"
)

// testdataDir holds the documentation payloads.
const testdataDir = "../testdata/connector"

// newFakeClock returns a settable clock at the tests' start.
func newFakeClock() *fakeclock.Clock {
	return fakeclock.New(time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC))
}

// env is a connector over a real Service and an in-memory store.
type env struct {
	t     testing.TB
	clock *fakeclock.Clock
	store *memory.Store
	svc   *approvals.Service
	h     http.Handler
	logs  *logcapture.Buffer
}

// newEnv builds a connector with Basic auth; edit may change the Config.
func newEnv(t testing.TB, policy approvals.Policy, edit ...func(*Config)) *env {
	t.Helper()
	clock := newFakeClock()
	store := memory.New(clock)
	svc := &approvals.Service{Store: store, Clock: clock, Policy: policy, Unicode: unitext.Rules}
	logs := &logcapture.Buffer{}
	cfg := Config{
		Service: svc,
		Auth:    Auth{Username: testUser, Password: testPassword},
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{t: t, clock: clock, store: store, svc: svc, h: h, logs: logs}
}

// post sends body to path with the test credentials and JSON content type.
func (e *env) post(path string, body []byte) *httptest.ResponseRecorder {
	e.t.Helper()
	r := httptest.NewRequest(http.MethodPost, path, bytes.NewReader(body))
	r.Header.Set("Content-Type", "application/json")
	r.SetBasicAuth(testUser, testPassword)
	return e.do(r)
}

func (e *env) do(r *http.Request) *httptest.ResponseRecorder {
	w := httptest.NewRecorder()
	e.h.ServeHTTP(w, r)
	return w
}

// reply is a decoded connector answer.
type reply struct {
	Version     string          `json:"version"`
	Action      string          `json:"action"`
	UserMessage string          `json:"userMessage"`
	Status      json.RawMessage `json:"status"`
}

// readReply checks that w holds one of the three shapes CONTRACT section 1
// allows (ValidationError only at the request step) and decodes it.
func readReply(t testing.TB, w *httptest.ResponseRecorder, path string) reply {
	t.Helper()
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	var rep reply
	dec := json.NewDecoder(bytes.NewReader(w.Body.Bytes()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&rep); err != nil {
		t.Fatalf("body %q is not an answer: %v", w.Body.String(), err)
	}
	if rep.Version != "1.0.0" {
		t.Errorf("version = %q", rep.Version)
	}
	switch {
	case w.Code == http.StatusOK && rep.Action == "Continue":
		if rep.UserMessage != "" || rep.Status != nil {
			t.Errorf("Continue carries more: %s", w.Body)
		}
	case (w.Code == http.StatusOK || w.Code == http.StatusRequestEntityTooLarge) && rep.Action == "ShowBlockPage":
		if rep.UserMessage == "" || rep.Status != nil {
			t.Errorf("bad ShowBlockPage: %s", w.Body)
		}
	case w.Code == http.StatusBadRequest && rep.Action == "ValidationError":
		if path != RequestApprovalPath {
			t.Errorf("ValidationError at %s, where Entra does not allow it", path)
		}
		if string(rep.Status) != "400" || rep.UserMessage == "" {
			t.Errorf("bad ValidationError: %s", w.Body)
		}
	default:
		t.Fatalf("answer %d %s is none of the three shapes", w.Code, w.Body)
	}
	return rep
}

// postWanting posts the testdata file to path and checks that the answer
// has the action and, unless want is empty, the English text of want.
func (e *env) postWanting(t testing.TB, path, file, action string, want MessageKey) reply {
	t.Helper()
	rep := readReply(t, e.post(path, readTestdata(t, file)), path)
	if rep.Action != action {
		t.Fatalf("action = %s (%s), want %s", rep.Action, rep.UserMessage, action)
	}
	if want != "" && rep.UserMessage != text("en", want) {
		t.Errorf("message = %q, want %s", rep.UserMessage, want)
	}
	return rep
}

// readTestdata returns a file of testdata/connector.
func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// testdataFiles returns the names of the testdata files matching pattern.
func testdataFiles(t testing.TB, pattern string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(testdataDir, pattern))
	if err != nil || len(m) == 0 {
		t.Fatalf("no testdata matches %s: %v", pattern, err)
	}
	for i := range m {
		m[i], _ = filepath.Rel(testdataDir, m[i])
	}
	return m
}

// text returns a built-in message.
func text(lang string, key MessageKey) string { return builtinMessages()[lang][key] }

// signUp builds a connector body for email with optional extra members.
func signUp(email string, extra map[string]any) []byte {
	m := map[string]any{"email": email}
	for k, v := range extra {
		m[k] = v
	}
	b, err := json.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// approveAndProvision approves the person's request as a reviewer and
// moves its provisioning to state.
func (e *env) approveAndProvision(id string, state approvals.ProvisioningState) {
	e.t.Helper()
	ctx := context.Background()
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}
	if _, err := e.svc.Approve(ctx, id, reviewer, "known supplier"); err != nil {
		e.t.Fatal(err)
	}
	now := e.clock.Now()
	var m approvals.Mutation
	switch state {
	case approvals.ProvisioningInProgress:
		return
	case approvals.ProvisioningFailed:
		m = func(r *approvals.Request) ([]approvals.Event, error) {
			ev, err := r.FailProvisioning(approvals.Failure{Cause: "Authorization_RequestDenied", GraphRequestID: "graph-req-1"}, now)
			return []approvals.Event{ev}, err
		}
	case approvals.ProvisioningSucceeded:
		m = func(r *approvals.Request) ([]approvals.Event, error) {
			ev1, err := r.CompleteStep(approvals.StepCreated, approvals.StepResult{UserID: "user-oid-1"}, now)
			if err != nil {
				return nil, err
			}
			ev2, err := r.SucceedProvisioning(now)
			return []approvals.Event{ev1, ev2}, err
		}
	default:
		e.t.Fatalf("cannot move provisioning to %s", state)
	}
	r, err := e.store.Update(ctx, id, m)
	if err != nil {
		e.t.Fatal(err)
	}
	if r.Provisioning.State != state {
		e.t.Fatalf("provisioning is %s, want %s", r.Provisioning.State, state)
	}
}

// requestOf returns the stored request of the person, failing the test when
// there is none.
func (e *env) requestOf(email string, id *approvals.Identity) *approvals.Request {
	e.t.Helper()
	r, err := e.svc.Store.FindByPerson(context.Background(), approvals.PersonKey(email, id))
	if err != nil {
		e.t.Fatalf("FindByPerson(%s): %v", email, err)
	}
	return r
}

// count returns the number of stored requests.
func (e *env) count() int {
	e.t.Helper()
	n, err := e.store.Count(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	total := 0
	for _, v := range n {
		total += v
	}
	return total
}

// countEvents returns the number of events of type typ in the first page
// of the audit trail.
func (e *env) countEvents(typ approvals.EventType) int {
	e.t.Helper()
	evs, _, err := e.store.Audit(context.Background(), approvals.AuditQuery{Limit: approvals.MaxPageSize})
	if err != nil {
		e.t.Fatal(err)
	}
	n := 0
	for _, ev := range evs {
		if ev.Type == typ {
			n++
		}
	}
	return n
}

// assertNoLeak checks that the logs hold none of the given strings.
func (e *env) assertNoLeak(secrets ...string) {
	e.t.Helper()
	logs := e.logs.String()
	for _, s := range secrets {
		if s != "" && strings.Contains(logs, s) {
			e.t.Errorf("logs contain %q:\n%s", s, logs)
		}
	}
}
