package api

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

func TestAudit(t *testing.T) {
	e := newEnv(t)
	var ids []string
	for i := range 5 {
		r := e.signUp(fmt.Sprintf("p%d@example.com", i))
		ids = append(ids, r.ID)
		e.do("POST", "/api/v1/requests/"+r.ID+"/approve", `{"reason":"ok"}`).want(t, 200)
		e.clock.Advance(time.Hour)
	}
	e.signUp("x@partner.example") // received + auto-approved

	// Paging through everything, oldest first, cursor until none.
	var all []eventView
	cursor := ""
	for range 20 {
		var p auditPage
		e.do("GET", "/api/v1/audit?limit=3&cursor="+cursor, "").want(t, 200).json(t, &p)
		all = append(all, p.Events...)
		if p.NextCursor == "" {
			break
		}
		cursor = p.NextCursor
	}
	if len(all) != 12 {
		t.Fatalf("%d events, want 12: %+v", len(all), all)
	}
	for i := 1; i < len(all); i++ {
		if all[i].Seq <= all[i-1].Seq {
			t.Errorf("events out of order: %d after %d", all[i].Seq, all[i-1].Seq)
		}
	}
	if all[0].Type != string(approvals.EventReceived) || all[0].Actor.Kind != approvals.ActorConnector {
		t.Errorf("first event %+v", all[0])
	}
	if all[1].Type != string(approvals.EventApproved) || all[1].Actor.Kind != approvals.ActorAPIKey || all[1].Actor.ID != "ops" || all[1].Details["reason"] != "ok" {
		t.Errorf("approval event %+v", all[1])
	}
	if last := all[len(all)-1]; last.Type != string(approvals.EventAutoApproved) || last.Actor.Kind != approvals.ActorPolicy {
		t.Errorf("auto-approval event %+v", last)
	}

	// since keeps the events at or after the time.
	var p auditPage
	e.do("GET", "/api/v1/audit?since=2026-11-21T11:00:00Z", "").want(t, 200).json(t, &p)
	if len(p.Events) != 8 || p.Events[0].RequestID != ids[2] {
		t.Errorf("since 11:00: %d events, first %+v", len(p.Events), p.Events)
	}
	e.do("GET", "/api/v1/audit?request_id="+ids[3], "").want(t, 200).json(t, &p)
	if len(p.Events) != 2 || p.Events[0].RequestID != ids[3] {
		t.Errorf("request_id filter: %+v", p.Events)
	}
	var raw map[string]any
	e.do("GET", "/api/v1/audit?since=2030-01-01", "").want(t, 200).json(t, &raw)
	if evs, ok := raw["events"].([]any); !ok || len(evs) != 0 || raw["next_cursor"] != nil {
		t.Errorf("empty audit page %v", raw)
	}

	bad := []struct{ query, fragment string }{
		{"since=last-week", "RFC 3339"},
		{"cursor=abc", "cursor"},
		{"cursor=-1", "cursor"},
		{"limit=0", "1 to 500"},
		{"limit=1000", "1 to 500"},
		{"type=request.approved", "unknown query parameter"},
	}
	for _, b := range bad {
		e.do("GET", "/api/v1/audit?"+b.query, "").wantError(t, 400, "invalid", b.fragment)
	}
}

func TestBackup(t *testing.T) {
	snapshot := bytes.Repeat([]byte("bolt page "), 10000)
	e := newEnv(t, func(c *Config) {
		c.Backup = func(w io.Writer) (int64, error) {
			n, err := io.Copy(w, bytes.NewReader(snapshot))
			return n, err
		}
	})
	a := e.do("GET", "/api/v1/backup", "").want(t, 200)
	if !bytes.Equal(a.body, snapshot) {
		t.Errorf("backup of %d bytes, want %d", len(a.body), len(snapshot))
	}
	if ct := a.header.Get("Content-Type"); ct != "application/octet-stream" {
		t.Errorf("Content-Type %q", ct)
	}
	if cd := a.header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="approvals-20261121T`) || !strings.HasSuffix(cd, `Z.db"`) {
		t.Errorf("Content-Disposition %q", cd)
	}
	evs := e.eventsOf(approvals.EventBackupDownloaded)
	if len(evs) != 1 || evs[0].Actor.ID != "ops" || evs[0].Details["bytes"] != fmt.Sprint(len(snapshot)) {
		t.Errorf("backup events %+v", evs)
	}
	e.doAuth("GET", "/api/v1/backup", "", "").wantError(t, 401, "unauthorized")

	// Without a backup function (not a bbolt store): 501.
	newEnv(t).do("GET", "/api/v1/backup", "").wantError(t, 501, "not_implemented", "bbolt")

	// A backup that fails before its first byte is a JSON error.
	failing := newEnv(t, func(c *Config) {
		c.Backup = func(io.Writer) (int64, error) { return 0, errors.New("database not open") }
	})
	failing.do("GET", "/api/v1/backup", "").wantError(t, 500, "internal", "backup failed")
	if len(failing.eventsOf(approvals.EventBackupDownloaded)) != 0 {
		t.Error("a failed backup was recorded as downloaded")
	}
}
