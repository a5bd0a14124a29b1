package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/go-playground/validator/v10"

	"github.com/approvals-dev/approvals/approvals"
)

// Inviter is the directory side of the line-of-business invite flow. The
// Microsoft Graph implementation lives in package provisioner; it retries
// throttled and eventually-consistent calls within the context's deadline,
// as the provisioning worker does.
type Inviter interface {
	// Lookup returns the directory users whose mail or otherMails is email
	// (case-insensitive); none is not an error.
	Lookup(ctx context.Context, email string) ([]DirectoryUser, error)
	// Invite runs the steps of an invitation in order: POST /invitations
	// (skipped when in.ExistingUserID is set), PATCH /users/{id} with
	// in.Attributes (skipped when empty), then POST
	// /groups/{id}/members/$ref for each of in.GroupIDs ("already a
	// member" counts as done). It stops at the first failed step and
	// returns what was done so far together with an *InviteError naming
	// the step, so the caller can report partial success.
	Invite(ctx context.Context, in InviteInput) (InviteResult, error)
}

// DirectoryUser is a user Lookup found.
type DirectoryUser struct {
	ID                string `json:"id"`
	DisplayName       string `json:"display_name"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"user_principal_name"`
	// UserType is "Guest" or "Member".
	UserType string `json:"user_type"`
}

// InviteInput is one invitation.
type InviteInput struct {
	Email       string
	DisplayName string
	// RedirectURL is where the guest lands after redeeming (an absolute
	// https URL).
	RedirectURL string
	// SendInvitationMessage lets Microsoft send its invitation email, with
	// Message as the customized body when not empty. When false the
	// caller sends its own email with the redeem URL.
	SendInvitationMessage bool
	Message               string
	// Attributes are Graph user properties and extension_<appId>_<Name>
	// custom attributes; values are strings, numbers (float64) or
	// booleans.
	Attributes map[string]any
	GroupIDs   []string
	// ExistingUserID, when set, skips the invitation: the attributes and
	// groups are written to this existing user.
	ExistingUserID string
}

// InviteResult is what an invitation achieved, also when it failed
// halfway.
type InviteResult struct {
	// UserID is the invited (or existing) user's object id: the
	// invitation's invitedUser.id, not the invitation id. Empty when the
	// invitation itself failed.
	UserID string
	// RedeemURL is the invitation's inviteRedeemUrl; empty for an
	// existing user.
	RedeemURL string
	// AttributesWritten reports that the PATCH succeeded (or that there
	// was nothing to write).
	AttributesWritten bool
	// GroupsAdded lists the groups the user is now a member of.
	GroupsAdded []string
}

// InviteStep names a step of the invite flow.
type InviteStep string

// The steps of the invite flow, in order.
const (
	InviteStepLookup     InviteStep = "lookup"
	InviteStepInvite     InviteStep = "invite"
	InviteStepAttributes InviteStep = "attributes"
	InviteStepGroups     InviteStep = "groups"
)

// InviteError is a step of the invite flow that Microsoft Graph refused or
// did not answer in time.
type InviteError struct {
	Step InviteStep
	// GroupID is the group that could not be added, for InviteStepGroups.
	GroupID string
	// Status is Graph's HTTP status; 0 when Graph gave no answer.
	Status int
	// Code, Message and RequestID are Graph's error.code, error.message
	// and innerError.request-id.
	Code      string
	Message   string
	RequestID string
	// Transient is true when the step failed on throttling, Graph being
	// unavailable or eventual consistency, and retries ran out: trying
	// again later may succeed.
	Transient bool
	// RetryAfter is Graph's Retry-After, when it sent one.
	RetryAfter time.Duration
	// Err is the underlying error, if any.
	Err error
}

// Error implements error.
func (e *InviteError) Error() string {
	var b strings.Builder
	b.WriteString(string(e.Step))
	if e.GroupID != "" {
		b.WriteString(" " + e.GroupID)
	}
	if e.Status != 0 {
		fmt.Fprintf(&b, ": Graph %d", e.Status)
	}
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.RequestID != "" {
		b.WriteString(" (request-id " + e.RequestID + ")")
	}
	if e.Err != nil && e.Message == "" {
		b.WriteString(": " + e.Err.Error())
	}
	return b.String()
}

// Unwrap returns the underlying error.
func (e *InviteError) Unwrap() error { return e.Err }

// InviteFlowConfig configures an InviteFlow.
type InviteFlowConfig struct {
	// Inviter makes the Graph calls; required.
	Inviter Inviter
	// Store records the invited people; required.
	Store approvals.Store
	// Clock defaults to approvals.SystemClock.
	Clock approvals.Clock
	// InviteRedirectURL is used when an invitation has no RedirectURL; it
	// defaults to DefaultInviteRedirectURL.
	InviteRedirectURL string
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// InviteFlow is the line-of-business invite flow without HTTP: it checks
// an invitation, makes it through an Inviter, and records the person as an
// approved request with the audit events of every step. POST
// /api/v1/invitations runs it, and the reviewer UI's Invite page can run
// the same one. It is safe for concurrent use.
type InviteFlow struct {
	inviter     Inviter
	store       approvals.Store
	clock       approvals.Clock
	redirectURL string
	log         *slog.Logger
	validate    *validator.Validate
}

// NewInviteFlow returns the flow for cfg.
func NewInviteFlow(cfg InviteFlowConfig) (*InviteFlow, error) {
	if cfg.Inviter == nil || cfg.Store == nil {
		return nil, errors.New("api: an invite flow needs an Inviter and a Store")
	}
	if cfg.Clock == nil {
		cfg.Clock = approvals.SystemClock
	}
	if cfg.InviteRedirectURL == "" {
		cfg.InviteRedirectURL = DefaultInviteRedirectURL
	}
	if !absoluteURL(cfg.InviteRedirectURL, "https") {
		return nil, errors.New("api: the invite redirect URL (APPROVALS_INVITE_REDIRECT_URL) must be an absolute https URL")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	v, err := newValidator()
	if err != nil {
		return nil, err
	}
	return &InviteFlow{inviter: cfg.Inviter, store: cfg.Store, clock: cfg.Clock, redirectURL: cfg.InviteRedirectURL, log: cfg.Logger, validate: v}, nil
}

// InviteOutcome is what an invitation achieved, also when a step failed.
type InviteOutcome struct {
	InviteResult
	// RequestID is the request recording the person; empty when nothing
	// was recorded.
	RequestID string
	// ExistingUser is true when an existing directory user was used
	// instead of inviting.
	ExistingUser bool
	// RecordedBefore is true when the person had a request already (only
	// with ExistingUserID): the events were added to it and its state left
	// alone, so a failed step is finished by running the flow again rather
	// than by retry-provisioning.
	RecordedBefore bool
}

// Lookup returns the directory users whose mail or otherMails is email.
func (f *InviteFlow) Lookup(ctx context.Context, email string) ([]DirectoryUser, error) {
	return f.inviter.Lookup(ctx, strings.TrimSpace(email))
}

// Check validates in and fills in its defaults (the redirect URL, lower-case
// ids), so that a bad invitation is refused before any Graph call. Errors
// have code EInvalid and name the field as the API's JSON does.
func (f *InviteFlow) Check(in *InviteInput) error {
	in.Email = strings.TrimSpace(in.Email)
	in.DisplayName = strings.TrimSpace(in.DisplayName)
	in.ExistingUserID = strings.ToLower(strings.TrimSpace(in.ExistingUserID))
	if in.RedirectURL == "" {
		in.RedirectURL = f.redirectURL
	}
	groups := make([]string, len(in.GroupIDs))
	for i, g := range in.GroupIDs {
		groups[i] = strings.ToLower(strings.TrimSpace(g))
	}
	in.GroupIDs = groups
	b := inviteBody{
		Email: in.Email, DisplayName: in.DisplayName, RedirectURL: in.RedirectURL, Message: in.Message,
		GroupIDs: in.GroupIDs, Attributes: in.Attributes, UseExistingID: in.ExistingUserID,
	}
	if err := f.validate.Struct(&b); err != nil {
		return validationError(err)
	}
	if err := approvals.ValidateEmail(in.Email); err != nil {
		return err
	}
	for _, k := range slices.Sorted(maps.Keys(in.Attributes)) {
		if !attributeValueOK(in.Attributes[k]) {
			return invalidf("attributes.%s must be a string, number or boolean", k)
		}
	}
	if in.Message != "" && !in.SendInvitationMessage {
		return invalidf("message is the text of Microsoft's invitation email: set send_invitation_message to true, or leave message out and send your own email with the redeem_url")
	}
	if in.ExistingUserID != "" && in.Message != "" {
		return invalidf("message cannot be used with use_existing_id: an existing user is not invited")
	}
	return nil
}

func invalidf(format string, args ...any) error {
	return approvals.Errorf(approvals.EInvalid, format, args...)
}

func attributeValueOK(v any) bool {
	switch v.(type) {
	case string, bool, float64:
		return true
	}
	return false
}

// Invite checks in, invites the person (or, with in.ExistingUserID, uses
// that directory user, which must be one Lookup finds for the email),
// writes the attributes, adds the groups, and records the person as an
// approved request provisioned by invitation, decided by by.
//
// Errors: code EInvalid for a bad invitation; EConflict when the person
// already has a request and no ExistingUserID is given; when Graph refuses
// or does not answer, the Inviter's error (an *InviteError when Graph
// answered). A step that fails after the invitation returns the outcome so
// far, with RequestID set, together with the error: the request's
// provisioning is then failed at the step reached, and retry-provisioning
// finishes it. An outcome with a UserID but no RequestID means that
// recording failed.
func (f *InviteFlow) Invite(ctx context.Context, in InviteInput, by approvals.Actor) (InviteOutcome, error) {
	if err := f.Check(&in); err != nil {
		return InviteOutcome{}, err
	}
	out := InviteOutcome{ExistingUser: in.ExistingUserID != ""}
	if out.ExistingUser {
		matches, err := f.inviter.Lookup(ctx, in.Email)
		if err != nil {
			return out, err
		}
		if !slices.ContainsFunc(matches, func(u DirectoryUser) bool { return strings.EqualFold(u.ID, in.ExistingUserID) }) {
			return out, invalidf("use_existing_id %s is not one of the directory users with email %s; look the person up to see them", in.ExistingUserID, in.Email)
		}
	}
	recorded, err := f.store.FindByPerson(ctx, approvals.PersonKey(in.Email, nil))
	switch {
	case err != nil && approvals.Code(err) != approvals.ENotFound:
		return out, err
	case err == nil && !out.ExistingUser:
		return out, approvals.Errorf(approvals.EConflict,
			"%s already has request %s (%s, provisioning %s); decide or retry it under %s/requests/%s instead of inviting again",
			in.Email, recorded.ID, recorded.Status, recorded.Provisioning.State, Prefix, recorded.ID)
	case err != nil:
		recorded = nil
	}
	out.RecordedBefore = recorded != nil

	res, ierr := f.inviter.Invite(ctx, in)
	if out.ExistingUser {
		res.UserID, res.RedeemURL = in.ExistingUserID, ""
	}
	out.InviteResult = res
	now := f.clock.Now().UTC()
	if res.UserID == "" {
		// The invitation failed, or its outcome is unknown: there is no
		// user to record.
		if ierr == nil {
			ierr = errors.New("the invitation returned no user id")
		}
		if err := f.store.AppendEvents(context.WithoutCancel(ctx), []approvals.Event{{At: now, Type: approvals.EventInvitationFailed, Actor: by,
			Details: map[string]string{"email": in.Email, "error": ierr.Error()}}}); err != nil {
			f.log.Error("api: recording a failed invitation", "email", in.Email, "error", err)
		}
		return out, ierr
	}
	out.RequestID, err = f.record(ctx, in, res, ierr, recorded, by, now)
	if err != nil {
		out.RequestID = ""
		return out, fmt.Errorf("user %s was invited but recording the invitation failed: %w", res.UserID, err)
	}
	return out, ierr
}

// record stores the invited person as an approved request provisioned by
// invitation, with the audit events of each step, and returns its id. A
// request already recorded for the person (only with ExistingUserID) gets
// the events and is otherwise left alone. A step that failed after the
// invitation leaves a new request's provisioning failed, at the step
// reached, so that retry-provisioning can finish it.
func (f *InviteFlow) record(ctx context.Context, in InviteInput, res InviteResult, ierr error, recorded *approvals.Request, by approvals.Actor, now time.Time) (string, error) {
	// The directory has changed: record it even if the caller went away.
	ctx = context.WithoutCancel(ctx)
	id := approvals.NewID(now)
	if recorded != nil {
		id = recorded.ID
	}
	ev := func(t approvals.EventType, details map[string]string) approvals.Event {
		for k, v := range details {
			if v == "" {
				delete(details, k)
			}
		}
		return approvals.Event{At: now, Type: t, RequestID: id, Actor: by, Details: details}
	}
	var events []approvals.Event
	if in.ExistingUserID != "" {
		events = append(events, ev(approvals.EventInvitationLinked, map[string]string{"user_id": res.UserID, "email": in.Email}))
	} else {
		events = append(events, ev(approvals.EventInvitationCreated, map[string]string{
			"user_id": res.UserID, "email": in.Email, "redirect_url": in.RedirectURL,
			"send_invitation_message": strconv.FormatBool(in.SendInvitationMessage),
			"group_ids":               strings.Join(in.GroupIDs, ","),
		}))
	}
	step := approvals.StepCreated
	if res.AttributesWritten {
		step = approvals.StepAttributes
		if len(in.Attributes) > 0 {
			events = append(events, ev(approvals.EventProvisioningStep, map[string]string{"step": string(approvals.StepAttributes), "user_id": res.UserID}))
		}
	}
	for _, g := range res.GroupsAdded {
		events = append(events, ev(approvals.EventProvisioningStep, map[string]string{"step": string(approvals.StepGroups), "user_id": res.UserID, "group_id": g}))
	}
	p := approvals.Provisioning{
		State: approvals.ProvisioningSucceeded, Method: approvals.MethodInvitation, UserID: res.UserID,
		Attempts: 1, RedeemURL: res.RedeemURL, Step: approvals.StepGroups, GroupsDone: res.GroupsAdded,
		GroupIDs: in.GroupIDs, // a retry of a failed invitation finishes these
	}
	if ierr != nil {
		var ie *InviteError
		graphRequestID := ""
		if errors.As(ierr, &ie) {
			graphRequestID = ie.RequestID
		}
		p.State, p.Step, p.LastError, p.RequestID = approvals.ProvisioningFailed, step, ierr.Error(), graphRequestID
		events = append(events, ev(approvals.EventProvisioningFailed, map[string]string{"error": ierr.Error(), "graph_request_id": graphRequestID}))
	} else {
		events = append(events, ev(approvals.EventProvisioningSucceeded, map[string]string{"user_id": res.UserID}))
	}
	if recorded != nil {
		return id, f.store.AppendEvents(ctx, events)
	}
	r := &approvals.Request{
		ID: id, Source: approvals.SourceInvitation, Email: in.Email, DisplayName: in.DisplayName,
		Claims: in.Attributes, Status: approvals.StatusApproved, CreatedAt: now,
		Decision: &approvals.Decision{
			By: by.String(), ByID: by.ID, ActorKind: by.Kind, At: now,
			Reason: "invited through the line-of-business invite flow",
		},
		Provisioning: p,
	}
	stored, created, err := f.store.Create(ctx, r, events)
	if err != nil {
		return "", err
	}
	if !created {
		// A concurrent call recorded this person first; keep the trail on
		// that request.
		for i := range events {
			events[i].RequestID = stored.ID
		}
		return stored.ID, f.store.AppendEvents(ctx, events)
	}
	return stored.ID, nil
}
