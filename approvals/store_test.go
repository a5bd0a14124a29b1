package approvals_test

import (
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

func TestPageLimit(t *testing.T) {
	for limit, want := range map[int]int{
		-1: approvals.DefaultPageSize, 0: approvals.DefaultPageSize, 1: 1, 77: 77,
		approvals.MaxPageSize: approvals.MaxPageSize, approvals.MaxPageSize + 1: approvals.MaxPageSize,
	} {
		if got := approvals.PageLimit(limit); got != want {
			t.Errorf("PageLimit(%d) = %d; want %d", limit, got, want)
		}
	}
}

// TestCheckMutation: a mutation may change anything but a request's
// identity: its id, its person and its creation time.
func TestCheckMutation(t *testing.T) {
	at := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	cur := &approvals.Request{ID: "r1", Email: "ann@example.com", Status: approvals.StatusPending, CreatedAt: at}
	tests := []struct {
		name   string
		change func(r *approvals.Request)
		ok     bool
	}{
		{"Decided", func(r *approvals.Request) { r.Status = approvals.StatusApproved }, true},
		{"EmailCase", func(r *approvals.Request) { r.Email = "Ann@Example.com" }, true},
		{"ID", func(r *approvals.Request) { r.ID = "r2" }, false},
		{"Person", func(r *approvals.Request) { r.Email = "bob@example.com" }, false},
		{"CreatedAt", func(r *approvals.Request) { r.CreatedAt = at.Add(time.Second) }, false},
	}
	for _, tt := range tests {
		next := cur.Clone()
		tt.change(next)
		err := approvals.CheckMutation(cur, next)
		if ok := err == nil; ok != tt.ok || (!ok && approvals.Code(err) != approvals.EInternal) {
			t.Errorf("%s: CheckMutation = %v; want ok %v (else EInternal)", tt.name, err, tt.ok)
		}
	}
}
