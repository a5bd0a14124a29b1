package approvals_test

import (
	"context"
	"fmt"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

func Example() {
	clock := approvals.ClockFunc(func() time.Time { return time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC) })
	svc := &approvals.Service{
		Store:  memory.New(clock),
		Clock:  clock,
		Policy: approvals.Policy{AutoApproveDomains: []string{"contoso.com"}},
	}
	ctx := context.Background()

	// Entra's "request approval" connector call for a Facebook user.
	r, created, _ := svc.RequestApproval(ctx, approvals.SignUp{
		Email:    "johnsmith@outlook.com",
		Identity: &approvals.Identity{Issuer: "facebook", IssuerAssignedID: "0123456789"},
		Claims:   map[string]any{"city": "Redmond"},
	})
	fmt.Println(created, r.Status, r.Identity.Issuer)

	// Entra retries after its 20 s timeout: the same request comes back.
	again, created, _ := svc.RequestApproval(ctx, approvals.SignUp{
		Email:    "JohnSmith@outlook.com",
		Identity: &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "0123456789"},
	})
	fmt.Println(created, again.ID == r.ID)

	// A reviewer approves: provisioning is enqueued.
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada Reviewer"}
	r, _ = svc.Approve(ctx, r.ID, reviewer, "known supplier")
	fmt.Println(r.Status, r.Provisioning.State, r.Provisioning.Method, r.Decision.By)

	// A sign-up from an auto-approved domain is let through to Entra.
	auto, _, _ := svc.RequestApproval(ctx, approvals.SignUp{Email: "ann@contoso.com"})
	fmt.Println(auto.Status, auto.Provisioning.State, auto.Decision.Automatic)

	// Output:
	// true pending facebook.com
	// false true
	// approved in_progress create_user Ada Reviewer
	// approved by_entra true
}
