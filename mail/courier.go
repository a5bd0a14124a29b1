package mail

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Transport sends one rendered message. It returns nil when the server
// accepted it and an *approvals.DeliveryError otherwise.
type Transport interface {
	Send(ctx context.Context, m *Message) error
}

// PendingFunc returns the requests a digest lists: those still pending that
// became pending in [since, until). The command wires it to the store.
type PendingFunc func(ctx context.Context, since, until time.Time) ([]*approvals.Request, error)

// Courier is the approvals.Courier of approvals.ChannelEmail: it renders a
// delivery and hands it to its Transport.
type Courier struct {
	renderer  *Renderer
	transport Transport
	pending   PendingFunc
}

// NewCourier returns a Courier rendering with r and sending through t;
// pending collects the requests of digests.
func NewCourier(r *Renderer, t Transport, pending PendingFunc) *Courier {
	return &Courier{renderer: r, transport: t, pending: pending}
}

var _ approvals.Courier = (*Courier)(nil)

// Deliver renders d and sends it. A digest with no request left pending
// is not sent (nil). A delivery that cannot be rendered fails
// permanently.
func (c *Courier) Deliver(ctx context.Context, d *approvals.Delivery) (err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("mail: deliver %s: %w", d.ID, err)
		}
	}()
	if d.Channel != approvals.ChannelEmail {
		return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("channel %q is not email", d.Channel)}
	}
	var reqs []*approvals.Request
	if d.Kind == approvals.MailReviewerDigest {
		var period struct {
			Since time.Time `json:"since"`
			Until time.Time `json:"until"`
		}
		if err := json.Unmarshal(d.Data, &period); err != nil {
			return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("digest period: %w", err)}
		}
		if c.pending == nil {
			return &approvals.DeliveryError{Permanent: true, Err: errors.New("digests are not configured")}
		}
		reqs, err = c.pending(ctx, period.Since, period.Until)
		if err != nil {
			return &approvals.DeliveryError{Err: fmt.Errorf("digest requests: %w", err)}
		}
		if len(reqs) == 0 {
			return nil
		}
	}
	m, err := c.renderer.Render(d, reqs)
	if err != nil {
		return &approvals.DeliveryError{Permanent: errors.Is(err, errRender), Err: err}
	}
	return c.transport.Send(ctx, m)
}
