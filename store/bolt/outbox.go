package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
)

// The outbox (approvals.Outbox):
//
//	deliveries                              the bucket's sequence is the
//	  id                       -> u64(seq) approvals.Delivery   last seq
//	deliveries_by_seq                       enqueue order, for listings
//	  u64(seq)                 -> id
//	deliveries_by_request                   a request's deliveries
//	  u8(len rid) rid u64(seq) -> id
//	deliveries_pending                      pending deliveries, for claims
//	  t8(NextAttemptAt) id     -> u8(len channel) channel [t8(Lease.Until)]
//	deliveries_sent                         sent deliveries, for the purge
//	  t8(SentAt) id            -> ""
//	meta
//	  "outbox/" channel "/" state -> u64   number of sent and failed ones
//
// seq is the order of enqueueing; a listing's cursor (a delivery id) is
// turned into its seq through the deliveries value. The pending index
// carries the channel and the lease so that ClaimDeliveries,
// NextDeliveryAt and CountDeliveries skip leased deliveries and count
// without decoding them; sent and failed ones are counted by the meta
// counters. These buckets came within schema version 3 without changing
// any other: a writable Open creates them when they are missing.

// Bucket names of the outbox.
var (
	bucketDeliveries          = []byte("deliveries")
	bucketDeliveriesBySeq     = []byte("deliveries_by_seq")
	bucketDeliveriesByRequest = []byte("deliveries_by_request")
	bucketDeliveriesPending   = []byte("deliveries_pending")
	bucketDeliveriesSent      = []byte("deliveries_sent")
)

// outboxBuckets lists the outbox's buckets (see above).
func outboxBuckets() [][]byte {
	return [][]byte{bucketDeliveries, bucketDeliveriesBySeq, bucketDeliveriesByRequest,
		bucketDeliveriesPending, bucketDeliveriesSent}
}

func deliveryCountKey(c approvals.Channel, st approvals.DeliveryState) []byte {
	return []byte("outbox/" + string(c) + "/" + string(st))
}

func deliveriesByRequestKey(rid string, seq []byte) []byte {
	return cat([]byte{byte(len(rid))}, []byte(rid), seq)
}

func pendingKey(d *approvals.Delivery) []byte { return cat(t8(d.NextAttemptAt), []byte(d.ID)) }

func pendingValue(d *approvals.Delivery) []byte {
	v := cat([]byte{byte(len(d.Channel))}, []byte(d.Channel))
	if d.Lease != nil {
		v = cat(v, t8(d.Lease.Until))
	}
	return v
}

// decodePendingValue returns the channel and the lease's end (nil when
// not leased) of a deliveries_pending value.
func decodePendingValue(v []byte) (approvals.Channel, []byte, error) {
	if len(v) < 1 || len(v) < 1+int(v[0]) {
		return "", nil, fmt.Errorf("damaged data file: deliveries_pending value %x", v)
	}
	n := int(v[0])
	c, rest := approvals.Channel(v[1:1+n]), v[1+n:]
	switch len(rest) {
	case 0:
		return c, nil, nil
	case 8:
		return c, rest, nil
	}
	return "", nil, fmt.Errorf("damaged data file: deliveries_pending value %x", v)
}

// deliveryQueue is the deliveries as a leased queue (queue.go), indexed
// by deliveries_pending.
func deliveryQueue() *leasedQueue[*approvals.Delivery] {
	return &leasedQueue[*approvals.Delivery]{
		noun:  "delivery",
		index: bucketDeliveriesPending,
		leaseEnd: func(v []byte) ([]byte, error) {
			_, until, err := decodePendingValue(v)
			return until, err
		},
		get:   getDelivery,
		check: checkDeliveryChange,
		put: func(tx *bbolt.Tx, seq []byte, cur, next *approvals.Delivery, events []approvals.Event, _ time.Time) error {
			next.Version = cur.Version + 1
			if err := putDelivery(tx, seq, cur, next); err != nil {
				return err
			}
			_, err := appendEvents(tx, events, "")
			return err
		},
		claimable:   (*approvals.Delivery).Claimable,
		claimableAt: (*approvals.Delivery).ClaimableAt,
		setLease:    func(d *approvals.Delivery, l *approvals.Lease) { d.Lease = l },
	}
}

// checkDeliveryChange refuses a mutation's result next of cur that
// changes its identity or its request, or is not a valid delivery.
func checkDeliveryChange(cur, next *approvals.Delivery) error {
	if next.ID != cur.ID || next.Channel != cur.Channel || !next.CreatedAt.Equal(cur.CreatedAt) {
		return approvals.Errorf(approvals.EInternal, "a mutation may not change the identity of delivery %s", cur.ID)
	}
	if err := approvals.CheckDelivery(next); err != nil {
		return err
	}
	if next.RequestID != cur.RequestID {
		return approvals.Errorf(approvals.EInternal, "a mutation may not change the request of delivery %s", cur.ID)
	}
	return nil
}

// getDelivery returns the delivery stored under id and its seq, or nil.
func getDelivery(tx *bbolt.Tx, id []byte) (*approvals.Delivery, []byte, error) {
	v := tx.Bucket(bucketDeliveries).Get(id)
	if v == nil {
		return nil, nil, nil
	}
	if len(v) < 8 {
		return nil, nil, fmt.Errorf("damaged data file: delivery %q is too short", id)
	}
	var d approvals.Delivery
	if err := jsonv2.Unmarshal(v[8:], &d); err != nil {
		return nil, nil, fmt.Errorf("damaged data file: decode delivery %q: %w", id, err)
	}
	return &d, bytes.Clone(v[:8]), nil
}

// indexedDelivery returns the delivery an entry of index names, which
// must exist.
func indexedDelivery(tx *bbolt.Tx, id []byte, index []byte) (*approvals.Delivery, []byte, error) {
	d, seq, err := getDelivery(tx, id)
	if err == nil && d == nil {
		err = fmt.Errorf("damaged data file: %s names delivery %q, which is missing", index, id)
	}
	return d, seq, err
}

// putDelivery writes d under seq and moves its index entries from what
// old (nil for a new delivery) needed.
func putDelivery(tx *bbolt.Tx, seq []byte, old, d *approvals.Delivery) error {
	value, err := json.Marshal(d)
	if err != nil {
		return fmt.Errorf("encode delivery: %w", err)
	}
	id := []byte(d.ID)
	if err := tx.Bucket(bucketDeliveries).Put(id, cat(seq, value)); err != nil {
		return err
	}
	if old == nil {
		if err := writeBucket(tx, bucketDeliveriesBySeq).Put(seq, id); err != nil {
			return err
		}
		if d.RequestID != "" {
			if err := tx.Bucket(bucketDeliveriesByRequest).Put(deliveriesByRequestKey(d.RequestID, seq), id); err != nil {
				return err
			}
		}
	}
	pending, sent := tx.Bucket(bucketDeliveriesPending), tx.Bucket(bucketDeliveriesSent)
	if old != nil {
		switch old.State {
		case approvals.DeliveryPending:
			if err := pending.Delete(pendingKey(old)); err != nil {
				return err
			}
		case approvals.DeliverySent:
			if err := sent.Delete(cat(t8(old.SentAt), id)); err != nil {
				return err
			}
		}
		if err := addDeliveryCount(tx, old, -1); err != nil {
			return err
		}
	}
	switch d.State {
	case approvals.DeliveryPending:
		if err := pending.Put(pendingKey(d), pendingValue(d)); err != nil {
			return err
		}
	case approvals.DeliverySent:
		if err := sent.Put(cat(t8(d.SentAt), id), []byte{}); err != nil {
			return err
		}
	}
	return addDeliveryCount(tx, d, 1)
}

// addDeliveryCount adds delta to the counter of d's channel and state,
// which is kept for sent and failed deliveries only.
func addDeliveryCount(tx *bbolt.Tx, d *approvals.Delivery, delta int64) error {
	if d.State == approvals.DeliveryPending {
		return nil
	}
	meta := tx.Bucket(bucketMeta)
	k := deliveryCountKey(d.Channel, d.State)
	var n int64
	if v := meta.Get(k); v != nil {
		n = int64(getU64(v))
	}
	if n += delta; n < 0 {
		return fmt.Errorf("damaged data file: the count of %s %s deliveries would fall below zero", d.State, d.Channel)
	}
	return meta.Put(k, u64(uint64(n)))
}

// enqueueDeliveries stores those of ds whose ids are not stored yet.
func enqueueDeliveries(tx *bbolt.Tx, ds []*approvals.Delivery) error {
	all := tx.Bucket(bucketDeliveries)
	for _, d := range ds {
		if all.Get([]byte(d.ID)) != nil {
			continue
		}
		seq, err := all.NextSequence()
		if err != nil {
			return err
		}
		c := d.Clone()
		c.Version = 1
		if err := putDelivery(tx, u64(seq), nil, c); err != nil {
			return err
		}
	}
	return nil
}

// announce enqueues the announcements of the announced events among
// events (their Seqs assigned), appended with the change that stored r.
func announce(tx *bbolt.Tx, events []approvals.Event, r *approvals.Request) error {
	var ds []*approvals.Delivery
	for _, ev := range events {
		if ev.Type.Announced() {
			a := approvals.NewAnnouncement(ev, r)
			ds = append(ds, &a)
		}
	}
	if len(ds) == 0 {
		return nil
	}
	return enqueueDeliveries(tx, ds)
}

// EnqueueDeliveries implements approvals.Outbox.
func (s *Store) EnqueueDeliveries(ctx context.Context, ds []approvals.Delivery) (err error) {
	defer wrap(&err, "EnqueueDeliveries")
	if err := ctx.Err(); err != nil {
		return err
	}
	batch, err := approvals.CheckEnqueue(ds)
	if err != nil {
		return err
	}
	for _, d := range batch {
		if len(d.RequestID) > maxIDLen {
			return approvals.Errorf(approvals.EInvalid, "delivery request id is longer than %d bytes", maxIDLen)
		}
	}
	if len(batch) == 0 {
		return nil
	}
	return s.write(func(tx *bbolt.Tx) error { return enqueueDeliveries(tx, batch) })
}

// ClaimDeliveries implements approvals.Outbox, as leasedQueue.claim
// does.
func (s *Store) ClaimDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) (out []*approvals.Delivery, err error) {
	defer wrap(&err, "ClaimDeliveries")
	return deliveryQueue().claim(ctx, s, now, lease, limit)
}

// UpdateDelivery implements approvals.Outbox. The mutation runs inside
// the write transaction, possibly more than once (see write).
func (s *Store) UpdateDelivery(ctx context.Context, id string, m approvals.DeliveryMutation) (d *approvals.Delivery, err error) {
	defer wrap(&err, "UpdateDelivery(%q)", id)
	return deliveryQueue().update(ctx, s, id, m)
}

// GetDelivery implements approvals.Outbox.
func (s *Store) GetDelivery(ctx context.Context, id string) (d *approvals.Delivery, err error) {
	defer func() {
		if err != approvals.ErrNotFound {
			wrap(&err, "GetDelivery(%q)", id)
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketDeliveries) == nil {
			return approvals.ErrNotFound
		}
		d, _, err = getDelivery(tx, []byte(id))
		if err == nil && d == nil {
			err = approvals.ErrNotFound
		}
		return err
	})
	return d, err
}

// ListDeliveries implements approvals.Outbox. Without a request it walks
// deliveries_by_seq after the cursor, with one the request's entries in
// deliveries_by_request; the state and channel filters decode what they
// skip.
func (s *Store) ListDeliveries(ctx context.Context, q approvals.DeliveryQuery) (out []*approvals.Delivery, next string, err error) {
	defer wrap(&err, "ListDeliveries")
	if err := ctx.Err(); err != nil {
		return nil, "", err
	}
	if q.State != "" && !q.State.Valid() {
		return nil, "", approvals.Errorf(approvals.EInvalid, "unknown delivery state %q", q.State)
	}
	if q.Channel != "" && !q.Channel.Valid() {
		return nil, "", approvals.Errorf(approvals.EInvalid, "unknown channel %q", q.Channel)
	}
	if len(q.RequestID) > maxIDLen {
		return nil, "", nil
	}
	limit := approvals.PageLimit(q.Limit)
	err = s.db.View(func(tx *bbolt.Tx) error {
		out, next = nil, ""
		if tx.Bucket(bucketDeliveries) == nil {
			return nil
		}
		bucket, prefix := bucketDeliveriesBySeq, []byte(nil)
		if q.RequestID != "" {
			bucket, prefix = bucketDeliveriesByRequest, deliveriesByRequestKey(q.RequestID, nil)
		}
		start := prefix
		if q.After != "" {
			_, seq, err := getDelivery(tx, []byte(q.After))
			if err != nil {
				return err
			}
			if seq == nil {
				return approvals.Errorf(approvals.EInvalid, "cursor %q names no delivery", q.After)
			}
			start = cat(prefix, u64(getU64(seq)+1))
		}
		c := tx.Bucket(bucket).Cursor()
		for k, v := c.Seek(start); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			d, _, err := indexedDelivery(tx, v, bucket)
			if err != nil {
				return err
			}
			if (q.State != "" && d.State != q.State) || (q.Channel != "" && d.Channel != q.Channel) {
				continue
			}
			if len(out) == limit {
				next = out[len(out)-1].ID
				return nil
			}
			out = append(out, d)
		}
		return nil
	})
	return out, next, err
}

// NextDeliveryAt implements approvals.Outbox, as leasedQueue.nextAt
// does.
func (s *Store) NextDeliveryAt(ctx context.Context) (at time.Time, ok bool, err error) {
	defer wrap(&err, "NextDeliveryAt")
	return deliveryQueue().nextAt(ctx, s)
}

// CountDeliveries implements approvals.Outbox. It reads the pending
// index's keys and values and the sent and failed counters, and decodes
// no delivery.
func (s *Store) CountDeliveries(ctx context.Context, now time.Time) (n map[approvals.Channel]approvals.DeliveryCounts, err error) {
	defer wrap(&err, "CountDeliveries")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		n = make(map[approvals.Channel]approvals.DeliveryCounts, len(approvals.Channels))
		meta := tx.Bucket(bucketMeta)
		for _, c := range approvals.Channels {
			var dc approvals.DeliveryCounts
			if v := meta.Get(deliveryCountKey(c, approvals.DeliverySent)); v != nil {
				dc.Sent = int(getU64(v))
			}
			if v := meta.Get(deliveryCountKey(c, approvals.DeliveryFailed)); v != nil {
				dc.Failed = int(getU64(v))
			}
			n[c] = dc
		}
		pending := map[approvals.Channel]*approvals.JobCounts{}
		err := deliveryQueue().count(tx, t8(now), func(v []byte) (*approvals.JobCounts, error) {
			ch, _, err := decodePendingValue(v)
			if err != nil {
				return nil, err
			}
			if pending[ch] == nil {
				pending[ch] = &approvals.JobCounts{}
			}
			return pending[ch], nil
		})
		for ch, p := range pending {
			dc := n[ch]
			dc.Due, dc.Leased, dc.Scheduled = p.Due, p.Leased, p.Scheduled
			n[ch] = dc
		}
		return err
	})
	return n, err
}

// purgeBatch is how many deliveries PurgeDeliveries removes per
// transaction, so that a large purge does not hold off other writes.
const purgeBatch = 1000

// PurgeDeliveries implements approvals.Outbox. It walks deliveries_sent
// from its start up to sentBefore, in transactions of purgeBatch.
func (s *Store) PurgeDeliveries(ctx context.Context, sentBefore time.Time) (total int, err error) {
	defer wrap(&err, "PurgeDeliveries")
	end := t8(sentBefore)
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var n int
		err = s.write(func(tx *bbolt.Tx) error {
			n = 0
			var ids [][]byte
			c := tx.Bucket(bucketDeliveriesSent).Cursor()
			for k, _ := c.First(); k != nil && len(ids) < purgeBatch; k, _ = c.Next() {
				if bytes.Compare(k[:8], end) >= 0 {
					break
				}
				ids = append(ids, bytes.Clone(k[8:]))
			}
			for _, id := range ids {
				d, seq, err := indexedDelivery(tx, id, bucketDeliveriesSent)
				if err != nil {
					return err
				}
				if !d.SentAt.Before(sentBefore) {
					continue
				}
				if err := deleteDelivery(tx, seq, d); err != nil {
					return err
				}
				n++
			}
			return nil
		})
		total += n
		if err != nil || n < purgeBatch {
			return total, err
		}
	}
}

// deleteDelivery removes a sent delivery and its index entries.
func deleteDelivery(tx *bbolt.Tx, seq []byte, d *approvals.Delivery) error {
	id := []byte(d.ID)
	for _, del := range []struct {
		bucket, key []byte
	}{
		{bucketDeliveries, id},
		{bucketDeliveriesBySeq, seq},
		{bucketDeliveriesSent, cat(t8(d.SentAt), id)},
	} {
		if err := tx.Bucket(del.bucket).Delete(del.key); err != nil {
			return err
		}
	}
	if d.RequestID != "" {
		if err := tx.Bucket(bucketDeliveriesByRequest).Delete(deliveriesByRequestKey(d.RequestID, seq)); err != nil {
			return err
		}
	}
	return addDeliveryCount(tx, d, -1)
}

// checkOutbox verifies the outbox buckets for Check: every delivery
// decodes under its own id, and each index and counter holds exactly what
// the deliveries call for. A read-only file from before them has none.
func checkOutbox(tx *bbolt.Tx, bad func(format string, args ...any)) error {
	if tx.Bucket(bucketDeliveries) == nil {
		return nil
	}
	for _, name := range outboxBuckets() {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %s is missing", name)
		}
	}
	want := map[string]map[string]string{}
	for _, name := range outboxBuckets()[1:] {
		want[string(name)] = map[string]string{}
	}
	counts := map[string]uint64{}
	err := tx.Bucket(bucketDeliveries).ForEach(func(k, v []byte) error {
		d, seq, err := getDelivery(tx, k)
		if err != nil {
			bad("delivery %q: %v", k, err)
			return nil
		}
		if d.ID != string(k) {
			bad("delivery %q holds id %q", k, d.ID)
			return nil
		}
		if err := approvals.CheckDelivery(d); err != nil {
			bad("delivery %q: %v", k, err)
			return nil
		}
		want[string(bucketDeliveriesBySeq)][string(seq)] = d.ID
		if d.RequestID != "" {
			want[string(bucketDeliveriesByRequest)][string(deliveriesByRequestKey(d.RequestID, seq))] = d.ID
		}
		switch d.State {
		case approvals.DeliveryPending:
			want[string(bucketDeliveriesPending)][string(pendingKey(d))] = string(pendingValue(d))
		case approvals.DeliverySent:
			want[string(bucketDeliveriesSent)][string(cat(t8(d.SentAt), k))] = ""
			counts[string(deliveryCountKey(d.Channel, d.State))]++
		default:
			counts[string(deliveryCountKey(d.Channel, d.State))]++
		}
		return nil
	})
	if err != nil {
		return err
	}
	for name, entries := range want {
		b := tx.Bucket([]byte(name))
		seen := 0
		if err := b.ForEach(func(k, v []byte) error {
			seen++
			if w, ok := entries[string(k)]; !ok {
				bad("%s holds stray key %x", name, k)
			} else if w != string(v) {
				bad("%s key %x holds %x; want %x", name, k, v, w)
			}
			return nil
		}); err != nil {
			return err
		}
		if seen < len(entries) {
			bad("%s lacks %d of its %d entries", name, len(entries)-seen, len(entries))
		}
	}
	meta := tx.Bucket(bucketMeta)
	for _, c := range approvals.Channels {
		for _, st := range []approvals.DeliveryState{approvals.DeliverySent, approvals.DeliveryFailed} {
			k := deliveryCountKey(c, st)
			var n uint64
			if v := meta.Get(k); len(v) == 8 {
				n = getU64(v)
			}
			if n != counts[string(k)] {
				bad("meta %s is %d; the deliveries hold %d", k, n, counts[string(k)])
			}
		}
	}
	return nil
}
