package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// The web UI's sessions and cookie keys (approvals.SessionStore):
//
//	sessions                                the bucket's sequence is the
//	  IDHash                   -> approvals.Session   number of sessions
//	sessions_by_expiry
//	  t8(ExpiresAt) IDHash     -> ""
//	cookie_keys                             at most two: the newest and
//	  u64(ID)                  -> t8(CreatedAt) secret   the one before
//
// These buckets came after schema version 2 without changing any older
// bucket, so they carry no version of their own: a writable Open creates
// them when they are missing, and a read-only one of a file that lacks
// them reads no sessions. The expiry index lets CreateSession make room
// and PurgeSessions delete expired sessions with work bounded by what they
// delete, whatever the number of sessions.

// Bucket names of the sessions.
var (
	bucketSessions         = []byte("sessions")
	bucketSessionsByExpiry = []byte("sessions_by_expiry")
	bucketCookieKeys       = []byte("cookie_keys")
)

// sessionBuckets lists the buckets added after version 2 (see above).
func sessionBuckets() [][]byte {
	return [][]byte{bucketSessions, bucketSessionsByExpiry, bucketCookieKeys}
}

// maxIDHashLen bounds the session keys the store accepts.
const maxIDHashLen = 128

func expiryKey(s *approvals.Session) []byte {
	return cat(t8(s.ExpiresAt), []byte(s.IDHash))
}

func getSession(tx *bbolt.Tx, idHash string) (*approvals.Session, error) {
	b := tx.Bucket(bucketSessions)
	if b == nil { // a file from before the sessions, open read-only
		return nil, nil
	}
	v := b.Get([]byte(idHash))
	if v == nil {
		return nil, nil
	}
	s := &approvals.Session{}
	if err := json.Unmarshal(v, s); err != nil {
		return nil, fmt.Errorf("damaged data file: session: %w", err)
	}
	return s, nil
}

// putSession stores s and its index entry; old is the version it
// replaces, nil for a new session.
func putSession(tx *bbolt.Tx, old, s *approvals.Session) error {
	value, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("encode session: %w", err)
	}
	sessions, byExpiry := tx.Bucket(bucketSessions), tx.Bucket(bucketSessionsByExpiry)
	if old != nil {
		if err := byExpiry.Delete(expiryKey(old)); err != nil {
			return err
		}
	} else if err := sessions.SetSequence(sessions.Sequence() + 1); err != nil {
		return err
	}
	if err := sessions.Put([]byte(s.IDHash), value); err != nil {
		return err
	}
	return byExpiry.Put(expiryKey(s), []byte{})
}

// deleteSession deletes the session under idHash, if any, with its index
// entry.
func deleteSession(tx *bbolt.Tx, idHash string) error {
	s, err := getSession(tx, idHash)
	if err != nil || s == nil {
		return err
	}
	sessions := tx.Bucket(bucketSessions)
	if err := tx.Bucket(bucketSessionsByExpiry).Delete(expiryKey(s)); err != nil {
		return err
	}
	if err := sessions.Delete([]byte(idHash)); err != nil {
		return err
	}
	return sessions.SetSequence(sessions.Sequence() - 1)
}

// soonestSessions returns the IDHashes of up to n sessions, soonest expiry
// first, that expire at or before until.
func soonestSessions(tx *bbolt.Tx, n int, until time.Time) []string {
	var out []string
	end := t8(until)
	c := tx.Bucket(bucketSessionsByExpiry).Cursor()
	for k, _ := c.First(); k != nil && len(out) < n; k, _ = c.Next() {
		if len(k) < 8 || bytes.Compare(k[:8], end) > 0 {
			break
		}
		out = append(out, string(k[8:]))
	}
	return out
}

// CreateSession implements approvals.SessionStore.
func (s *Store) CreateSession(ctx context.Context, ss *approvals.Session, max int) (err error) {
	defer wrap(&err, "CreateSession")
	if err := ctx.Err(); err != nil {
		return err
	}
	if ss == nil || ss.IDHash == "" || len(ss.IDHash) > maxIDHashLen {
		return approvals.Errorf(approvals.EInvalid, "a session needs an id hash of 1 to %d bytes", maxIDHashLen)
	}
	var refused error
	err = s.write(func(tx *bbolt.Tx) error {
		refused = nil
		if tx.Bucket(bucketSessions).Get([]byte(ss.IDHash)) != nil {
			refused = approvals.Errorf(approvals.EConflict, "session exists")
			return nil
		}
		if n := int(tx.Bucket(bucketSessions).Sequence()); max > 0 && n >= max {
			for _, h := range soonestSessions(tx, n-max+1, maxNanoTime) {
				if err := deleteSession(tx, h); err != nil {
					return err
				}
			}
		}
		return putSession(tx, nil, ss)
	})
	if err == nil {
		err = refused
	}
	return err
}

// Session implements approvals.SessionStore.
func (s *Store) Session(ctx context.Context, idHash string, now time.Time) (ss *approvals.Session, err error) {
	defer wrap(&err, "Session")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		ss, err = getSession(tx, idHash)
		return err
	})
	if err == nil && (ss == nil || !ss.ExpiresAt.After(now)) {
		return nil, approvals.ErrSessionNotFound
	}
	return ss, err
}

// TouchSession implements approvals.SessionStore.
func (s *Store) TouchSession(ctx context.Context, idHash string, seen, expires time.Time) (err error) {
	defer wrap(&err, "TouchSession")
	if err := ctx.Err(); err != nil {
		return err
	}
	var refused error
	err = s.write(func(tx *bbolt.Tx) error {
		refused = nil
		old, err := getSession(tx, idHash)
		if err != nil {
			return err
		}
		if old == nil || !old.ExpiresAt.After(seen) {
			refused = approvals.ErrSessionNotFound
			return nil
		}
		c := *old
		c.LastSeenAt, c.ExpiresAt = seen, expires
		return putSession(tx, old, &c)
	})
	if err == nil {
		err = refused
	}
	return err
}

// DeleteSession implements approvals.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, idHash string) (err error) {
	defer wrap(&err, "DeleteSession")
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.write(func(tx *bbolt.Tx) error { return deleteSession(tx, idHash) })
}

// PurgeSessions implements approvals.SessionStore. A purge that finds
// nothing to delete reads one index page and writes nothing.
func (s *Store) PurgeSessions(ctx context.Context, now time.Time, limit int) (n int, err error) {
	defer wrap(&err, "PurgeSessions")
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	var due []string
	if err := s.db.View(func(tx *bbolt.Tx) error {
		if tx.Bucket(bucketSessionsByExpiry) != nil {
			due = soonestSessions(tx, 1, now)
		}
		return nil
	}); err != nil || len(due) == 0 {
		return 0, err
	}
	err = s.write(func(tx *bbolt.Tx) error {
		due = soonestSessions(tx, limit, now)
		for _, h := range due {
			if err := deleteSession(tx, h); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return len(due), nil
}

// maxCookieKeys is how many cookie keys the store keeps: the newest, and
// the one before it for the cookies it sealed before the rotation.
const maxCookieKeys = 2

func readCookieKeys(tx *bbolt.Tx) ([]approvals.CookieKey, error) {
	b := tx.Bucket(bucketCookieKeys)
	if b == nil {
		return nil, nil
	}
	var out []approvals.CookieKey
	c := b.Cursor()
	for k, v := c.Last(); k != nil; k, v = c.Prev() {
		if len(k) != 8 || len(v) != 8+approvals.CookieKeySize {
			return nil, fmt.Errorf("damaged data file: cookie key %x", k)
		}
		out = append(out, approvals.CookieKey{ID: uint32(getU64(k)), CreatedAt: fromT8(v[:8]), Secret: slices.Clone(v[8:])})
	}
	return out, nil
}

func needRotation(keys []approvals.CookieKey, now time.Time, rotate time.Duration) bool {
	return len(keys) == 0 || !keys[0].CreatedAt.After(now.Add(-rotate))
}

// CookieKeys implements approvals.SessionStore. It writes only when a key
// is due: most calls are a read.
func (s *Store) CookieKeys(ctx context.Context, now time.Time, rotate time.Duration, fresh approvals.CookieKey) (keys []approvals.CookieKey, err error) {
	defer wrap(&err, "CookieKeys")
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if err := s.db.View(func(tx *bbolt.Tx) error {
		keys, err = readCookieKeys(tx)
		return err
	}); err != nil || !needRotation(keys, now, rotate) {
		return keys, err
	}
	if len(fresh.Secret) != approvals.CookieKeySize {
		return nil, approvals.Errorf(approvals.EInvalid, "a cookie key has %d bytes, not %d", len(fresh.Secret), approvals.CookieKeySize)
	}
	err = s.write(func(tx *bbolt.Tx) error {
		keys, err = readCookieKeys(tx)
		if err != nil || !needRotation(keys, now, rotate) {
			return err // another caller rotated first
		}
		id := uint32(1)
		if len(keys) > 0 {
			id = keys[0].ID + 1
		}
		b := tx.Bucket(bucketCookieKeys)
		if err := b.Put(u64(uint64(id)), cat(t8(now), fresh.Secret)); err != nil {
			return err
		}
		keys = append([]approvals.CookieKey{{ID: id, CreatedAt: fromT8(t8(now)), Secret: slices.Clone(fresh.Secret)}}, keys...)
		for _, old := range keys[min(len(keys), maxCookieKeys):] {
			if err := b.Delete(u64(uint64(old.ID))); err != nil {
				return err
			}
		}
		keys = keys[:min(len(keys), maxCookieKeys)]
		return nil
	})
	return keys, err
}

// fromT8 decodes a t8 key part, in UTC.
func fromT8(b []byte) time.Time {
	return time.Unix(0, int64(getU64(b)^1<<63)).UTC()
}
