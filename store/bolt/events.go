package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"math"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// checkEvents refuses events the schema cannot index.
func checkEvents(events []approvals.Event) error {
	for _, ev := range events {
		if len(ev.RequestID) > maxIDLen {
			return approvals.Errorf(approvals.EInvalid, "event request id is longer than %d bytes", maxIDLen)
		}
	}
	return nil
}

// appendEvents appends events to the audit trail, giving each the next Seq
// and, when it has none, the request id defaultID.
func appendEvents(tx *bbolt.Tx, events []approvals.Event, defaultID string) ([]approvals.Event, error) {
	if len(events) == 0 {
		return nil, nil
	}
	assigned := make([]approvals.Event, 0, len(events))
	all := writeBucket(tx, bucketEvents)
	byRequest := writeBucket(tx, bucketEventsByRequest)
	byTime := writeBucket(tx, bucketEventsByTime)
	meta := tx.Bucket(bucketMeta)
	maxAt := bytes.Clone(meta.Get(keyEventsMaxAt))
	for _, ev := range events {
		seq, err := all.NextSequence()
		if err != nil {
			return nil, err
		}
		ev.Seq = seq
		if ev.RequestID == "" {
			ev.RequestID = defaultID
		}
		value, err := json.Marshal(ev)
		if err != nil {
			return nil, fmt.Errorf("encode event: %w", err)
		}
		assigned = append(assigned, ev)
		if err := all.Put(u64(seq), value); err != nil {
			return nil, err
		}
		if ev.RequestID != "" {
			if err := byRequest.Put(cat(eventsByRequestPrefix(ev.RequestID), u64(seq)), []byte{}); err != nil {
				return nil, err
			}
		}
		if at := t8(ev.At); maxAt == nil || bytes.Compare(at, maxAt) > 0 {
			if err := byTime.Put(at, u64(seq)); err != nil {
				return nil, err
			}
			maxAt = at
		}
	}
	return assigned, meta.Put(keyEventsMaxAt, maxAt)
}

// AppendEvents implements approvals.Store.
func (s *Store) AppendEvents(ctx context.Context, events []approvals.Event) (err error) {
	defer wrap(&err, "AppendEvents")
	if err := ctx.Err(); err != nil {
		return err
	}
	if len(events) == 0 {
		return nil
	}
	if err := checkEvents(events); err != nil {
		return err
	}
	return s.write(func(tx *bbolt.Tx) error {
		_, err := appendEvents(tx, events, "")
		return err
	})
}

// Audit implements approvals.Store. With RequestID it walks that request's
// entries in events_by_request; otherwise it walks the events from
// AfterSeq, or from the first Seq events_by_time shows can match Since.
func (s *Store) Audit(ctx context.Context, q approvals.AuditQuery) (out []approvals.Event, next uint64, err error) {
	defer wrap(&err, "Audit")
	if err := ctx.Err(); err != nil {
		return nil, 0, err
	}
	if q.AfterSeq == math.MaxUint64 {
		return nil, 0, nil
	}
	limit := approvals.PageLimit(q.Limit)
	err = s.db.View(func(tx *bbolt.Tx) error {
		out, next = nil, 0
		events := tx.Bucket(bucketEvents)
		// candidates returns the Seq and value of the next event that may
		// match, in Seq order, and false at the end.
		var candidates func() ([]byte, []byte, bool)
		if q.RequestID != "" {
			prefix := eventsByRequestPrefix(q.RequestID)
			c := tx.Bucket(bucketEventsByRequest).Cursor()
			k, _ := c.Seek(cat(prefix, u64(q.AfterSeq+1)))
			candidates = func() ([]byte, []byte, bool) {
				if k == nil || !bytes.HasPrefix(k, prefix) {
					return nil, nil, false
				}
				seq := k[len(prefix):]
				k, _ = c.Next()
				v := events.Get(seq)
				return seq, v, v != nil
			}
		} else {
			start := q.AfterSeq + 1
			if !q.Since.IsZero() {
				at, seq := tx.Bucket(bucketEventsByTime).Cursor().Seek(t8(q.Since))
				if at == nil {
					return nil // every event is older than Since
				}
				start = max(start, getU64(seq))
			}
			c := events.Cursor()
			k, v := c.Seek(u64(start))
			candidates = func() ([]byte, []byte, bool) {
				if k == nil {
					return nil, nil, false
				}
				seq, value := k, v
				k, v = c.Next()
				return seq, value, true
			}
		}
		for seq, v, ok := candidates(); ok; seq, v, ok = candidates() {
			var ev approvals.Event
			if err := json.Unmarshal(v, &ev); err != nil {
				return fmt.Errorf("damaged data file: decode event %d: %w", getU64(seq), err)
			}
			if ev.At.Before(q.Since) || (q.RequestID != "" && ev.RequestID != q.RequestID) {
				continue
			}
			if len(out) == limit { // one more matches: there is a next page
				next = out[len(out)-1].Seq
				break
			}
			out = append(out, ev)
		}
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	return out, next, nil
}

// releaseEvery is how many chunks of a Decisions scan pass between two
// releases of the mapped pages. Every page fault maps the 16 neighbouring
// pages too (the kernel's fault-around), and the decisions pages lie
// scattered through the file, so 4,096 rows (about 1 MB of them) leave some
// 20 MB mapped: often enough to keep the resident set to a few tens of
// megabytes, seldom enough that the tree's upper pages are not faulted
// back in for every chunk.
const releaseEvery = 4

// Decisions implements approvals.Store. It merges the approved and denied
// ranges of the decisions index by decision time and yields the export
// rows the entries hold, never reading a request. It reads a chunk of rows
// per read transaction so that neither memory nor a long-lived transaction
// grows with the export; a request decided again while the export runs
// may show up at both decision times.
func (s *Store) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) (err error) {
	defer wrap(&err, "Decisions")
	var codes []byte
	switch q.Status {
	case "":
		codes = []byte{2, 3}
	case approvals.StatusApproved, approvals.StatusDenied:
		code, _ := statusCode(q.Status)
		codes = []byte{code}
	default:
		return approvals.Errorf(approvals.EInvalid, "status %q has no decisions; use approved or denied", q.Status)
	}
	from := make([]byte, 8)
	if !q.Since.IsZero() {
		from = t8(q.Since)
	}
	var until []byte
	if !q.Until.IsZero() {
		until = t8(q.Until)
	}
	inRange := func(k []byte, code byte) []byte {
		if k == nil || k[0] != code || (until != nil && bytes.Compare(k[1:9], until) >= 0) {
			return nil
		}
		return k
	}
	// last[i] is the last key read for codes[i], nil before the first.
	last := make([][]byte, len(codes))
	chunk := make([]approvals.DecisionRecord, 0, s.decisionChunk)
	chunks := 0
	for {
		done := false
		chunk = chunk[:0]
		err := s.db.View(func(tx *bbolt.Tx) error {
			// The rows are copies: every releaseEvery chunks, drop the
			// pages they were read from from this process's resident set.
			if chunks++; chunks%releaseEvery == 0 {
				defer releaseMapping(s.db, tx)
			}
			chunk, done = chunk[:0], false
			b := tx.Bucket(bucketDecisions)
			cursors := make([]*bbolt.Cursor, len(codes))
			heads := make([][]byte, len(codes))
			values := make([][]byte, len(codes))
			for i, code := range codes {
				cursors[i] = b.Cursor()
				var k, v []byte
				if last[i] == nil {
					k, v = cursors[i].Seek(cat([]byte{code}, from))
				} else if k, v = cursors[i].Seek(last[i]); bytes.Equal(k, last[i]) {
					k, v = cursors[i].Next()
				}
				heads[i], values[i] = inRange(k, code), v
			}
			for len(chunk) < s.decisionChunk {
				best := -1
				for i, h := range heads {
					if h != nil && (best < 0 || bytes.Compare(h[1:], heads[best][1:]) < 0) {
						best = i
					}
				}
				if best < 0 {
					done = true
					return nil
				}
				rec, err := decodeRow(values[best])
				if err != nil {
					return fmt.Errorf("decisions entry %x: %w", heads[best], err)
				}
				// t8 clamps far-off times; the exact bounds decide.
				if !rec.DecidedAt.Before(q.Since) && (q.Until.IsZero() || rec.DecidedAt.Before(q.Until)) {
					chunk = append(chunk, rec)
				}
				last[best] = append(last[best][:0], heads[best]...)
				k, v := cursors[best].Next()
				heads[best], values[best] = inRange(k, codes[best]), v
			}
			return nil
		})
		if err != nil {
			return err
		}
		for _, rec := range chunk {
			if err := ctx.Err(); err != nil {
				return err
			}
			if err := fn(rec); err != nil {
				return err
			}
		}
		if done {
			return nil
		}
	}
}
