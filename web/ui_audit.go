package web

import (
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// auditPageSize is the number of events per audit page.
const auditPageSize = 100

// auditDefaultDays is how far back the audit page starts by default.
const auditDefaultDays = 7

type auditView struct {
	Since     string
	RequestID string
	Events    []auditRow
	NextHref  string
	FirstHref string
	Error     string
}

// auditRow is one event of the audit page with the person it is about:
// Person is nil when the event belongs to no request, or to one that is
// not stored (any more).
type auditRow struct {
	timelineItem
	Person *approvals.Request
	Href   string // the request page, returning here
}

func (u *UI) audit(c echo.Context) error {
	v := &auditView{Since: c.QueryParam("since"), RequestID: strings.TrimSpace(c.QueryParam("request"))}
	if v.Since == "" {
		v.Since = u.clock.Now().UTC().AddDate(0, 0, -auditDefaultDays).Format(dateLayout)
	}
	since, err := parseDay(v.Since)
	if err != nil {
		v.Error = "Enter the first day as yyyy-mm-dd."
		return u.showAudit(c, http.StatusBadRequest, v)
	}
	var after uint64
	if a := c.QueryParam("after"); a != "" {
		if after, err = strconv.ParseUint(a, 10, 64); err != nil {
			v.Error = "This page link is out of date; start again from the first page."
			return u.showAudit(c, http.StatusBadRequest, v)
		}
	}
	events, next, err := u.store.Audit(c.Request().Context(), approvals.AuditQuery{Since: since, RequestID: v.RequestID, AfterSeq: after, Limit: auditPageSize})
	if err != nil {
		return err
	}
	link := func(after uint64) string {
		q := url.Values{"since": {v.Since}}
		if v.RequestID != "" {
			q.Set("request", v.RequestID)
		}
		if after != 0 {
			q.Set("after", strconv.FormatUint(after, 10))
		}
		return "/audit?" + q.Encode()
	}
	self := link(after)
	people := map[string]*approvals.Request{}
	for _, ev := range events {
		row := auditRow{timelineItem: timelineItem{Event: ev, Details: eventDetails(ev.Details)}}
		if id := ev.RequestID; id != "" {
			r, seen := people[id]
			if !seen {
				// At most auditPageSize reads: one per request on the page.
				r, err = u.store.Get(c.Request().Context(), id)
				if err != nil && approvals.Code(err) != approvals.ENotFound {
					return err
				}
				people[id] = r
			}
			row.Person, row.Href = r, requestHref(id, self)
		}
		v.Events = append(v.Events, row)
	}
	if next != 0 {
		v.NextHref = link(next)
	}
	if after != 0 {
		v.FirstHref = link(0)
	}
	return u.showAudit(c, http.StatusOK, v)
}

func (u *UI) showAudit(c echo.Context, status int, v *auditView) error {
	p := u.newPage(c, "Audit trail", "audit")
	p.Data = v
	return u.render(c, status, "audit", p)
}
