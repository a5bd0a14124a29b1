package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
)

// TestCrashWebhooks SIGKILLs the server while clients post sign-ups with a
// webhook configured, then lets a last server drain the outbox: every
// announced event in the audit trail must have reached the receiver at
// least once, signed, and a repeat only ever with the same webhook-id
// and the same content.
func TestCrashWebhooks(t *testing.T) {
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	start := time.Now()
	key := []byte("crash-webhook-secret-0123456789abcdef")
	type got struct {
		typ, request string
		n            int
	}
	var mu sync.Mutex
	received := map[string]*got{} // webhook-id -> what it carried
	var calls, badSig, mismatch atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		calls.Add(1)
		id, ts := r.Header.Get("webhook-id"), r.Header.Get("webhook-timestamp")
		mac := hmac.New(sha256.New, key)
		mac.Write([]byte(id + "." + ts + "." + string(body)))
		if r.Header.Get("webhook-signature") != "v1,"+base64.StdEncoding.EncodeToString(mac.Sum(nil)) {
			badSig.Add(1)
		}
		var ev struct {
			Type string `json:"type"`
			Data struct {
				Request struct {
					ID string `json:"id"`
				} `json:"request"`
			} `json:"data"`
		}
		_ = json.Unmarshal(body, &ev)
		mu.Lock()
		if g := received[id]; g != nil {
			g.n++
			if g.typ != ev.Type || g.request != ev.Data.Request.ID {
				mismatch.Add(1)
			}
		} else {
			received[id] = &got{typ: ev.Type, request: ev.Data.Request.ID, n: 1}
		}
		mu.Unlock()
	}))
	defer srv.Close()

	dir := t.TempDir()
	db := filepath.Join(dir, "approvals.db")
	env := crashEnv(db)
	env["APPROVALS_WEBHOOK_URLS"] = srv.URL + "/hook"
	env["APPROVALS_WEBHOOK_SECRET"] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 2))
	l := &signUpLedger{acked: map[int]bool{}, unknown: map[int]bool{}}
	var url atomic.Pointer[string]
	kills := 0
	for round := range *crashRounds {
		c := startChild(t, env)
		addr, err := c.waitReady(60 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		u := "http://" + addr
		url.Store(&u)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { l.hammer(ctx, &url, *crashClients, seed+uint64(round)); close(done) }()
		time.Sleep(300*time.Millisecond + time.Duration(rng.IntN(900))*time.Millisecond)
		c.kill()
		kills++
		cancel()
		<-done
		checkProblems(t, c)
	}

	// The announced events stored, as the webhook ids they must reach.
	want := func() map[string]approvals.Event {
		s, err := bolt.Open(db, bolt.Options{Timeout: 10 * time.Second, ReadOnly: true})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Check(); err != nil {
			t.Errorf("Check: %v", err)
		}
		out := map[string]approvals.Event{}
		var after uint64
		for {
			evs, next, err := s.Audit(context.Background(), approvals.AuditQuery{AfterSeq: after, Limit: approvals.MaxPageSize})
			if err != nil {
				t.Fatal(err)
			}
			for _, ev := range evs {
				if ev.Type.Announced() {
					out["evt-"+strconv.FormatUint(ev.Seq, 10)+".webhook.0"] = ev
				}
			}
			if next == 0 {
				return out
			}
			after = next
		}
	}()

	// A last server drains what the killed ones left.
	c := startChild(t, env)
	if _, err := c.waitReady(60 * time.Second); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	missing := 0
	for {
		mu.Lock()
		missing = 0
		for id := range want {
			if received[id] == nil {
				missing++
			}
		}
		mu.Unlock()
		if missing == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := c.stop(30 * time.Second); err != nil {
		t.Errorf("stop: %v", err)
	}
	checkProblems(t, c)

	mu.Lock()
	defer mu.Unlock()
	dups := 0
	for id, g := range received {
		ev, ok := want[id]
		if !ok {
			t.Errorf("webhook %s names no announced event in the store", id)
			continue
		}
		if g.typ != string(ev.Type) || g.request != ev.RequestID {
			t.Errorf("webhook %s carried %s of %s; the store has %s of %s", id, g.typ, g.request, ev.Type, ev.RequestID)
		}
		dups += g.n - 1
	}
	if missing > 0 {
		t.Errorf("%d of %d announced events never reached the receiver", missing, len(want))
	}
	if badSig.Load() > 0 || mismatch.Load() > 0 {
		t.Errorf("%d webhooks with a bad signature, %d repeats whose content differed", badSig.Load(), mismatch.Load())
	}
	if len(want) == 0 {
		t.Error("no event was announced: the load did not run")
	}
	t.Logf("RESULT crash/webhooks: %d kills under load; %d sign-ups answered; %d announced events, each delivered (%d calls, %d repeats with the same webhook-id, 0 lost); %s",
		kills, len(l.acked), len(want), calls.Load(), dups, time.Since(start).Round(time.Millisecond))
}
