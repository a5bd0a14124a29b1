package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

type auditPage struct {
	Events     []eventView `json:"events"`
	NextCursor string      `json:"next_cursor,omitempty"`
}

// audit is GET /audit?since=&cursor=&limit=&request_id=, oldest first.
func (s *server) audit(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "since", "cursor", "limit", "request_id"); err != nil {
		return err
	}
	since, err := timeParam("since", q.Get("since"))
	if err != nil {
		return err
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		return err
	}
	var after uint64
	if cur := q.Get("cursor"); cur != "" {
		if after, err = strconv.ParseUint(cur, 10, 64); err != nil {
			return invalid("cursor %q is not valid; pass the next_cursor of the previous page", cur)
		}
	}
	evs, next, err := s.store.Audit(c.Request().Context(), approvals.AuditQuery{
		Since: since, RequestID: q.Get("request_id"), AfterSeq: after, Limit: limit,
	})
	if err != nil {
		return err
	}
	out := auditPage{Events: make([]eventView, 0, len(evs))}
	for _, ev := range evs {
		out.Events = append(out.Events, eventViewOf(ev))
	}
	if next != 0 {
		out.NextCursor = strconv.FormatUint(next, 10)
	}
	return writeJSON(c, http.StatusOK, out)
}

// timeParam parses an RFC 3339 time or a date (midnight UTC); empty is the
// zero time.
func timeParam(name, v string) (time.Time, error) {
	if v == "" {
		return time.Time{}, nil
	}
	// An unencoded "+" of a UTC offset arrives as a space.
	v = strings.ReplaceAll(v, " ", "+")
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	if t, err := time.Parse(time.DateOnly, v); err == nil {
		return t, nil
	}
	return time.Time{}, invalid("%s %q is not a time: use RFC 3339 (2026-11-21T09:00:00Z) or a date (2026-11-21)", name, v)
}

// recordAdmin records an administrative action of the caller through the
// service, the one writer of the audit trail. The action has happened
// already, so a failure is logged, not answered.
func (s *server) recordAdmin(c echo.Context, t approvals.EventType, details map[string]string) {
	details["surface"] = approvals.SurfaceAPI
	if err := s.svc.RecordAdminAction(c.Request().Context(), actorOf(c), t, details); err != nil {
		s.log.Error("api: recording audit event", "type", string(t), "error", err)
	}
}
