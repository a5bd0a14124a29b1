package notify

import (
	"context"

	"github.com/approvals-dev/approvals/approvals"
)

// wakingStore is an approvals.Store that wakes a Notifier after every
// Create or Update that appended an announced event, so that the
// announcement is fanned out at once instead of at the next poll.
type wakingStore struct {
	approvals.Store
	n *Notifier
}

// WakeOnAnnounce returns s, waking n after each change that announced an
// event. The change itself is not delayed: Wake never blocks.
func WakeOnAnnounce(s approvals.Store, n *Notifier) approvals.Store {
	return &wakingStore{Store: s, n: n}
}

func announces(events []approvals.Event) bool {
	for _, ev := range events {
		if ev.Type.Announced() {
			return true
		}
	}
	return false
}

// Create implements approvals.RequestStore.
func (s *wakingStore) Create(ctx context.Context, r *approvals.Request, events []approvals.Event) (*approvals.Request, bool, error) {
	stored, created, err := s.Store.Create(ctx, r, events)
	if err == nil && created && announces(events) {
		s.n.Wake()
	}
	return stored, created, err
}

// Update implements approvals.RequestStore.
func (s *wakingStore) Update(ctx context.Context, id string, m approvals.Mutation) (*approvals.Request, error) {
	woke := false
	r, err := s.Store.Update(ctx, id, func(r *approvals.Request) ([]approvals.Event, error) {
		events, err := m(r)
		woke = err == nil && announces(events)
		return events, err
	})
	if err == nil && woke {
		s.n.Wake()
	}
	return r, err
}

// UpdateDelivery implements approvals.Outbox: a resend through the API
// wakes the Notifier.
func (s *wakingStore) UpdateDelivery(ctx context.Context, id string, m approvals.DeliveryMutation) (*approvals.Delivery, error) {
	d, err := s.Store.UpdateDelivery(ctx, id, m)
	if err == nil && d.State == approvals.DeliveryPending {
		s.n.Wake()
	}
	return d, err
}
