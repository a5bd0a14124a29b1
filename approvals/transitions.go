package approvals

import (
	"slices"
	"strconv"
	"time"
)

// The state machine of a request. Every change of status or provisioning
// state goes through one of the methods below; each checks that the change
// is allowed from the current state and returns the audit event that
// records it. They change only the receiver, so they run inside a store
// Mutation.
//
//	            approve              provisioning
//	pending ───────────────▶ approved ──────────▶ in_progress ─▶ succeeded
//	   │  ▲                     ▲                    │  ▲
//	   │  │ reopen (admin)      │ auto-approve       ▼  │ retry
//	   ▼  │                  (by_entra)             failed
//	 denied  (sticky: only an admin reopens)

// Approve records a decision to approve and enqueues the provisioning job.
// Approving an approved request returns ErrUnchanged.
func (r *Request) Approve(by Actor, reason string, now time.Time, provisioningDeadline time.Duration) (Event, error) {
	if err := r.decide(StatusApproved, by, reason, now, StatusDenied, "request %s was denied; an admin must reopen it before it can be approved"); err != nil {
		return Event{}, err
	}
	if r.Source == SourceExternalID {
		// Entra creates the account when the person signs up again and the
		// submit extension answers continue: nothing to provision.
		r.Provisioning = Provisioning{State: ProvisioningByEntra}
		return r.event(now, EventApproved, by, map[string]string{"reason": reason, "method": string(ProvisioningByEntra)}), nil
	}
	r.Provisioning = Provisioning{
		State:         ProvisioningInProgress,
		Method:        r.ProvisioningMethod(),
		NextAttemptAt: now,
		Deadline:      now.Add(provisioningDeadline),
	}
	return r.event(now, EventApproved, by, map[string]string{"reason": reason, "method": string(r.Provisioning.Method)}), nil
}

// Deny records a decision to deny. The reason is required. Denying a denied
// request returns ErrUnchanged; an approved request cannot be denied.
func (r *Request) Deny(by Actor, reason string, now time.Time) (Event, error) {
	if reason == "" {
		return Event{}, Errorf(EInvalid, "a reason is required to deny a request")
	}
	if err := r.decide(StatusDenied, by, reason, now, StatusApproved, "request %s is already approved; remove the account in Entra ID instead of denying it"); err != nil {
		return Event{}, err
	}
	return r.event(now, EventDenied, by, map[string]string{"reason": reason}), nil
}

// decide records a reviewer's decision: the request takes status to and
// by's Decision. A bad reason is refused; deciding again what was decided
// returns ErrUnchanged, and a request in status final (the opposite
// decision) cannot be decided: EConflict with the message conflict, a
// format taking the request's id.
func (r *Request) decide(to Status, by Actor, reason string, now time.Time, final Status, conflict string) error {
	if err := CheckReason(reason); err != nil {
		return err
	}
	switch r.Status {
	case to:
		return ErrUnchanged
	case final:
		return Errorf(EConflict, conflict, r.ID)
	}
	r.Status = to
	r.Decision = &Decision{By: by.String(), ByID: by.ID, ActorKind: by.Kind, At: now, Reason: reason}
	return nil
}

// Reopen puts a denied request back in the queue. Only an admin may do it:
// a denial is otherwise final, and the person cannot ask again.
func (r *Request) Reopen(by Actor, reason string, now time.Time) (Event, error) {
	if err := CheckReason(reason); err != nil {
		return Event{}, err
	}
	if !by.Admin {
		return Event{}, Errorf(EForbidden, "only an admin can reopen a denied request")
	}
	switch r.Status {
	case StatusPending:
		return Event{}, ErrUnchanged
	case StatusApproved:
		return Event{}, Errorf(EConflict, "request %s is approved; only denied requests can be reopened", r.ID)
	}
	details := map[string]string{"reason": reason}
	if r.Decision != nil {
		details["previous_decision_by"] = r.Decision.By
		details["previous_reason"] = r.Decision.Reason
	}
	r.Status = StatusPending
	r.Decision = nil
	return r.event(now, EventReopened, by, details), nil
}

// decideAutomatically sets the decision of a new request taken by a policy
// rule. An auto-approved request is provisioned by Entra itself.
func (r *Request) decideAutomatically(s Status, rule string, now time.Time) Event {
	by := Actor{Kind: ActorPolicy, ID: rule}
	r.Status = s
	r.Decision = &Decision{By: by.String(), ByID: rule, ActorKind: ActorPolicy, At: now, Reason: "matched " + rule, Automatic: true}
	t := EventAutoDenied
	if s == StatusApproved {
		r.Provisioning = Provisioning{State: ProvisioningByEntra}
		t = EventAutoApproved
	}
	return r.event(now, t, by, map[string]string{"rule": rule})
}

// RetryProvisioning puts a failed provisioning job back in the queue with a
// fresh retry deadline.
func (r *Request) RetryProvisioning(by Actor, now time.Time, deadline time.Duration) (Event, error) {
	if r.Status != StatusApproved {
		return Event{}, Errorf(EConflict, "request %s is %s; only approved requests are provisioned", r.ID, r.Status)
	}
	switch r.Provisioning.State {
	case ProvisioningInProgress:
		return Event{}, ErrUnchanged
	case ProvisioningFailed:
	default:
		return Event{}, Errorf(EConflict, "provisioning of request %s is %s; only failed provisioning can be retried", r.ID, r.Provisioning.State)
	}
	r.Provisioning.State = ProvisioningInProgress
	r.Provisioning.NextAttemptAt = now
	r.Provisioning.Deadline = now.Add(deadline)
	r.Provisioning.Lease = nil
	return r.event(now, EventProvisioningRequeued, by, map[string]string{"previous_error": r.Provisioning.LastError}), nil
}

// checkProvisioning returns EConflict, for the provisioning transitions,
// when the job is no longer in progress (for example it was reset by an
// admin).
func (r *Request) checkProvisioning() error {
	if r.Status != StatusApproved || r.Provisioning.State != ProvisioningInProgress {
		return Errorf(EConflict, "provisioning of request %s is not in progress", r.ID)
	}
	return nil
}

// StartAttempt counts one more provisioning attempt.
func (r *Request) StartAttempt() error {
	if err := r.checkProvisioning(); err != nil {
		return err
	}
	r.Provisioning.Attempts++
	return nil
}

// CompleteStep records that a provisioning step is done, with the object
// id as soon as it is known, so that a restarted worker resumes after it.
func (r *Request) CompleteStep(step ProvisioningStep, p StepResult, now time.Time) (Event, error) {
	if err := r.checkProvisioning(); err != nil {
		return Event{}, err
	}
	pr := &r.Provisioning
	pr.Step = step
	if p.UserID != "" {
		pr.UserID = p.UserID
	}
	if p.Method != "" {
		pr.Method = p.Method
	}
	if p.RedeemURL != "" {
		pr.RedeemURL = p.RedeemURL
	}
	if p.Group != "" && !slices.Contains(pr.GroupsDone, p.Group) {
		pr.GroupsDone = append(pr.GroupsDone, p.Group)
	}
	d := map[string]string{"step": string(step)}
	for k, v := range map[string]string{"user_id": p.UserID, "group_id": p.Group, "note": p.Note} {
		if v != "" {
			d[k] = v
		}
	}
	return r.event(now, EventProvisioningStep, ProvisionerActor, d), nil
}

// StepResult is what a completed provisioning step learned.
type StepResult struct {
	UserID    string
	Method    ProvisioningMethod
	RedeemURL string
	Group     string // a group the user was added to
	Note      string // for the audit trail, e.g. "linked existing account"
}

// Failure is why a provisioning step failed.
type Failure struct {
	// Cause says what failed and what to do, for people.
	Cause string
	// GraphStatus, GraphCode and GraphRequestID are Graph's answer, when
	// it gave one.
	GraphStatus    int
	GraphCode      string
	GraphRequestID string
	// GroupID is the group the user was being added to, when that was the
	// step.
	GroupID string
}

func (p *Provisioning) setFailure(f Failure) {
	p.LastError, p.RequestID, p.GraphStatus, p.GraphCode, p.FailedGroupID = f.Cause, f.GraphRequestID, f.GraphStatus, f.GraphCode, f.GroupID
}

func (f Failure) details() map[string]string {
	d := map[string]string{"error": f.Cause, "graph_request_id": f.GraphRequestID, "graph_code": f.GraphCode, "group_id": f.GroupID}
	if f.GraphStatus != 0 {
		d["graph_status"] = strconv.Itoa(f.GraphStatus)
	}
	return d
}

// ScheduleRetry records a transient failure and when to try again, and
// releases the job's lease: it is claimable again at at.
func (r *Request) ScheduleRetry(at time.Time, f Failure, now time.Time) (Event, error) {
	if err := r.checkProvisioning(); err != nil {
		return Event{}, err
	}
	r.Provisioning.NextAttemptAt = at
	r.Provisioning.Lease = nil
	r.Provisioning.setFailure(f)
	d := f.details()
	d["next_attempt_at"] = at.UTC().Format(time.RFC3339)
	return r.event(now, EventProvisioningRetry, ProvisionerActor, d), nil
}

// FailProvisioning records a permanent failure and releases the job's
// lease; an admin may retry it.
func (r *Request) FailProvisioning(f Failure, now time.Time) (Event, error) {
	if err := r.checkProvisioning(); err != nil {
		return Event{}, err
	}
	r.Provisioning.State = ProvisioningFailed
	r.Provisioning.setFailure(f)
	r.Provisioning.NextAttemptAt = time.Time{}
	r.Provisioning.Lease = nil
	return r.event(now, EventProvisioningFailed, ProvisionerActor, f.details()), nil
}

// SucceedProvisioning records that the account exists with every attribute
// and group, and releases the job's lease.
func (r *Request) SucceedProvisioning(now time.Time) (Event, error) {
	if err := r.checkProvisioning(); err != nil {
		return Event{}, err
	}
	if r.Provisioning.UserID == "" {
		return Event{}, Errorf(EInternal, "provisioning of request %s cannot succeed without a user id", r.ID)
	}
	r.Provisioning.State = ProvisioningSucceeded
	r.Provisioning.Step = StepGroups
	r.Provisioning.setFailure(Failure{})
	r.Provisioning.NextAttemptAt = time.Time{}
	r.Provisioning.Lease = nil
	return r.event(now, EventProvisioningSucceeded, ProvisionerActor, map[string]string{"user_id": r.Provisioning.UserID}), nil
}

// ProvisioningMethod says how the account of r is created: MethodCreateUser
// for Google, Facebook and email one-time-passcode identities (in any of the
// spellings Entra and its documentation use), MethodInvitation otherwise,
// including when there is no identity.
func (r *Request) ProvisioningMethod() ProvisioningMethod {
	if r.Identity.CreatesUserDirectly() {
		return MethodCreateUser
	}
	return MethodInvitation
}

func (r *Request) event(now time.Time, t EventType, by Actor, details map[string]string) Event {
	for k, v := range details {
		if v == "" {
			delete(details, k)
		}
	}
	return Event{At: now, Type: t, RequestID: r.ID, Actor: by, Details: details}
}
