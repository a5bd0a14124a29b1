package web_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/web"
)

// A download from the export page is in the audit trail like one from the
// API: who (the signed-in admin), when, and the filters of the form.
func TestUIExportIsAudited(t *testing.T) {
	e := newEnv(t)
	seedQueue(t, e, 10)
	b, _ := e.login("ada")
	p := b.get("/export/download?format=json&status=denied&since=2026-01-01&until=2026-11-21")
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("export: %d", p.resp.StatusCode)
	}
	// A refused form sends nothing and records nothing.
	if p := b.get("/export/download?format=xml"); p.resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad format: %d", p.resp.StatusCode)
	}
	exports := e.eventsOf(approvals.EventDecisionsExported)
	if len(exports) != 1 {
		t.Fatalf("%d export events, want 1", len(exports))
	}
	ev := exports[0]
	if ev.Actor.Kind != approvals.ActorReviewer || ev.Actor.ID != "00000000-0000-0000-0000-00000000ada1" || ev.Actor.Name == "" {
		t.Errorf("actor %+v", ev.Actor)
	}
	if !ev.At.Equal(e.clock.Now()) {
		t.Errorf("at %v, want the clock's %v", ev.At, e.clock.Now())
	}
	// The audit page names the event for people.
	if p := b.get("/audit?since=2026-01-01"); !strings.Contains(p.body, "Decisions exported") {
		t.Error("the audit page does not label the export")
	}
	// until is recorded exclusive, as the API takes it: the form's last
	// day is the 21st, so the bound is the 22nd. Of the ten seeded
	// requests, number 5 alone is denied.
	want := map[string]string{"surface": "ui", "format": "json", "status": "denied", "since": "2026-01-01", "until": "2026-11-22", "rows": "1"}
	for k, v := range want {
		if ev.Details[k] != v {
			t.Errorf("details[%s] = %q, want %q (all %v)", k, ev.Details[k], v, ev.Details)
		}
	}
}

// failingDecisions fails every export after its first row.
type failingDecisions struct{ approvals.Store }

func (f failingDecisions) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error {
	i := 0
	return f.Store.Decisions(ctx, q, func(r approvals.DecisionRecord) error {
		if i == 1 {
			return errors.New("bucket read: input/output error")
		}
		i++
		return fn(r)
	})
}

// An export that fails after rows have left is recorded as failed, with
// the rows sent: the admin holds part of the file.
func TestUIExportCutOffIsAudited(t *testing.T) {
	e := newEnv(t, func(c *web.Config) { c.Store = failingDecisions{c.Service.Store} })
	seedQueue(t, e, 10)
	b, _ := e.login("ada")
	b.get("/export/download?format=csv&status=approved")
	if done := e.eventsOf(approvals.EventDecisionsExported); len(done) != 0 {
		t.Errorf("a failed export was recorded as done: %+v", done)
	}
	failed := e.eventsOf(approvals.EventDecisionsExportFailed)
	if len(failed) != 1 || failed[0].Details["rows"] != "1" || failed[0].Details["surface"] != "ui" || failed[0].Details["status"] != "approved" || failed[0].Actor.Kind != approvals.ActorReviewer {
		t.Errorf("failed export events %+v", failed)
	}
}
