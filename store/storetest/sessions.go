package storetest

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The clauses of approvals.SessionStore: the web UI's sessions and cookie
// keys.

// session returns the i-th test session, created at at, expiring after
// idle.
func session(i int, at time.Time, idle time.Duration) *approvals.Session {
	return &approvals.Session{
		IDHash: fmt.Sprintf("%064x", i+1),
		User: approvals.SessionUser{OID: fmt.Sprintf("oid-%d", i), Name: fmt.Sprintf("Reviewer %d", i),
			Username: fmt.Sprintf("r%d@contoso.com", i), Roles: []string{"Approvals.Reviewer"}, Reviewer: true},
		CSRF:      fmt.Sprintf("csrf-%d", i),
		CreatedAt: at, LastSeenAt: at, ExpiresAt: at.Add(idle),
	}
}

func createSession(t *testing.T, s approvals.Store, ss *approvals.Session, max int) {
	t.Helper()
	if err := s.CreateSession(context.Background(), ss, max); err != nil {
		t.Fatalf("CreateSession(%s) = %v", ss.User.OID, err)
	}
}

// liveSessions returns which of the first n test sessions Session finds
// at now.
func liveSessions(t *testing.T, s approvals.Store, n int, now time.Time) []int {
	t.Helper()
	var out []int
	for i := range n {
		got, err := s.Session(context.Background(), session(i, now, 0).IDHash, now)
		switch approvals.Code(err) {
		case "":
			if got.User.OID != fmt.Sprintf("oid-%d", i) {
				t.Errorf("session %d holds %+v", i, got.User)
			}
			out = append(out, i)
		case approvals.ENotFound:
		default:
			t.Fatalf("Session(%d) = %v", i, err)
		}
	}
	return out
}

func testSessions(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	now := c.Now()
	a := session(0, now, time.Hour)

	// Create, then Get gives back what was stored, as a copy.
	createSession(t, s, a, 0)
	got, err := s.Session(ctx, a.IDHash, now)
	if err != nil {
		t.Fatalf("Session = %v", err)
	}
	checkSame(t, "stored session", got, a)
	got.User.Roles[0] = "changed"
	if again, _ := s.Session(ctx, a.IDHash, now); again == nil || again.User.Roles[0] != "Approvals.Reviewer" {
		t.Error("changing a returned session changed the stored one")
	}
	_, err = s.Session(ctx, session(9, now, 0).IDHash, now)
	checkCode(t, "Session of an unknown id", err, approvals.ENotFound)
	checkCode(t, "CreateSession twice", s.CreateSession(ctx, a, 0), approvals.EConflict)
	checkCode(t, "CreateSession without an id hash", s.CreateSession(ctx, &approvals.Session{ExpiresAt: now.Add(time.Hour)}, 0), approvals.EInvalid)

	// A session ends at ExpiresAt.
	if _, err := s.Session(ctx, a.IDHash, now.Add(time.Hour-time.Nanosecond)); err != nil {
		t.Errorf("Session just before expiry = %v", err)
	}
	_, err = s.Session(ctx, a.IDHash, now.Add(time.Hour))
	checkCode(t, "Session at its expiry", err, approvals.ENotFound)

	// Touch moves LastSeenAt and ExpiresAt, and keeps the rest.
	seen := now.Add(30 * time.Minute)
	if err := s.TouchSession(ctx, a.IDHash, seen, seen.Add(time.Hour)); err != nil {
		t.Fatalf("TouchSession = %v", err)
	}
	got, err = s.Session(ctx, a.IDHash, now.Add(80*time.Minute))
	if err != nil {
		t.Fatalf("Session after a touch = %v", err)
	}
	want := *a
	want.LastSeenAt, want.ExpiresAt = seen, seen.Add(time.Hour)
	checkSame(t, "touched session", got, &want)
	checkCode(t, "TouchSession of an unknown id", s.TouchSession(ctx, session(9, now, 0).IDHash, seen, seen.Add(time.Hour)), approvals.ENotFound)
	// An ended session is not revived by a late touch.
	late := seen.Add(time.Hour)
	checkCode(t, "TouchSession of an expired session", s.TouchSession(ctx, a.IDHash, late, late.Add(time.Hour)), approvals.ENotFound)
	if _, err := s.Session(ctx, a.IDHash, late); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("a late touch revived the session: %v", err)
	}

	// Delete, twice.
	b := session(1, now, time.Hour)
	createSession(t, s, b, 0)
	if err := s.DeleteSession(ctx, b.IDHash); err != nil {
		t.Fatalf("DeleteSession = %v", err)
	}
	_, err = s.Session(ctx, b.IDHash, now)
	checkCode(t, "Session after DeleteSession", err, approvals.ENotFound)
	if err := s.DeleteSession(ctx, b.IDHash); err != nil {
		t.Errorf("DeleteSession of a deleted session = %v", err)
	}
	checkStore(t, s)
}

func testSessionsPurge(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	now := c.Now()
	// Session i expires i minutes from now; session 7 is touched to live
	// an hour longer, which must move it in the expiry order.
	for i := range 10 {
		createSession(t, s, session(i, now, time.Duration(i)*time.Minute+time.Minute), 0)
	}
	if err := s.TouchSession(ctx, session(7, now, 0).IDHash, now, now.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	purge := func(at time.Time, limit, want int) {
		t.Helper()
		n, err := s.PurgeSessions(ctx, at, limit)
		if err != nil || n != want {
			t.Errorf("PurgeSessions(+%s, %d) = %d, %v; want %d", at.Sub(now), limit, n, err, want)
		}
	}
	purge(now, 10, 0)
	// At +9m sessions 0 to 8 but 7 have expired (8 of them): the limit
	// bounds each purge, and they go soonest first.
	at := now.Add(9 * time.Minute)
	purge(at, 3, 3)
	if got := liveSessions(t, s, 10, now); fmt.Sprint(got) != "[3 4 5 6 7 8 9]" {
		t.Errorf("after purging 3: live at the start %v; want the soonest 3 gone", got)
	}
	purge(at, 100, 5)
	purge(at, 100, 0)
	if got := liveSessions(t, s, 10, now); fmt.Sprint(got) != "[7 9]" {
		t.Errorf("after purging all expired: %v; want [7 9]", got)
	}
	purge(now.Add(2*time.Hour), 0, 0)
	checkStore(t, s)
}

func testSessionsBounded(t *testing.T, s approvals.Store, c *Clock) {
	now := c.Now()
	// Sessions 0 to 2 expire in 3, 1 and 2 hours; a fourth, with room for
	// three, pushes out the one that expires soonest.
	for i, idle := range []time.Duration{3 * time.Hour, time.Hour, 2 * time.Hour} {
		createSession(t, s, session(i, now, idle), 3)
	}
	createSession(t, s, session(3, now, time.Hour), 3)
	if got := liveSessions(t, s, 4, now); fmt.Sprint(got) != "[0 2 3]" {
		t.Errorf("live sessions %v; want [0 2 3]", got)
	}
	// A lower bound makes room for the new one too.
	createSession(t, s, session(4, now, 4*time.Hour), 2)
	if got := liveSessions(t, s, 5, now); fmt.Sprint(got) != "[0 4]" {
		t.Errorf("live sessions %v; want [0 4]", got)
	}
	checkStore(t, s)
}

func secret(b byte) []byte { return bytes.Repeat([]byte{b}, approvals.CookieKeySize) }

func testCookieKeys(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	const rotate = 24 * time.Hour
	ids := func(keys []approvals.CookieKey) string {
		var out []string
		for _, k := range keys {
			out = append(out, fmt.Sprint(k.ID))
		}
		return fmt.Sprint(out)
	}
	keys := func(now time.Time, fresh []byte) []approvals.CookieKey {
		t.Helper()
		got, err := s.CookieKeys(ctx, now, rotate, approvals.CookieKey{ID: 99, Secret: fresh})
		if err != nil {
			t.Fatalf("CookieKeys = %v", err)
		}
		return got
	}
	now := c.Now()
	_, err := s.CookieKeys(ctx, now, rotate, approvals.CookieKey{Secret: []byte("short")})
	checkCode(t, "CookieKeys with a short fresh secret", err, approvals.EInvalid)

	first := keys(now, secret(1))
	if ids(first) != "[1]" || !bytes.Equal(first[0].Secret, secret(1)) || !first[0].CreatedAt.Equal(now) {
		t.Fatalf("first keys %+v", first)
	}
	// Until the newest is rotate old, fresh is ignored.
	if got := keys(now.Add(rotate-time.Second), secret(2)); ids(got) != "[1]" || !bytes.Equal(got[0].Secret, secret(1)) {
		t.Errorf("keys before rotation %+v", got)
	}
	first[0].Secret[0] = 9
	second := keys(now.Add(rotate), secret(2))
	if ids(second) != "[2 1]" || !bytes.Equal(second[0].Secret, secret(2)) || !bytes.Equal(second[1].Secret, secret(1)) ||
		!second[0].CreatedAt.Equal(now.Add(rotate)) {
		t.Errorf("keys after one rotation %+v", second)
	}
	if got := keys(now.Add(2*rotate+time.Hour), secret(3)); ids(got) != "[3 2]" || !bytes.Equal(got[0].Secret, secret(3)) {
		t.Errorf("keys after two rotations %+v; want only the newest two", got)
	}

	// Replicas asking at once agree on one key.
	at := now.Add(4 * rotate)
	var wg sync.WaitGroup
	got := make([][]approvals.CookieKey, 8)
	for i := range got {
		wg.Add(1)
		go func() {
			defer wg.Done()
			got[i], _ = s.CookieKeys(ctx, at, rotate, approvals.CookieKey{Secret: secret(byte(10 + i))})
		}()
	}
	wg.Wait()
	for i := range got {
		if len(got[i]) != 2 || got[i][0].ID != 4 || !bytes.Equal(got[i][0].Secret, got[0][0].Secret) {
			t.Errorf("caller %d got %+v; caller 0 %+v", i, got[i], got[0])
		}
	}
	checkStore(t, s)
}

// testSessionsReopen checks that sessions and cookie keys survive closing
// the store and opening its file again: a restart signs nobody out.
func testSessionsReopen(t *testing.T, open PathOpener) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "approvals.db")
	c := NewClock(base)
	now := c.Now()
	s := open(t, path, c)
	a := session(0, now, time.Hour)
	createSession(t, s, a, 0)
	createSession(t, s, session(1, now, time.Hour), 0)
	if err := s.DeleteSession(ctx, session(1, now, 0).IDHash); err != nil {
		t.Fatal(err)
	}
	keys, err := s.CookieKeys(ctx, now, time.Hour, approvals.CookieKey{Secret: secret(1)})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path, c)
	defer s.Close()
	got, err := s.Session(ctx, a.IDHash, now)
	if err != nil {
		t.Fatalf("Session after reopening = %v", err)
	}
	checkSame(t, "session after reopening", got, a)
	if got := liveSessions(t, s, 2, now); fmt.Sprint(got) != "[0]" {
		t.Errorf("live sessions after reopening %v; want [0]", got)
	}
	again, err := s.CookieKeys(ctx, now, time.Hour, approvals.CookieKey{Secret: secret(2)})
	if err != nil || len(again) != 1 || !bytes.Equal(again[0].Secret, keys[0].Secret) {
		t.Errorf("cookie keys after reopening %+v, %v; want %+v", again, err, keys)
	}
	checkStore(t, s)
}
