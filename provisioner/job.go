package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"

	"github.com/approvals-dev/approvals/approvals"
)

// job is one attempt at a provisioning job. Its steps, each recorded in
// the store when done:
//
//	looked_up   the directory has no account for the person (else: created, linked)
//	created     the account exists and its object id is recorded (POST /invitations, or linked)
//	attributes  the attributes are written (POST /users writes them at creation; else PATCH)
//	groups      one record per group added
//
// then SucceedProvisioning. A resumed job skips what its record says is
// done; the look-up before any create makes a lost answer harmless.
type job struct {
	p      *Provisioner
	r      *approvals.Request
	lease  *lease // every write checks it (a worker that lost the job writes nothing)
	log    *slog.Logger
	runCtx context.Context // ends when Run is asked to stop
	ctx    context.Context // for Graph calls and store writes; outlives runCtx by the grace
}

func (j *job) run() error {
	// j.r is replaced by every checkpoint: read it afresh at each step.
	method := j.r.Provisioning.Method
	if method == "" {
		method = j.r.ProvisioningMethod()
	}
	if j.r.Provisioning.UserID == "" {
		if err := j.ensureAccount(method); err != nil {
			return err
		}
	}
	if step := j.r.Provisioning.Step; step != approvals.StepAttributes && step != approvals.StepGroups {
		if err := j.stopping(); err != nil {
			return err
		}
		if err := j.writeAttributes(); err != nil {
			return err
		}
	}
	// The configured groups, then those this request asked for. A
	// line-of-business invitation names its own groups and gets only
	// those, as when the invite API ran the steps itself.
	groups := slices.Clone(j.p.cfg.GroupIDs)
	if j.r.Source == approvals.SourceInvitation {
		groups = nil
	}
	for _, g := range j.r.Provisioning.GroupIDs {
		if !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	for _, g := range groups {
		if slices.Contains(j.r.Provisioning.GroupsDone, g) {
			continue
		}
		if err := j.stopping(); err != nil {
			return err
		}
		if err := j.p.dir.AddToGroup(j.ctx, g, j.r.Provisioning.UserID); err != nil {
			var ge *GraphError
			if errors.As(err, &ge) {
				ge.GroupID = g
			}
			return err
		}
		if err := j.checkpoint(approvals.StepGroups, approvals.StepResult{Group: g, Note: "added to group"}); err != nil {
			return err
		}
	}
	return nil
}

// stopping reports errStopped once Run has been asked to stop, so that no
// new step starts.
func (j *job) stopping() error {
	if j.runCtx.Err() != nil {
		return errStopped
	}
	return nil
}

// ensureAccount finds or creates the person's account and records its
// object id.
func (j *job) ensureAccount(method approvals.ProvisioningMethod) error {
	if err := j.stopping(); err != nil {
		return err
	}
	linked, err := j.link(method)
	if err != nil || linked {
		return err
	}
	if j.r.Provisioning.Step != approvals.StepLookedUp {
		if err := j.checkpoint(approvals.StepLookedUp, approvals.StepResult{Method: method, Note: "no existing account"}); err != nil {
			return err
		}
	}
	if err := j.stopping(); err != nil {
		return err
	}
	switch method {
	case approvals.MethodCreateUser:
		return j.createGuest()
	default:
		return j.invite()
	}
}

// link looks the person up by identity, mail and otherMails, and records
// the account found, if any.
func (j *job) link(method approvals.ProvisioningMethod) (bool, error) {
	found, err := j.p.dir.FindPerson(j.ctx, j.r.Email, j.r.Identity)
	if err != nil || len(found) == 0 {
		return false, err
	}
	u := found[0]
	note := "linked existing account " + u.UserPrincipalName
	if len(found) > 1 {
		note += fmt.Sprintf(" (first of %d matches)", len(found))
	}
	j.log.Info("provisioning: person already in the directory; linking", "user_id", u.ID, "matches", len(found))
	return true, j.checkpoint(approvals.StepCreated, approvals.StepResult{UserID: u.ID, Method: method, Note: note})
}

func (j *job) createGuest() error {
	g, err := newGuest(j.r, j.p.cfg.TenantDomain)
	if err != nil {
		return err
	}
	u, err := j.p.dir.CreateGuest(j.ctx, g)
	var ge *GraphError
	if errors.As(err, &ge) && classify(ge) == conflict {
		// Someone holds this UPN, mail or identity: if it is this person
		// (our own earlier create whose answer was lost, or an account
		// made meanwhile), link it.
		linked, lerr := j.link(approvals.MethodCreateUser)
		if lerr != nil || linked {
			return lerr
		}
		ge.Message += " No account with this person's identity or mail is visible yet."
		return ge
	}
	if err != nil {
		return err
	}
	return j.checkpoint(approvals.StepAttributes, approvals.StepResult{
		UserID: u.ID, Method: approvals.MethodCreateUser, Note: "created guest " + g.UserPrincipalName + " with its attributes",
	})
}

func (j *job) invite() error {
	// A line-of-business invitation says what it asked of Graph; a
	// sign-up gets the configured invitation.
	inv := Invitation{
		Email:       j.r.Email,
		DisplayName: displayName(j.r, approvals.GraphUserProperties(j.r.Claims)),
		RedirectURL: j.p.cfg.InviteRedirectURL,
		SendMessage: j.p.cfg.SendInvitationMessage,
	}
	if o := j.r.Invitation; o != nil {
		inv.RedirectURL, inv.SendMessage, inv.Message = o.RedirectURL, o.SendMessage, o.Message
	}
	invited, err := j.p.dir.Invite(j.ctx, inv)
	if err != nil {
		return err
	}
	return j.checkpoint(approvals.StepCreated, approvals.StepResult{
		UserID: invited.UserID, Method: approvals.MethodInvitation, RedeemURL: invited.RedeemURL, Note: "invited",
	})
}

func (j *job) writeAttributes() error {
	props := patchProperties(j.r)
	note := "no attributes to write"
	if len(props) > 0 {
		if err := j.p.dir.UpdateUser(j.ctx, j.r.Provisioning.UserID, props); err != nil {
			return err
		}
		note = fmt.Sprintf("wrote %d attributes", len(props))
	}
	return j.checkpoint(approvals.StepAttributes, approvals.StepResult{Note: note})
}

// checkpoint records a completed step in the store and keeps the stored
// request as the job's view.
func (j *job) checkpoint(step approvals.ProvisioningStep, res approvals.StepResult) error {
	r, err := j.p.cfg.Store.Update(j.ctx, j.r.ID, j.lease.Renewing(func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.CompleteStep(step, res, j.p.cfg.Clock.Now())
		return []approvals.Event{ev}, err
	}))
	if err != nil {
		if approvals.Code(err) == approvals.EConflict {
			return errGone
		}
		return &storeError{fmt.Errorf("record step %s of request %s: %w", step, j.r.ID, err)}
	}
	j.r = r
	j.log.Debug("provisioning step done", "step", step, "user_id", r.Provisioning.UserID, "group_id", res.Group, "note", res.Note)
	return nil
}
