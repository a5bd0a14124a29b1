package approvals_test

import (
	"context"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

func TestRecordAdminAction(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := approvals.ClockFunc(func() time.Time { return at })
	svc := &approvals.Service{Store: memory.New(clock), Clock: clock}
	admin := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada"}

	// A cancelled caller still gets its action recorded: the export has
	// been sent by then.
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	err := svc.RecordAdminAction(ctx, admin, approvals.EventDecisionsExported,
		map[string]string{"surface": approvals.SurfaceUI, "format": "csv", "status": "denied", "since": "", "rows": "3"})
	if err != nil {
		t.Fatal(err)
	}
	evs, _, err := svc.Store.Audit(context.Background(), approvals.AuditQuery{})
	if err != nil {
		t.Fatal(err)
	}
	if len(evs) != 1 {
		t.Fatalf("%d events, want 1", len(evs))
	}
	ev := evs[0]
	if ev.Type != approvals.EventDecisionsExported || ev.Actor.ID != "oid-1" || !ev.At.Equal(at) || ev.RequestID != "" {
		t.Errorf("event %+v", ev)
	}
	if ev.Details["surface"] != "ui" || ev.Details["status"] != "denied" || ev.Details["rows"] != "3" {
		t.Errorf("details %v", ev.Details)
	}
	if _, ok := ev.Details["since"]; ok {
		t.Errorf("an unset filter was recorded: %v", ev.Details)
	}

	// Only administrative actions go through it: the request events
	// belong to the state machine.
	for _, bad := range []approvals.EventType{approvals.EventApproved, "admin.made_up", ""} {
		if err := svc.RecordAdminAction(context.Background(), admin, bad, nil); approvals.Code(err) != approvals.EInvalid {
			t.Errorf("RecordAdminAction(%q) = %v, want EInvalid", bad, err)
		}
	}
	if err := svc.RecordAdminAction(context.Background(), approvals.Actor{}, approvals.EventBackupDownloaded, nil); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("no actor: %v, want EInvalid", err)
	}
	if evs, _, _ := svc.Store.Audit(context.Background(), approvals.AuditQuery{}); len(evs) != 1 {
		t.Errorf("refused actions were recorded: %d events", len(evs))
	}
}
