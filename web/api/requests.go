package api

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// requestView is a request as the API shows it (SPEC "A request, as the
// API shows it"), plus a few read-only extras. Internal bookkeeping of the
// provisioning job (step, groups done, retry deadline) stays hidden.
type requestView struct {
	ID           string           `json:"id"`
	Source       approvals.Source `json:"source,omitempty"`
	Email        string           `json:"email"`
	DisplayName  string           `json:"display_name"`
	Identity     *identityView    `json:"identity"`
	Claims       map[string]any   `json:"claims"`
	Locale       string           `json:"locale"`
	Status       approvals.Status `json:"status"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
	Decision     *decisionView    `json:"decision"`
	Provisioning provisioningView `json:"provisioning"`
	Version      uint64           `json:"version"`
	// History is set by GET /requests/{id} only.
	History          []eventView `json:"history,omitempty"`
	HistoryTruncated bool        `json:"history_truncated,omitempty"`
}

type identityView struct {
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuer_assigned_id"`
}

type decisionView struct {
	By        string              `json:"by"`
	ByID      string              `json:"by_id,omitempty"`
	ActorKind approvals.ActorKind `json:"actor_kind,omitempty"`
	At        time.Time           `json:"at"`
	Reason    string              `json:"reason"`
	// ShareReason: the reason is told to the person (denied email).
	ShareReason bool `json:"share_reason"`
	Automatic   bool `json:"automatic"`
}

type provisioningView struct {
	State          approvals.ProvisioningState  `json:"state"`
	Method         approvals.ProvisioningMethod `json:"method,omitempty"`
	UserID         string                       `json:"user_id,omitempty"`
	Attempts       int                          `json:"attempts"`
	LastError      string                       `json:"last_error,omitempty"`
	GraphRequestID string                       `json:"graph_request_id,omitempty"`
	RedeemURL      string                       `json:"redeem_url,omitempty"`
	NextAttemptAt  *time.Time                   `json:"next_attempt_at,omitempty"`
}

func viewOf(r *approvals.Request) requestView {
	v := requestView{
		ID: r.ID, Source: r.Source, Email: r.Email, DisplayName: r.DisplayName,
		Claims: r.Claims, Locale: r.Locale, Status: r.Status,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: r.Version,
	}
	if v.Claims == nil {
		v.Claims = map[string]any{}
	}
	if r.Identity != nil {
		v.Identity = &identityView{Issuer: r.Identity.Issuer, IssuerAssignedID: r.Identity.IssuerAssignedID}
	}
	if d := r.Decision; d != nil {
		v.Decision = &decisionView{By: d.By, ByID: d.ByID, ActorKind: d.ActorKind, At: d.At.UTC(), Reason: d.Reason, ShareReason: d.ShareReason, Automatic: d.Automatic}
	}
	p := r.Provisioning
	v.Provisioning = provisioningView{
		State: p.State, Method: p.Method, UserID: p.UserID, Attempts: p.Attempts,
		LastError: p.LastError, GraphRequestID: p.RequestID, RedeemURL: p.RedeemURL,
	}
	if v.Provisioning.State == "" {
		v.Provisioning.State = approvals.ProvisioningNotStarted
	}
	if p.State == approvals.ProvisioningInProgress && !p.NextAttemptAt.IsZero() {
		t := p.NextAttemptAt.UTC()
		v.Provisioning.NextAttemptAt = &t
	}
	return v
}

// eventView is one audit event.
type eventView struct {
	Seq       uint64            `json:"seq"`
	At        time.Time         `json:"at"`
	Type      string            `json:"type"`
	RequestID string            `json:"request_id,omitempty"`
	Actor     actorView         `json:"actor"`
	Details   map[string]string `json:"details,omitempty"`
}

type actorView struct {
	Kind approvals.ActorKind `json:"kind"`
	ID   string              `json:"id"`
	Name string              `json:"name,omitempty"`
}

func eventViewOf(ev approvals.Event) eventView {
	return eventView{
		Seq: ev.Seq, At: ev.At.UTC(), Type: string(ev.Type), RequestID: ev.RequestID,
		Actor:   actorView{Kind: ev.Actor.Kind, ID: ev.Actor.ID, Name: ev.Actor.Name},
		Details: ev.Details,
	}
}

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
func (s *server) approve(c echo.Context) error {
	reason, err := s.decisionReason(c, false)
	if err != nil {
		return err
	}
	r, err := s.svc.Approve(c.Request().Context(), c.Param("id"), actorOf(c), reason)
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
func (s *server) reopen(c echo.Context) error {
	reason, err := s.decisionReason(c, false)
	if err != nil {
		return err
	}
	r, err := s.svc.Reopen(c.Request().Context(), c.Param("id"), actorOf(c), reason)
	if err != nil {
		return err
	}
	return writeJSON(c, http.StatusOK, viewOf(r))
}

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
