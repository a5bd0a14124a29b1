package bolt

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// TestSessionBucketsAddedToOldFile checks the buckets added within schema
// version 3: testdata/v3.db predates them. A writable Open (which also
// upgrades the file to version 4) adds the buckets, and the file passes
// Check.
func TestSessionBucketsAddedToOldFile(t *testing.T) {
	ctx := context.Background()
	path := copyGolden(t, "v3")
	s := open(t, path, Options{})
	ss := &approvals.Session{IDHash: "abc", CreatedAt: clockTime, LastSeenAt: clockTime, ExpiresAt: clockTime.Add(time.Hour)}
	if err := s.CreateSession(ctx, ss, 0); err != nil {
		t.Fatalf("CreateSession after the upgrade = %v", err)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check: %v", err)
	}
	s.Close()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	_ = db.View(func(tx *bbolt.Tx) error {
		for _, name := range sessionBuckets() {
			if tx.Bucket(name) == nil {
				t.Errorf("bucket %s was not created", name)
			}
		}
		if v, _ := version(tx.Bucket(bucketMeta)); v != schemaVersion {
			t.Errorf("schema version %d; want %d", v, schemaVersion)
		}
		return nil
	})
}

// TestCheckFindsSessionDamage checks that Check sees a session without its
// expiry entry and a wrong count.
func TestCheckFindsSessionDamage(t *testing.T) {
	ctx := context.Background()
	s := open(t, t.TempDir()+"/s.db", Options{})
	defer s.Close()
	ss := &approvals.Session{IDHash: "abc", ExpiresAt: clockTime.Add(time.Hour)}
	if err := s.CreateSession(ctx, ss, 0); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Update(func(tx *bbolt.Tx) error {
		if err := tx.Bucket(bucketSessionsByExpiry).Delete(expiryKey(ss)); err != nil {
			return err
		}
		return tx.Bucket(bucketSessions).SetSequence(5)
	}); err != nil {
		t.Fatal(err)
	}
	err := s.Check()
	if err == nil {
		t.Fatal("Check passed a damaged file")
	}
	for _, want := range []string{"lacks key", "counts 5 sessions"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Check = %v; want %q in it", err, want)
		}
	}
}
