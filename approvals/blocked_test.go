package approvals_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

// failingAppend is a store whose AppendEvents fails.
type failingAppend struct{ approvals.Store }

func (failingAppend) AppendEvents(context.Context, []approvals.Event) error {
	return errors.New("disk full")
}

func TestNoteBlockedCheckRecordsTheEvent(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := approvals.ClockFunc(func() time.Time { return at })
	store := memory.New(clock)
	svc := &approvals.Service{Store: store, Clock: clock}
	ctx := context.Background()
	r, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: "ann@example.com"})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.NoteBlockedCheck(ctx, r.Standing(), "already_processing"); err != nil {
		t.Fatal(err)
	}
	evs, _, err := store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID, Limit: 10})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != approvals.EventBlockedAtCheck || last.RequestID != r.ID || last.Actor != approvals.ConnectorActor ||
		!last.At.Equal(at) || last.Details["message"] != "already_processing" {
		t.Errorf("event = %+v", last)
	}

	if err := svc.NoteBlockedCheck(ctx, approvals.Standing{}, "denied"); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("without an id: %v, want EInvalid", err)
	}
	broken := &approvals.Service{Store: failingAppend{store}, Clock: clock}
	if err := broken.NoteBlockedCheck(ctx, r.Standing(), "denied"); err == nil || approvals.Code(err) == approvals.EInvalid {
		t.Errorf("store failure: %v, want it returned", err)
	}
}
