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
	Events    []timelineItem
	NextHref  string
	FirstHref string
	Error     string
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
	for _, ev := range events {
		v.Events = append(v.Events, timelineItem{Event: ev, Details: eventDetails(ev.Details)})
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
