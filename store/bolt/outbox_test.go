package bolt

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// TestCheckOutbox: Check accepts the outbox the store writes and names a
// missing or stray index entry and a wrong counter.
func TestCheckOutbox(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "a.db"), Options{})
	defer s.Close()
	ctx := context.Background()
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	var ds []approvals.Delivery
	for i, ch := range []approvals.Channel{approvals.ChannelWebhook, approvals.ChannelEmail, approvals.ChannelSlack} {
		ds = append(ds, approvals.Delivery{ID: "d" + string(rune('0'+i)), Channel: ch, RequestID: "r1", CreatedAt: at, NextAttemptAt: at})
	}
	if err := s.EnqueueDeliveries(ctx, ds); err != nil {
		t.Fatal(err)
	}
	claimed, err := s.ClaimDeliveries(ctx, at, time.Minute, 2)
	if err != nil || len(claimed) != 2 {
		t.Fatalf("claim = %d, %v", len(claimed), err)
	}
	for i, d := range claimed {
		if _, err := s.UpdateDelivery(ctx, d.ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
			if i == 0 {
				d.MarkSent(at)
			} else {
				d.MarkFailed("550")
			}
			return nil, nil
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Check(); err != nil {
		t.Fatalf("Check of a sound outbox: %v", err)
	}
	for _, tt := range []struct {
		name    string
		corrupt func(tx *bbolt.Tx) error
		want    string
	}{
		{"pending entry lost", func(tx *bbolt.Tx) error {
			c := tx.Bucket(bucketDeliveriesPending).Cursor()
			k, _ := c.First()
			return tx.Bucket(bucketDeliveriesPending).Delete(k)
		}, "deliveries_pending lacks 1"},
		{"stray sent entry", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketDeliveriesSent).Put(cat(t8(at), []byte("ghost")), nil)
		}, "deliveries_sent holds stray key"},
		{"counter off", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(deliveryCountKey(approvals.ChannelEmail, approvals.DeliveryFailed), u64(7))
		}, "meta outbox/email/failed is 7"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tx, err := s.db.Begin(true)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback() }()
			if err := tt.corrupt(tx); err != nil {
				t.Fatal(err)
			}
			err = checkIndexes(tx)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("checkIndexes = %v; want it to say %q", err, tt.want)
			}
		})
	}
}
