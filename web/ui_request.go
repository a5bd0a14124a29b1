package web

import (
	"cmp"
	"context"
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
	DenyShare             bool
	// Proposed is the decision an email's Approve or Deny link asked for
	// (?decision=): the page shows it ready to confirm; a GET decides
	// nothing.
	Proposed            string
	CanRetry, CanReopen bool
	// Lookalike warns that the address could imitate another one
	// (approvals.LookalikeWarning); "" when it could not.
	Lookalike string
	// Uninvitable says why the person can never be invited
	// (approvals.Request.InvitationProblem); "" when they can.
	Uninvitable string
	// Others are the other requests of the same address, whatever the
	// identity (newest first), from a bounded scan of the most recent
	// requests; OthersPartial says the scan stopped before the oldest.
	// DeniedBefore is the newest of them that was denied, if any.
	Others        []*approvals.Request
	OthersPartial bool
	OthersRead    int
	DeniedBefore  *approvals.Request
	// Deliveries are the request's notifications (ui_deliveries.go).
	Deliveries []*approvals.Delivery
}

// otherRequests returns the other requests of r's address (any identity),
// newest first, reading at most the SearchScanLimit most recent requests.
func (u *UI) otherRequests(ctx context.Context, r *approvals.Request) (scanResult, error) {
	address := approvals.PersonKey(r.Email, nil)
	same := func(o *approvals.Request) bool { return o.ID != r.ID && approvals.PersonKey(o.Email, nil) == address }
	return scan(ctx, u.store, approvals.ListQuery{Order: approvals.NewestFirst}, scanPos{}, approvals.MaxPageSize, maxOtherRequests, u.cfg.SearchScanLimit, same)
}

// maxOtherRequests bounds the request page's list of the person's other
// requests.
const maxOtherRequests = 20

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
		DenyError: denyError, DenyReason: denyReason, DenyShare: c.FormValue("share_reason") != "",
		Proposed:    proposedDecision(c.QueryParam("decision")),
		CanRetry:    s.user.Admin && r.Status == approvals.StatusApproved && r.Provisioning.State == approvals.ProvisioningFailed,
		CanReopen:   s.user.Admin && r.Status == approvals.StatusDenied,
		Lookalike:   approvals.LookalikeWarning(r.Email),
		Uninvitable: r.InvitationProblem(),
	}
	others, err := u.otherRequests(ctx, r)
	if err != nil {
		return err
	}
	v.Others, v.OthersPartial, v.OthersRead = others.Kept, !others.End && len(others.Kept) < maxOtherRequests, others.Read
	for _, o := range v.Others {
		if o.Status == approvals.StatusDenied {
			v.DeniedBefore = o
			break
		}
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

// proposedDecision is the decision a request page link proposes: approve,
// deny, or none for anything else.
func proposedDecision(q string) string {
	switch q {
	case "approve", "deny":
		return q
	}
	return ""
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
	return u.decide(c, "Not approved: ", u.svc.Approve, func(r *approvals.Request) error {
		u.flashLink(c, flash{Kind: "success", Text: "Approved " + who(r) + ". The account is being provisioned.", Link: requestHref(r.ID, ""), LinkText: "View request"})
		return afterAction(c, c.Param("id"))
	})
}

// decide runs do, a decision whose reason is optional, on the request in
// the path with the form's reason, then done with the changed request. A
// reason or a decision the reviewer can fix is flashed after refused
// ("Not approved: ") on the request's page.
func (u *UI) decide(c echo.Context, refused string, do func(ctx context.Context, id string, by approvals.Actor, reason string) (*approvals.Request, error), done func(*approvals.Request) error) error {
	s, _ := sessionOf(c)
	id := c.Param("id")
	reason := strings.TrimSpace(c.FormValue("reason"))
	if err := approvals.CheckReason(reason); err != nil {
		return u.refuse(c, id, refused+approvals.Message(err)+".")
	}
	r, err := do(c.Request().Context(), id, s.user.Actor(), reason)
	if userError(err) {
		return u.refuse(c, id, refused+approvals.Message(err))
	}
	if err != nil {
		return err
	}
	return done(r)
}

// refuse flashes msg, why an action on request id was not done, and goes
// back to the request's page.
func (u *UI) refuse(c echo.Context, id, msg string) error {
	u.flash(c, "error", msg)
	return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
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
	r, err := u.svc.DenySharing(c.Request().Context(), id, s.user.Actor(), reason, c.FormValue("share_reason") != "")
	if userError(err) {
		return u.refuse(c, id, "Not denied: "+approvals.Message(err))
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
		return u.refuse(c, id, "Not retried: "+approvals.Message(err))
	}
	if err != nil {
		return err
	}
	u.flash(c, "success", "Provisioning of "+who(r)+" will be tried again now.")
	return c.Redirect(http.StatusSeeOther, requestHref(id, c.FormValue("return")))
}

func (u *UI) reopen(c echo.Context) error {
	return u.decide(c, "Not reopened: ", u.svc.Reopen, func(r *approvals.Request) error {
		u.flash(c, "success", who(r)+" is back in the queue.")
		return c.Redirect(http.StatusSeeOther, requestHref(c.Param("id"), c.FormValue("return")))
	})
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
