package api

import (
	"context"
	"net/http"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// TestDeliveries lists a request's deliveries and resends a failed one.
func TestDeliveries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.signUp("pat@example.com")
	now := e.clock.Now()
	hook := approvals.Delivery{ID: "evt-1.webhook.0", Channel: approvals.ChannelWebhook, Kind: string(approvals.EventReceived),
		RequestID: r.ID, Recipient: "https://hooks.example.com/a", CreatedAt: now, NextAttemptAt: now}
	teams := approvals.Delivery{ID: "evt-1.teams.0", Channel: approvals.ChannelTeams, Kind: string(approvals.EventReceived),
		RequestID: r.ID, CreatedAt: now, NextAttemptAt: now}
	if err := e.store.EnqueueDeliveries(ctx, []approvals.Delivery{hook, teams}); err != nil {
		t.Fatal(err)
	}
	// The webhook failed for good.
	claimed, err := e.store.ClaimDeliveries(ctx, now, 60e9, 10)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range claimed {
		if d.ID != hook.ID {
			continue
		}
		if _, err := e.store.UpdateDelivery(ctx, d.ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
			d.MarkFailed("POST hooks.example.com: 410 Gone")
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}

	var list deliveryList
	e.do("GET", "/api/v1/requests/"+r.ID+"/deliveries", "").want(t, http.StatusOK).json(t, &list)
	if len(list.Deliveries) != 2 {
		t.Fatalf("deliveries %+v; want the webhook and the Teams post (no announcement)", list.Deliveries)
	}
	got := list.Deliveries[0]
	if got.ID != hook.ID || got.State != approvals.DeliveryFailed || got.LastError != "POST hooks.example.com: 410 Gone" ||
		got.Attempts != 1 || got.Recipient != hook.Recipient || got.NextAttemptAt != nil {
		t.Errorf("webhook delivery %+v", got)
	}
	e.do("GET", "/api/v1/requests/nope/deliveries", "").wantError(t, http.StatusNotFound, "not_found")

	// Resend: pending again, same id, audited.
	var resent deliveryView
	e.do("POST", "/api/v1/deliveries/"+hook.ID+"/resend", "").want(t, http.StatusOK).json(t, &resent)
	if resent.ID != hook.ID || resent.State != approvals.DeliveryPending || resent.NextAttemptAt == nil {
		t.Errorf("resent %+v", resent)
	}
	evs, _, err := e.store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != approvals.EventDeliveryResent || last.Details["delivery_id"] != hook.ID || last.Actor.ID != "ops" {
		t.Errorf("last event %+v; want %s by ops", last, approvals.EventDeliveryResent)
	}
	// A pending delivery cannot be resent; unknown ones are 404;
	// announcements are internal.
	e.do("POST", "/api/v1/deliveries/"+hook.ID+"/resend", "").wantError(t, http.StatusConflict, "conflict")
	e.do("POST", "/api/v1/deliveries/nope/resend", "").wantError(t, http.StatusNotFound, "not_found")
	ann, _, err := e.store.ListDeliveries(ctx, approvals.DeliveryQuery{Channel: approvals.ChannelAnnouncement})
	if err != nil || len(ann) == 0 {
		t.Fatalf("announcements %v, %v", ann, err)
	}
	if _, err := e.store.UpdateDelivery(ctx, ann[0].ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
		d.MarkSent(now)
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	e.do("POST", "/api/v1/deliveries/"+ann[0].ID+"/resend", "").wantError(t, http.StatusConflict, "conflict", "announcement")
	e.do("POST", "/api/v1/deliveries/"+hook.ID+"/resend", `{"x":1}`).wantError(t, http.StatusBadRequest, "invalid")
}
