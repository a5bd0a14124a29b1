package web

import (
	"context"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/web/api"
)

// Inviter is the line-of-business invite flow the Invite page runs: the
// same as the admin API's POST /api/v1/invitations. *api.InviteFlow
// implements it; tests may use a fake.
type Inviter interface {
	// Check validates an invitation and fills in its defaults before any
	// directory call; its errors have code EInvalid.
	Check(in *api.InviteInput) error
	// Lookup returns the directory users whose mail or other mails is
	// email; none is not an error.
	Lookup(ctx context.Context, email string) ([]api.DirectoryUser, error)
	// Invite invites the person (or uses in.ExistingUserID), writes the
	// attributes, adds the groups and records the person as a request
	// decided by by. See api.InviteFlow.Invite for what a partial failure
	// returns.
	Invite(ctx context.Context, in api.InviteInput, by approvals.Actor) (api.InviteOutcome, error)
}

var _ Inviter = (*api.InviteFlow)(nil)
