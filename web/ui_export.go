package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
)

const dateLayout = "2006-01-02"

type exportView struct {
	Status, Since, Until, Format string
	Error                        string
}

func (u *UI) exportForm(c echo.Context) error {
	return u.showExport(c, http.StatusOK, &exportView{Format: string(export.CSV)})
}

func (u *UI) showExport(c echo.Context, status int, v *exportView) error {
	p := u.newPage(c, "Export decisions", "export")
	p.Data = v
	return u.render(c, status, "export", p)
}

// parseDay reads a yyyy-mm-dd date as midnight UTC; empty is the zero time.
func parseDay(s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	return time.Parse(dateLayout, s)
}

// exportDownload streams the decisions the form selected. Until is
// inclusive in the form (the whole day) and exclusive in the query.
func (u *UI) exportDownload(c echo.Context) error {
	v := &exportView{Status: c.QueryParam("status"), Since: c.QueryParam("since"), Until: c.QueryParam("until"), Format: c.QueryParam("format")}
	f, err := export.ParseFormat(v.Format)
	if err != nil {
		v.Error = approvals.Message(err)
		return u.showExport(c, http.StatusBadRequest, v)
	}
	q := approvals.DecisionQuery{Status: approvals.Status(v.Status)}
	if q.Status != "" && q.Status != approvals.StatusApproved && q.Status != approvals.StatusDenied {
		v.Error = "Choose approved, denied or all decisions."
		return u.showExport(c, http.StatusBadRequest, v)
	}
	since, err1 := parseDay(v.Since)
	until, err2 := parseDay(v.Until)
	if err1 != nil || err2 != nil {
		v.Error = "Enter dates as yyyy-mm-dd."
		return u.showExport(c, http.StatusBadRequest, v)
	}
	if !until.IsZero() {
		until = until.AddDate(0, 0, 1)
	}
	if !since.IsZero() && !until.IsZero() && !since.Before(until) {
		v.Error = "The first day must not be after the last day."
		return u.showExport(c, http.StatusBadRequest, v)
	}
	q.Since, q.Until = since, until
	s, _ := sessionOf(c)
	name := "decisions-" + u.clock.Now().UTC().Format("20060102-150405") + "." + string(f)
	h := c.Response().Header()
	h.Set("Content-Type", f.ContentType())
	h.Set("Content-Disposition", `attachment; filename="`+name+`"`)
	h.Set("Cache-Control", "no-store")
	c.Response().WriteHeader(http.StatusOK)
	n, err := export.Decisions(c.Request().Context(), c.Response(), u.store, q, f, nil)
	// The trail records the filters as the API takes them: until is
	// exclusive there, so the day after the form's last day.
	details := map[string]string{"surface": approvals.SurfaceUI, "format": string(f), "rows": strconv.Itoa(n), "status": string(q.Status)}
	if !since.IsZero() {
		details["since"] = since.Format(dateLayout)
	}
	if !until.IsZero() {
		details["until"] = until.Format(dateLayout)
	}
	event := approvals.EventDecisionsExported
	if err != nil {
		// The status line is gone: the truncated file is all we can do,
		// and the trail says that part of it left.
		u.log.Error("web: export failed midway", "rows", n, "err", err)
		event = approvals.EventDecisionsExportFailed
	} else {
		u.log.Info("web: decisions exported", "by", s.user.OID, "rows", n, "format", f, "status", q.Status, "since", v.Since, "until", v.Until)
	}
	if err := u.svc.RecordAdminAction(c.Request().Context(), s.user.Actor(), event, details); err != nil {
		u.log.Error("web: recording the export in the audit trail", "err", err)
	}
	return nil
}
