package web

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// Sessions live in the store (approvals.SessionStore), so that a restart
// signs nobody out and every replica sharing the store sees them. The
// cookie carries a random 256-bit id; the store keeps only its SHA-256, so
// that a copy of the data file holds no usable cookie. A session ends
// after the idle timeout without use, at its maximum age, or at sign-out;
// its last use is written at most once per touchEvery, not on every page.
// Expired sessions are refused when read and purged in small batches.
//
// The cookie is SameSite=Lax rather than Strict: the browser reaches
// /auth/callback through a cross-site redirect from the identity provider,
// and a Strict cookie set there would be withheld from the redirect that
// follows, sending the reviewer round in circles. CSRF is stopped by the
// synchronizer token instead (checkCSRF).

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

func (u account) stored() approvals.SessionUser {
	return approvals.SessionUser{OID: u.OID, Name: u.Name, Username: u.Username, Roles: u.Roles, Reviewer: u.Reviewer, Admin: u.Admin}
}

func accountOf(s approvals.SessionUser) account {
	return account{OID: s.OID, Name: s.Name, Username: s.Username, Roles: s.Roles, Reviewer: s.Reviewer, Admin: s.Admin}
}

// session is the signed-in session of a request.
type session struct {
	hash    string // the store's name of the session: hashID of the cookie's id
	csrf    string
	user    account
	created time.Time
	seen    time.Time
}

// The bounds of the store's sessions that are not configurable.
const (
	// touchEvery is how often a session's last use is written: a page
	// view costs no write, and the idle timeout may end a session up to
	// this much early.
	touchEvery = time.Minute
	// purgeEvery and purgeBatch bound the clean-up of expired sessions:
	// at most purgeBatch deletions, at most once per purgeEvery, on a
	// request that reads a session anyway.
	purgeEvery = 5 * time.Minute
	purgeBatch = 100
)

// sessions keeps the sessions in the store.
type sessions struct {
	store  approvals.SessionStore
	clock  approvals.Clock
	log    *slog.Logger
	idle   time.Duration
	maxAge time.Duration
	max    int

	mu        sync.Mutex
	nextPurge time.Time
}

func newSessions(store approvals.SessionStore, clock approvals.Clock, log *slog.Logger, idle, maxAge time.Duration, max int) *sessions {
	return &sessions{store: store, clock: clock, log: log, idle: idle, maxAge: maxAge, max: max}
}

// randomToken returns 256 random bits, base64url-encoded.
func randomToken() string {
	var b [32]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails on supported platforms
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// tokenLen is the length of a randomToken.
const tokenLen = 43

// hashID returns the store's name of the session whose cookie holds id.
func hashID(id string) string {
	h := sha256.Sum256([]byte(id))
	return hex.EncodeToString(h[:])
}

// expiry is when a session created at created and last used at seen ends.
func (s *sessions) expiry(created, seen time.Time) time.Time {
	return minTime(seen.Add(s.idle), created.Add(s.maxAge))
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

// create stores a new session for u under a fresh id (so that a session id
// known before sign-in is worthless after it) and returns the id for the
// cookie.
func (s *sessions) create(ctx context.Context, u account) (id string, err error) {
	now := s.clock.Now()
	id = randomToken()
	err = s.store.CreateSession(ctx, &approvals.Session{
		IDHash: hashID(id), User: u.stored(), CSRF: randomToken(),
		CreatedAt: now, LastSeenAt: now, ExpiresAt: s.expiry(now, now),
	}, s.max)
	if err != nil {
		return "", err
	}
	s.purge(ctx, now)
	return id, nil
}

// get returns the live session whose cookie holds id, and records its use
// when the last record is older than touchEvery. Only a failing store is
// an error: no session, or an ended one, is ok=false.
func (s *sessions) get(ctx context.Context, id string) (_ session, ok bool, err error) {
	if len(id) != tokenLen {
		return session{}, false, nil
	}
	now := s.clock.Now()
	hash := hashID(id)
	st, err := s.store.Session(ctx, hash, now)
	if approvals.Code(err) == approvals.ENotFound {
		return session{}, false, nil
	}
	if err != nil {
		return session{}, false, err
	}
	// The configured bounds apply even to a session stored under others.
	if !s.expiry(st.CreatedAt, st.LastSeenAt).After(now) {
		s.delete(ctx, hash)
		return session{}, false, nil
	}
	if now.Sub(st.LastSeenAt) >= touchEvery {
		err := s.store.TouchSession(ctx, hash, now, s.expiry(st.CreatedAt, now))
		switch approvals.Code(err) {
		case "":
			st.LastSeenAt = now
		case approvals.ENotFound: // signed out meanwhile
			return session{}, false, nil
		default: // the session stands; its next use tries again
			s.log.Warn("web: recording a session's use failed", "err", err)
		}
		s.purge(ctx, now)
	}
	return session{hash: hash, csrf: st.CSRF, user: accountOf(st.User), created: st.CreatedAt, seen: st.LastSeenAt}, true, nil
}

// delete ends the session with the given hash; a failure is logged.
func (s *sessions) delete(ctx context.Context, hash string) {
	if err := s.store.DeleteSession(ctx, hash); err != nil {
		s.log.Warn("web: deleting a session failed", "err", err)
	}
}

// purge deletes a batch of expired sessions when the last purge of this
// process is purgeEvery old.
func (s *sessions) purge(ctx context.Context, now time.Time) {
	s.mu.Lock()
	due := !now.Before(s.nextPurge)
	if due {
		s.nextPurge = now.Add(purgeEvery)
	}
	s.mu.Unlock()
	if !due {
		return
	}
	if n, err := s.store.PurgeSessions(ctx, now, purgeBatch); err != nil {
		s.log.Warn("web: purging expired sessions failed", "err", err)
	} else if n > 0 {
		s.log.Debug("web: purged expired sessions", "count", n)
	}
}

// flash is a one-time message shown on the next page, after a redirect.
type flash struct {
	Kind     string // "success", "error" or "info"
	Text     string
	Link     string // optional
	LinkText string
}

// Flash messages travel in a sealed cookie bound to the session: they
// survive the redirect after a form post on any replica, and cost the
// store nothing.
const (
	maxFlashes = 5
	// maxFlashText bounds each message, so that the cookie stays well
	// under the 4 KB browsers keep.
	maxFlashText = 400
)

const ctxFlashes = "web.flashes"

func flashAAD(s session) string { return "flash\x00" + s.hash }

// flashState is the request's flash messages: those of its cookie, read
// when first needed, and those added since.
type flashState struct {
	list   []flash
	cookie bool // the request came with a flash cookie
}

// flashes returns the request's flash messages, reading the cookie on
// first use. A cookie that does not open (another session's, tampered, or
// sealed under a retired key) holds none.
func (u *UI) flashes(c echo.Context, s session) *flashState {
	if fs, ok := c.Get(ctxFlashes).(*flashState); ok {
		return fs
	}
	fs := &flashState{}
	c.Set(ctxFlashes, fs)
	v := readCookie(c.Request(), u.cookies.flash())
	if v == "" {
		return fs
	}
	fs.cookie = true
	plain, err := u.sealer.open(c.Request().Context(), flashAAD(s), v)
	if err == nil && json.Unmarshal(plain, &fs.list) == nil && len(fs.list) <= maxFlashes {
		return fs
	}
	fs.list = nil
	return fs
}

// addFlash queues f for the next page the session sees.
func (u *UI) addFlash(c echo.Context, f flash) {
	s, ok := sessionOf(c)
	if !ok {
		return
	}
	fs := u.flashes(c, s)
	if len(fs.list) >= maxFlashes {
		return
	}
	if len(f.Text) > maxFlashText {
		f.Text = strings.ToValidUTF8(f.Text[:maxFlashText], "") + "…"
	}
	fs.list = append(fs.list, f)
	plain, _ := json.Marshal(fs.list) // flashes always encode
	v, err := u.sealer.seal(c.Request().Context(), flashAAD(s), plain)
	if err != nil {
		u.log.Warn("web: a message for the next page was lost", "err", err)
		return
	}
	fs.cookie = true
	u.cookies.set(c.Response(), u.cookies.flash(), v, flashTTL)
}

// flashTTL bounds the life of a flash message nobody saw.
const flashTTL = 5 * time.Minute

// takeFlashes returns the session's queued flash messages and forgets
// them.
func (u *UI) takeFlashes(c echo.Context, s session) []flash {
	fs := u.flashes(c, s)
	fl := fs.list
	fs.list = nil
	if fs.cookie {
		fs.cookie = false
		u.cookies.clear(c.Response(), u.cookies.flash())
	}
	return fl
}

// cookies names and writes the session, login and flash cookies.
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
func (c cookies) flash() string   { return c.name("approvals_flash") }

// login is the prefix of the login cookies: one per sign-in in progress,
// named by a random suffix.
func (c cookies) login() string { return c.name("approvals_login_") }

// set writes a cookie, replacing any Set-Cookie for the same name that the
// response already holds.
func (c cookies) set(w http.ResponseWriter, name, value string, maxAge time.Duration) {
	c.write(w, &http.Cookie{
		Name: name, Value: value, Path: "/", MaxAge: int(maxAge / time.Second),
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (c cookies) clear(w http.ResponseWriter, name string) {
	c.write(w, &http.Cookie{
		Name: name, Value: "", Path: "/", MaxAge: -1,
		Secure: c.secure, HttpOnly: true, SameSite: http.SameSiteLaxMode,
	})
}

func (c cookies) write(w http.ResponseWriter, ck *http.Cookie) {
	h := w.Header()
	h["Set-Cookie"] = slices.DeleteFunc(h["Set-Cookie"], func(v string) bool { return strings.HasPrefix(v, ck.Name+"=") })
	http.SetCookie(w, ck)
}

func readCookie(r *http.Request, name string) string {
	if ck, err := r.Cookie(name); err == nil {
		return ck.Value
	}
	return ""
}

// hasRole reports whether roles contains want.
func hasRole(roles []string, want string) bool { return slices.Contains(roles, want) }
