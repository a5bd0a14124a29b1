package memory

import (
	"cmp"
	"context"
	"slices"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The sessions live in their own map under the store's mutex; the few
// operations that order them (making room, purging) sort a copy, which is
// fine at the sizes a test holds.

func cloneSession(s *approvals.Session) *approvals.Session {
	c := *s
	c.User.Roles = slices.Clone(s.User.Roles)
	return &c
}

// byExpiry returns the stored sessions, soonest expiry first.
func (s *Store) byExpiry() []*approvals.Session {
	all := make([]*approvals.Session, 0, len(s.sessions))
	for _, ss := range s.sessions {
		all = append(all, ss)
	}
	slices.SortFunc(all, func(a, b *approvals.Session) int {
		return cmp.Or(a.ExpiresAt.Compare(b.ExpiresAt), strings.Compare(a.IDHash, b.IDHash))
	})
	return all
}

// CreateSession implements approvals.SessionStore.
func (s *Store) CreateSession(_ context.Context, ss *approvals.Session, max int) error {
	if ss.IDHash == "" {
		return approvals.Errorf(approvals.EInvalid, "a session needs an id hash")
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	if _, dup := s.sessions[ss.IDHash]; dup {
		return approvals.Errorf(approvals.EConflict, "session exists")
	}
	if max > 0 && len(s.sessions) >= max {
		for _, o := range s.byExpiry()[:len(s.sessions)-max+1] {
			delete(s.sessions, o.IDHash)
		}
	}
	s.sessions[ss.IDHash] = cloneSession(ss)
	return nil
}

// Session implements approvals.SessionStore.
func (s *Store) Session(_ context.Context, idHash string, now time.Time) (*approvals.Session, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.sessions[idHash]
	if !ok || !ss.ExpiresAt.After(now) {
		return nil, approvals.ErrSessionNotFound
	}
	return cloneSession(ss), nil
}

// TouchSession implements approvals.SessionStore.
func (s *Store) TouchSession(_ context.Context, idHash string, seen, expires time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	ss, ok := s.sessions[idHash]
	if !ok || !ss.ExpiresAt.After(seen) {
		return approvals.ErrSessionNotFound
	}
	c := cloneSession(ss)
	c.LastSeenAt, c.ExpiresAt = seen, expires
	s.sessions[idHash] = c
	return nil
}

// DeleteSession implements approvals.SessionStore.
func (s *Store) DeleteSession(_ context.Context, idHash string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return errClosed
	}
	delete(s.sessions, idHash)
	return nil
}

// PurgeSessions implements approvals.SessionStore.
func (s *Store) PurgeSessions(_ context.Context, now time.Time, limit int) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return 0, errClosed
	}
	n := 0
	for _, ss := range s.byExpiry() {
		if n >= limit || ss.ExpiresAt.After(now) {
			break
		}
		delete(s.sessions, ss.IDHash)
		n++
	}
	return n, nil
}

// CookieKeys implements approvals.SessionStore.
func (s *Store) CookieKeys(_ context.Context, now time.Time, rotate time.Duration, fresh approvals.CookieKey) ([]approvals.CookieKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errClosed
	}
	if len(s.cookieKeys) == 0 || !s.cookieKeys[0].CreatedAt.After(now.Add(-rotate)) {
		if len(fresh.Secret) != approvals.CookieKeySize {
			return nil, approvals.Errorf(approvals.EInvalid, "a cookie key has %d bytes, not %d", approvals.CookieKeySize, len(fresh.Secret))
		}
		k := approvals.CookieKey{ID: 1, Secret: slices.Clone(fresh.Secret), CreatedAt: now}
		if len(s.cookieKeys) > 0 {
			k.ID = s.cookieKeys[0].ID + 1
		}
		s.cookieKeys = append([]approvals.CookieKey{k}, s.cookieKeys[:min(1, len(s.cookieKeys))]...)
	}
	out := make([]approvals.CookieKey, len(s.cookieKeys))
	for i, k := range s.cookieKeys {
		out[i] = k
		out[i].Secret = slices.Clone(k.Secret)
	}
	return out, nil
}
