package web

import (
	"context"
	"net/http"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// maxPageDeliveries bounds the deliveries the request page shows.
const maxPageDeliveries = 100

// requestDeliveries returns the deliveries of request id the page shows:
// the emails, webhooks and posts, not the internal announcements.
func (u *UI) requestDeliveries(ctx context.Context, id string) ([]*approvals.Delivery, error) {
	ds, _, err := u.store.ListDeliveries(ctx, approvals.DeliveryQuery{RequestID: id, Limit: approvals.MaxPageSize})
	if err != nil {
		return nil, err
	}
	out := make([]*approvals.Delivery, 0, len(ds))
	for _, d := range ds {
		if d.Channel != approvals.ChannelAnnouncement && len(out) < maxPageDeliveries {
			out = append(out, d)
		}
	}
	return out, nil
}

// resendDelivery is POST /requests/{id}/deliveries/{delivery}/resend, for
// admins: the delivery is sent again with the same id, and the resend is
// audited.
func (u *UI) resendDelivery(c echo.Context) error {
	s, _ := sessionOf(c)
	id, did := c.Param("id"), c.Param("delivery")
	now := u.clock.Now().UTC()
	actor := s.user.Actor()
	_, err := u.store.UpdateDelivery(c.Request().Context(), did, func(d *approvals.Delivery) ([]approvals.Event, error) {
		if d.RequestID != id || d.Channel == approvals.ChannelAnnouncement {
			return nil, approvals.ErrNotFound
		}
		if err := d.Resend(now); err != nil {
			return nil, err
		}
		return []approvals.Event{{At: now, Type: approvals.EventDeliveryResent, RequestID: d.RequestID, Actor: actor,
			Details: map[string]string{"delivery_id": d.ID, "channel": string(d.Channel), "kind": d.Kind}}}, nil
	})
	if userError(err) {
		u.flash(c, "error", "Not resent: "+approvals.Message(err))
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	if err != nil {
		return err
	}
	u.flash(c, "success", "The notification will be sent again now.")
	return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
}
