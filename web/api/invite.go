package api

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

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

// inviteBody is the body of POST /invitations. The validate tags are the
// rules; messages for them are in validationMessage.
type inviteBody struct {
	Email                 string         `json:"email" validate:"required,max=254,excludesall=+#!$%&*,email"`
	DisplayName           string         `json:"display_name" validate:"max=256"`
	RedirectURL           string         `json:"redirect_url" validate:"omitempty,max=2048,https_url"`
	SendInvitationMessage *bool          `json:"send_invitation_message"`
	Message               string         `json:"message" validate:"max=4000"`
	GroupIDs              []string       `json:"group_ids" validate:"max=100,unique,dive,uuid"`
	Attributes            map[string]any `json:"attributes" validate:"max=100,dive,keys,graph_attribute,endkeys"`
	UseExistingID         string         `json:"use_existing_id" validate:"omitempty,uuid"`
}

type existingAnswer struct {
	Existing []DirectoryUser `json:"existing"`
}

type inviteAnswer struct {
	UserID       string `json:"user_id"`
	RedeemURL    string `json:"redeem_url,omitempty"`
	RequestID    string `json:"request_id"`
	ExistingUser bool   `json:"existing_user,omitempty"`
}

// incompleteAnswer is a 502 with what succeeded beside the error.
type incompleteAnswer struct {
	Error        errorDetail   `json:"error"`
	UserID       string        `json:"user_id,omitempty"`
	RedeemURL    string        `json:"redeem_url,omitempty"`
	RequestID    string        `json:"request_id,omitempty"`
	ExistingUser bool          `json:"existing_user,omitempty"`
	Completed    []string      `json:"completed"`
	Failed       failedStepOut `json:"failed"`
}

type failedStepOut struct {
	Step           InviteStep `json:"step"`
	GroupID        string     `json:"group_id,omitempty"`
	GraphStatus    int        `json:"graph_status,omitempty"`
	GraphCode      string     `json:"graph_code,omitempty"`
	GraphMessage   string     `json:"graph_message,omitempty"`
	GraphRequestID string     `json:"graph_request_id,omitempty"`
	Transient      bool       `json:"transient"`
}

// invite is POST /invitations, the line-of-business flow: look the person
// up; answer the matches unless told which one to use; otherwise invite,
// write attributes, add groups, and record the user as an approved
// request.
func (s *server) invite(c echo.Context) error {
	if s.inviter == nil {
		return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented,
			message: "invitations are not configured on this server (no Microsoft Graph credentials)"}
	}
	var b inviteBody
	if err := decodeBody(c, &b, false); err != nil {
		return err
	}
	in, err := s.checkInvite(&b)
	if err != nil {
		return err
	}
	// The whole flow, Graph retries included, must fit in the server's
	// write timeout.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.inviteTimeout + 15*time.Second))
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.inviteTimeout)
	defer cancel()

	matches, err := s.inviter.Lookup(ctx, in.Email)
	if err != nil {
		return graphFailure(c, InviteStepLookup, err)
	}
	if in.ExistingUserID == "" && len(matches) > 0 {
		return writeJSON(c, http.StatusOK, existingAnswer{Existing: matches})
	}
	var recorded *approvals.Request
	if r, err := s.store.FindByPerson(ctx, approvals.PersonKey(in.Email, nil)); err == nil {
		recorded = r
	} else if approvals.Code(err) != approvals.ENotFound {
		return err
	}
	if in.ExistingUserID != "" {
		if !slices.ContainsFunc(matches, func(u DirectoryUser) bool { return strings.EqualFold(u.ID, in.ExistingUserID) }) {
			return invalid("use_existing_id %s is not one of the directory users with email %s; call without it to see them", in.ExistingUserID, in.Email)
		}
	} else if recorded != nil {
		return &apiError{status: http.StatusConflict, code: string(approvals.EConflict), message: fmt.Sprintf(
			"%s already has request %s (%s, provisioning %s); decide or retry it under %s/requests/%s instead of inviting again",
			in.Email, recorded.ID, recorded.Status, recorded.Provisioning.State, Prefix, recorded.ID)}
	}

	res, ierr := s.inviter.Invite(ctx, in)
	if in.ExistingUserID != "" {
		res.UserID = in.ExistingUserID
		res.RedeemURL = ""
	}
	actor := actorOf(c)
	now := s.clock.Now().UTC()
	if res.UserID == "" {
		// The invitation failed (or its outcome is unknown): there is no
		// user to record.
		if ierr == nil {
			ierr = errors.New("the invitation returned no user id")
		}
		s.record(ctx, approvals.Event{At: now, Type: EventInvitationFailed, Actor: actor, Details: map[string]string{
			"email": in.Email, "error": ierr.Error(),
		}})
		return graphFailure(c, InviteStepInvite, ierr)
	}

	requestID, err := s.recordInvitation(ctx, in, res, ierr, recorded, actor, now)
	if err != nil {
		// The directory has the user but our record of it failed: say
		// what exists so the caller need not invite again.
		s.log.Error("api: recording an invitation", "user_id", res.UserID, "error", err)
		return &apiError{status: http.StatusInternalServerError, code: string(approvals.EInternal), message: fmt.Sprintf(
			"user %s was invited (redeem URL %s) but recording it failed; see the server log", res.UserID, res.RedeemURL)}
	}
	if ierr != nil {
		return writeIncomplete(c, in, res, ierr, requestID, recorded)
	}
	status := http.StatusCreated
	if in.ExistingUserID != "" {
		status = http.StatusOK
	}
	return writeJSON(c, status, inviteAnswer{UserID: res.UserID, RedeemURL: res.RedeemURL, RequestID: requestID, ExistingUser: in.ExistingUserID != ""})
}

// checkInvite validates the body and turns it into an InviteInput.
func (s *server) checkInvite(b *inviteBody) (InviteInput, error) {
	b.Email = strings.TrimSpace(b.Email)
	b.DisplayName = strings.TrimSpace(b.DisplayName)
	if err := s.validate.Struct(b); err != nil {
		return InviteInput{}, validationError(err)
	}
	if err := approvals.ValidateEmail(b.Email); err != nil {
		return InviteInput{}, err
	}
	for _, k := range slices.Sorted(maps.Keys(b.Attributes)) {
		if !attributeValueOK(b.Attributes[k]) {
			return InviteInput{}, invalid("attributes.%s must be a string, number or boolean", k)
		}
	}
	in := InviteInput{
		Email: b.Email, DisplayName: b.DisplayName, RedirectURL: b.RedirectURL,
		SendInvitationMessage: s.sendInvitationMessage, Message: b.Message,
		Attributes: b.Attributes, GroupIDs: b.GroupIDs, ExistingUserID: strings.ToLower(b.UseExistingID),
	}
	if in.RedirectURL == "" {
		in.RedirectURL = s.inviteRedirectURL
	}
	if b.SendInvitationMessage != nil {
		in.SendInvitationMessage = *b.SendInvitationMessage
	}
	for i, g := range in.GroupIDs {
		in.GroupIDs[i] = strings.ToLower(g)
	}
	if in.Message != "" && !in.SendInvitationMessage {
		return InviteInput{}, invalid("message is the text of Microsoft's invitation email: set send_invitation_message to true, or leave message out and send your own email with the redeem_url")
	}
	if in.ExistingUserID != "" && in.Message != "" {
		return InviteInput{}, invalid("message cannot be used with use_existing_id: an existing user is not invited")
	}
	return in, nil
}

func attributeValueOK(v any) bool {
	switch v.(type) {
	case string, bool, float64:
		return true
	}
	return false
}

// recordInvitation stores the invited person as an approved request
// provisioned by invitation, with the audit events of each step, and
// returns its id. A request already recorded for the person (only with
// use_existing_id) gets the events and is otherwise left alone. A step
// that failed after the invitation leaves the new request's provisioning
// failed, at the step reached, so that retry-provisioning can finish it.
func (s *server) recordInvitation(ctx context.Context, in InviteInput, res InviteResult, ierr error, recorded *approvals.Request, actor approvals.Actor, now time.Time) (string, error) {
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
		return approvals.Event{At: now, Type: t, RequestID: id, Actor: actor, Details: details}
	}
	var events []approvals.Event
	if in.ExistingUserID != "" {
		events = append(events, ev(EventInvitationLinked, map[string]string{"user_id": res.UserID, "email": in.Email}))
	} else {
		events = append(events, ev(approvals.EventInvitationCreated, map[string]string{
			"user_id": res.UserID, "email": in.Email, "redirect_url": in.RedirectURL,
			"send_invitation_message": strconv.FormatBool(in.SendInvitationMessage),
			"group_ids":               strings.Join(in.GroupIDs, ","),
		}))
	}
	step := approvals.StepCreated
	if res.AttributesWritten && len(in.Attributes) > 0 {
		events = append(events, ev(approvals.EventProvisioningStep, map[string]string{"step": string(approvals.StepAttributes), "user_id": res.UserID}))
	}
	if res.AttributesWritten {
		step = approvals.StepAttributes
	}
	for _, g := range res.GroupsAdded {
		events = append(events, ev(approvals.EventProvisioningStep, map[string]string{"step": string(approvals.StepGroups), "user_id": res.UserID, "group_id": g}))
	}
	p := approvals.Provisioning{
		State: approvals.ProvisioningSucceeded, Method: approvals.MethodInvitation, UserID: res.UserID,
		Attempts: 1, RedeemURL: res.RedeemURL, Step: approvals.StepGroups, GroupsDone: res.GroupsAdded,
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
		return id, s.store.AppendEvents(ctx, events)
	}
	r := &approvals.Request{
		ID: id, Source: approvals.SourceInvitation, Email: in.Email, DisplayName: in.DisplayName,
		Claims: in.Attributes, Status: approvals.StatusApproved, CreatedAt: now,
		Decision: &approvals.Decision{
			By: actor.String(), ByID: actor.ID, ActorKind: actor.Kind, At: now,
			Reason: "invited through the admin API",
		},
		Provisioning: p,
	}
	stored, created, err := s.store.Create(ctx, r, events)
	if err != nil {
		return "", err
	}
	if !created {
		// A concurrent call recorded this person first; keep the trail on
		// that request.
		for i := range events {
			events[i].RequestID = stored.ID
		}
		return stored.ID, s.store.AppendEvents(ctx, events)
	}
	return stored.ID, nil
}

// writeIncomplete answers 502 for an invitation that a later step left
// unfinished, saying what exists and what failed.
func writeIncomplete(c echo.Context, in InviteInput, res InviteResult, ierr error, requestID string, recorded *approvals.Request) error {
	out := incompleteAnswer{
		UserID: res.UserID, RedeemURL: res.RedeemURL, RequestID: requestID, ExistingUser: in.ExistingUserID != "",
		Completed: []string{},
	}
	if in.ExistingUserID == "" {
		out.Completed = append(out.Completed, string(InviteStepInvite))
	}
	if res.AttributesWritten && len(in.Attributes) > 0 {
		out.Completed = append(out.Completed, string(InviteStepAttributes))
	}
	for _, g := range res.GroupsAdded {
		out.Completed = append(out.Completed, "group:"+g)
	}
	out.Failed = failedStep(ierr, InviteStepAttributes)
	what := "writing the attributes"
	if out.Failed.Step == InviteStepGroups {
		what = "adding the user to group " + out.Failed.GroupID
	}
	done := "user " + res.UserID + " was invited"
	if in.ExistingUserID != "" {
		done = "existing user " + res.UserID + " was linked"
	}
	next := fmt.Sprintf("it is recorded as request %s with failed provisioning: POST %s/requests/%s/retry-provisioning finishes it", requestID, Prefix, requestID)
	if recorded != nil {
		next = "send the same call again to finish it"
	}
	out.Error = errorDetail{Code: codeIncomplete, Message: fmt.Sprintf("%s, but %s failed: %s; %s", done, what, graphText(out.Failed), next)}
	return writeJSON(c, http.StatusBadGateway, out)
}

// failedStep describes err for the answer; step is assumed when err is not
// an *InviteError.
func failedStep(err error, step InviteStep) failedStepOut {
	var ie *InviteError
	if !errors.As(err, &ie) {
		return failedStepOut{Step: step, GraphMessage: "no answer from Microsoft Graph", Transient: errors.Is(err, context.DeadlineExceeded)}
	}
	if ie.Step != "" {
		step = ie.Step
	}
	return failedStepOut{
		Step: step, GroupID: ie.GroupID, GraphStatus: ie.Status, GraphCode: ie.Code,
		GraphMessage: ie.Message, GraphRequestID: ie.RequestID, Transient: ie.Transient,
	}
}

func graphText(f failedStepOut) string {
	var parts []string
	if f.GraphStatus != 0 {
		parts = append(parts, "Graph answered "+strconv.Itoa(f.GraphStatus))
	}
	if f.GraphCode != "" {
		parts = append(parts, f.GraphCode)
	}
	s := strings.Join(parts, " ")
	if f.GraphMessage != "" {
		if s != "" {
			s += ": "
		}
		s += f.GraphMessage
	}
	if f.GraphRequestID != "" {
		s += " (request-id " + f.GraphRequestID + ")"
	}
	if s == "" {
		s = "unknown error"
	}
	return s
}

// graphFailure answers a lookup or invitation that created nothing: 503
// when trying again later may help, 502 when Graph refused.
func graphFailure(c echo.Context, step InviteStep, err error) error {
	if errors.Is(err, context.Canceled) && c.Request().Context().Err() != nil {
		return err
	}
	f := failedStep(err, step)
	what := "looking the person up in the directory"
	if step == InviteStepInvite {
		what = "the invitation"
	}
	status, code, hint := http.StatusBadGateway, codeGraphError, "nothing was created; check the message, the app's Graph permissions (User.Invite.All, User.ReadWrite.All, GroupMember.ReadWrite.All) and the tenant's external collaboration settings"
	var ie *InviteError
	if step == InviteStepInvite && (!errors.As(err, &ie) || ie.Status == 0) {
		// No answer: Graph may have made the invitation all the same.
		status, code, hint = http.StatusServiceUnavailable, string(approvals.EUnavailable),
			"Graph gave no answer, so the invitation may or may not have been made; send the same call again: if it was made, the answer lists the user"
	} else if f.Transient {
		status, code, hint = http.StatusServiceUnavailable, string(approvals.EUnavailable), "nothing was created; try again later"
		if errors.As(err, &ie) && ie.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int((ie.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	return writeJSON(c, status, incompleteAnswer{
		Error:     errorDetail{Code: code, Message: fmt.Sprintf("%s failed: %s; %s", what, graphText(f), hint)},
		Completed: []string{},
		Failed:    f,
	})
}
