package storetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// filterEvents returns the events of all that q selects, ignoring its
// limit.
func filterEvents(all []approvals.Event, q approvals.AuditQuery) []approvals.Event {
	var out []approvals.Event
	for _, ev := range all {
		if ev.Seq > q.AfterSeq && !ev.At.Before(q.Since) && (q.RequestID == "" || ev.RequestID == q.RequestID) {
			out = append(out, ev)
		}
	}
	return out
}

// auditPages pages through the audit trail and fails the test unless every
// page is full but the last, and only the last has a zero cursor.
func auditPages(t *testing.T, s approvals.Store, q approvals.AuditQuery, pageSize int) (all []approvals.Event, pages int) {
	t.Helper()
	for {
		evs, next, err := s.Audit(context.Background(), q)
		if err != nil {
			t.Fatalf("Audit(%+v) = %v", q, err)
		}
		pages++
		if len(evs) > pageSize {
			t.Fatalf("Audit(%+v) returned %d events; the page size is %d", q, len(evs), pageSize)
		}
		all = append(all, evs...)
		if next == 0 {
			return all, pages
		}
		if len(evs) != pageSize || next != evs[len(evs)-1].Seq {
			t.Fatalf("Audit(%+v) returned %d events and cursor %d; want a full page of %d ending at the cursor", q, len(evs), next, pageSize)
		}
		if pages > 10000 {
			t.Fatalf("Audit(%+v) never ends", q)
		}
		q.AfterSeq = next
	}
}

func checkSeqs(t *testing.T, evs []approvals.Event) {
	t.Helper()
	for i, ev := range evs {
		if ev.Seq == 0 || (i > 0 && ev.Seq <= evs[i-1].Seq) {
			t.Fatalf("event %d has seq %d after %d; want strictly increasing seqs", i, ev.Seq, evs[max(i-1, 0)].Seq)
		}
	}
}

func testAudit(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	r0 := create(t, s, person(0, at(0)))
	r1 := create(t, s, person(1, at(1)))
	update(t, s, r0.ID, approve(at(2)))
	blocked := approvals.Event{At: at(3), Type: approvals.EventBlockedAtCheck, Actor: approvals.ConnectorActor,
		Details: map[string]string{"email": "someone@example.com"}}
	invited := approvals.Event{At: at(3), Type: approvals.EventInvitationCreated, RequestID: r1.ID, Actor: admin}
	if err := s.AppendEvents(ctx, []approvals.Event{blocked, invited}); err != nil {
		t.Fatal(err)
	}
	update(t, s, r1.ID, deny(at(4), "spam"))
	update(t, s, r0.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		return []approvals.Event{
			{At: at(5), Type: approvals.EventProvisioningStep, Actor: approvals.ProvisionerActor, Details: map[string]string{"step": "looked_up"}},
			{At: at(5), Type: approvals.EventProvisioningStep, Actor: approvals.ProvisionerActor, Details: map[string]string{"step": "created"}},
		}, nil
	})

	all := auditOf(t, s, "")
	checkSeqs(t, all)
	type summary struct {
		Type      approvals.EventType
		RequestID string
		At        time.Time
	}
	want := []summary{
		{approvals.EventReceived, r0.ID, at(0)},
		{approvals.EventReceived, r1.ID, at(1)},
		{approvals.EventApproved, r0.ID, at(2)},
		{approvals.EventBlockedAtCheck, "", at(3)},
		{approvals.EventInvitationCreated, r1.ID, at(3)},
		{approvals.EventDenied, r1.ID, at(4)},
		{approvals.EventProvisioningStep, r0.ID, at(5)},
		{approvals.EventProvisioningStep, r0.ID, at(5)},
	}
	var got []summary
	for _, ev := range all {
		got = append(got, summary{ev.Type, ev.RequestID, ev.At})
	}
	checkSame(t, "audit trail", got, want)
	if len(all) != len(want) {
		t.FailNow()
	}
	withoutSeq := func(ev approvals.Event) approvals.Event { ev.Seq = 0; return ev }
	checkSame(t, "appended event", withoutSeq(all[3]), blocked)
	checkSame(t, "appended event", withoutSeq(all[4]), invited)
	if all[7].Details["step"] != "created" {
		t.Errorf("events of one change are out of order: %+v", all[6:])
	}

	tests := []struct {
		name string
		q    approvals.AuditQuery
	}{
		{"All", approvals.AuditQuery{}},
		{"AfterSeq", approvals.AuditQuery{AfterSeq: all[2].Seq}},
		{"AfterLast", approvals.AuditQuery{AfterSeq: all[7].Seq}},
		{"AfterBeyond", approvals.AuditQuery{AfterSeq: all[7].Seq + 1000}},
		{"Since", approvals.AuditQuery{Since: at(3)}},
		{"SinceBetween", approvals.AuditQuery{Since: at(3).Add(time.Nanosecond)}},
		{"SinceFuture", approvals.AuditQuery{Since: at(60)}},
		{"SinceAndAfter", approvals.AuditQuery{Since: at(1), AfterSeq: all[4].Seq}},
		{"Request", approvals.AuditQuery{RequestID: r0.ID}},
		{"RequestOther", approvals.AuditQuery{RequestID: r1.ID}},
		{"RequestSince", approvals.AuditQuery{RequestID: r1.ID, Since: at(3)}},
		{"RequestAfter", approvals.AuditQuery{RequestID: r0.ID, AfterSeq: all[2].Seq}},
		{"RequestUnknown", approvals.AuditQuery{RequestID: "000000000000000000000000"}},
		{"RequestPrefix", approvals.AuditQuery{RequestID: r0.ID[:10]}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			evs, next, err := s.Audit(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			checkSame(t, "events", evs, filterEvents(all, tt.q))
			if next != 0 {
				t.Errorf("Audit returned cursor %d for a partial page", next)
			}
		})
	}
}

func testAuditStragglers(t *testing.T, s approvals.Store, _ *Clock) {
	// Events are kept in Seq order; their times need not be. The Since filter
	// must still find every late-stamped event.
	at := func(m int) time.Time { return base.Add(time.Duration(m) * time.Minute) }
	var evs []approvals.Event
	for i, m := range []int{10, 5, 20, 7, 15, 20, 3, 25, 8} {
		evs = append(evs, approvals.Event{At: at(m), Type: approvals.EventBlockedAtCheck, Actor: approvals.ConnectorActor,
			RequestID: fmt.Sprintf("req-%d", i%2), Details: map[string]string{"i": fmt.Sprint(i)}})
	}
	for i := range evs {
		// One event per call, so that a store cannot order them by time.
		if err := s.AppendEvents(context.Background(), evs[i:i+1]); err != nil {
			t.Fatal(err)
		}
	}
	all := auditOf(t, s, "")
	if len(all) != len(evs) {
		t.Fatalf("audit has %d events; want %d", len(all), len(evs))
	}
	checkSeqs(t, all)
	for _, since := range []int{0, 4, 6, 8, 9, 16, 20, 21, 25, 26} {
		for _, id := range []string{"", "req-0", "req-1"} {
			for _, limit := range []int{1, 2, 50} {
				q := approvals.AuditQuery{Since: at(since), RequestID: id, Limit: limit}
				got, _ := auditPages(t, s, q, limit)
				checkSame(t, fmt.Sprintf("Audit(since %d, request %q, limit %d)", since, id, limit), got, filterEvents(all, q))
			}
		}
	}
}

func testAuditPaging(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	const n = approvals.MaxPageSize + 23
	var evs []approvals.Event
	for i := range n {
		evs = append(evs, approvals.Event{At: base.Add(time.Duration(i) * time.Second), Type: approvals.EventProvisioningStep,
			RequestID: fmt.Sprintf("req-%d", i%3), Actor: approvals.ProvisionerActor})
	}
	if err := s.AppendEvents(ctx, evs); err != nil {
		t.Fatal(err)
	}
	all := auditOf(t, s, "")
	if len(all) != n {
		t.Fatalf("audit has %d events; want %d", len(all), n)
	}
	checkSeqs(t, all)
	for i := range all {
		if all[i].RequestID != evs[i].RequestID || !all[i].At.Equal(evs[i].At) {
			t.Fatalf("event %d = %+v; want %+v: events of one call are kept in order", i, all[i], evs[i])
		}
	}
	filters := []struct {
		name string
		q    approvals.AuditQuery
	}{
		{"All", approvals.AuditQuery{}},
		{"Request", approvals.AuditQuery{RequestID: "req-1"}},
		{"Since", approvals.AuditQuery{Since: base.Add(100 * time.Second)}},
		{"RequestSince", approvals.AuditQuery{RequestID: "req-2", Since: base.Add(300 * time.Second)}},
		{"AfterSeq", approvals.AuditQuery{AfterSeq: all[50].Seq}},
	}
	for _, f := range filters {
		filter := f.q
		want := filterEvents(all, filter)
		for _, limit := range []int{0, 1, 7, 50, len(want), len(want) + 1, approvals.MaxPageSize + 1} {
			t.Run(fmt.Sprintf("%s/limit=%d", f.name, limit), func(t *testing.T) {
				pageSize := limit
				switch {
				case limit <= 0:
					pageSize = approvals.DefaultPageSize
				case limit > approvals.MaxPageSize:
					pageSize = approvals.MaxPageSize
				}
				q := filter
				q.Limit = limit
				got, pages := auditPages(t, s, q, pageSize)
				if !sameJSON(got, want) {
					t.Errorf("paged audit has %d events; want %d (first difference at %s)", len(got), len(want), firstDiffEvents(got, want))
				}
				if wantPages := max(1, (len(want)+pageSize-1)/pageSize); pages != wantPages {
					t.Errorf("audit took %d pages; want %d", pages, wantPages)
				}
			})
		}
	}
}

func firstDiffEvents(a, b []approvals.Event) string {
	for i := range min(len(a), len(b)) {
		if !sameJSON(a[i], b[i]) {
			return fmt.Sprint(i)
		}
	}
	return fmt.Sprint(min(len(a), len(b)))
}

func testAppendEvents(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	t.Run("Empty", func(t *testing.T) {
		if err := s.AppendEvents(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := s.AppendEvents(ctx, []approvals.Event{}); err != nil {
			t.Fatal(err)
		}
		if evs := auditOf(t, s, ""); len(evs) != 0 {
			t.Errorf("appending nothing stored %d events", len(evs))
		}
	})
	t.Run("Copies", func(t *testing.T) {
		details := map[string]string{"email": "someone@example.com"}
		in := []approvals.Event{
			{Seq: 999, At: c.Now(), Type: approvals.EventBlockedAtCheck, Actor: approvals.ConnectorActor, Details: details},
			{At: c.Now(), Type: approvals.EventInvitationCreated, RequestID: "req-1", Actor: admin},
		}
		if err := s.AppendEvents(ctx, in); err != nil {
			t.Fatal(err)
		}
		details["email"] = "changed@example.com"
		in[1].RequestID = "changed"
		got := auditOf(t, s, "")
		if len(got) != 2 {
			t.Fatalf("audit = %+v; want 2 events", got)
		}
		if got[0].Details["email"] != "someone@example.com" || got[1].RequestID != "req-1" {
			t.Errorf("stored events changed with the caller's copy: %+v", got)
		}
		if got[0].Seq == 999 {
			t.Errorf("store kept the caller's seq")
		}
		got[0].Details["email"] = "changed again"
		if again := auditOf(t, s, ""); again[0].Details["email"] != "someone@example.com" {
			t.Errorf("stored event changed with an Audit result: %+v", again[0])
		}
	})
	t.Run("SeqsIncrease", func(t *testing.T) {
		before := auditOf(t, s, "")
		r := create(t, s, person(0, c.Now()))
		update(t, s, r.ID, approve(c.Now()))
		if err := s.AppendEvents(ctx, []approvals.Event{{At: c.Now(), Type: approvals.EventBlockedAtCheck}}); err != nil {
			t.Fatal(err)
		}
		after := auditOf(t, s, "")
		if len(after) != len(before)+3 {
			t.Fatalf("audit grew by %d events; want 3", len(after)-len(before))
		}
		checkSeqs(t, after)
	})
}
