package main

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/web/api"
)

// graphInviter makes the Graph calls of the line-of-business invite flow
// (api.Inviter) with the provisioner's Directory. Unlike the provisioning
// queue, someone waits for the answer, so each step retries transient
// failures (throttling, Graph unavailable, a just-created user not yet
// replicated) only until the caller's deadline.
type graphInviter struct {
	dir *provisioner.Directory
	// base is the first backoff; it doubles up to max.
	base, max time.Duration
}

func newGraphInviter(dir *provisioner.Directory) *graphInviter {
	return &graphInviter{dir: dir, base: 500 * time.Millisecond, max: 8 * time.Second}
}

// Lookup implements api.Inviter.
func (g *graphInviter) Lookup(ctx context.Context, email string) ([]api.DirectoryUser, error) {
	var users []provisioner.DirectoryUser
	err := g.retry(ctx, func() (err error) {
		users, err = g.dir.FindPerson(ctx, email, nil)
		return err
	})
	if err != nil {
		return nil, inviteError(api.InviteStepLookup, "", err)
	}
	out := make([]api.DirectoryUser, 0, len(users))
	for _, u := range users {
		out = append(out, api.DirectoryUser{ID: u.ID, DisplayName: u.DisplayName, Mail: u.Mail, UserPrincipalName: u.UserPrincipalName, UserType: u.UserType})
	}
	return out, nil
}

// Invite implements api.Inviter.
func (g *graphInviter) Invite(ctx context.Context, in api.InviteInput) (api.InviteResult, error) {
	var res api.InviteResult
	res.UserID = in.ExistingUserID
	if res.UserID == "" {
		var inv provisioner.Invited
		// Re-inviting an address Graph already invited returns the same
		// user, so a retry after an ambiguous failure makes no duplicate.
		err := g.retry(ctx, func() (err error) {
			inv, err = g.dir.Invite(ctx, provisioner.Invitation{
				Email: in.Email, DisplayName: in.DisplayName, RedirectURL: in.RedirectURL,
				SendMessage: in.SendInvitationMessage, Message: in.Message,
			})
			return err
		})
		if err != nil {
			return res, inviteError(api.InviteStepInvite, "", err)
		}
		res.UserID, res.RedeemURL = inv.UserID, inv.RedeemURL
	}
	if len(in.Attributes) > 0 {
		if err := g.retry(ctx, func() error { return g.dir.UpdateUser(ctx, res.UserID, in.Attributes) }); err != nil {
			return res, inviteError(api.InviteStepAttributes, "", err)
		}
	}
	res.AttributesWritten = true
	for _, gid := range in.GroupIDs {
		if err := g.retry(ctx, func() error { return g.dir.AddToGroup(ctx, gid, res.UserID) }); err != nil {
			return res, inviteError(api.InviteStepGroups, gid, err)
		}
		res.GroupsAdded = append(res.GroupsAdded, gid)
	}
	return res, nil
}

// retry calls f until it succeeds, fails permanently, or ctx ends, with
// exponential backoff and jitter, honouring Graph's Retry-After.
func (g *graphInviter) retry(ctx context.Context, f func() error) error {
	delay := g.base
	for {
		err := f()
		if err == nil || !provisioner.Transient(err) {
			return err
		}
		wait := delay/2 + rand.N(delay/2+1)
		var ge *provisioner.GraphError
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			wait = ge.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return err
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		delay = min(delay*2, g.max)
	}
}

// inviteError reports a failed step with Graph's code, message and
// request-id.
func inviteError(step api.InviteStep, group string, err error) error {
	ie := &api.InviteError{Step: step, GroupID: group, Err: err, Transient: provisioner.Transient(err)}
	var ge *provisioner.GraphError
	if errors.As(err, &ge) {
		ie.Status, ie.Code, ie.Message, ie.RequestID, ie.RetryAfter = ge.Status, ge.Code, ge.Message, ge.RequestID, ge.RetryAfter
	} else {
		ie.Message = err.Error()
	}
	return ie
}
