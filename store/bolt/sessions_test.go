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
// version 3: testdata/v3.db predates them. A read-only Open reads no
// sessions from it; a writable one adds the buckets, and the file passes
// Check.
func TestSessionBucketsAddedToOldFile(t *testing.T) {
	ctx := context.Background()
	path := copyGolden(t, "v3")
	ro := open(t, path, Options{ReadOnly: true})
	if _, err := ro.Session(ctx, "x", clockTime); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("read-only Session on a file without sessions = %v; want not found", err)
	}
	// It cannot store a first cookie key: it says why.
	fresh := approvals.CookieKey{Secret: make([]byte, approvals.CookieKeySize)}
	if _, err := ro.CookieKeys(ctx, clockTime, time.Hour, fresh); approvals.Code(err) != approvals.EUnavailable {
		t.Errorf("read-only CookieKeys = %v; want unavailable", err)
	}
	if n, err := ro.PurgeSessions(ctx, clockTime, 10); n != 0 || err != nil {
		t.Errorf("read-only PurgeSessions = %d, %v", n, err)
	}
	if err := ro.Check(); err != nil {
		t.Errorf("Check of the old file: %v", err)
	}
	ro.Close()

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
		if v, _ := version(tx.Bucket(bucketMeta)); v != 3 {
			t.Errorf("schema version %d; want 2 still", v)
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
