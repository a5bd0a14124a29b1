package externalid

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/externalid/externalidtest"
	"github.com/approvals-dev/approvals/internal/fakeclock"
	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/store/memory"
)

// The tenant and app of the tests (the tenant is the one in testdata).
const (
	testTenant = "0d6e6a0e-0d6f-4f4a-9f43-6f3c2a1b0c9d"
	testApp    = "3c1b0a2f-8e7d-4c6b-a5f4-e3d2c1b0a9f8"
	testdata   = "../testdata/externalid"
)

// env is the extensions over a real Service and store, with a fake issuer
// on loopback.
type env struct {
	t     testing.TB
	clock *fakeclock.Clock
	store *memory.Store
	svc   *approvals.Service
	h     *Handler
	iss   *externalidtest.Issuer
	srv   *httptest.Server
	logs  *logcapture.Buffer
}

func newEnv(t testing.TB, policy approvals.Policy, edit ...func(*Config)) *env {
	t.Helper()
	clock := fakeclock.New(time.Now().UTC().Truncate(time.Second))
	iss, err := externalidtest.NewIssuer(testTenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	store := memory.New(clock)
	svc := &approvals.Service{Store: store, Clock: clock, Policy: policy}
	logs := &logcapture.Buffer{}
	cfg := Config{
		Service: svc,
		Tokens:  TokenConfig{TenantID: testTenant, AppID: testApp, Issuers: []string{iss.URL()}, Clock: clock},
		Logger:  slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
	}
	for _, f := range edit {
		f(&cfg)
	}
	h, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return &env{t: t, clock: clock, store: store, svc: svc, h: h, iss: iss, srv: srv, logs: logs}
}

// token mints a valid token, changed by edit.
func (e *env) token(edit func(map[string]any)) string {
	e.t.Helper()
	c := e.iss.Claims(testApp, e.clock.Now(), time.Hour)
	if edit != nil {
		edit(c)
	}
	tok, err := e.iss.Token(c)
	if err != nil {
		e.t.Fatal(err)
	}
	return tok
}

// answer is a decoded extension answer.
type answer struct {
	Status      int
	ContentType string
	Raw         string
	Data        struct {
		ODataType string `json:"@odata.type"`
		Actions   []struct {
			ODataType       string            `json:"@odata.type"`
			Title           string            `json:"title"`
			Message         string            `json:"message"`
			AttributeErrors map[string]string `json:"attributeErrors"`
		} `json:"actions"`
	} `json:"data"`
}

// action returns the single action's type, failing when there is not
// exactly one.
func (a answer) action(t testing.TB) string {
	t.Helper()
	if len(a.Data.Actions) != 1 {
		t.Fatalf("answer has %d actions, want exactly 1: %s", len(a.Data.Actions), a.Raw)
	}
	return a.Data.Actions[0].ODataType
}

// post calls path with body and the token ("" for none).
func (e *env) post(path string, body []byte, token string) answer {
	e.t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+path, bytes.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	a := answer{Status: resp.StatusCode, ContentType: resp.Header.Get("Content-Type"), Raw: string(raw)}
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &a); err != nil {
			e.t.Fatalf("answer is not JSON: %v: %s", err, raw)
		}
		if a.ContentType != "application/json" {
			e.t.Fatalf("Content-Type %q", a.ContentType)
		}
	}
	return a
}

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// Action types.
const (
	startContinueType  = "microsoft.graph.attributeCollectionStart.continueWithDefaultBehavior"
	startBlockType     = "microsoft.graph.attributeCollectionStart.showBlockPage"
	submitContinueType = "microsoft.graph.attributeCollectionSubmit.continueWithDefaultBehavior"
	submitBlockType    = "microsoft.graph.attributeCollectionSubmit.showBlockPage"
	submitErrorType    = "microsoft.graph.attributeCollectionSubmit.showValidationError"
)

func ioCopy(w io.Writer, resp *http.Response) (int64, error) {
	defer resp.Body.Close()
	return io.Copy(w, resp.Body)
}
