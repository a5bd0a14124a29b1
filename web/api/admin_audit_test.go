package api

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

// An export records who ran it, when, from which surface and with which
// filters, so that the trail answers "who took the denials of November".
func TestExportRecordsWhoWhenAndFilters(t *testing.T) {
	e, _ := decided(t)
	e.doAuth("GET", "/api/v1/decisions/export?format=ndjson&status=denied&since=2026-11-01&until=2026-12-01T00:00:00Z", "Bearer "+reportKey, "").want(t, 200)
	evs := e.eventsOf(approvals.EventDecisionsExported)
	if len(evs) != 1 {
		t.Fatalf("%d export events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Actor.Kind != approvals.ActorAPIKey || ev.Actor.ID != "reporting" || ev.At.IsZero() {
		t.Errorf("who/when: %+v", ev)
	}
	want := map[string]string{"surface": "api", "format": "ndjson", "status": "denied", "since": "2026-11-01",
		"until": "2026-12-01T00:00:00Z", "rows": "2"}
	for k, v := range want {
		if ev.Details[k] != v {
			t.Errorf("details[%s] = %q, want %q (all: %v)", k, ev.Details[k], v, ev.Details)
		}
	}
	// Filters not given are not recorded as empty strings.
	e.do("GET", "/api/v1/decisions/export", "").want(t, 200)
	evs = e.eventsOf(approvals.EventDecisionsExported)
	if d := evs[len(evs)-1].Details; d["format"] != "csv" || len(d) != 3 {
		t.Errorf("unfiltered export details %v, want surface, format and rows", d)
	}
}

// appendRefused is a store that refuses to append events: only the
// service, with its own store, may write the audit trail.
type appendRefused struct{ approvals.Store }

func (appendRefused) AppendEvents(context.Context, []approvals.Event) error {
	return errors.New("the API wrote the audit trail around approvals.Service")
}

// Exports and backups are recorded through approvals.Service (the one
// writer of the audit trail), not written to the store by the handler.
func TestAdminActionsAreRecordedThroughTheService(t *testing.T) {
	clock := newClock()
	mem := memory.New(clock)
	svc := &approvals.Service{Store: mem, Clock: clock}
	var logs bytes.Buffer
	h, err := New(Config{
		Service: svc,
		Store:   appendRefused{mem},
		APIKeys: map[string]string{"ops": opsKey},
		Backup:  func(w io.Writer) (int64, error) { n, err := w.Write([]byte("snapshot")); return int64(n), err },
		Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/decisions/export?status=approved", "/api/v1/backup"} {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+opsKey)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != 200 {
			t.Fatalf("%s: %d %s", path, rec.Code, rec.Body)
		}
	}
	if strings.Contains(logs.String(), "around approvals.Service") {
		t.Errorf("the handler appended events itself:\n%s", logs.String())
	}
	evs, _, err := mem.Audit(context.Background(), approvals.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range evs {
		types = append(types, string(ev.Type))
	}
	if strings.Join(types, ",") != "admin.decisions_exported,admin.backup_downloaded" {
		t.Errorf("recorded %v", types)
	}
}

// An export or a backup cut off after data had left is recorded too, as
// failed, with how much left: the caller holds part of the file.
func TestPartialDownloadsAreRecorded(t *testing.T) {
	t.Run("export", func(t *testing.T) {
		// Enough rows to fill the export's 64 KiB buffer before the failure.
		e := newFailingExportEnv(t, 600, 500)
		if _, err := fetchCutOff(t, e, "/api/v1/decisions/export?format=ndjson&status=approved"); err == nil {
			t.Fatal("the failed export read as complete")
		}
		evs := e.eventsOf(approvals.EventDecisionsExportFailed)
		if len(evs) != 1 {
			t.Fatalf("%d failed-export events, want 1", len(evs))
		}
		d := evs[0].Details
		if evs[0].Actor.ID != "ops" || d["surface"] != "api" || d["status"] != "approved" || d["format"] != "ndjson" || d["rows"] != "500" {
			t.Errorf("failed export event %+v", evs[0])
		}
	})
	t.Run("backup", func(t *testing.T) {
		e := newEnv(t, func(c *Config) {
			c.Backup = func(w io.Writer) (int64, error) {
				n, err := w.Write(bytes.Repeat([]byte("p"), 1000))
				if err != nil {
					return int64(n), err
				}
				return int64(n), errors.New("disk read error")
			}
		})
		if _, err := fetchCutOff(t, e, "/api/v1/backup"); err == nil {
			t.Fatal("the failed backup read as complete")
		}
		evs := e.eventsOf(approvals.EventBackupFailed)
		if len(evs) != 1 || evs[0].Details["bytes"] != "1000" || evs[0].Details["surface"] != "api" {
			t.Errorf("failed backup events %+v", evs)
		}
		if n := len(e.eventsOf(approvals.EventBackupDownloaded)); n != 0 {
			t.Errorf("a failed backup was recorded as downloaded (%d)", n)
		}
	})
}

// fetchCutOff downloads path through a real server, where a cut-off
// download shows as an error.
func fetchCutOff(t *testing.T, e *env, path string) ([]byte, error) {
	t.Helper()
	srv := httptest.NewServer(e.handler)
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+opsKey)
	resp, err := srv.Client().Do(req)
	if err != nil {
		return nil, err // cut before the headers left the server's buffer
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("status %d", resp.StatusCode)
	}
	return io.ReadAll(resp.Body)
}
