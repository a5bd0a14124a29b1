package web

import (
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Sessions live in memory on the server; the cookie carries only a random
// 256-bit id. A restart signs everyone out, which costs a reviewer one
// single-sign-on round trip. The cookie is SameSite=Lax rather than Strict:
// the browser reaches /auth/callback through a cross-site redirect from the
// identity provider, and a Strict cookie set there would be withheld from
// the redirect that follows, sending the reviewer round in circles. CSRF is
// stopped by the synchronizer token instead (csrf.go).

// account is a signed-in person, as the ID token described them at
// sign-in.
type account struct {
	// OID is Entra's object id (the oid claim), or sub for issuers without
	// one. Decisions record it.
	OID string
	// Name is the display name (the name claim).
	Name string
	// Username is preferred_username (usually the UPN) or email.
	Username string
	Roles    []string
	// Reviewer and Admin say which of the configured roles Roles holds.
	// Admin implies the reviewer's rights.
	Reviewer, Admin bool
}

// CanReview reports whether u may work the queue.
func (u account) CanReview() bool { return u.Reviewer || u.Admin }

// Actor returns u as the actor recorded on decisions and audit events.
func (u account) Actor() approvals.Actor {
	return approvals.Actor{Kind: approvals.ActorReviewer, ID: u.OID, Name: u.Name, Admin: u.Admin}
}

// flash is a one-time message shown on the next page, after a redirect.
type flash struct {
	Kind     string // "success", "error" or "info"
	Text     string
	Link     string // optional
	LinkText string
}

const maxFlashes = 5

type session struct {
	id      string
	csrf    string
	user    account
	created time.Time
	seen    time.Time
	flashes []flash
}

// pendingLogin is what the callback needs to finish a sign-in started in
// this browser.
type pendingLogin struct {
	state, nonce, verifier, next string
	expires                      time.Time
}

// loginTTL bounds the time a reviewer may spend at the identity provider.
const loginTTL = 10 * time.Minute

// sessions is the bounded server-side session store.
type sessions struct {
	clock  approvals.Clock
	idle   time.Duration
	maxAge time.Duration
	max    int

	mu     sync.Mutex
	byID   map[string]*session
	logins map[string]*pendingLogin
}

func newSessions(clock approvals.Clock, idle, maxAge time.Duration, max int) *sessions {
	return &sessions{clock: clock, idle: idle, maxAge: maxAge, max: max,
		byID: map[string]*session{}, logins: map[string]*pendingLogin{}}
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

func (s *sessions) expired(ss *session, now time.Time) bool {
	return now.Sub(ss.seen) > s.idle || now.Sub(ss.created) > s.maxAge
}

// create stores a new session for u under a fresh id (so that a session id
// known before sign-in is worthless after it) and returns a copy.
func (s *sessions) create(u account) session {
	now := s.clock.Now()
	ss := &session{id: randomToken(), csrf: randomToken(), user: u, created: now, seen: now}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.byID) >= s.max {
		for id, o := range s.byID {
			if s.expired(o, now) {
				delete(s.byID, id)
			}
		}
	}
	for len(s.byID) >= s.max {
		var oldest *session
		for _, o := range s.byID {
			if oldest == nil || o.seen.Before(oldest.seen) {
				oldest = o
			}
		}
		delete(s.byID, oldest.id)
	}
	s.byID[ss.id] = ss
	return *ss
}

// get returns the live session with the given id and marks it used.
func (s *sessions) get(id string) (session, bool) {
	if id == "" {
		return session{}, false
	}
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return session{}, false
	}
	if s.expired(ss, now) {
		delete(s.byID, id)
		return session{}, false
	}
	ss.seen = now
	c := *ss
	c.flashes = nil
	return c, true
}

func (s *sessions) delete(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.byID, id)
}

func (s *sessions) addFlash(id string, f flash) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ss, ok := s.byID[id]; ok && len(ss.flashes) < maxFlashes {
		ss.flashes = append(ss.flashes, f)
	}
}

func (s *sessions) takeFlashes(id string) []flash {
	s.mu.Lock()
	defer s.mu.Unlock()
	ss, ok := s.byID[id]
	if !ok {
		return nil
	}
	f := ss.flashes
	ss.flashes = nil
	return f
}

// startLogin remembers a sign-in in progress and returns the key the login
// cookie carries.
func (s *sessions) startLogin(pl pendingLogin) string {
	now := s.clock.Now()
	pl.expires = now.Add(loginTTL)
	key := randomToken()
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.logins) >= s.max {
		for k, o := range s.logins {
			if now.After(o.expires) {
				delete(s.logins, k)
			}
		}
	}
	for len(s.logins) >= s.max {
		var oldest string
		for k, o := range s.logins {
			if oldest == "" || o.expires.Before(s.logins[oldest].expires) {
				oldest = k
			}
		}
		delete(s.logins, oldest)
	}
	s.logins[key] = &pl
	return key
}

// finishLogin returns and forgets the sign-in in progress under key.
func (s *sessions) finishLogin(key string) (pendingLogin, bool) {
	if key == "" {
		return pendingLogin{}, false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	pl, ok := s.logins[key]
	delete(s.logins, key)
	if !ok || s.clock.Now().After(pl.expires) {
		return pendingLogin{}, false
	}
	return *pl, true
}

// cookies names and writes the session and login cookies.
type cookies struct {
	secure bool
}

func (c cookies) name(base string) string {
	if c.secure {
		// __Host- pins the cookie to this host, path / and HTTPS.
		return "__Host-" + base
	}
	return base
}

func (c cookies) session() string { return c.name("approvals_session") }
func (c cookies) login() string   { return c.name("approvals_login") }

func (c cookies) set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (c cookies) clear(w http.ResponseWriter, name string) {
	http.SetCookie(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func readCookie(r *http.Request, name string) string {
	if ck, err := r.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

// hasRole reports whether roles contains want.
func hasRole(roles []string, want string) bool { return slices.Contains(roles, want) }
