package web

import (
	"context"
	"encoding/base64"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

// touchCounter counts the session writes that reach the store.
type touchCounter struct {
	approvals.SessionStore
	mu      sync.Mutex
	touches int
}

func (s *touchCounter) TouchSession(ctx context.Context, h string, seen, exp time.Time) error {
	s.mu.Lock()
	s.touches++
	s.mu.Unlock()
	return s.SessionStore.TouchSession(ctx, h, seen, exp)
}

func TestSessionsKeepOnlyTheHashAndThrottleTouches(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := approvals.ClockFunc(func() time.Time { return now })
	st := &touchCounter{SessionStore: memory.New(clock)}
	s := newSessions(st, clock, slog.New(slog.DiscardHandler), time.Hour, 8*time.Hour, 10)
	id, err := s.create(ctx, account{OID: "a", Name: "Ada"})
	if err != nil {
		t.Fatal(err)
	}
	if len(id) != tokenLen {
		t.Errorf("session id %q", id)
	}
	// The store knows the session by the hash of the id only.
	if _, err := st.Session(ctx, id, now); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("the store holds the raw id: %v", err)
	}
	stored, err := st.Session(ctx, hashID(id), now)
	if err != nil || stored.CSRF == "" || stored.CSRF == id || strings.Contains(stored.IDHash, id) {
		t.Fatalf("stored session %+v, %v", stored, err)
	}
	for _, tc := range []struct {
		after   time.Duration
		touches int
	}{{30 * time.Second, 0}, {20 * time.Second, 0}, {15 * time.Second, 1}, {10 * time.Second, 1}, {time.Minute, 2}} {
		now = now.Add(tc.after)
		got, ok, err := s.get(ctx, id)
		if !ok || err != nil || got.user.OID != "a" || got.csrf != stored.CSRF {
			t.Fatalf("get = %+v, %v, %v", got, ok, err)
		}
		if st.touches != tc.touches {
			t.Errorf("after +%s: %d touches; want %d", tc.after, st.touches, tc.touches)
		}
	}
	// Neither a malformed id nor another's hash finds it.
	other := id[:42] + "A"
	if other == id {
		other = id[:42] + "B"
	}
	for _, bad := range []string{"", "x", hashID(id), other} {
		if _, ok, err := s.get(ctx, bad); ok || err != nil {
			t.Errorf("get(%q) = %v, %v", bad, ok, err)
		}
	}
	// A shorter configured idle timeout applies to stored sessions.
	short := newSessions(st, clock, slog.New(slog.DiscardHandler), time.Minute, 8*time.Hour, 10)
	now = now.Add(2 * time.Minute)
	if _, ok, _ := short.get(ctx, id); ok {
		t.Error("a session idle for longer than the configured timeout was accepted")
	}
	if _, err := st.Session(ctx, hashID(id), now); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("the ended session was not deleted: %v", err)
	}
}

func TestSealer(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	clock := approvals.ClockFunc(func() time.Time { mu.Lock(); defer mu.Unlock(); return now })
	advance := func(d time.Duration) { mu.Lock(); now = now.Add(d); mu.Unlock() }
	st := memory.New(clock)
	a, b := newSealer(st, clock), newSealer(st, clock) // two replicas
	v, err := a.seal(ctx, "login\x00n1", []byte("secret state"))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(v, "secret") {
		t.Error("the sealed value shows its content")
	}
	if got, err := b.open(ctx, "login\x00n1", v); err != nil || string(got) != "secret state" {
		t.Errorf("the other replica opened %q, %v", got, err)
	}
	raw, _ := base64.RawURLEncoding.DecodeString(v)
	for name, bad := range map[string]string{
		"other use":   "",
		"tampered":    base64.RawURLEncoding.EncodeToString(append(raw[:len(raw)-1:len(raw)-1], raw[len(raw)-1]^1)),
		"truncated":   base64.RawURLEncoding.EncodeToString(raw[:20]),
		"not base64":  "!!!",
		"unknown key": base64.RawURLEncoding.EncodeToString(append([]byte{1, 0, 0, 0, 9}, raw[5:]...)),
		"empty":       "",
	} {
		aad := "login\x00n1"
		if name == "other use" {
			aad, bad = "login\x00n2", v
		}
		if _, err := a.open(ctx, aad, bad); err != errUnsealed {
			t.Errorf("%s: open = %v; want errUnsealed", name, err)
		}
	}
	// A foreign server's keys open nothing here.
	foreign := newSealer(memory.New(clock), clock)
	if _, err := foreign.open(ctx, "login\x00n1", v); err != errUnsealed {
		t.Errorf("a foreign server opened the value: %v", err)
	}

	// Rotation: after a day replica a seals under a new key; b, which has
	// not read it yet, opens it anyway, and both still open the old value.
	advance(cookieKeyRotation + time.Second)
	v2, err := a.seal(ctx, "x", []byte("new"))
	if err != nil {
		t.Fatal(err)
	}
	raw2, _ := base64.RawURLEncoding.DecodeString(v2)
	if raw2[4] != 2 {
		t.Errorf("sealed under key %d after the rotation; want 2", raw2[4])
	}
	advance(keyRefreshEvery)
	if got, err := b.open(ctx, "x", v2); err != nil || string(got) != "new" {
		t.Errorf("the other replica opened the new value: %q, %v", got, err)
	}
	if _, err := b.open(ctx, "login\x00n1", v); err != nil {
		t.Errorf("the key before the rotation no longer opens: %v", err)
	}
	// Two rotations retire the first key.
	advance(cookieKeyRotation)
	if _, err := a.seal(ctx, "x", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.open(ctx, "login\x00n1", v); err != errUnsealed {
		t.Errorf("a retired key still opens: %v", err)
	}
}

func TestFlashesAreBoundedAndBoundToTheSession(t *testing.T) {
	st := memory.New(nil)
	u := &UI{cookies: cookies{}, sealer: newSealer(st, approvals.SystemClock), log: slog.New(slog.DiscardHandler)}
	e := echo.New()
	ctx := func(s session, cookie string) (echo.Context, *httptest.ResponseRecorder) {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		if cookie != "" {
			r.AddCookie(&http.Cookie{Name: u.cookies.flash(), Value: cookie})
		}
		w := httptest.NewRecorder()
		c := e.NewContext(r, w)
		c.Set(ctxSession, s)
		return c, w
	}
	flashCookie := func(w *httptest.ResponseRecorder) *http.Cookie {
		t.Helper()
		var out *http.Cookie
		for _, ck := range w.Result().Cookies() {
			if ck.Name == u.cookies.flash() {
				if out != nil {
					t.Error("two Set-Cookie for the flash cookie")
				}
				out = ck
			}
		}
		return out
	}
	ada := session{hash: "ada"}
	c, w := ctx(ada, "")
	for range maxFlashes + 3 {
		u.addFlash(c, flash{Text: strings.Repeat("é", maxFlashText)})
	}
	ck := flashCookie(w)
	if ck == nil || len(ck.Value) > 3500 {
		t.Fatalf("flash cookie %v", ck)
	}
	c, w = ctx(ada, ck.Value)
	fl := u.takeFlashes(c, ada)
	if len(fl) != maxFlashes || len(fl[0].Text) > maxFlashText+len("…") {
		t.Errorf("%d flashes kept, the first %d bytes", len(fl), len(fl[0].Text))
	}
	if got := flashCookie(w); got == nil || got.MaxAge >= 0 {
		t.Errorf("the shown flashes' cookie was not cleared: %v", got)
	}
	if again := u.takeFlashes(c, ada); len(again) != 0 {
		t.Errorf("flashes shown twice: %v", again)
	}
	// Another session's flash cookie shows nothing.
	rob := session{hash: "rob"}
	c, _ = ctx(rob, ck.Value)
	if fl := u.takeFlashes(c, rob); len(fl) != 0 {
		t.Errorf("another session's flashes were shown: %v", fl)
	}
}

// FuzzLoginCookie feeds made-up login cookies to the callback's decoder:
// nothing but the value sealed here opens, and nothing panics.
func FuzzLoginCookie(f *testing.F) {
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := approvals.ClockFunc(func() time.Time { return now })
	u := &UI{clock: clock, sealer: newSealer(memory.New(clock), clock), log: slog.New(slog.DiscardHandler)}
	const name = "approvals_login_abcdefghijklmnop"
	plain := `{"s":"state","n":"nonce","v":"verifier","r":"/","e":1767226200}`
	sealed, err := u.sealer.seal(context.Background(), loginAAD(name), []byte(plain))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sealed)
	f.Add("")
	f.Add("AQAAAAE")
	f.Add(sealed[:len(sealed)-1] + "A")
	f.Fuzz(func(t *testing.T, value string) {
		got, err := u.sealer.open(context.Background(), loginAAD(name), value)
		if err == nil && string(got) != plain {
			t.Fatalf("%q opened to %q", value, got)
		}
		if err != nil && err != errUnsealed {
			t.Fatalf("open = %v", err)
		}
		r := httptest.NewRequest(http.MethodGet, "/auth/callback", nil)
		r.Header.Set("Cookie", name+"="+value+"; approvals_login_2="+value)
		cks, err := u.loginCookies(r)
		if err != nil {
			t.Fatal(err)
		}
		for _, ck := range cks {
			if ck.ok && (ck.name != name || ck.pl.State != "state") {
				t.Fatalf("cookie %s opened to %+v", ck.name, ck.pl)
			}
		}
	})
}
