package web

import (
	"context"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/web/api"
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
	Matches []api.DirectoryUser
}

var (
	guidPattern      = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)
	attributePattern = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_]{0,119}$`)
)

// maxInviteItems bounds the groups and the attributes of one invitation.
const maxInviteItems = 100

func (u *UI) inviteForm(c echo.Context) error {
	return u.showInvite(c, http.StatusOK, &inviteView{Form: inviteForm{RedirectURL: u.cfg.InviteRedirectURL, SendMessage: !u.cfg.SkipInvitationEmail}})
}

func (u *UI) showInvite(c echo.Context, status int, v *inviteView) error {
	v.Configured = u.cfg.Inviter != nil
	p := u.newPage(c, "Invite external user", "invite")
	p.Data = v
	return u.render(c, status, "invite", p)
}

// parse checks the form and returns the invitation it asks for, or the
// errors by field.
func (f inviteForm) parse() (api.InviteInput, map[string]string) {
	errs := map[string]string{}
	in := api.InviteInput{
		Email: strings.TrimSpace(f.Email), DisplayName: strings.TrimSpace(f.DisplayName),
		RedirectURL: strings.TrimSpace(f.RedirectURL), SendInvitationMessage: f.SendMessage,
		Message: strings.TrimSpace(f.Message),
	}
	if err := approvals.ValidateEmail(in.Email); err != nil {
		errs["email"] = "Enter one email address, such as jane@fabrikam.com."
	} else if strings.ContainsAny(in.Email, "+#!$%&*") {
		errs["email"] = "Microsoft invitations do not accept addresses with + # ! $ % & or *."
	}
	// Sizes are in characters, as the API's rules count them.
	if utf8.RuneCountInString(in.DisplayName) > 256 {
		errs["display_name"] = "Keep the display name under 256 characters."
	}
	if !absoluteHTTP(in.RedirectURL, true) || !strings.HasPrefix(in.RedirectURL, "https://") {
		errs["redirect_url"] = "Enter an absolute https URL, such as https://myapps.microsoft.com."
	}
	switch {
	case utf8.RuneCountInString(in.Message) > 4000:
		errs["message"] = "Keep the message under 4,000 characters."
	case in.Message != "" && !in.SendInvitationMessage:
		errs["message"] = "The message is part of Microsoft's invitation email: tick “Let Microsoft email the invitation”, or leave the message empty."
	}
	for _, g := range strings.FieldsFunc(f.Groups, func(r rune) bool { return r == ',' || r == ';' || r == ' ' || r == '\n' || r == '\r' || r == '\t' }) {
		if !guidPattern.MatchString(g) {
			errs["groups"] = "Group ids are object ids such as 0f8fad5b-d9cb-469f-a165-70867728950e; " + strconv.Quote(g) + " is not one."
			break
		}
		in.GroupIDs = append(in.GroupIDs, strings.ToLower(g))
	}
	if len(in.GroupIDs) > maxInviteItems {
		errs["groups"] = "Add at most 100 groups at a time."
	}
	for i, line := range strings.Split(f.Attributes, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		k, val, ok := strings.Cut(line, "=")
		k, val = strings.TrimSpace(k), strings.TrimSpace(val)
		if !ok || !attributePattern.MatchString(k) {
			errs["attributes"] = "Line " + strconv.Itoa(i+1) + ": write one attribute per line as name=value, such as jobTitle=Supplier or extension_<appId>_Role=supplier."
			break
		}
		if in.Attributes == nil {
			in.Attributes = map[string]any{}
		}
		in.Attributes[k] = val
	}
	if len(in.Attributes) > maxInviteItems {
		errs["attributes"] = "Set at most 100 attributes at a time."
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
	if u.cfg.Inviter == nil {
		v.Error = "Invitations are not configured on this server."
		return u.showInvite(c, http.StatusServiceUnavailable, v)
	}
	in, errs := f.parse()
	if len(errs) > 0 {
		v.Errors = errs
		return u.showInvite(c, http.StatusUnprocessableEntity, v)
	}
	if in.ExistingUserID = strings.TrimSpace(c.FormValue("use_existing_id")); in.ExistingUserID != "" {
		in.Message = "" // an existing user is not invited
	}
	if err := u.cfg.Inviter.Check(&in); err != nil {
		v.Error = errorText(err)
		return u.showInvite(c, http.StatusUnprocessableEntity, v)
	}
	ctx, cancel := context.WithTimeout(c.Request().Context(), inviteTimeout)
	defer cancel()
	if in.ExistingUserID == "" {
		matches, err := u.cfg.Inviter.Lookup(ctx, in.Email)
		if err != nil {
			u.log.Error("web: invite: directory lookup", "email", in.Email, "err", err)
			v.Error = "The directory could not be searched, so nobody was invited. Try again; the server log has the details."
			return u.showInvite(c, http.StatusBadGateway, v)
		}
		if len(matches) > 0 {
			v.Matches = matches
			return u.showInvite(c, http.StatusOK, v)
		}
	}
	out, err := u.cfg.Inviter.Invite(ctx, in, s.user.Actor())
	name := in.Email
	if in.DisplayName != "" {
		name = in.DisplayName + " (" + in.Email + ")"
	}
	switch {
	case err != nil && out.RequestID != "":
		// Invited, but a later step failed: the request page shows the
		// failure.
		u.log.Warn("web: invite incomplete", "email", in.Email, "request", out.RequestID, "err", err)
		next := " Retry the provisioning on this page."
		if out.RecordedBefore {
			next = " Run the invitation again to finish it."
		}
		u.flash(c, "error", "Invited "+name+", but a later step failed: "+errorText(err)+"."+next)
		return c.Redirect(http.StatusSeeOther, requestHref(out.RequestID, ""))
	case err != nil && out.UserID != "":
		u.log.Error("web: invite recorded nothing", "email", in.Email, "user", out.UserID, "err", err)
		v.Error = "The directory user " + out.UserID + " was created, but recording the invitation here failed; the server log has the details. Do not invite again: look the person up to use the existing account."
		return u.showInvite(c, http.StatusInternalServerError, v)
	case err != nil && userError(err):
		v.Error = approvals.Message(err)
		return u.showInvite(c, http.StatusUnprocessableEntity, v)
	case err != nil:
		u.log.Error("web: invite", "email", in.Email, "err", err)
		v.Error = "Microsoft Graph did not complete the invitation: " + errorText(err) + ". The audit trail has the details."
		return u.showInvite(c, http.StatusBadGateway, v)
	}
	fl := flash{Kind: "success", Text: "Invited " + name + ". Directory object id: " + out.UserID + "."}
	if out.ExistingUser {
		fl.Text = "Recorded " + name + " as existing directory user " + out.UserID + "."
	}
	if out.RedeemURL != "" {
		fl.Link, fl.LinkText = out.RedeemURL, "Invitation redemption link"
	}
	u.flashLink(c, fl)
	if out.RequestID != "" {
		return c.Redirect(http.StatusSeeOther, requestHref(out.RequestID, ""))
	}
	return c.Redirect(http.StatusSeeOther, "/invite")
}

// inviteTimeout bounds one invitation, directory retries included.
const inviteTimeout = api.DefaultInviteTimeout

// errorText is an error's message for people: the domain message, or the
// text of directory errors, which is written for admins.
func errorText(err error) string {
	if approvals.Code(err) != approvals.EInternal {
		return approvals.Message(err)
	}
	return err.Error()
}
