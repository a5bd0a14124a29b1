package notify

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
	"github.com/approvals-dev/approvals/store/storetest"
)

// receiver is a webhook endpoint that answers with the statuses it is
// given in turn (200 after the last) and records every call.
type receiver struct {
	srv *httptest.Server

	mu       sync.Mutex
	statuses []int
	retry    string // Retry-After on failures
	calls    []call
}

type call struct {
	id   string
	body string
	err  error // of the independent verification
}

func newReceiver(t *testing.T, statuses ...int) *receiver {
	rc := &receiver{statuses: statuses}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		defer rc.mu.Unlock()
		rc.calls = append(rc.calls, call{id: r.Header.Get("webhook-id"), body: string(body), err: verify(testSecret, r.Header, body, time.Now())})
		status := http.StatusOK
		if len(rc.statuses) > 0 {
			status, rc.statuses = rc.statuses[0], rc.statuses[1:]
		}
		if status >= 400 && rc.retry != "" {
			w.Header().Set("Retry-After", rc.retry)
		}
		w.WriteHeader(status)
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) got() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return slices.Clone(rc.calls)
}

// rig is a Notifier on a memory store with a fake clock, stepped by hand.
type rig struct {
	t     *testing.T
	store *memory.Store
	clock *storetest.Clock
	n     *Notifier
}

func newRig(t *testing.T, f Fanout, couriers map[approvals.Channel]approvals.Courier) *rig {
	clock := storetest.NewClock(time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC))
	s := memory.New(clock)
	n, err := New(Config{Store: s, Couriers: couriers, Fanout: f, Clock: clock})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{t: t, store: s, clock: clock, n: n}
}

// step runs one dispatch and waits for the sends it started.
func (r *rig) step() {
	var wg sync.WaitGroup
	r.n.pool.Dispatch(context.Background(), context.Background(), &wg)
	wg.Wait()
}

// drain steps until nothing is due at the clock's time.
func (r *rig) drain() {
	for range 20 {
		next, ok, err := r.store.NextDeliveryAt(context.Background())
		if err != nil {
			r.t.Fatal(err)
		}
		if !ok || next.After(r.clock.Now()) {
			return
		}
		r.step()
	}
	r.t.Fatal("the outbox does not drain")
}

// advanceTo moves the clock to at.
func (r *rig) advanceTo(at time.Time) {
	if d := at.Sub(r.clock.Now()); d > 0 {
		r.clock.Advance(d)
	}
}

func (r *rig) signUp(i int) *approvals.Request {
	r.t.Helper()
	now := r.clock.Now()
	req := testRequest()
	req.ID, req.Email, req.CreatedAt, req.UpdatedAt = "", "p"+string(rune('a'+i))+"@example.com", now, now
	req.Identity = nil
	got, created, err := r.store.Create(context.Background(), req, []approvals.Event{{At: now, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}})
	if err != nil || !created {
		r.t.Fatalf("Create = %v, %v", created, err)
	}
	return got
}

func (r *rig) deliveries(q approvals.DeliveryQuery) []*approvals.Delivery {
	r.t.Helper()
	q.Limit = approvals.MaxPageSize
	ds, _, err := r.store.ListDeliveries(context.Background(), q)
	if err != nil {
		r.t.Fatal(err)
	}
	return ds
}

func webhookRig(t *testing.T, rc *receiver) *rig {
	key, _ := ParseSecret(testSecret)
	return newRig(t, Fanout{WebhookURLs: []string{rc.srv.URL}},
		map[approvals.Channel]approvals.Courier{approvals.ChannelWebhook: &Webhook{Key: key}})
}

// TestWebhookDelivered: one sign-up, one signed webhook, never a second
// after the 2xx.
func TestWebhookDelivered(t *testing.T) {
	rc := newReceiver(t)
	r := webhookRig(t, rc)
	req := r.signUp(0)
	r.drain()
	calls := rc.got()
	if len(calls) != 1 || calls[0].err != nil {
		t.Fatalf("calls %+v; want one verified", calls)
	}
	ds := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})
	if len(ds) != 1 || ds[0].State != approvals.DeliverySent || ds[0].ID != calls[0].id || ds[0].RequestID != req.ID {
		t.Fatalf("webhook deliveries %+v", ds)
	}
	if a := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelAnnouncement}); len(a) != 1 || a[0].State != approvals.DeliverySent {
		t.Errorf("announcement %+v; want sent", a)
	}
	r.clock.Advance(48 * time.Hour)
	r.drain()
	if n := len(rc.got()); n != 1 {
		t.Errorf("%d calls after a 2xx and two days; want 1", n)
	}
}

// TestBackoffSchedule: a receiver down for good gets the first retry
// within 30 s, three tries within 5 minutes, retries for 24 h with the
// same webhook-id, then the delivery fails with an audit event.
func TestBackoffSchedule(t *testing.T) {
	statuses := make([]int, 1000)
	for i := range statuses {
		statuses[i] = http.StatusServiceUnavailable
	}
	rc := newReceiver(t, statuses...)
	r := webhookRig(t, rc)
	req := r.signUp(0)
	start := r.clock.Now()
	for range 200 {
		r.drain()
		ds := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})
		if len(ds) != 1 {
			t.Fatalf("%d webhook deliveries", len(ds))
		}
		if ds[0].State != approvals.DeliveryPending {
			break
		}
		r.advanceTo(ds[0].NextAttemptAt)
	}
	calls := rc.got()
	d := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})[0]
	if d.State != approvals.DeliveryFailed || d.Attempts != len(calls) {
		t.Fatalf("delivery %+v after %d calls; want failed with every attempt counted", d, len(calls))
	}
	elapsed := r.clock.Now().Sub(start)
	if elapsed < 24*time.Hour || elapsed > 27*time.Hour {
		t.Errorf("gave up after %s; want after at least 24 h, soon after", elapsed)
	}
	for _, c := range calls {
		if c.id != d.ID || c.err != nil {
			t.Fatalf("call %+v; want webhook-id %s and a valid signature on every retry", c, d.ID)
		}
	}
	if len(calls) < 25 || len(calls) > 60 {
		t.Errorf("%d tries in %s", len(calls), elapsed)
	}
	evs, _, err := r.store.Audit(context.Background(), approvals.AuditQuery{RequestID: req.ID})
	if err != nil {
		t.Fatal(err)
	}
	last := evs[len(evs)-1]
	if last.Type != approvals.EventDeliveryFailed || last.RequestID != req.ID || last.Details["delivery_id"] != d.ID {
		t.Errorf("last event %+v; want %s for the delivery", last, approvals.EventDeliveryFailed)
	}
}

// TestBackoffEarly checks the first retries' delays exactly as the
// schedule gives them (with its jitter).
func TestBackoffEarly(t *testing.T) {
	n := &Notifier{}
	var at time.Duration
	var times []time.Duration
	for attempt := 1; attempt <= 4; attempt++ {
		d := n.backoff(attempt, 0)
		if lo := retrySchedule[attempt-1]; d < lo || d > lo+lo/10 {
			t.Errorf("backoff(%d) = %s; want %s plus up to a tenth", attempt, d, lo)
		}
		at += d
		times = append(times, at)
	}
	if times[0] > 30*time.Second {
		t.Errorf("first retry after %s; want within 30 s", times[0])
	}
	if times[1] > 5*time.Minute { // tries at 0, times[0], times[1]: three
		t.Errorf("third try after %s; want within 5 minutes", times[1])
	}
	if got := n.backoff(1, 2*time.Minute); got != 2*time.Minute {
		t.Errorf("backoff with Retry-After 2m = %s", got)
	}
	if got := n.backoff(100, 0); got < time.Hour || got > time.Hour+6*time.Minute {
		t.Errorf("backoff(100) = %s", got)
	}
}

// TestPermanentAndRetryAfter: a 404 fails at once, audited; a 429 with
// Retry-After waits as asked, with the same id.
func TestPermanentAndRetryAfter(t *testing.T) {
	rc := newReceiver(t, http.StatusNotFound)
	r := webhookRig(t, rc)
	req := r.signUp(0)
	r.drain()
	d := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})[0]
	if d.State != approvals.DeliveryFailed || d.Attempts != 1 || d.LastError == "" {
		t.Errorf("after a 404: %+v; want failed after one attempt", d)
	}
	evs, _, _ := r.store.Audit(context.Background(), approvals.AuditQuery{RequestID: req.ID})
	if evs[len(evs)-1].Type != approvals.EventDeliveryFailed {
		t.Errorf("no %s event after a 404", approvals.EventDeliveryFailed)
	}

	rc2 := newReceiver(t, http.StatusTooManyRequests)
	rc2.retry = "300"
	r2 := webhookRig(t, rc2)
	r2.signUp(1)
	t0 := r2.clock.Now()
	r2.drain()
	d2 := r2.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})[0]
	if d2.State != approvals.DeliveryPending || d2.NextAttemptAt.Sub(t0) != 300*time.Second {
		t.Fatalf("after a 429 with Retry-After 300: %+v", d2)
	}
	r2.clock.Advance(299 * time.Second)
	r2.drain()
	if n := len(rc2.got()); n != 1 {
		t.Errorf("%d calls before Retry-After passed", n)
	}
	r2.clock.Advance(time.Second)
	r2.drain()
	calls := rc2.got()
	if len(calls) != 2 || calls[0].id != calls[1].id {
		t.Errorf("calls %+v; want a second with the same webhook-id", calls)
	}
	if d2 := r2.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelWebhook})[0]; d2.State != approvals.DeliverySent {
		t.Errorf("after the retry: %+v", d2)
	}
}

// recorder is a Courier that keeps what it is given, as a receiver that
// accepts everything.
type recorder struct {
	mu  sync.Mutex
	got []*approvals.Delivery
}

func (c *recorder) Deliver(_ context.Context, d *approvals.Delivery) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.got = append(c.got, d)
	return nil
}

func (c *recorder) kinds() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, d := range c.got {
		out = append(out, d.Kind+" "+d.Recipient)
	}
	slices.Sort(out)
	return out
}

// TestFanout checks who hears of what.
func TestFanout(t *testing.T) {
	mail, hooks, teams, slack := &recorder{}, &recorder{}, &recorder{}, &recorder{}
	couriers := map[approvals.Channel]approvals.Courier{approvals.ChannelEmail: mail, approvals.ChannelWebhook: hooks,
		approvals.ChannelTeams: teams, approvals.ChannelSlack: slack}
	r := newRig(t, Fanout{ReviewerEmails: []string{"Rev@Example.com", "boss@example.com"}, Applicant: []string{ApplicantReceived, ApplicantApproved},
		WebhookURLs: []string{"https://a.example/h", "https://b.example/h"}, Teams: true, Slack: true}, couriers)
	req := r.signUp(0)
	r.drain()
	if got, want := mail.kinds(), []string{"applicant.received pa@example.com", "reviewer.pending boss@example.com", "reviewer.pending rev@example.com"}; !slices.Equal(got, want) {
		t.Errorf("emails %v; want %v", got, want)
	}
	if len(hooks.got) != 2 || len(teams.got) != 1 || len(slack.got) != 1 {
		t.Errorf("webhooks %d, teams %d, slack %d; want 2, 1, 1", len(hooks.got), len(teams.got), len(slack.got))
	}
	// Approval (provisioned by Graph): webhooks only; the applicant hears
	// once provisioning succeeded.
	mail.got, hooks.got, teams.got, slack.got = nil, nil, nil, nil
	now := r.clock.Now()
	if _, err := r.store.Update(context.Background(), req.ID, func(x *approvals.Request) ([]approvals.Event, error) {
		ev, err := x.Approve(approvals.Actor{Kind: approvals.ActorReviewer, ID: "rev"}, "ok", now, time.Hour)
		return []approvals.Event{ev}, err
	}); err != nil {
		t.Fatal(err)
	}
	r.drain()
	if len(mail.got) != 0 || len(hooks.got) != 2 || len(teams.got)+len(slack.got) != 0 {
		t.Errorf("after approval: mail %v, webhooks %d, teams+slack %d", mail.kinds(), len(hooks.got), len(teams.got)+len(slack.got))
	}
	if _, err := r.store.Update(context.Background(), req.ID, func(x *approvals.Request) ([]approvals.Event, error) {
		if err := x.StartAttempt(); err != nil {
			return nil, err
		}
		x.Provisioning.UserID = "user-1"
		ev, err := x.SucceedProvisioning(now)
		return []approvals.Event{ev}, err
	}); err != nil {
		t.Fatal(err)
	}
	r.drain()
	if got := mail.kinds(); !slices.Equal(got, []string{"applicant.approved pa@example.com"}) {
		t.Errorf("after provisioning: emails %v", got)
	}
	// Without an email courier, no email deliveries at all.
	r2 := newRig(t, Fanout{ReviewerEmails: []string{"rev@example.com"}, Applicant: []string{ApplicantReceived}},
		map[approvals.Channel]approvals.Courier{})
	r2.signUp(1)
	r2.drain()
	if ds := r2.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelEmail}); len(ds) != 0 {
		t.Errorf("%d email deliveries without an email courier", len(ds))
	}
}

// TestDigest: with a digest period, reviewers get one delivery per period
// and address, due at the period's end.
func TestDigest(t *testing.T) {
	mail := &recorder{}
	r := newRig(t, Fanout{ReviewerEmails: []string{"rev@example.com"}, ReviewerDigest: time.Hour},
		map[approvals.Channel]approvals.Courier{approvals.ChannelEmail: mail})
	r.signUp(0)
	r.clock.Advance(10 * time.Minute)
	r.signUp(1)
	r.drain()
	ds := r.deliveries(approvals.DeliveryQuery{Channel: approvals.ChannelEmail})
	start, end := DigestPeriod(r.clock.Now(), time.Hour)
	if len(ds) != 1 || ds[0].Kind != approvals.MailReviewerDigest || !ds[0].NextAttemptAt.Equal(end) || ds[0].Request != nil ||
		ds[0].ID != "digest-"+strconv.FormatInt(start.Unix(), 10)+".email.rev@example.com" {
		t.Fatalf("digest deliveries %+v", ds)
	}
	if string(ds[0].Data) != `{"since":"`+start.Format(time.RFC3339)+`","until":"`+end.Format(time.RFC3339)+`"}` {
		t.Errorf("digest data %s", ds[0].Data)
	}
	if len(mail.got) != 0 {
		t.Error("the digest went before its period ended")
	}
	r.advanceTo(end)
	r.drain()
	if len(mail.got) != 1 {
		t.Errorf("%d digests at the period's end; want 1", len(mail.got))
	}
}

// TestRunWakes: the running Notifier sends as soon as it is woken.
func TestRunWakes(t *testing.T) {
	var hits atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { hits.Add(1) }))
	defer srv.Close()
	key, _ := ParseSecret(testSecret)
	s := memory.New(nil)
	n, err := New(Config{Store: s, Fanout: Fanout{WebhookURLs: []string{srv.URL}}, PollInterval: time.Hour,
		Couriers: map[approvals.Channel]approvals.Courier{approvals.ChannelWebhook: &Webhook{Key: key}}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- n.Run(ctx) }()
	time.Sleep(50 * time.Millisecond)
	req := testRequest()
	req.ID = ""
	now := time.Now()
	req.CreatedAt = now
	if _, _, err := s.Create(ctx, req, []approvals.Event{{At: now, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}}); err != nil {
		t.Fatal(err)
	}
	n.Wake()
	deadline := time.Now().Add(5 * time.Second)
	for hits.Load() == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if hits.Load() != 1 {
		t.Errorf("%d webhook calls after Wake; want 1", hits.Load())
	}
}
