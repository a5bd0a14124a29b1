package memory

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// outbox is the store's approvals.Outbox, kept under Store.mu.
type outbox struct {
	byID  map[string]*approvals.Delivery
	seq   map[string]uint64 // enqueue order
	order []string          // ids in enqueue order
	next  uint64
}

func (o *outbox) init() {
	if o.byID == nil {
		o.byID, o.seq = map[string]*approvals.Delivery{}, map[string]uint64{}
	}
}

// enqueue stores the deliveries not stored yet; the caller holds s.mu.
func (o *outbox) enqueue(ds []approvals.Delivery) error {
	o.init()
	batch, err := approvals.CheckEnqueue(ds)
	if err != nil {
		return err
	}
	for _, d := range batch {
		if _, ok := o.byID[d.ID]; ok {
			continue
		}
		d.Version = 1
		o.next++
		o.byID[d.ID], o.seq[d.ID] = d, o.next
		o.order = append(o.order, d.ID)
	}
	return nil
}

// announce enqueues the announcements of the announced events among evs
// (Seqs assigned), appended with the change that stored r.
func (o *outbox) announce(evs []approvals.Event, r *approvals.Request) {
	var ds []approvals.Delivery
	for _, ev := range evs {
		if ev.Type.Announced() {
			ds = append(ds, approvals.NewAnnouncement(ev, r))
		}
	}
	if len(ds) > 0 {
		_ = o.enqueue(ds) // announcements are always valid
	}
}

// pending returns the pending deliveries, soonest NextAttemptAt first.
func (o *outbox) pending() []*approvals.Delivery {
	var out []*approvals.Delivery
	for _, d := range o.byID {
		if d.State == approvals.DeliveryPending {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *approvals.Delivery) int {
		return cmp.Or(a.NextAttemptAt.Compare(b.NextAttemptAt), cmp.Compare(o.seq[a.ID], o.seq[b.ID]))
	})
	return out
}

// deliveryQueue is the deliveries as a leased queue (queue.go).
func (s *Store) deliveryQueue() *leasedQueue[*approvals.Delivery] {
	return &leasedQueue[*approvals.Delivery]{
		s:           s,
		noun:        "delivery",
		byID:        s.outbox.byID,
		items:       s.outbox.pending,
		due:         func(d *approvals.Delivery) time.Time { return d.NextAttemptAt },
		claimable:   (*approvals.Delivery).Claimable,
		claimableAt: (*approvals.Delivery).ClaimableAt,
		lease:       func(d *approvals.Delivery) *approvals.Lease { return d.Lease },
		setLease:    func(d *approvals.Delivery, l *approvals.Lease) { d.Lease = l },
		check:       checkDeliveryChange,
		put: func(cur, c *approvals.Delivery, events []approvals.Event) {
			c.Version = cur.Version + 1
			s.outbox.byID[c.ID] = c
			s.appendEvents(events, "")
		},
	}
}

// checkDeliveryChange refuses a mutation's result c of cur that changes
// its identity or is not a valid delivery.
func checkDeliveryChange(cur, c *approvals.Delivery) error {
	if c.ID != cur.ID || c.Channel != cur.Channel || c.RequestID != cur.RequestID || !c.CreatedAt.Equal(cur.CreatedAt) {
		return approvals.Errorf(approvals.EInternal, "a mutation may not change the identity of delivery %s", cur.ID)
	}
	return approvals.CheckDelivery(c)
}

// EnqueueDeliveries implements approvals.Outbox.
func (s *Store) EnqueueDeliveries(_ context.Context, ds []approvals.Delivery) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	return s.outbox.enqueue(ds)
}

// ClaimDeliveries implements approvals.Outbox.
func (s *Store) ClaimDeliveries(_ context.Context, now time.Time, lease time.Duration, limit int) ([]*approvals.Delivery, error) {
	return s.deliveryQueue().claim(now, lease, limit)
}

// UpdateDelivery implements approvals.Outbox.
func (s *Store) UpdateDelivery(_ context.Context, id string, m approvals.DeliveryMutation) (*approvals.Delivery, error) {
	return s.deliveryQueue().update(id, m)
}

// GetDelivery implements approvals.Outbox.
func (s *Store) GetDelivery(_ context.Context, id string) (*approvals.Delivery, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.outbox.byID[id]
	if !ok {
		return nil, approvals.ErrNotFound
	}
	return d.Clone(), nil
}

// ListDeliveries implements approvals.Outbox.
func (s *Store) ListDeliveries(_ context.Context, q approvals.DeliveryQuery) ([]*approvals.Delivery, string, error) {
	if err := checkDeliveryQuery(q); err != nil {
		return nil, "", err
	}
	limit := approvals.PageLimit(q.Limit)
	s.mu.Lock()
	defer s.mu.Unlock()
	start := 0
	if q.After != "" {
		after, ok := s.outbox.seq[q.After]
		if !ok {
			return nil, "", approvals.Errorf(approvals.EInvalid, "cursor %q names no delivery", q.After)
		}
		start, _ = slices.BinarySearchFunc(s.outbox.order, after+1, func(id string, seq uint64) int {
			return cmp.Compare(s.outbox.seq[id], seq)
		})
	}
	var out []*approvals.Delivery
	for i := start; i < len(s.outbox.order); i++ {
		d := s.outbox.byID[s.outbox.order[i]]
		if (q.RequestID != "" && d.RequestID != q.RequestID) || (q.State != "" && d.State != q.State) ||
			(q.Channel != "" && d.Channel != q.Channel) {
			continue
		}
		if len(out) == limit {
			return out, out[len(out)-1].ID, nil
		}
		out = append(out, d.Clone())
	}
	return out, "", nil
}

// checkDeliveryQuery refuses filters no delivery can match.
func checkDeliveryQuery(q approvals.DeliveryQuery) error {
	if q.State != "" && !q.State.Valid() {
		return approvals.Errorf(approvals.EInvalid, "unknown delivery state %q", q.State)
	}
	if q.Channel != "" && !q.Channel.Valid() {
		return approvals.Errorf(approvals.EInvalid, "unknown channel %q", q.Channel)
	}
	return nil
}

// NextDeliveryAt implements approvals.Outbox.
func (s *Store) NextDeliveryAt(context.Context) (time.Time, bool, error) {
	next, found := s.deliveryQueue().nextAt()
	return next, found, nil
}

// CountDeliveries implements approvals.Outbox.
func (s *Store) CountDeliveries(_ context.Context, now time.Time) (map[approvals.Channel]approvals.DeliveryCounts, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := map[approvals.Channel]approvals.DeliveryCounts{}
	for _, c := range approvals.Channels {
		n[c] = approvals.DeliveryCounts{}
	}
	for _, d := range s.outbox.byID {
		c := n[d.Channel]
		switch d.State {
		case approvals.DeliverySent:
			c.Sent++
		case approvals.DeliveryFailed:
			c.Failed++
		}
		n[d.Channel] = c
	}
	pending := map[approvals.Channel]*approvals.JobCounts{}
	s.deliveryQueue().count(now, func(d *approvals.Delivery) *approvals.JobCounts {
		if pending[d.Channel] == nil {
			pending[d.Channel] = &approvals.JobCounts{}
		}
		return pending[d.Channel]
	})
	for ch, p := range pending {
		c := n[ch]
		c.Due, c.Leased, c.Scheduled = p.Due, p.Leased, p.Scheduled
		n[ch] = c
	}
	return n, nil
}

// PurgeDeliveries implements approvals.Outbox.
func (s *Store) PurgeDeliveries(_ context.Context, sentBefore time.Time) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	s.outbox.order = slices.DeleteFunc(s.outbox.order, func(id string) bool {
		d := s.outbox.byID[id]
		if d.State != approvals.DeliverySent || !d.SentAt.Before(sentBefore) {
			return false
		}
		delete(s.outbox.byID, id)
		delete(s.outbox.seq, id)
		n++
		return true
	})
	return n, nil
}
