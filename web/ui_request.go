package web

import (
	"cmp"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// claimRow is one claim on the request page.
type claimRow struct {
	Key   string // as Entra sent it
	Label string
	Value string
	// Extension is set for extension_<appId>_<Name> custom attributes;
	// AppID is the app id part, when present.
	Extension bool
	AppID     string
}

// claimLabels names the built-in Graph user properties Entra sends.
var claimLabels = map[string]string{
	"displayName": "Display name", "givenName": "Given name", "surname": "Surname", "lastName": "Surname",
	"jobTitle": "Job title", "companyName": "Company", "department": "Department", "streetAddress": "Street address",
	"city": "City", "postalCode": "Postal code", "state": "State or province", "country": "Country or region",
	"mobilePhone": "Mobile phone", "businessPhones": "Business phone", "officeLocation": "Office",
	"preferredLanguage": "Preferred language", "employeeId": "Employee id", "ui_locales": "Locale",
}

// splitExtension parses extension_<32 hex>_<Name> (the app id part is
// optional).
func splitExtension(key string) (appID, name string, ok bool) {
	rest, ok := strings.CutPrefix(key, "extension_")
	if !ok || rest == "" {
		return "", "", false
	}
	if len(rest) > 33 && rest[32] == '_' {
		if _, err := hex.DecodeString(rest[:32]); err == nil {
			return rest[:32], rest[33:], true
		}
	}
	return "", rest, true
}

func claimValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case bool:
		if x {
			return "Yes"
		}
		return "No"
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64)
	case nil:
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// claimRows lists the claims: built-in properties first, then extension
// attributes, each by name.
func claimRows(claims map[string]any) []claimRow {
	rows := make([]claimRow, 0, len(claims))
	for k, v := range claims {
		row := claimRow{Key: k, Label: k, Value: claimValue(v)}
		if app, name, ok := splitExtension(k); ok {
			row.Label, row.Extension, row.AppID = name, true, app
		} else if l, ok := claimLabels[k]; ok {
			row.Label = l
		}
		rows = append(rows, row)
	}
	slices.SortFunc(rows, func(a, b claimRow) int {
		if a.Extension != b.Extension {
			if a.Extension {
				return 1
			}
			return -1
		}
		return cmp.Or(strings.Compare(strings.ToLower(a.Label), strings.ToLower(b.Label)), strings.Compare(a.Key, b.Key))
	})
	return rows
}

// timelineItem is one audit event on the request page.
type timelineItem struct {
	approvals.Event
	Details []detail
}

type detail struct{ Key, Value string }

func eventDetails(m map[string]string) []detail {
	out := make([]detail, 0, len(m))
	for k, v := range m {
		out = append(out, detail{strings.ReplaceAll(k, "_", " "), v})
	}
	slices.SortFunc(out, func(a, b detail) int { return strings.Compare(a.Key, b.Key) })
	return out
}

// timelineLimit bounds the events shown on a request page.
const timelineLimit = 200

type requestView struct {
	R            *approvals.Request
	Claims       []claimRow
	Timeline     []timelineItem
	TimelineMore bool
	Back         string // the page to return to
	BackLabel    string
	// The deny form's state after a rejected submission.
	DenyError, DenyReason string
	CanRetry, CanReopen   bool
	// Deliveries are the request's notifications (ui_deliveries.go).
	Deliveries []*approvals.Delivery
}

func (u *UI) request(c echo.Context) error {
	return u.showRequest(c, http.StatusOK, "", "")
}

// showRequest renders the request page; denyError and denyReason refill
// the deny form after a rejected submission.
func (u *UI) showRequest(c echo.Context, status int, denyError, denyReason string) error {
	ctx := c.Request().Context()
	r, err := u.store.Get(ctx, c.Param("id"))
	if approvals.Code(err) == approvals.ENotFound {
		return &pageError{Status: http.StatusNotFound, Title: "Request not found",
			Message: "There is no request with the id " + strings.ToValidUTF8(c.Param("id"), "\uFFFD") + ". Check the link, or search the queue for the person's email address."}
	}
	if err != nil {
		return err
	}
	events, next, err := u.store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID, Limit: timelineLimit})
	if err != nil {
		return err
	}
	s, _ := sessionOf(c)
	v := &requestView{
		R: r, Claims: claimRows(r.Claims), TimelineMore: next != 0,
		Back:      safeNext(cmp.Or(c.QueryParam("back"), c.FormValue("return"))),
		DenyError: denyError, DenyReason: denyReason,
		CanRetry:  s.user.Admin && r.Status == approvals.StatusApproved && r.Provisioning.State == approvals.ProvisioningFailed,
		CanReopen: s.user.Admin && r.Status == approvals.StatusDenied,
	}
	for _, ev := range events {
		v.Timeline = append(v.Timeline, timelineItem{Event: ev, Details: eventDetails(ev.Details)})
	}
	if v.Deliveries, err = u.requestDeliveries(ctx, r.ID); err != nil {
		return err
	}
	title := r.DisplayName
	if title == "" {
		title = r.Email
	}
	p := u.newPage(c, title, navOf(v.Back))
	p.Data = v
	v.BackLabel = backLabels[p.Nav]
	return u.render(c, status, "request", p)
}

// navOf is the navigation item a page returning to back belongs to: a
// request opened from the invite page or the audit trail keeps that item
// highlighted.
func navOf(back string) string {
	path, _, _ := strings.Cut(back, "?")
	switch path {
	case "/invite", "/dashboard", "/audit", "/export":
		return strings.TrimPrefix(path, "/")
	}
	return "queue"
}

// backLabels name the page the request page's breadcrumb returns to.
var backLabels = map[string]string{
	"queue": "Back to the queue", "invite": "Back to Invite", "dashboard": "Back to the dashboard",
	"audit": "Back to the audit trail", "export": "Back to Export",
}

// who names a request in messages: "John Smith (john@example.com)".
func who(r *approvals.Request) string {
	if r.DisplayName == "" {
		return r.Email
	}
	return r.DisplayName + " (" + r.Email + ")"
}

// afterAction sends the browser back to where the form said, or to the
// request page.
func afterAction(c echo.Context, id string) error {
	back := c.FormValue("return")
	if back == "" {
		return c.Redirect(http.StatusSeeOther, requestHref(id, ""))
	}
	return c.Redirect(http.StatusSeeOther, safeNext(back))
}

// userError reports whether err is the user's to fix (shown as a flash)
// rather than the server's.
func userError(err error) bool {
	switch approvals.Code(err) {
	case approvals.EInvalid, approvals.EConflict, approvals.ENotFound, approvals.EForbidden:
		return true
	}
	return false
}

func (u *UI) approve(c echo.Context) error {
	s, _ := sessionOf(c)
	id := c.Param("id")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if err := approvals.CheckReason(reason); err != nil {
		u.flash(c, "error", "Not approved: "+approvals.Message(err)+".")
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	r, err := u.svc.Approve(c.Request().Context(), id, s.user.Actor(), reason)
	if userError(err) {
		u.flash(c, "error", "Not approved: "+approvals.Message(err))
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	if err != nil {
		return err
	}
	u.flashLink(c, flash{Kind: "success", Text: "Approved " + who(r) + ". The account is being provisioned.", Link: requestHref(r.ID, ""), LinkText: "View request"})
	return afterAction(c, id)
}

func (u *UI) deny(c echo.Context) error {
	s, _ := sessionOf(c)
	id := c.Param("id")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if reason == "" {
		return u.showRequest(c, http.StatusUnprocessableEntity, "Give a reason for denying: it is kept in the audit trail.", "")
	}
	if err := approvals.CheckReason(reason); err != nil {
		return u.showRequest(c, http.StatusUnprocessableEntity, sentence(approvals.Message(err))+".", strings.ToValidUTF8(reason, "\uFFFD"))
	}
	r, err := u.svc.Deny(c.Request().Context(), id, s.user.Actor(), reason)
	if userError(err) {
		u.flash(c, "error", "Not denied: "+approvals.Message(err))
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	if err != nil {
		return err
	}
	u.flashLink(c, flash{Kind: "success", Text: "Denied " + who(r) + ".", Link: requestHref(r.ID, ""), LinkText: "View request"})
	return afterAction(c, id)
}

func (u *UI) retry(c echo.Context) error {
	s, _ := sessionOf(c)
	id := c.Param("id")
	r, err := u.svc.RetryProvisioning(c.Request().Context(), id, s.user.Actor())
	if userError(err) {
		u.flash(c, "error", "Not retried: "+approvals.Message(err))
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	if err != nil {
		return err
	}
	u.flash(c, "success", "Provisioning of "+who(r)+" will be tried again now.")
	return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
}

func (u *UI) reopen(c echo.Context) error {
	s, _ := sessionOf(c)
	id := c.Param("id")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if err := approvals.CheckReason(reason); err != nil {
		u.flash(c, "error", "Not reopened: "+approvals.Message(err)+".")
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	r, err := u.svc.Reopen(c.Request().Context(), id, s.user.Actor(), reason)
	if userError(err) {
		u.flash(c, "error", "Not reopened: "+approvals.Message(err))
		return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
	}
	if err != nil {
		return err
	}
	u.flash(c, "success", who(r)+" is back in the queue.")
	return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
}

// maxBulk bounds the requests one bulk decision may cover.
const maxBulk = 500

func (u *UI) bulk(c echo.Context) error {
	s, _ := sessionOf(c)
	if err := c.Request().ParseForm(); err != nil {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge)
	}
	form := c.Request().PostForm
	ids := slices.Compact(slices.Sorted(slices.Values(form["id"])))
	action := form.Get("action")
	reason := strings.TrimSpace(form.Get("reason"))
	back := safeNext(form.Get("return"))
	fail := func(msg string) error {
		u.flash(c, "error", msg)
		return c.Redirect(http.StatusSeeOther, back)
	}
	switch {
	case action != "approve" && action != "deny":
		return fail("Choose Approve or Deny.")
	case len(ids) == 0:
		return fail("Select at least one request first.")
	case len(ids) > maxBulk:
		return fail(fmt.Sprintf("Select at most %d requests at a time.", maxBulk))
	case action == "deny" && reason == "":
		return fail("Give a reason for denying: it is kept in the audit trail. Nothing was denied.")
	}
	if err := approvals.CheckReason(reason); err != nil {
		return fail(sentence(approvals.Message(err)) + ". Nothing was changed.")
	}
	ctx := c.Request().Context()
	done := 0
	var failed []string
	for _, id := range ids {
		var err error
		if action == "approve" {
			_, err = u.svc.Approve(ctx, id, s.user.Actor(), reason)
		} else {
			_, err = u.svc.Deny(ctx, id, s.user.Actor(), reason)
		}
		switch {
		case err == nil:
			done++
		case userError(err):
			failed = append(failed, approvals.Message(err))
		default:
			u.log.Error("web: bulk decision", "id", id, "action", action, "err", err)
			failed = append(failed, "request "+id+": the server could not record the decision")
		}
	}
	verb := map[string]string{"approve": "Approved", "deny": "Denied"}[action]
	if done > 0 {
		u.flash(c, "success", verb+" "+plural(done, "request")+".")
	}
	if len(failed) > 0 {
		msg := plural(len(failed), "request") + " could not be changed: " + strings.Join(failed[:min(len(failed), 3)], "; ")
		if len(failed) > 3 {
			msg += fmt.Sprintf("; and %d more", len(failed)-3)
		}
		u.flash(c, "error", msg)
	}
	return c.Redirect(http.StatusSeeOther, back)
}
