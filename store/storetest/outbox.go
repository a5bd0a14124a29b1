package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// delivery returns the i-th test delivery of channel ch about request rid,
// due at at.
func delivery(i int, ch approvals.Channel, rid string, at time.Time) approvals.Delivery {
	return approvals.Delivery{
		ID:            fmt.Sprintf("d-%04d", i),
		Channel:       ch,
		Kind:          string(approvals.EventReceived),
		RequestID:     rid,
		Recipient:     fmt.Sprintf("https://hooks.example.com/%d", i),
		Data:          []byte(`{"n":1}`),
		CreatedAt:     at,
		NextAttemptAt: at,
	}
}

func enqueue(t *testing.T, s approvals.Store, ds ...approvals.Delivery) {
	t.Helper()
	if err := s.EnqueueDeliveries(context.Background(), ds); err != nil {
		t.Fatalf("EnqueueDeliveries(%d) = %v", len(ds), err)
	}
}

func getDelivery(t *testing.T, s approvals.Store, id string) *approvals.Delivery {
	t.Helper()
	d, err := s.GetDelivery(context.Background(), id)
	if err != nil {
		t.Fatalf("GetDelivery(%s) = %v", id, err)
	}
	return d
}

func claimDeliveries(t *testing.T, s approvals.Store, now time.Time, lease time.Duration, limit int) []*approvals.Delivery {
	t.Helper()
	return claimed(t, "ClaimDeliveries", s.ClaimDeliveries, now, lease, limit)
}

func deliveryIDs(ds []*approvals.Delivery) []string {
	out := make([]string, len(ds))
	for i, d := range ds {
		out[i] = d.ID
	}
	return out
}

// allDeliveries lists every delivery matching q, pageSize at a time.
func allDeliveries(t *testing.T, s approvals.Store, q approvals.DeliveryQuery, pageSize int) []*approvals.Delivery {
	t.Helper()
	q.Limit = pageSize
	var out []*approvals.Delivery
	for pages := 0; ; pages++ {
		ds, next, err := s.ListDeliveries(context.Background(), q)
		if err != nil {
			t.Fatalf("ListDeliveries(%+v) = %v", q, err)
		}
		if len(ds) > pageSize {
			t.Fatalf("ListDeliveries(%+v) gave %d; limit %d", q, len(ds), pageSize)
		}
		out = append(out, ds...)
		if next == "" {
			return out
		}
		if len(ds) == 0 || pages > 10000 {
			t.Fatalf("ListDeliveries(%+v) gave cursor %q with %d deliveries", q, next, len(ds))
		}
		q.After = next
	}
}

// announcements returns the announcements the store holds, in the order
// they were enqueued.
func announcements(t *testing.T, s approvals.Store) []*approvals.Delivery {
	t.Helper()
	return allDeliveries(t, s, approvals.DeliveryQuery{Channel: approvals.ChannelAnnouncement}, approvals.MaxPageSize)
}

// leasedDelivery returns a mutation that fails with EConflict unless the
// delivery's lease has the token owner, then applies m.
func leasedDelivery(owner string, m func(d *approvals.Delivery) []approvals.Event) approvals.DeliveryMutation {
	return func(d *approvals.Delivery) ([]approvals.Event, error) {
		if !d.Lease.HeldBy(owner) {
			return nil, approvals.Errorf(approvals.EConflict, "lease %s of delivery %s was lost", owner, d.ID)
		}
		return m(d), nil
	}
}

func checkDeliveryCounts(t *testing.T, s approvals.Store, what string, now time.Time, want map[approvals.Channel]approvals.DeliveryCounts) {
	t.Helper()
	got, err := s.CountDeliveries(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range approvals.Channels {
		if got[c] != want[c] {
			t.Errorf("%s: CountDeliveries(%v)[%s] = %+v; want %+v", what, now.Format(time.TimeOnly), c, got[c], want[c])
		}
	}
}

func checkNextDeliveryAt(t *testing.T, s approvals.Store, what string, want time.Time) {
	t.Helper()
	checkNextAt(t, what, "NextDeliveryAt", s.NextDeliveryAt, want)
}

// testOutboxEnqueue checks EnqueueDeliveries: stored as given with state
// pending and version 1, a repeated ID ignored, an invalid batch refused
// whole.
func testOutboxEnqueue(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	if _, err := s.GetDelivery(ctx, "d-0000"); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("GetDelivery of an unknown id = %v; want ENotFound", err)
	}
	d0 := delivery(0, approvals.ChannelWebhook, "r-1", base)
	d0.Event = &approvals.Event{Seq: 7, At: base, Type: approvals.EventApproved, RequestID: "r-1", Actor: reviewer,
		Details: map[string]string{"reason": "ok"}}
	d0.Request = person(1, base)
	d0.Request.ID = "r-1"
	enqueue(t, s, d0, delivery(1, approvals.ChannelEmail, "r-1", base))
	// The caller keeps its copy.
	d0.Event.Details["reason"] = "changed"
	d0.Request.Claims["city"] = "changed"

	got := getDelivery(t, s, "d-0000")
	want := delivery(0, approvals.ChannelWebhook, "r-1", base)
	want.Event = &approvals.Event{Seq: 7, At: base, Type: approvals.EventApproved, RequestID: "r-1", Actor: reviewer,
		Details: map[string]string{"reason": "ok"}}
	want.Request = person(1, base)
	want.Request.ID = "r-1"
	want.State, want.Version = approvals.DeliveryPending, 1
	checkSame(t, "enqueued delivery", got, &want)

	// Enqueueing again is ignored, even with other content: the first wins.
	again := delivery(0, approvals.ChannelWebhook, "r-1", base.Add(time.Hour))
	again.Kind = "other"
	enqueue(t, s, again, delivery(2, approvals.ChannelSlack, "r-2", base))
	checkSame(t, "delivery enqueued twice", getDelivery(t, s, "d-0000"), &want)
	if n := len(allDeliveries(t, s, approvals.DeliveryQuery{}, 10)); n != 3 {
		t.Errorf("%d deliveries after enqueueing 3 distinct ones; want 3", n)
	}

	// Returned copies are private.
	got.Event.Details["reason"] = "mutated"
	checkSame(t, "delivery after mutating a returned copy", getDelivery(t, s, "d-0000"), &want)

	for _, bad := range []approvals.Delivery{
		{Channel: approvals.ChannelWebhook},
		{ID: "x", Channel: "pigeon"},
		{ID: "x", Channel: approvals.ChannelWebhook, State: "lost"},
		{ID: string(make([]byte, approvals.MaxDeliveryIDLen+1)), Channel: approvals.ChannelWebhook},
	} {
		err := s.EnqueueDeliveries(ctx, []approvals.Delivery{delivery(9, approvals.ChannelWebhook, "", base), bad})
		checkCode(t, fmt.Sprintf("EnqueueDeliveries(%q, %q, %q)", bad.ID, bad.Channel, bad.State), err, approvals.EInvalid)
	}
	if _, err := s.GetDelivery(ctx, "d-0009"); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("a batch with an invalid delivery stored its valid one: GetDelivery = %v", err)
	}
	if err := s.EnqueueDeliveries(ctx, nil); err != nil {
		t.Errorf("EnqueueDeliveries(nil) = %v", err)
	}
}

// testOutboxAnnounce checks that Create and Update enqueue the
// announcement of every announced event in their transaction, with the
// request as stored by that change, and nothing otherwise.
func testOutboxAnnounce(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	r := create(t, s, person(1, base))
	evs := auditOf(t, s, r.ID)
	want := []approvals.Delivery{approvals.NewAnnouncement(evs[0], r)}
	check := func(what string) {
		t.Helper()
		got := announcements(t, s)
		if len(got) != len(want) {
			t.Fatalf("%s: %d announcements %v; want %d", what, len(got), deliveryIDs(got), len(want))
		}
		for i := range want {
			w := want[i]
			w.Version = 1
			checkSame(t, fmt.Sprintf("%s: announcement %d", what, i), got[i], &w)
		}
	}
	check("after Create")
	if want[0].ID != fmt.Sprintf("evt-%d", evs[0].Seq) || want[0].Event.Type != approvals.EventReceived {
		t.Fatalf("announcement %+v", want[0])
	}

	// Create of a person who asked before stores nothing and announces
	// nothing.
	if _, created, err := s.Create(ctx, person(1, base.Add(time.Minute)), received(base.Add(time.Minute))); err != nil || created {
		t.Fatalf("second Create = %v, %v", created, err)
	}
	check("after a repeated Create")

	// A refused mutation and ErrUnchanged announce nothing.
	if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		return []approvals.Event{{At: base, Type: approvals.EventApproved, Actor: reviewer}}, approvals.Errorf(approvals.EConflict, "no")
	}); approvals.Code(err) != approvals.EConflict {
		t.Fatalf("refused Update = %v", err)
	}
	if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		return []approvals.Event{{At: base, Type: approvals.EventApproved, Actor: reviewer}}, approvals.ErrUnchanged
	}); !errors.Is(err, approvals.ErrUnchanged) {
		t.Fatalf("unchanged Update = %v", err)
	}
	check("after refused updates")

	// An event that is not announced gets no announcement.
	c.Advance(time.Minute)
	update(t, s, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		r.DisplayName = "Renamed"
		return []approvals.Event{{At: base.Add(time.Minute), Type: approvals.EventProvisioningStep, Actor: approvals.NotifierActor}}, nil
	})
	check("after an unannounced event")

	// Approve: announced, with the request as approved.
	c.Advance(time.Minute)
	approved := update(t, s, r.ID, approve(base.Add(2*time.Minute)))
	evs = auditOf(t, s, r.ID)
	last := evs[len(evs)-1]
	if last.Type != approvals.EventApproved {
		t.Fatalf("last event %s", last.Type)
	}
	want = append(want, approvals.NewAnnouncement(last, approved))
	check("after Approve")

	// Two announced events in one change: two announcements.
	c.Advance(time.Minute)
	r2 := create(t, s, person(2, base.Add(3*time.Minute)))
	both := update(t, s, r2.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Deny(reviewer, "no", base.Add(4*time.Minute))
		return []approvals.Event{ev, {At: base.Add(4 * time.Minute), Type: approvals.EventReopened, Actor: admin}}, err
	})
	evs = auditOf(t, s, r2.ID)
	want = append(want, approvals.NewAnnouncement(evs[0], r2))
	for _, ev := range evs[1:] {
		want = append(want, approvals.NewAnnouncement(ev, both))
	}
	check("after a change with two announced events")
	// Announcements are pending and due at their event's time.
	checkNextDeliveryAt(t, s, "announcements pending", base)
}

// testOutboxClaims checks ClaimDeliveries on one claimer, leases guarding
// UpdateDelivery, the transitions that end or reschedule an attempt,
// NextDeliveryAt and CountDeliveries.
func testOutboxClaims(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	enqueue(t, s,
		delivery(0, approvals.ChannelWebhook, "r-1", base.Add(2*time.Minute)),
		delivery(1, approvals.ChannelWebhook, "r-1", base),
		delivery(2, approvals.ChannelTeams, "r-2", base.Add(time.Minute)),
		delivery(3, approvals.ChannelSlack, "r-3", base.Add(time.Hour)),
	)
	checkNextDeliveryAt(t, s, "fresh", base)
	checkDeliveryCounts(t, s, "fresh", base.Add(2*time.Minute), map[approvals.Channel]approvals.DeliveryCounts{
		approvals.ChannelWebhook: {Due: 2}, approvals.ChannelTeams: {Due: 1}, approvals.ChannelSlack: {Scheduled: 1},
	})
	if _, err := s.ClaimDeliveries(ctx, base, 0, 1); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("ClaimDeliveries with lease 0 = %v; want EInvalid", err)
	}
	if got := claimDeliveries(t, s, base, time.Minute, 0); len(got) != 0 {
		t.Errorf("limit 0 claimed %v", deliveryIDs(got))
	}

	// Soonest first, the limit holds, only due ones.
	now := base.Add(2 * time.Minute)
	const lease = 30 * time.Second
	first := claimDeliveries(t, s, now, lease, 2)
	if got := deliveryIDs(first); !slices.Equal(got, []string{"d-0001", "d-0002"}) {
		t.Fatalf("claimed %v; want d-0001 d-0002", got)
	}
	for _, d := range first {
		if d.Lease == nil || d.Lease.Owner == "" || !d.Lease.Until.Equal(now.Add(lease)) {
			t.Errorf("claimed %s with lease %+v", d.ID, d.Lease)
		}
		checkSame(t, "claimed delivery as stored", d, getDelivery(t, s, d.ID))
	}
	if first[0].Lease.Owner == first[1].Lease.Owner {
		t.Error("two claims share a lease token")
	}
	second := claimDeliveries(t, s, now, lease, 10)
	if got := deliveryIDs(second); !slices.Equal(got, []string{"d-0000"}) {
		t.Fatalf("second claim %v; want d-0000 only (the others are leased, d-0003 not due)", got)
	}
	checkDeliveryCounts(t, s, "leased", now, map[approvals.Channel]approvals.DeliveryCounts{
		approvals.ChannelWebhook: {Leased: 2}, approvals.ChannelTeams: {Leased: 1}, approvals.ChannelSlack: {Scheduled: 1},
	})
	checkNextDeliveryAt(t, s, "all due ones leased", now.Add(lease))

	// A write without the lease is refused; with it, it works.
	d1 := first[0]
	if _, err := s.UpdateDelivery(ctx, d1.ID, leasedDelivery("someone-else", func(d *approvals.Delivery) []approvals.Event {
		d.MarkSent(now)
		return nil
	})); approvals.Code(err) != approvals.EConflict {
		t.Errorf("UpdateDelivery under a foreign token = %v; want EConflict", err)
	}
	sent, err := s.UpdateDelivery(ctx, d1.ID, leasedDelivery(d1.Lease.Owner, func(d *approvals.Delivery) []approvals.Event {
		d.MarkSent(now)
		return nil
	}))
	if err != nil {
		t.Fatal(err)
	}
	if sent.State != approvals.DeliverySent || sent.Lease != nil || sent.Attempts != 1 || !sent.SentAt.Equal(now) || sent.Version != d1.Version+1 {
		t.Errorf("sent delivery %+v", sent)
	}
	checkSame(t, "sent delivery as stored", getDelivery(t, s, d1.ID), sent)

	// A retry releases the lease; the delivery is claimable at its new time.
	d2 := first[1]
	retryAt := now.Add(5 * time.Minute)
	update := func(id string, m approvals.DeliveryMutation) *approvals.Delivery {
		t.Helper()
		d, err := s.UpdateDelivery(ctx, id, m)
		if err != nil {
			t.Fatalf("UpdateDelivery(%s) = %v", id, err)
		}
		return d
	}
	update(d2.ID, leasedDelivery(d2.Lease.Owner, func(d *approvals.Delivery) []approvals.Event {
		d.ScheduleRetry(retryAt, "503 Service Unavailable")
		return nil
	}))
	// A permanent failure appends its audit event in the same change.
	d0 := second[0]
	update(d0.ID, leasedDelivery(d0.Lease.Owner, func(d *approvals.Delivery) []approvals.Event {
		d.MarkFailed("404 Not Found")
		return []approvals.Event{{At: now, Type: approvals.EventDeliveryFailed, RequestID: d.RequestID, Actor: approvals.NotifierActor,
			Details: map[string]string{"delivery": d.ID}}}
	}))
	evs := auditOf(t, s, "r-1")
	if len(evs) != 1 || evs[0].Type != approvals.EventDeliveryFailed || evs[0].Details["delivery"] != "d-0000" {
		t.Errorf("audit of r-1 = %+v; want one %s", evs, approvals.EventDeliveryFailed)
	}
	checkDeliveryCounts(t, s, "after sent, retry, failed", now, map[approvals.Channel]approvals.DeliveryCounts{
		approvals.ChannelWebhook: {Sent: 1, Failed: 1}, approvals.ChannelTeams: {Scheduled: 1}, approvals.ChannelSlack: {Scheduled: 1},
	})
	checkNextDeliveryAt(t, s, "after the writes", retryAt)
	if got := claimDeliveries(t, s, retryAt.Add(-time.Second), lease, 10); len(got) != 0 {
		t.Errorf("claimed %v before the retry time", deliveryIDs(got))
	}
	if got := deliveryIDs(claimDeliveries(t, s, retryAt, lease, 10)); !slices.Equal(got, []string{"d-0002"}) {
		t.Errorf("at the retry time claimed %v; want d-0002", got)
	}

	// An expired lease is claimed again, under a new token; the old
	// holder's writes are refused.
	later := base.Add(time.Hour)
	re := claimDeliveries(t, s, later, lease, 10)
	if got := deliveryIDs(re); !slices.Equal(got, []string{"d-0002", "d-0003"}) {
		t.Fatalf("after expiry claimed %v; want d-0002 d-0003", got)
	}
	// ErrUnchanged stores nothing and returns the delivery.
	d, err := s.UpdateDelivery(ctx, "d-0003", func(*approvals.Delivery) ([]approvals.Event, error) { return nil, approvals.ErrUnchanged })
	if !errors.Is(err, approvals.ErrUnchanged) || d == nil || d.Version != re[1].Version {
		t.Errorf("unchanged UpdateDelivery = %+v, %v", d, err)
	}
	if _, err := s.UpdateDelivery(ctx, "nope", func(*approvals.Delivery) ([]approvals.Event, error) { return nil, nil }); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("UpdateDelivery of an unknown id = %v; want ENotFound", err)
	}
	if _, err := s.UpdateDelivery(ctx, "d-0003", func(d *approvals.Delivery) ([]approvals.Event, error) {
		d.Channel = approvals.ChannelEmail
		return nil, nil
	}); err == nil {
		t.Error("UpdateDelivery changed a delivery's channel")
	}
	if got := getDelivery(t, s, "d-0003"); got.Channel != approvals.ChannelSlack || got.Version != re[1].Version {
		t.Errorf("a refused UpdateDelivery changed the delivery: %+v", got)
	}

	// Resend makes a failed delivery pending and due again, same ID.
	resent := update("d-0000", func(d *approvals.Delivery) ([]approvals.Event, error) {
		return []approvals.Event{{At: later, Type: approvals.EventDeliveryResent, RequestID: d.RequestID, Actor: admin}}, d.Resend(later)
	})
	if resent.State != approvals.DeliveryPending || !resent.NextAttemptAt.Equal(later) {
		t.Errorf("resent %+v", resent)
	}
	if got := deliveryIDs(claimDeliveries(t, s, later, lease, 10)); !slices.Equal(got, []string{"d-0000"}) {
		t.Errorf("after the resend claimed %v; want d-0000", got)
	}
}

// testOutboxClaimsConcurrent races claimers for deliveries (see
// claimRace).
func testOutboxClaimsConcurrent(t *testing.T, s approvals.Store, _ *Clock) {
	const n = 80
	var ds []approvals.Delivery
	var all []string
	for i := range n {
		d := delivery(i, approvals.Channels[1+i%4], fmt.Sprintf("r-%d", i%7), base.Add(time.Duration(i)*time.Second))
		ds = append(ds, d)
		all = append(all, d.ID)
	}
	enqueue(t, s, ds...)
	claimRace[*approvals.Delivery]{
		op:    "ClaimDeliveries",
		claim: s.ClaimDeliveries,
		lease: func(d *approvals.Delivery) (string, *approvals.Lease) { return d.ID, d.Lease },
		allLeased: func(now time.Time) {
			counts, err := s.CountDeliveries(context.Background(), now)
			if err != nil {
				t.Fatal(err)
			}
			leased := 0
			for _, c := range counts {
				leased += c.Leased
			}
			if leased != n {
				t.Errorf("%d leased after the race; want %d", leased, n)
			}
		},
		nextAt: func(want time.Time) { checkNextDeliveryAt(t, s, "every delivery leased", want) },
	}.run(t, all, base.Add(time.Hour), time.Minute)
}

// testOutboxList checks ListDeliveries: enqueue order, paging at every
// page size, the filters, bad queries.
func testOutboxList(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	var want []approvals.Delivery
	// Enqueued in an order other than their times and IDs, so that the
	// enqueue order is the only one that fits.
	for i := range 23 {
		at := base.Add(time.Duration((i*7)%23) * time.Minute)
		d := delivery((i*11)%23, approvals.Channels[1+i%4], fmt.Sprintf("r-%d", i%3), at)
		want = append(want, d)
	}
	for i := 0; i < len(want); i += 5 {
		enqueue(t, s, want[i:min(i+5, len(want))]...)
	}
	// Send a few, fail one: the state filter.
	sentIDs := map[string]bool{}
	for i, d := range claimDeliveries(t, s, base.Add(time.Hour), time.Minute, 6) {
		_, err := s.UpdateDelivery(ctx, d.ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
			if i == 0 {
				d.MarkFailed("410 Gone")
			} else {
				d.MarkSent(base.Add(time.Hour))
				sentIDs[d.ID] = true
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	all := allDeliveries(t, s, approvals.DeliveryQuery{}, approvals.MaxPageSize)
	stored := map[string]*approvals.Delivery{}
	for _, d := range all {
		stored[d.ID] = d
	}
	var order []string
	for _, d := range want {
		order = append(order, d.ID)
	}
	if got := deliveryIDs(all); !slices.Equal(got, order) {
		t.Fatalf("ListDeliveries order %v; want enqueue order %v", got, order)
	}
	queries := []approvals.DeliveryQuery{{}, {RequestID: "r-1"}, {Channel: approvals.ChannelTeams}, {State: approvals.DeliverySent},
		{State: approvals.DeliveryPending, RequestID: "r-0"}, {Channel: approvals.ChannelEmail, State: approvals.DeliveryFailed}, {RequestID: "r-none"}}
	for _, q := range queries {
		var expect []string
		for _, d := range want {
			st := stored[d.ID]
			if (q.RequestID == "" || st.RequestID == q.RequestID) && (q.State == "" || st.State == q.State) &&
				(q.Channel == "" || st.Channel == q.Channel) {
				expect = append(expect, d.ID)
			}
		}
		for _, size := range []int{1, 2, 3, 7, 100} {
			got := allDeliveries(t, s, q, size)
			if ids := deliveryIDs(got); !slices.Equal(ids, expect) {
				t.Errorf("ListDeliveries(%+v) by %d = %v; want %v", q, size, ids, expect)
			}
			for _, d := range got {
				checkSame(t, "listed delivery", d, stored[d.ID])
			}
		}
	}
	for _, q := range []approvals.DeliveryQuery{{State: "lost"}, {Channel: "pigeon"}, {After: "no-such-delivery"}} {
		_, _, err := s.ListDeliveries(ctx, q)
		checkCode(t, fmt.Sprintf("ListDeliveries(%+v)", q), err, approvals.EInvalid)
	}
	if len(sentIDs) != 5 {
		t.Errorf("sent %d; want 5", len(sentIDs))
	}
}

// testOutboxPurge checks PurgeDeliveries: sent ones before the time go,
// with their index entries; pending and failed ones stay.
func testOutboxPurge(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	var ds []approvals.Delivery
	for i := range 12 {
		ds = append(ds, delivery(i, approvals.ChannelWebhook, fmt.Sprintf("r-%d", i%2), base))
	}
	enqueue(t, s, ds...)
	for i, d := range claimDeliveries(t, s, base, time.Minute, 9) {
		_, err := s.UpdateDelivery(ctx, d.ID, func(d *approvals.Delivery) ([]approvals.Event, error) {
			if i < 8 {
				d.MarkSent(base.Add(time.Duration(i) * time.Hour))
			} else {
				d.MarkFailed("400 Bad Request")
			}
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	n, err := s.PurgeDeliveries(ctx, base.Add(5*time.Hour))
	if err != nil || n != 5 {
		t.Fatalf("PurgeDeliveries = %d, %v; want 5 (sent before 5h)", n, err)
	}
	left := allDeliveries(t, s, approvals.DeliveryQuery{}, 2)
	if got := deliveryIDs(left); !slices.Equal(got, []string{"d-0005", "d-0006", "d-0007", "d-0008", "d-0009", "d-0010", "d-0011"}) {
		t.Errorf("after the purge %v", got)
	}
	for _, rid := range []string{"r-0", "r-1"} {
		for _, d := range allDeliveries(t, s, approvals.DeliveryQuery{RequestID: rid}, 1) {
			if d.RequestID != rid {
				t.Errorf("listing of %s shows %s of %s", rid, d.ID, d.RequestID)
			}
		}
	}
	if _, err := s.GetDelivery(ctx, "d-0000"); approvals.Code(err) != approvals.ENotFound {
		t.Errorf("GetDelivery of a purged delivery = %v", err)
	}
	checkDeliveryCounts(t, s, "after the purge", base, map[approvals.Channel]approvals.DeliveryCounts{
		approvals.ChannelWebhook: {Sent: 3, Failed: 1, Due: 3},
	})
	// A purged ID may be enqueued again: the store no longer knows it.
	if n, err := s.PurgeDeliveries(ctx, base.Add(5*time.Hour)); err != nil || n != 0 {
		t.Errorf("second PurgeDeliveries = %d, %v; want 0", n, err)
	}
}
