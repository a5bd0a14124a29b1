package approvals

import (
	"context"
	"time"
)

// Session is a reviewer's sign-in to the web UI, kept by the store so that
// a restart signs nobody out and every replica sharing the store sees it.
//
// The browser holds a random session id; the store keeps only IDHash, a
// hash of it, so that a copy of the data (a stolen file, a backup) yields
// no cookie that signs anyone in.
type Session struct {
	// IDHash names the session: the hex SHA-256 of the id in the cookie.
	IDHash string `json:"id_hash"`
	// User is who signed in, as the ID token described them.
	User SessionUser `json:"user"`
	// CSRF is the synchronizer token every form post of the session must
	// carry.
	CSRF      string    `json:"csrf"`
	CreatedAt time.Time `json:"created_at"`
	// LastSeenAt is when the session was last used; the UI updates it at
	// most once a minute, not on every page.
	LastSeenAt time.Time `json:"last_seen_at"`
	// ExpiresAt is when the session ends unless it is used again: the
	// earlier of LastSeenAt plus the idle timeout and CreatedAt plus the
	// maximum age.
	ExpiresAt time.Time `json:"expires_at"`
}

// SessionUser is the signed-in person of a Session.
type SessionUser struct {
	// OID is Entra's object id (the oid claim), or sub for other issuers.
	OID string `json:"oid"`
	// Name is the display name (the name claim).
	Name string `json:"name"`
	// Username is preferred_username (usually the UPN) or email.
	Username string   `json:"username,omitempty"`
	Roles    []string `json:"roles,omitempty"`
	// Reviewer and Admin say which of the configured roles Roles held at
	// sign-in.
	Reviewer bool `json:"reviewer,omitempty"`
	Admin    bool `json:"admin,omitempty"`
}

// CookieKey is a secret the web UI seals its short-lived cookies with (the
// sign-in in progress, flash messages): kept by the store so that every
// replica opens what another sealed, and a restart breaks no sign-in.
type CookieKey struct {
	// ID is set by the store: 1 for the first key, one more for each
	// rotation. Sealed cookies name the key by it.
	ID uint32 `json:"id"`
	// Secret is CookieKeySize random bytes.
	Secret    []byte    `json:"secret"`
	CreatedAt time.Time `json:"created_at"`
}

// CookieKeySize is the length of a CookieKey's secret: an AES-256 key.
const CookieKeySize = 32

// SessionStore keeps the web UI's sessions and cookie keys. Every method is
// safe for concurrent use, and every write is durable when it returns.
type SessionStore interface {
	// CreateSession stores s under s.IDHash. When max > 0 and the store
	// already holds max sessions or more, it first deletes the sessions
	// that expire soonest (expired ones, then the least recently used)
	// until there is room for s. A session with the same IDHash is an
	// error with code EConflict; an empty IDHash one with code EInvalid.
	CreateSession(ctx context.Context, s *Session, max int) error
	// Session returns the session stored under idHash, or an error with
	// code ENotFound when there is none or it expired at or before now.
	Session(ctx context.Context, idHash string, now time.Time) (*Session, error)
	// TouchSession sets LastSeenAt and ExpiresAt of the session under
	// idHash, or returns an error with code ENotFound when there is none
	// or it expired at or before seen (an ended session is not revived).
	TouchSession(ctx context.Context, idHash string, seen, expires time.Time) error
	// DeleteSession deletes the session under idHash; deleting none is not
	// an error.
	DeleteSession(ctx context.Context, idHash string) error
	// PurgeSessions deletes up to limit sessions that expired at or before
	// now, soonest first, and returns how many it deleted: the work is
	// bounded by limit, whatever the number of sessions.
	PurgeSessions(ctx context.Context, now time.Time, limit int) (int, error)
	// CookieKeys returns the cookie keys, newest first. When there is
	// none, or the newest was created at or before now minus rotate, it
	// first stores fresh as the new newest key (with the next ID and
	// CreatedAt now; fresh.ID and fresh.CreatedAt are ignored) and keeps
	// only the one key before it, which still opens what it sealed.
	// Concurrent callers agree: one fresh key is stored. A fresh secret of
	// the wrong length, when a key is due, is an error with code EInvalid.
	CookieKeys(ctx context.Context, now time.Time, rotate time.Duration, fresh CookieKey) ([]CookieKey, error)
}

// ErrSessionNotFound is returned by stores when a session does not exist
// or has expired.
var ErrSessionNotFound = &Error{Code: ENotFound, Message: "session not found"}
