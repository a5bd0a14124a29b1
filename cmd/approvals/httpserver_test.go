package main

import (
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// A handler that cuts the connection on purpose (web/api does so when an
// export fails half-way) must cut it: the client sees a failed download,
// not a short one that looks complete. logRequests used to recover
// http.ErrAbortHandler like any panic, so net/http ended the chunked
// answer cleanly.
func TestLogRequestsLetsAbortCutTheConnection(t *testing.T) {
	var log syncBuffer
	h := logRequests(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
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
	var log syncBuffer
	h := logRequests(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
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
