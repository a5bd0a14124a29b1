package bolt

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/storetest"
	bbolt "go.etcd.io/bbolt"
)

var update = flag.Bool("update", false, "rewrite the database files in testdata/")

// open opens the store at path, failing the test or benchmark when it
// cannot.
func open(t testing.TB, path string, opts Options) *Store {
	t.Helper()
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.RunPersistent(t, func(t *testing.T, path string, clock approvals.Clock) approvals.Store {
		s := open(t, path, Options{Clock: clock})
		s.decisionChunk = 50 // cross chunk boundaries in the suite's exports
		return s
	})
}

func TestOpenRefusals(t *testing.T) {
	dir := t.TempDir()
	write := func(name string, fn func(tx *bbolt.Tx) error) string {
		path := filepath.Join(dir, name)
		db, err := bbolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		if fn != nil {
			if err := db.Update(fn); err != nil {
				t.Fatal(err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		return path
	}
	newer := filepath.Join(dir, "newer.db")
	s := open(t, newer, Options{})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(newer, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, u64(schemaVersion+1))
	}); err != nil {
		t.Fatal(err)
	}
	db.Close()
	garbage := filepath.Join(dir, "garbage.db")
	if err := os.WriteFile(garbage, bytes.Repeat([]byte("not a database "), 1000), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		path     string
		readOnly bool
		is       error
		message  string
	}{
		{"NewerSchema", newer, false, ErrNewerSchema, "newer version of approvals"},
		{"NewerSchemaReadOnly", newer, true, ErrNewerSchema, "upgrade approvals"},
		{"ForeignBuckets", write("foreign.db", func(tx *bbolt.Tx) error {
			_, err := tx.CreateBucket([]byte("someone_else"))
			return err
		}), false, nil, "not an approvals data file"},
		{"EmptyBoltFileReadOnly", write("empty.db", nil), true, nil, "not an approvals data file"},
		{"MissingReadOnly", filepath.Join(dir, "missing.db"), true, os.ErrNotExist, "missing.db"},
		{"NotBolt", garbage, false, nil, "garbage.db"},
		{"MissingBucket", write("partial.db", func(tx *bbolt.Tx) error {
			b, err := tx.CreateBucket(bucketMeta)
			if err != nil {
				return err
			}
			return b.Put(keySchemaVersion, u64(schemaVersion))
		}), false, nil, "bucket requests is missing"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, err := Open(tt.path, Options{ReadOnly: tt.readOnly})
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			if tt.is != nil && !errors.Is(err, tt.is) {
				t.Errorf("Open = %v; want %v", err, tt.is)
			}
			if !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Open = %q; want a message containing %q", err, tt.message)
			}
		})
	}
}

func TestLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "approvals.db")
	s := open(t, path, Options{})
	defer s.Close()
	for _, readOnly := range []bool{false, true} {
		start := time.Now()
		other, err := Open(path, Options{Timeout: 200 * time.Millisecond, ReadOnly: readOnly})
		if err == nil {
			other.Close()
			t.Fatalf("Open(ReadOnly %v) of a file in use succeeded", readOnly)
		}
		if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), "in use by a running approvals server") {
			t.Errorf("Open(ReadOnly %v) = %v; want ErrLocked", readOnly, err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Open waited %v for a 200ms timeout", d)
		}
	}
	if _, err := Open(path, Options{Timeout: -1}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open(Timeout -1) = %v; want ErrLocked", err)
	}
}

func TestReadOnly(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approvals.db")
	s := open(t, path, Options{})
	r, _, err := s.Create(ctx, &approvals.Request{Email: "a@example.com", Status: approvals.StatusPending, CreatedAt: time.Unix(1e9, 0).UTC()}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Two readers share the file; writes fail with a clear error.
	ro1 := open(t, path, Options{ReadOnly: true})
	defer ro1.Close()
	ro2 := open(t, path, Options{ReadOnly: true})
	defer ro2.Close()
	if got, err := ro2.Get(ctx, r.ID); err != nil || got.Email != r.Email {
		t.Errorf("Get on a read-only store = %v, %v", got, err)
	}
	writes := map[string]error{}
	_, _, writes["Create"] = ro1.Create(ctx, &approvals.Request{Email: "b@example.com", Status: approvals.StatusPending}, nil)
	_, writes["Update"] = ro1.Update(ctx, r.ID, func(*approvals.Request) ([]approvals.Event, error) { return nil, nil })
	writes["AppendEvents"] = ro1.AppendEvents(ctx, []approvals.Event{{Type: approvals.EventBlockedAtCheck}})
	for op, err := range writes {
		if approvals.Code(err) != approvals.EUnavailable || !strings.Contains(err.Error(), "read-only") {
			t.Errorf("%s on a read-only store = %v; want a read-only error", op, err)
		}
	}
	// A writer cannot open the file while readers hold it.
	if _, err := Open(path, Options{Timeout: -1}); !errors.Is(err, ErrLocked) {
		t.Errorf("Open for writing while readers hold the file = %v; want ErrLocked", err)
	}
}

func TestBackup(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := open(t, filepath.Join(dir, "approvals.db"), Options{})
	defer s.Close()
	fill(t, s)

	var buf bytes.Buffer
	n, err := s.Backup(&buf)
	if err != nil || n != int64(buf.Len()) || n == 0 {
		t.Fatalf("Backup = %d, %v; wrote %d bytes", n, err, buf.Len())
	}
	// Writes after the snapshot do not reach it.
	if _, _, err := s.Create(ctx, &approvals.Request{Email: "late@example.com", Status: approvals.StatusPending, CreatedAt: time.Unix(2e9, 0).UTC()}, nil); err != nil {
		t.Fatal(err)
	}
	copyPath := filepath.Join(dir, "backup.db")
	if err := os.WriteFile(copyPath, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	b := open(t, copyPath, Options{ReadOnly: true})
	defer b.Close()
	if err := b.Check(); err != nil {
		t.Errorf("Check of the backup: %v", err)
	}
	want, _ := s.Count(ctx)
	want[approvals.StatusPending]--
	got, _ := b.Count(ctx)
	if !equalCounts(got, want) {
		t.Errorf("backup counts %v; want %v", got, want)
	}
}

func equalCounts(a, b map[approvals.Status]int) bool {
	for _, st := range approvals.Statuses {
		if a[st] != b[st] {
			return false
		}
	}
	return len(a) == len(b)
}

// TestCheckFindsDamage breaks each invariant Check verifies and expects it
// to say so.
func TestCheckFindsDamage(t *testing.T) {
	tests := []struct {
		name    string
		damage  func(tx *bbolt.Tx) error
		message string
	}{
		{"StrayStatusEntry", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketByStatus).Put(cat([]byte{3}, make([]byte, 8), []byte("ghost")), []byte{})
		}, "stray key"},
		{"MissingJob", func(tx *bbolt.Tx) error {
			k, _ := tx.Bucket(bucketJobs).Cursor().First()
			return tx.Bucket(bucketJobs).Delete(k)
		}, "index jobs lacks key"},
		{"WrongCount", func(tx *bbolt.Tx) error {
			return tx.Bucket(bucketMeta).Put(countKey(approvals.StatusDenied), u64(99))
		}, "count of denied requests is 99"},
		{"PersonPointsElsewhere", func(tx *bbolt.Tx) error {
			return rewriteFirst(tx, bucketByPerson, func([]byte) ([]byte, error) { return []byte("someone-else"), nil })
		}, "index by_person key"},
		{"StaleStanding", func(tx *bbolt.Tx) error {
			return rewriteFirst(tx, bucketByPerson, func(v []byte) ([]byte, error) {
				st, err := decodeStanding(v)
				return standingValue(&approvals.Request{ID: st.ID, Status: st.Status,
					Provisioning: approvals.Provisioning{State: approvals.ProvisioningFailed}}), err
			})
		}, "index by_person key"},
		{"StaleExportRow", func(tx *bbolt.Tx) error {
			return rewriteFirst(tx, bucketDecisions, func(v []byte) ([]byte, error) {
				rec, err := decodeRow(v)
				rec.UserID = "someone-else"
				return encodeRow(rec), err
			})
		}, "UserID:someone-else"},
		{"EmptyExportRow", func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketDecisions)
			k, _ := b.Cursor().Last()
			return b.Put(bytes.Clone(k), []byte{})
		}, "index decisions key"},
		{"MissingEventIndex", func(tx *bbolt.Tx) error {
			k, _ := tx.Bucket(bucketEventsByRequest).Cursor().Last()
			return tx.Bucket(bucketEventsByRequest).Delete(k)
		}, "index events_by_request lacks key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "approvals.db"), Options{})
			defer s.Close()
			fill(t, s)
			if err := s.Check(); err != nil {
				t.Fatalf("Check before the damage: %v", err)
			}
			if err := s.db.Update(tt.damage); err != nil {
				t.Fatal(err)
			}
			err := s.Check()
			if err == nil || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("Check = %v; want %q", err, tt.message)
			}
		})
	}
}

// rewriteFirst replaces the value of the first entry of bucket name with
// what change makes of it.
func rewriteFirst(tx *bbolt.Tx, name []byte, change func(v []byte) ([]byte, error)) error {
	b := tx.Bucket(name)
	k, v := b.Cursor().First()
	v, err := change(v)
	if err != nil {
		return err
	}
	return b.Put(bytes.Clone(k), v)
}

// fill stores a few requests in every state, with their events.
func fill(t *testing.T, s approvals.Store) {
	t.Helper()
	ctx := context.Background()
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada Reviewer"}
	for i, next := range []func(r *approvals.Request) (approvals.Event, error){
		nil,
		func(r *approvals.Request) (approvals.Event, error) {
			return r.Approve(reviewer, "known", at, time.Hour)
		},
		func(r *approvals.Request) (approvals.Event, error) { return r.Deny(reviewer, "spam", at) },
		func(r *approvals.Request) (approvals.Event, error) {
			return r.Approve(reviewer, "known", at.Add(time.Minute), time.Hour)
		},
	} {
		r, _, err := s.Create(ctx, &approvals.Request{
			Email:     "person" + string(rune('a'+i)) + "@example.com",
			Identity:  &approvals.Identity{Issuer: approvals.IssuerGoogle, IssuerAssignedID: string(rune('a' + i))},
			Claims:    map[string]any{"city": "Redmond"},
			Status:    approvals.StatusPending,
			CreatedAt: at.Add(time.Duration(i) * time.Second),
		}, []approvals.Event{{At: at, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}})
		if err != nil {
			t.Fatal(err)
		}
		if next == nil {
			continue
		}
		if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
			ev, err := next(r)
			return []approvals.Event{ev}, err
		}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AppendEvents(ctx, []approvals.Event{{At: at, Type: approvals.EventBlockedAtCheck, Actor: approvals.ConnectorActor}}); err != nil {
		t.Fatal(err)
	}
}
