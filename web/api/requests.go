package api

import (
	"context"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/apiview"
)

// The views of requests and events are shared with the webhooks, which
// send a request exactly as the API shows it (internal/apiview).
type (
	requestView = apiview.Request
	eventView   = apiview.Event
)

func viewOf(r *approvals.Request) requestView { return apiview.Of(r) }

func eventViewOf(ev approvals.Event) eventView { return apiview.EventOf(ev) }

type requestList struct {
	Requests   []requestView `json:"requests"`
	NextCursor string        `json:"next_cursor,omitempty"`
}

// listRequests is GET /requests?status=&limit=&cursor=, newest first.
func (s *server) listRequests(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "status", "limit", "cursor"); err != nil {
		return err
	}
	status := approvals.Status(q.Get("status"))
	if status != "" && !status.Valid() {
		return invalid("status %q is not one of pending, approved, denied", status)
	}
	limit, err := limitParam(q.Get("limit"))
	if err != nil {
		return err
	}
	page, err := s.store.List(c.Request().Context(), approvals.ListQuery{
		Status: status, Order: approvals.NewestFirst, Limit: limit, Cursor: q.Get("cursor"),
	})
	if err != nil {
		return err
	}
	out := requestList{Requests: make([]requestView, 0, len(page.Requests)), NextCursor: page.NextCursor}
	for _, r := range page.Requests {
		out.Requests = append(out.Requests, viewOf(r))
	}
	return writeJSON(c, http.StatusOK, out)
}

// onlyParams refuses query parameters other than the allowed ones, so that
// a misspelt filter does not silently return everything.
func onlyParams(q map[string][]string, allowed ...string) error {
	for k, v := range q {
		ok := false
		for _, a := range allowed {
			ok = ok || k == a
		}
		if !ok {
			return invalid("unknown query parameter %q; this route takes %s", k, strings.Join(allowed, ", "))
		}
		if len(v) > 1 {
			return invalid("query parameter %q is given more than once", k)
		}
	}
	return nil
}

// limitParam parses a page size: empty means the default.
func limitParam(s string) (int, error) {
	if s == "" {
		return approvals.DefaultPageSize, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > approvals.MaxPageSize {
		return 0, invalid("limit %q must be a whole number from 1 to %d", s, approvals.MaxPageSize)
	}
	return n, nil
}

// maxHistory bounds the history GET /requests/{id} returns; the full trail
// is at GET /audit?request_id=.
const maxHistory = 1000

// getRequest is GET /requests/{id}: the request and its history.
func (s *server) getRequest(c echo.Context) error {
	ctx := c.Request().Context()
	r, err := s.store.Get(ctx, c.Param("id"))
	if err != nil {
		return err
	}
	v := viewOf(r)
	v.History = []eventView{}
	var after uint64
	for {
		evs, next, err := s.store.Audit(ctx, approvals.AuditQuery{RequestID: r.ID, AfterSeq: after, Limit: approvals.MaxPageSize})
		if err != nil {
			return err
		}
		for _, ev := range evs {
			if len(v.History) == maxHistory {
				v.HistoryTruncated = true
				break
			}
			v.History = append(v.History, eventViewOf(ev))
		}
		if next == 0 || v.HistoryTruncated {
			break
		}
		after = next
	}
	return writeJSON(c, http.StatusOK, v)
}

// decisionBody is the body of approve, deny and reopen.
type decisionBody struct {
	Reason string `json:"reason"`
	// ShareReason (deny only) tells the person the reason in the denied
	// email.
	ShareReason bool `json:"share_reason"`
}

// maxReason bounds a decision's reason; it is shown in lists and exports.
const maxReason = 2000

func (s *server) decisionReason(c echo.Context, required bool) (string, error) {
	reason, _, err := s.decisionInput(c, required)
	return reason, err
}

// decisionInput reads a decision's body: the checked reason and whether to
// share it with the person.
func (s *server) decisionInput(c echo.Context, required bool) (reason string, share bool, err error) {
	var b decisionBody
	if err := decodeBody(c, &b, true); err != nil {
		return "", false, err
	}
	reason, err = checkDecisionReason(b, required)
	return reason, b.ShareReason, err
}

func checkDecisionReason(b decisionBody, required bool) (string, error) {
	reason := strings.TrimSpace(b.Reason)
	if required && reason == "" {
		return "", invalid("a reason is required: send {\"reason\":\"...\"}")
	}
	if len([]rune(reason)) > maxReason {
		return "", invalid("reason is longer than %d characters", maxReason)
	}
	return reason, nil
}

// approve is POST /requests/{id}/approve. Approving an approved request
// answers it unchanged; no second provisioning job is made.
func (s *server) approve(c echo.Context) error { return s.decide(c, s.svc.Approve) }

// decide runs do, a decision whose reason is optional, on the request in
// the path with the body's reason, and answers the changed request.
func (s *server) decide(c echo.Context, do func(ctx context.Context, id string, by approvals.Actor, reason string) (*approvals.Request, error)) error {
	reason, err := s.decisionReason(c, false)
	if err != nil {
		return err
	}
	r, err := do(c.Request().Context(), c.Param("id"), actorOf(c), reason)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, viewOf(r))
}

// deny is POST /requests/{id}/deny; the reason is required.
func (s *server) deny(c echo.Context) error {
	reason, share, err := s.decisionInput(c, true)
	if err != nil {
		return err
	}
	r, err := s.svc.DenySharing(c.Request().Context(), c.Param("id"), actorOf(c), reason, share)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, viewOf(r))
}

// reopen is POST /requests/{id}/reopen: a denied request goes back to
// pending. Only admins may; every API caller is one.
func (s *server) reopen(c echo.Context) error { return s.decide(c, s.svc.Reopen) }

// retryProvisioning is POST /requests/{id}/retry-provisioning.
func (s *server) retryProvisioning(c echo.Context) error {
	var none struct{}
	if err := decodeBody(c, &none, true); err != nil {
		return err
	}
	r, err := s.svc.RetryProvisioning(c.Request().Context(), c.Param("id"), actorOf(c))
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, viewOf(r))
}
