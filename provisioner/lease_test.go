package provisioner_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// Two provisioners on one store, as two replicas would be, run every job
// once: no person is invited or created twice, and no group add repeats.
func TestTwoProvisionersShareTheQueue(t *testing.T) {
	a := newHarness(t, withConfig(func(c *provisioner.Config) {
		c.Workers = 3
		c.PollInterval = 20 * time.Millisecond // the one Wake does not reach looks often
	}))
	a.srv.Fault("*", graphtest.FaultSpec{Latency: 5 * time.Millisecond})
	a.start()
	b := *a // the same store and fake Graph, another Provisioner
	b.start()
	var ids []string
	for i := range 30 {
		p := person{email: fmt.Sprintf("pair%02d@example.com", i)}
		if i%2 == 0 {
			p.identity = &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprint("pair-", i)}
		}
		ids = append(ids, a.approve(p).ID)
		if i%3 == 0 {
			b.prov.Wake()
		}
	}
	for _, id := range ids {
		r := a.wait(id, approvals.ProvisioningSucceeded, 30*time.Second)
		a.checkProvisioned(r)
		if r.Provisioning.Attempts != 1 || r.Provisioning.Lease != nil {
			t.Errorf("%s: %d attempts, lease %+v; want 1 attempt and the lease released", r.Email, r.Provisioning.Attempts, r.Provisioning.Lease)
		}
	}
	if n := len(a.srv.CallsTo("POST /invitations")) + len(a.srv.CallsTo("POST /users")); n != len(ids) {
		t.Errorf("%d creations for %d jobs", n, len(ids))
	}
	ran := a.counter("approvals_provisioning_attempts_total") + b.counter("approvals_provisioning_attempts_total")
	if ran != float64(len(ids)) {
		t.Errorf("%v attempts started by the two provisioners for %d jobs", ran, len(ids))
	}
	if a.counter("approvals_provisioning_attempts_total") == 0 || b.counter("approvals_provisioning_attempts_total") == 0 {
		t.Logf("one provisioner ran every job (a: %v, b: %v)", a.counter("approvals_provisioning_attempts_total"), b.counter("approvals_provisioning_attempts_total"))
	}
}

// A job whose lease a dead process holds waits for the lease to expire,
// then is claimed and finished.
func TestExpiredLeaseIsTakenOver(t *testing.T) {
	h := newHarness(t, withConfig(func(c *provisioner.Config) { c.Lease = 300 * time.Millisecond }))
	r := h.approve(person{email: "orphan@example.com"})
	dead, err := h.store.ClaimJobs(context.Background(), time.Now(), 700*time.Millisecond, 10)
	if err != nil || len(dead) != 1 {
		t.Fatalf("claim by the dead process = %v, %v", len(dead), err)
	}
	start := time.Now()
	h.start()
	r = h.wait(r.ID, approvals.ProvisioningSucceeded, 10*time.Second)
	if took := time.Since(start); took < 500*time.Millisecond {
		t.Errorf("the job ran %s after the start, while the dead process's lease held", took)
	}
	h.checkProvisioned(r)
}

// A worker whose lease is lost (here: stolen by a claim after its
// expiry) stops, and its writes never clobber the new owner's record.
func TestLostLeaseStopsTheWorker(t *testing.T) {
	h := newHarness(t, withConfig(func(c *provisioner.Config) { c.Lease = 300 * time.Millisecond }))
	h.srv.Fault("PATCH /users/{id}", graphtest.FaultSpec{Count: 1, Latency: 2 * time.Second})
	h.start()
	r := h.approve(person{email: "stolen@example.com", claims: map[string]any{"city": "Bergen"}})
	h.waitArrival("PATCH /users/{id}", 1)
	// The lease passes to another claim, as when another replica claims
	// the job after this one stalled past the lease's expiry.
	thief := &approvals.Lease{Owner: "another-replica", Until: time.Now().Add(time.Hour)}
	stolen, err := h.store.Update(context.Background(), r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		r.Provisioning.Lease = thief
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(400 * time.Millisecond) // a heartbeat sees the loss; the PATCH is cut off
	got, err := h.store.Get(context.Background(), r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !got.Provisioning.Lease.HeldBy(thief.Owner) || got.Version != stolen.Version || got.Provisioning.Step != stolen.Provisioning.Step {
		t.Errorf("after the theft the stored job is %+v (version %d); want the thief's, version %d", got.Provisioning, got.Version, stolen.Version)
	}
	if logs := h.logs.String(); !strings.Contains(logs, "its lease was lost") || !strings.Contains(logs, "provisioning job abandoned") {
		t.Errorf("no log lines about the lost lease:\n%s", logs)
	}
	if n := len(h.srv.CallsTo("PATCH /users/{id}")); n != 1 {
		t.Errorf("%d PATCH calls; want the one cut off", n)
	}
}
