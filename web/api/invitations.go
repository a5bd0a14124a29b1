package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// inviteBody is the body of POST /invitations. The validate tags are the
// rules; validationError words their messages. InviteFlow.Check applies
// them to every invitation, from the API or not.
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

// incompleteAnswer is a 502 or 503 with what succeeded beside the error.
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

// invite is POST /invitations: look the person up; answer the matches
// unless told which one to use; otherwise run the InviteFlow.
func (s *server) invite(c echo.Context) error {
	if s.invites == nil {
		return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented,
			message: "invitations are not configured on this server (no Microsoft Graph credentials)"}
	}
	var b inviteBody
	if err := decodeBody(c, &b, false); err != nil {
		return err
	}
	in := InviteInput{
		Email: b.Email, DisplayName: b.DisplayName, RedirectURL: b.RedirectURL,
		SendInvitationMessage: s.sendInvitationMessage, Message: b.Message,
		Attributes: b.Attributes, GroupIDs: b.GroupIDs, ExistingUserID: b.UseExistingID,
	}
	if b.SendInvitationMessage != nil {
		in.SendInvitationMessage = *b.SendInvitationMessage
	}
	if err := s.invites.Check(&in); err != nil {
		return err
	}
	// The whole flow, Graph retries included, must fit in the write
	// deadline.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.inviteTimeout + 15*time.Second))
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.inviteTimeout)
	defer cancel()

	if in.ExistingUserID == "" {
		matches, err := s.invites.Lookup(ctx, in.Email)
		if err != nil {
			return graphFailure(c, InviteStepLookup, err)
		}
		if len(matches) > 0 {
			return writeJSON(c, http.StatusOK, existingAnswer{Existing: matches})
		}
	}
	out, err := s.invites.Invite(ctx, in, actorOf(c))
	switch code := approvals.Code(err); {
	case err == nil:
		status := http.StatusCreated
		if out.ExistingUser {
			status = http.StatusOK
		}
		return writeJSON(c, status, inviteAnswer{UserID: out.UserID, RedeemURL: out.RedeemURL, RequestID: out.RequestID, ExistingUser: out.ExistingUser})
	case out.UserID == "" && (code == approvals.EInvalid || code == approvals.EConflict || code == approvals.ENotFound):
		return err
	case out.UserID == "":
		step := InviteStepInvite
		if out.ExistingUser {
			step = InviteStepLookup
		}
		return graphFailure(c, step, err)
	case out.RequestID == "":
		// The directory has the user but the record of it failed: say
		// what exists so the caller need not invite again.
		return &apiError{status: http.StatusInternalServerError, code: string(approvals.EInternal), cause: err, message: fmt.Sprintf(
			"user %s was invited (redeem URL %s) but recording it failed; see the server log", out.UserID, out.RedeemURL)}
	}
	return writeIncomplete(c, in, out, err)
}

// writeIncomplete answers 502 for an invitation that a later step left
// unfinished, saying what exists and what failed.
func writeIncomplete(c echo.Context, in InviteInput, out InviteOutcome, err error) error {
	ans := incompleteAnswer{
		UserID: out.UserID, RedeemURL: out.RedeemURL, RequestID: out.RequestID, ExistingUser: out.ExistingUser,
		Completed: []string{},
	}
	if !out.ExistingUser {
		ans.Completed = append(ans.Completed, string(InviteStepInvite))
	}
	ans.Failed = failedStep(err, InviteStepAttributes)
	if out.AttributesWritten && len(in.Attributes) > 0 && ans.Failed.Step != InviteStepAttributes {
		ans.Completed = append(ans.Completed, string(InviteStepAttributes))
	}
	for _, g := range out.GroupsAdded {
		ans.Completed = append(ans.Completed, "group:"+g)
	}
	what := "writing the attributes"
	if ans.Failed.Step == InviteStepGroups {
		what = "adding the user to group " + ans.Failed.GroupID
	}
	done := "user " + out.UserID + " was invited"
	if out.ExistingUser {
		done = "existing user " + out.UserID + " was linked"
	}
	next := fmt.Sprintf("it is recorded as request %s with failed provisioning: POST %s/requests/%s/retry-provisioning finishes it", out.RequestID, Prefix, out.RequestID)
	if out.RecordedBefore {
		next = "send the same call again to finish it"
	}
	ans.Error = errorDetail{Code: codeIncomplete, Message: fmt.Sprintf("%s, but %s failed: %s; %s", done, what, graphText(ans.Failed), next)}
	return writeJSON(c, http.StatusBadGateway, ans)
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
// when trying again may help, 502 when Graph refused.
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
