package main

import (
	"context"
	"encoding/base64"
	mrand "math/rand/v2"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
	"github.com/approvals-dev/approvals/mail/mailtest"
	"github.com/approvals-dev/approvals/store/bolt"
)

// TestCrashWebhooks SIGKILLs the server while clients post sign-ups with a
// webhook and reviewer emails configured, then lets a last server drain
// the outbox: every announced event in the audit trail must have reached
// the receiver at least once, signed, and a repeat only ever with the same
// webhook-id and the same content; every new pending request must have
// reached the SMTP server as a reviewer email at least once, a repeat only
// with the same Message-ID.
func TestCrashWebhooks(t *testing.T) {
	start, _, db := startCrashTest(t)
	key := []byte("crash-webhook-secret-0123456789abcdef")
	type got struct {
		typ, request string
		n            int
	}
	var mu sync.Mutex
	received := map[string]*got{} // webhook-id -> what it carried
	var calls, badSig, mismatch atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, ev, signed := readWebhook(r, key)
		calls.Add(1)
		if !signed {
			badSig.Add(1)
		}
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

	mbox, err := mailtest.Start(mailtest.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer mbox.Close()

	env := crashEnv(db)
	env["APPROVALS_MAIL_TRANSPORT"] = "smtp"
	env["APPROVALS_SMTP_ADDR"] = mbox.Addr()
	env["APPROVALS_SMTP_TLS"] = "none"
	env["APPROVALS_MAIL_FROM"] = "approvals@example.com"
	env["APPROVALS_REVIEWER_EMAILS"] = crashReviewer
	env["APPROVALS_NOTIFY_APPLICANT"] = "none"
	env["APPROVALS_WEBHOOK_URLS"] = srv.URL + "/hook"
	env["APPROVALS_WEBHOOK_SECRET"] = "whsec_" + base64.StdEncoding.EncodeToString(key)
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 2))
	l := &signUpLedger{acked: map[int]bool{}, unknown: map[int]bool{}}
	kills := 0
	for round := range *crashRounds {
		l.killUnderLoad(t, env, seed+uint64(round), 300*time.Millisecond+time.Duration(rng.IntN(900))*time.Millisecond)
		kills++
	}

	// The announced events stored, as the webhook ids they must reach, and
	// the reviewer emails (by Message-ID) of the requests still pending.
	wantMail := map[string]bool{}
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
				if ev.Type == approvals.EventReceived {
					// Sign-ups only: a request pending now was pending when it
					// was received (auto-approved ones never were).
					if r, err := s.Get(context.Background(), ev.RequestID); err == nil && r.Status == approvals.StatusPending {
						wantMail[messageIDLocal(mail.MessageID(approvals.ChildDeliveryID("evt-"+strconv.FormatUint(ev.Seq, 10), approvals.ChannelEmail, crashReviewer), "x"))] = true
					}
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
	missing, missingMail := 0, 0
	mails := map[string]int{} // Message-ID local part -> copies received
	for {
		mu.Lock()
		missing = 0
		for id := range want {
			if received[id] == nil {
				missing++
			}
		}
		mu.Unlock()
		clear(mails)
		for _, m := range mbox.Messages() {
			h, err := m.Header()
			if err != nil {
				t.Fatalf("an unreadable email: %v", err)
			}
			mails[messageIDLocal(h.Get("Message-ID"))]++
		}
		missingMail = 0
		for id := range wantMail {
			if mails[id] == 0 {
				missingMail++
			}
		}
		if missing == 0 && missingMail == 0 || time.Now().After(deadline) {
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
	mailDups := 0
	for id, n := range mails {
		if !wantMail[id] {
			t.Errorf("an email with Message-ID %s names no pending request's announcement", id)
		}
		mailDups += n - 1
	}
	if missingMail > 0 || len(wantMail) == 0 {
		t.Errorf("%d of %d reviewer emails never reached the SMTP server", missingMail, len(wantMail))
	}
	if badSig.Load() > 0 || mismatch.Load() > 0 {
		t.Errorf("%d webhooks with a bad signature, %d repeats whose content differed", badSig.Load(), mismatch.Load())
	}
	if len(want) == 0 {
		t.Error("no event was announced: the load did not run")
	}
	t.Logf("RESULT crash/notifications: %d kills under load; %d sign-ups answered; %d announced events, each delivered (%d calls, %d repeats with the same webhook-id, 0 lost); %d reviewer emails, each delivered (%d repeats with the same Message-ID, 0 lost); %s",
		kills, len(l.acked), len(want), calls.Load(), dups, len(wantMail), mailDups, time.Since(start).Round(time.Millisecond))
}

// crashReviewer is the reviewer address of TestCrashWebhooks.
const crashReviewer = "reviewer@example.com"

// messageIDLocal is a Message-ID without its angle brackets and host: the
// part made from the delivery id.
func messageIDLocal(id string) string {
	id = strings.TrimSuffix(strings.TrimPrefix(strings.TrimSpace(id), "<"), ">")
	if i := strings.LastIndexByte(id, '@'); i >= 0 {
		id = id[:i]
	}
	return id
}
