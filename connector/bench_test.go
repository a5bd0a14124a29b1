package connector

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"testing"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// BenchmarkCheckApprovalStatus compares the check step through the whole
// connector (Basic auth, strict decoding and validation, a lookup in a
// memory store holding 1000 requests, one log record) with a bare Echo
// handler that only decodes the same JSON into a map and answers Continue.
// docs/CONNECTOR.md records the command and the numbers.
func BenchmarkCheckApprovalStatus(b *testing.B) {
	body := readTestdata(b, "check-status-facebook.json")

	b.Run("baseline_echo_map", func(b *testing.B) {
		e := echo.New()
		e.POST(CheckApprovalStatusPath, func(c echo.Context) error {
			var m map[string]any
			if err := json.NewDecoder(c.Request().Body).Decode(&m); err != nil {
				return c.JSON(http.StatusBadRequest, map[string]string{"version": "1.0.0", "action": "ShowBlockPage", "userMessage": "bad request"})
			}
			return c.JSON(http.StatusOK, map[string]string{"version": "1.0.0", "action": "Continue"})
		})
		runParallel(b, e, body, "Continue")
	})

	for _, bc := range []struct {
		name   string
		logger *slog.Logger
		body   []byte
		want   string
	}{
		{"connector_new_person", slog.New(slog.DiscardHandler), body, "Continue"},
		{"connector_new_person_jsonlog", slog.New(slog.NewJSONHandler(io.Discard, nil)), body, "Continue"},
		{"connector_pending_person", slog.New(slog.DiscardHandler), signUp("person-7@example.org", map[string]any{"ui_locales": "fr-FR"}), "ShowBlockPage"},
	} {
		b.Run(bc.name, func(b *testing.B) {
			e := newEnv(b, approvals.Policy{}, func(c *Config) { c.Logger = bc.logger })
			for i := range 1000 {
				if _, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{
					Email:    fmt.Sprintf("person-%d@example.org", i),
					Claims:   map[string]any{"city": "Redmond", "givenName": "Person"},
					Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprint(i)},
				}); err != nil {
					b.Fatal(err)
				}
			}
			if _, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{Email: "person-7@example.org"}); err != nil {
				b.Fatal(err)
			}
			runParallel(b, e.h, bc.body, bc.want)
		})
	}
}

// runParallel posts body to the check endpoint of h from GOMAXPROCS
// goroutines, with the test credentials, checking every answer's action.
func runParallel(b *testing.B, h http.Handler, body []byte, wantAction string) {
	u, err := url.Parse(CheckApprovalStatusPath)
	if err != nil {
		b.Fatal(err)
	}
	auth := "Basic " + b64(testUser+":"+testPassword)
	want := []byte(`"action":"` + wantAction + `"`)
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		w := &benchWriter{h: http.Header{}}
		rd := bytes.NewReader(body)
		for pb.Next() {
			rd.Reset(body)
			r := &http.Request{
				Method:        http.MethodPost,
				URL:           u,
				Proto:         "HTTP/1.1",
				ProtoMajor:    1,
				ProtoMinor:    1,
				Header:        http.Header{"Content-Type": {"application/json"}, "Authorization": {auth}},
				Body:          io.NopCloser(rd),
				ContentLength: int64(len(body)),
				RemoteAddr:    "192.0.2.1:1234",
				Host:          "approvals.example",
			}
			r = r.WithContext(context.Background())
			w.reset()
			h.ServeHTTP(w, r)
			if w.code != http.StatusOK || !bytes.Contains(w.body.Bytes(), want) {
				b.Errorf("answer %d %s, want %s", w.code, w.body.Bytes(), wantAction)
				return
			}
		}
	})
}

// benchWriter is a reusable http.ResponseWriter.
type benchWriter struct {
	h    http.Header
	code int
	body bytes.Buffer
}

func (w *benchWriter) Header() http.Header { return w.h }

func (w *benchWriter) WriteHeader(code int) { w.code = code }

func (w *benchWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	return w.body.Write(p)
}

func (w *benchWriter) reset() {
	clear(w.h)
	w.code = 0
	w.body.Reset()
}
