package web

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// inviteForm is the invite form's fields, as typed.
type inviteForm struct {
	Email, DisplayName, RedirectURL string
	Groups, Attributes, Message     string
	SendMessage                     bool
}

type inviteView struct {
	Configured bool
	Form       inviteForm
	// Errors by field name, and Error for the whole form.
	Errors  map[string]string
	Error   string
	Matches []approvals.DirectoryUser
}

// formFields maps the invitation's field names (approvals.Error.Field) onto
// the form's.
var formFields = map[string]string{"email": "email", "display_name": "display_name", "redirect_url": "redirect_url",
	"message": "message", "group_ids": "groups", "attributes": "attributes"}

func (u *UI) inviteForm(c echo.Context) error {
	svc := u.cfg.Service
	return u.showInvite(c, http.StatusOK, &inviteView{Form: inviteForm{RedirectURL: svc.InviteRedirectURL, SendMessage: svc.SendInvitationMessage}})
}

func (u *UI) showInvite(c echo.Context, status int, v *inviteView) error {
	v.Configured = u.cfg.Service.Directory != nil
	p := u.newPage(c, "Invite external user", "invite")
	p.Data = v
	return u.render(c, status, "invite", p)
}

// parse reads the form's lists (groups, name=value attributes) into the
// invitation it asks for; approvals.Service.Invite checks the rest.
func (f inviteForm) parse() (approvals.Invitation, map[string]string) {
	errs := map[string]string{}
	send := f.SendMessage
	in := approvals.Invitation{
		Email: f.Email, DisplayName: f.DisplayName, RedirectURL: f.RedirectURL,
		SendInvitationMessage: &send, Message: f.Message,
	}
	in.GroupIDs = strings.FieldsFunc(f.Groups, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' })
	for i, line := range strings.Split(f.Attributes, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || k == "" {
			errs["attributes"] = "Line " + strconv.Itoa(i+1) + ": write one attribute per line as name=value, such as jobTitle=Supplier or extension_<appId>_Role=supplier."
			break
		}
		if in.Attributes == nil {
			in.Attributes = map[string]any{}
		}
		in.Attributes[k] = val
	}
	return in, errs
}

func (u *UI) invite(c echo.Context) error {
	s, _ := sessionOf(c)
	f := inviteForm{
		Email: c.FormValue("email"), DisplayName: c.FormValue("display_name"), RedirectURL: c.FormValue("redirect_url"),
		Groups: c.FormValue("groups"), Attributes: c.FormValue("attributes"), Message: c.FormValue("message"),
		SendMessage: c.FormValue("send_message") != "",
	}
	v := &inviteView{Form: f}
	if u.cfg.Service.Directory == nil {
		v.Error = "Invitations are not configured on this server."
		return u.showInvite(c, http.StatusServiceUnavailable, v)
	}
	in, errs := f.parse()
	if in.ExistingUserID = strings.TrimSpace(c.FormValue("use_existing_id")); in.ExistingUserID != "" {
		in.Message = "" // an existing user is not invited
	}
	// Every field's mistake at once, before any directory call.
	for field, msg := range approvals.FieldErrors(u.cfg.Service.CheckInvitation(&in)) {
		if k := formFields[field]; k != "" && errs[k] == "" {
			errs[k] = msg
		}
	}
	if len(errs) > 0 {
		v.Errors = errs
		return u.showInvite(c, http.StatusUnprocessableEntity, v)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), inviteTimeout)
	defer cancel()
	out, err := u.cfg.Service.Invite(ctx, in, s.user.Actor())
	var de *approvals.DirectoryError
	switch {
	case errors.As(err, &de):
		u.log.Error("web: invite: directory lookup", "email", in.Email, "err", err)
		v.Error = "The directory could not be searched, so nobody was invited: " + de.Cause + ". Try again; the server log has the details."
		return u.showInvite(c, http.StatusBadGateway, v)
	case err != nil && userError(err):
		v.Error = approvals.Message(err)
		return u.showInvite(c, http.StatusUnprocessableEntity, v)
	case err != nil:
		u.log.Error("web: invite", "email", in.Email, "err", err)
		v.Error = "The invitation could not be recorded: " + errorText(err) + ". The server log has the details."
		return u.showInvite(c, http.StatusInternalServerError, v)
	case out.Request == nil:
		v.Matches = out.Existing
		return u.showInvite(c, http.StatusOK, v)
	}
	r := out.Request
	name := r.Email
	if r.DisplayName != "" {
		name = r.DisplayName + " (" + r.Email + ")"
	}
	p := r.Provisioning
	var fl flash
	switch {
	case p.State == approvals.ProvisioningFailed:
		u.log.Warn("web: invite failed", "email", r.Email, "request", r.ID, "err", p.LastError)
		fl = flash{Kind: "error", Text: "The invitation of " + name + " failed; fix the cause, then retry the provisioning on this page. Graph said: " + p.LastError}
	case p.State == approvals.ProvisioningInProgress:
		fl = flash{Kind: "info", Text: "Recorded the invitation of " + name + "; Microsoft Graph has not finished yet. This page shows when it is done."}
	case in.ExistingUserID != "":
		fl = flash{Kind: "success", Text: "Recorded " + name + " as existing directory user " + p.UserID + "."}
	default:
		fl = flash{Kind: "success", Text: "Invited " + name + ". Directory object id: " + p.UserID + "."}
	}
	if p.RedeemURL != "" {
		fl.Link, fl.LinkText = p.RedeemURL, "Invitation redemption link"
	}
	u.flashLink(c, fl)
	return c.Redirect(http.StatusSeeOther, requestHref(r.ID, "/invite"))
}

// inviteTimeout bounds how long the Invite page waits for Microsoft Graph
// before showing the request with its provisioning still in progress.
const inviteTimeout = 30 * time.Second

// errorText is an error's message for people: the domain message, or the
// text of directory errors, which is written for admins.
func errorText(err error) string {
	if approvals.Code(err) != approvals.EInternal {
		return approvals.Message(err)
	}
	return err.Error()
}
