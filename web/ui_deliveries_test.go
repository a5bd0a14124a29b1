package web_test

import (
	"context"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// TestRequestPageDeliveries: the request page lists the request's
// notifications; an admin resends a failed one (CSRF-checked form), a
// reviewer is offered no resend.
func TestRequestPageDeliveries(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	r := e.signUp(t0.Add(-time.Hour), "ann@fabrikam.com", "Ann", nil, nil)
	hook := approvals.Delivery{ID: "evt-9.webhook.0", Channel: approvals.ChannelWebhook, Kind: string(approvals.EventReceived),
		RequestID: r.ID, Recipient: "https://hooks.example.com/a", CreatedAt: t0, NextAttemptAt: t0}
	if err := e.store.EnqueueDeliveries(ctx, []approvals.Delivery{hook}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.store.UpdateDelivery(ctx, hook.ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
		d.MarkFailed("POST hooks.example.com: 410 Gone")
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
	form := `form[action="/requests/` + r.ID + `/deliveries/` + hook.ID + `/resend"]`

	rob, _ := e.login("rob")
	p := rob.get("/requests/" + r.ID)
	table := textOf(queryOne(t, p.doc, "table.deliveries"))
	for _, want := range []string{"webhook", "request.received", "https://hooks.example.com/a", "failed", "410 Gone"} {
		if !strings.Contains(table, want) {
			t.Errorf("deliveries table %q lacks %q", table, want)
		}
	}
	if strings.Contains(table, "announcement") {
		t.Errorf("deliveries table shows the internal announcement: %q", table)
	}
	if len(queryAll(t, p.doc, form)) != 0 {
		t.Error("a reviewer is offered the resend")
	}

	ada, _ := e.login("ada")
	p = ada.get("/requests/" + r.ID)
	p = ada.submit(p, form, nil)
	if f := flashes(t, p); len(f) != 1 || !strings.Contains(f[0], "sent again") {
		t.Errorf("flash %q", f)
	}
	d, err := e.store.GetDelivery(ctx, hook.ID)
	if err != nil || d.State != approvals.DeliveryPending {
		t.Fatalf("after the resend: %+v, %v", d, err)
	}
	events, _, _ := e.store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID})
	if last := events[len(events)-1]; last.Type != approvals.EventDeliveryResent || last.Actor.ID != adaOID() {
		t.Errorf("last event %+v", last)
	}
	// Pending now: no resend offered, and a second resend is refused; a
	// forged post with a wrong CSRF token is refused.
	if p := ada.get("/requests/" + r.ID); len(queryAll(t, p.doc, form)) != 0 {
		t.Error("a pending delivery is offered a resend")
	}
	if p := ada.post("/requests/"+r.ID+"/deliveries/"+hook.ID+"/resend", url.Values{"csrf_token": {"x"}}); p.resp.StatusCode < 400 {
		t.Errorf("a post without the CSRF token answered %d", p.resp.StatusCode)
	}
}
