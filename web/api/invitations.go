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

// inviteBody is the body of POST /invitations. approvals.Service.Invite
// checks it; its errors name these JSON fields.
type inviteBody struct {
	Email                 string         `json:"email"`
	DisplayName           string         `json:"display_name"`
	RedirectURL           string         `json:"redirect_url"`
	SendInvitationMessage *bool          `json:"send_invitation_message"`
	Message               string         `json:"message"`
	GroupIDs              []string       `json:"group_ids"`
	Attributes            map[string]any `json:"attributes"`
	UseExistingID         string         `json:"use_existing_id"`
}

type existingAnswer struct {
	Existing []approvals.DirectoryUser `json:"existing"`
}

// inviteAnswer is a 200, 201 or 202 answer.
type inviteAnswer struct {
	UserID       string `json:"user_id,omitempty"`
	RedeemURL    string `json:"redeem_url,omitempty"`
	RequestID    string `json:"request_id"`
	ExistingUser bool   `json:"existing_user,omitempty"`
	// Provisioning is the request's provisioning state: succeeded, or
	// in_progress in a 202.
	Provisioning approvals.ProvisioningState `json:"provisioning"`
	Message      string                      `json:"message,omitempty"`
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

// The steps of an invitation, as answers name them.
const (
	stepLookup     = "lookup"
	stepInvite     = "invite"
	stepAttributes = "attributes"
	stepGroups     = "groups"
)

type failedStepOut struct {
	Step           string `json:"step"`
	GroupID        string `json:"group_id,omitempty"`
	GraphStatus    int    `json:"graph_status,omitempty"`
	GraphCode      string `json:"graph_code,omitempty"`
	GraphMessage   string `json:"graph_message,omitempty"`
	GraphRequestID string `json:"graph_request_id,omitempty"`
	Transient      bool   `json:"transient"`
}

// invite is POST /invitations: approvals.Service.Invite looks the person
// up, records the invitation and waits, up to the invite timeout, for the
// provisioner to carry it out.
func (s *server) invite(c echo.Context) error {
	if s.svc.Directory == nil {
		return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented,
			message: "invitations are not configured on this server (no Microsoft Graph credentials)"}
	}
	var b inviteBody
	if err := decodeBody(c, &b, false); err != nil {
		return err
	}
	inv := approvals.Invitation{
		Email: b.Email, DisplayName: b.DisplayName, RedirectURL: b.RedirectURL,
		SendInvitationMessage: b.SendInvitationMessage, Message: b.Message,
		Attributes: b.Attributes, GroupIDs: b.GroupIDs, ExistingUserID: b.UseExistingID,
	}
	// The wait for Graph must fit in the write deadline.
	_ = http.NewResponseController(c.Response()).SetWriteDeadline(time.Now().Add(s.inviteTimeout + 15*time.Second))
	ctx, cancel := context.WithTimeout(c.Request().Context(), s.inviteTimeout)
	defer cancel()
	out, err := s.svc.Invite(ctx, inv, actorOf(c))
	var de *approvals.DirectoryError
	switch {
	case errors.As(err, &de):
		return lookupFailure(c, de)
	case err != nil:
		return err
	case out.Request == nil:
		return writeJSON(c, http.StatusOK, existingAnswer{Existing: out.Existing})
	}
	r := out.Request
	p := r.Provisioning
	existing := r.Invitation != nil && r.Invitation.ExistingUserID != ""
	ans := inviteAnswer{UserID: p.UserID, RedeemURL: p.RedeemURL, RequestID: r.ID, ExistingUser: existing, Provisioning: p.State}
	switch p.State {
	case approvals.ProvisioningSucceeded:
		status := http.StatusCreated
		if existing {
			status = http.StatusOK
		}
		return writeJSON(c, status, ans)
	case approvals.ProvisioningFailed:
		return writeIncomplete(c, r)
	}
	ans.Message = fmt.Sprintf("recorded as request %s; Microsoft Graph has not finished yet (%s), and the provisioner goes on: GET %s/requests/%s shows when it is done",
		r.ID, cmpOr(p.LastError, "no answer yet"), Prefix, r.ID)
	return writeJSON(c, http.StatusAccepted, ans)
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// writeIncomplete answers 502 for an invitation whose provisioning failed,
// saying what exists and what failed: graph_error when nothing was
// created, provisioning_incomplete when a step after the invitation
// failed.
func writeIncomplete(c echo.Context, r *approvals.Request) error {
	p := r.Provisioning
	existing := r.Invitation != nil && r.Invitation.ExistingUserID != ""
	ans := incompleteAnswer{
		UserID: p.UserID, RedeemURL: p.RedeemURL, RequestID: r.ID, ExistingUser: existing, Completed: []string{},
		Failed: failedStepOut{
			GraphStatus: p.GraphStatus, GraphCode: p.GraphCode, GraphMessage: p.LastError, GraphRequestID: p.RequestID,
		},
	}
	next := fmt.Sprintf("it is recorded as request %s with failed provisioning: fix the cause, then POST %s/requests/%s/retry-provisioning finishes it", r.ID, Prefix, r.ID)
	if p.UserID == "" {
		ans.Failed.Step = stepInvite
		ans.Error = errorDetail{Code: codeGraphError, Message: fmt.Sprintf("the invitation failed: %s; nobody was invited. Check the app's Graph permissions (User.Invite.All, User.ReadWrite.All, GroupMember.ReadWrite.All) and the tenant's external collaboration settings; %s", graphText(ans.Failed), next)}
		return writeJSON(c, http.StatusBadGateway, ans)
	}
	if !existing {
		ans.Completed = append(ans.Completed, stepInvite)
	}
	what := "writing the attributes"
	ans.Failed.Step = stepAttributes
	if p.Step == approvals.StepAttributes || p.Step == approvals.StepGroups {
		if len(r.Claims) > 0 {
			ans.Completed = append(ans.Completed, stepAttributes)
		}
		ans.Failed.Step, ans.Failed.GroupID = stepGroups, p.FailedGroupID
		what = "adding the user to group " + p.FailedGroupID
	}
	for _, g := range p.GroupsDone {
		ans.Completed = append(ans.Completed, "group:"+g)
	}
	done := "user " + p.UserID + " was invited"
	if existing {
		done = "existing user " + p.UserID + " was linked"
	}
	ans.Error = errorDetail{Code: codeIncomplete, Message: fmt.Sprintf("%s, but %s failed: %s; %s", done, what, graphText(ans.Failed), next)}
	return writeJSON(c, http.StatusBadGateway, ans)
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
	if f.GraphRequestID != "" && !strings.Contains(s, f.GraphRequestID) {
		s += " (request-id " + f.GraphRequestID + ")"
	}
	if s == "" {
		s = "unknown error"
	}
	return s
}

// lookupFailure answers a directory look-up that failed before anything
// was recorded: 503 when trying again may help, 502 when Graph refused.
func lookupFailure(c echo.Context, de *approvals.DirectoryError) error {
	f := failedStepOut{
		Step: stepLookup, GraphStatus: de.GraphStatus, GraphCode: de.GraphCode, GraphMessage: de.Cause,
		GraphRequestID: de.GraphRequestID, Transient: de.Transient,
	}
	status, code, hint := http.StatusBadGateway, codeGraphError, "nothing was recorded; check the app's Graph permission User.ReadWrite.All"
	if de.Transient {
		status, code, hint = http.StatusServiceUnavailable, string(approvals.EUnavailable), "nothing was recorded; try again later"
		if de.RetryAfter > 0 {
			c.Response().Header().Set("Retry-After", strconv.Itoa(int((de.RetryAfter+time.Second-1)/time.Second)))
		}
	}
	return writeJSON(c, status, incompleteAnswer{
		Error:     errorDetail{Code: code, Message: fmt.Sprintf("looking the person up in the directory failed: %s; %s", graphText(f), hint)},
		Completed: []string{},
		Failed:    f,
	})
}
