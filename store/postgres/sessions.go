package postgres

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/approvals-dev/approvals/approvals"
)

// Advisory transaction lock keys: sessionsLock serializes CreateSession's
// making room, cookieKeysLock the rotation of cookie keys, so that
// concurrent callers in several replicas agree.
const (
	sessionsLock   = 0x73657373 // "sess"
	cookieKeysLock = 0x636f6f6b // "cook"
)

// CreateSession implements approvals.SessionStore.
func (s *Store) CreateSession(ctx context.Context, ss *approvals.Session, max int) error {
	if ss.IDHash == "" {
		return approvals.Errorf(approvals.EInvalid, "a session needs an id hash")
	}
	doc, err := json.Marshal(ss)
	if err != nil {
		return fmt.Errorf("create session: encode: %w", err)
	}
	err = s.tx(ctx, func(tx pgx.Tx) error {
		if max > 0 {
			if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(sessionsLock)); err != nil {
				return err
			}
			var n int
			if err := tx.QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&n); err != nil {
				return err
			}
			if n >= max {
				if _, err := tx.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN (
					SELECT id_hash FROM sessions WHERE id_hash <> $2 ORDER BY expires_ns, id_hash LIMIT $1)`, n-max+1, ss.IDHash); err != nil {
					return err
				}
			}
		}
		_, err := tx.Exec(ctx, "INSERT INTO sessions (id_hash, expires_ns, doc) VALUES ($1, $2, $3)", ss.IDHash, ns(ss.ExpiresAt), doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("create session: %w", err)
	}
	return nil
}

// Session implements approvals.SessionStore.
func (s *Store) Session(ctx context.Context, idHash string, now time.Time) (*approvals.Session, error) {
	if err := s.live(); err != nil {
		return nil, err
	}
	var doc []byte
	err := s.pool.QueryRow(ctx, "SELECT doc FROM sessions WHERE id_hash = $1 AND expires_ns > $2", idHash, ns(now)).Scan(&doc)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, approvals.ErrSessionNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get session: %w", mapErr(err))
	}
	var ss approvals.Session
	if err := json.Unmarshal(doc, &ss); err != nil {
		return nil, fmt.Errorf("get session: decode: %w", err)
	}
	return &ss, nil
}

// TouchSession implements approvals.SessionStore.
func (s *Store) TouchSession(ctx context.Context, idHash string, seen, expires time.Time) error {
	err := s.tx(ctx, func(tx pgx.Tx) error {
		var doc []byte
		err := tx.QueryRow(ctx, "SELECT doc FROM sessions WHERE id_hash = $1 AND expires_ns > $2 FOR UPDATE", idHash, ns(seen)).Scan(&doc)
		if errors.Is(err, pgx.ErrNoRows) {
			return approvals.ErrSessionNotFound
		}
		if err != nil {
			return err
		}
		var ss approvals.Session
		if err := json.Unmarshal(doc, &ss); err != nil {
			return fmt.Errorf("decode: %w", err)
		}
		ss.LastSeenAt, ss.ExpiresAt = seen, expires
		if doc, err = json.Marshal(ss); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, "UPDATE sessions SET expires_ns = $2, doc = $3 WHERE id_hash = $1", idHash, ns(expires), doc)
		return err
	})
	if err != nil {
		return fmt.Errorf("touch session: %w", err)
	}
	return nil
}

// DeleteSession implements approvals.SessionStore.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	if err := s.live(); err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx, "DELETE FROM sessions WHERE id_hash = $1", idHash); err != nil {
		return fmt.Errorf("delete session: %w", mapErr(err))
	}
	return nil
}

// PurgeSessions implements approvals.SessionStore through the expiry
// index, bounded by limit.
func (s *Store) PurgeSessions(ctx context.Context, now time.Time, limit int) (int, error) {
	if err := s.live(); err != nil {
		return 0, err
	}
	if limit <= 0 {
		return 0, nil
	}
	tag, err := s.pool.Exec(ctx, `DELETE FROM sessions WHERE id_hash IN (
		SELECT id_hash FROM sessions WHERE expires_ns <= $1 ORDER BY expires_ns, id_hash LIMIT $2 FOR UPDATE SKIP LOCKED)`, ns(now), limit)
	if err != nil {
		return 0, fmt.Errorf("purge sessions: %w", mapErr(err))
	}
	return int(tag.RowsAffected()), nil
}

// CookieKeys implements approvals.SessionStore. The rotation runs under an
// advisory transaction lock, so concurrent callers store one fresh key.
func (s *Store) CookieKeys(ctx context.Context, now time.Time, rotate time.Duration, fresh approvals.CookieKey) (out []approvals.CookieKey, err error) {
	err = s.tx(ctx, func(tx pgx.Tx) error {
		out = nil
		read := func() error {
			rows, err := tx.Query(ctx, "SELECT id, secret, created_ns FROM cookie_keys ORDER BY id DESC LIMIT 2")
			if err != nil {
				return err
			}
			defer rows.Close()
			out = out[:0]
			for rows.Next() {
				var k approvals.CookieKey
				var id, created int64
				if err := rows.Scan(&id, &k.Secret, &created); err != nil {
					return err
				}
				k.ID, k.CreatedAt = uint32(id), time.Unix(0, created).UTC()
				out = append(out, k)
			}
			return rows.Err()
		}
		due := func() bool { return len(out) == 0 || !out[0].CreatedAt.After(now.Add(-rotate)) }
		if err := read(); err != nil {
			return err
		}
		if !due() {
			return nil
		}
		if _, err := tx.Exec(ctx, "SELECT pg_advisory_xact_lock($1)", int64(cookieKeysLock)); err != nil {
			return err
		}
		if err := read(); err != nil { // another replica may have rotated meanwhile
			return err
		}
		if !due() {
			return nil
		}
		if len(fresh.Secret) != approvals.CookieKeySize {
			return approvals.Errorf(approvals.EInvalid, "a cookie key has %d bytes, not %d", approvals.CookieKeySize, len(fresh.Secret))
		}
		k := approvals.CookieKey{ID: 1, Secret: slices.Clone(fresh.Secret), CreatedAt: now}
		if len(out) > 0 {
			k.ID = out[0].ID + 1
		}
		if _, err := tx.Exec(ctx, "INSERT INTO cookie_keys (id, secret, created_ns) VALUES ($1, $2, $3)", int64(k.ID), k.Secret, ns(now)); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, "DELETE FROM cookie_keys WHERE id < $1", int64(k.ID)-1); err != nil {
			return err
		}
		out = append([]approvals.CookieKey{k}, out[:min(1, len(out))]...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("cookie keys: %w", err)
	}
	return out, nil
}

func jsonSession(s *approvals.Session) ([]byte, error) {
	b, err := json.Marshal(s)
	if err != nil {
		return nil, fmt.Errorf("encode session: %w", err)
	}
	return b, nil
}
