package api

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// deliveryView is one delivery of the outbox as the API shows it: where
// it went and how it fared, without the request snapshot it carries.
type deliveryView struct {
	ID            string                  `json:"id"`
	Channel       approvals.Channel       `json:"channel"`
	Kind          string                  `json:"kind"`
	RequestID     string                  `json:"request_id,omitempty"`
	Recipient     string                  `json:"recipient,omitempty"`
	State         approvals.DeliveryState `json:"state"`
	Attempts      int                     `json:"attempts"`
	CreatedAt     time.Time               `json:"created_at"`
	NextAttemptAt *time.Time              `json:"next_attempt_at,omitempty"`
	SentAt        *time.Time              `json:"sent_at,omitempty"`
	LastError     string                  `json:"last_error,omitempty"`
}

func deliveryViewOf(d *approvals.Delivery) deliveryView {
	v := deliveryView{ID: d.ID, Channel: d.Channel, Kind: d.Kind, RequestID: d.RequestID, Recipient: d.Recipient,
		State: d.State, Attempts: d.Attempts, CreatedAt: d.CreatedAt.UTC(), LastError: d.LastError}
	if d.State == approvals.DeliveryPending {
		t := d.NextAttemptAt.UTC()
		v.NextAttemptAt = &t
	}
	if !d.SentAt.IsZero() {
		t := d.SentAt.UTC()
		v.SentAt = &t
	}
	return v
}

type deliveryList struct {
	Deliveries []deliveryView `json:"deliveries"`
}

// maxDeliveries bounds the deliveries GET /requests/{id}/deliveries shows.
const maxDeliveries = 1000

// listDeliveries is GET /requests/{id}/deliveries: the emails, webhooks
// and posts sent (or being sent) about the request, oldest first;
// announcements, which are internal, are left out.
func (s *server) listDeliveries(c echo.Context) error {
	ctx := c.Request().Context()
	r, err := s.store.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	out := deliveryList{Deliveries: []deliveryView{}}
	q := approvals.DeliveryQuery{RequestID: r.ID, Limit: approvals.MaxPageSize}
	for len(out.Deliveries) < maxDeliveries {
		ds, next, err := s.store.ListDeliveries(ctx, q)
		if err != nil {
			return err
		}
		for _, d := range ds {
			if d.Channel != approvals.ChannelAnnouncement {
				out.Deliveries = append(out.Deliveries, deliveryViewOf(d))
			}
		}
		if next == "" {
			break
		}
		q.After = next
	}
	return writeJSON(c, http.StatusOK, out)
}

// resendDelivery is POST /deliveries/{id}/resend: a failed or sent
// delivery is sent again, with the same ID (so the same webhook-id and
// Message-ID), and the resend is audited.
func (s *server) resendDelivery(c echo.Context) error {
	var none struct{}
	if err := decodeBody(c, &none, true); err != nil {
		return err
	}
	actor := actorOf(c)
	now := s.clock.Now().UTC()
	d, err := s.store.UpdateDelivery(c.Request().Context(), c.Param("id"), func(d *approvals.Delivery) ([]approvals.Event, error) {
		if d.Channel == approvals.ChannelAnnouncement {
			return nil, approvals.Errorf(approvals.EConflict, "delivery %s is an internal announcement; resend the deliveries made of it", d.ID)
		}
		if err := d.Resend(now); err != nil {
			return nil, err
		}
		return []approvals.Event{{At: now, Type: approvals.EventDeliveryResent, RequestID: d.RequestID, Actor: actor,
			Details: map[string]string{"delivery_id": d.ID, "channel": string(d.Channel), "kind": d.Kind}}}, nil
	})
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, deliveryViewOf(d))
}
