// Package apiview is how the admin API (web/api) and the webhooks
// (notify) show requests and audit events: one JSON form, one owner.
package apiview

import (
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Request is a request as the admin API and the webhooks show it (SPEC
// "A request, as the API shows it"), plus a few read-only extras. Internal
// bookkeeping of the provisioning job (step, groups done, retry deadline)
// stays hidden.
type Request struct {
	ID           string           `json:"id"`
	Source       approvals.Source `json:"source,omitempty"`
	Email        string           `json:"email"`
	DisplayName  string           `json:"display_name"`
	Identity     *Identity        `json:"identity"`
	Claims       map[string]any   `json:"claims"`
	Locale       string           `json:"locale"`
	Status       approvals.Status `json:"status"`
	CreatedAt    time.Time        `json:"created_at"`
	UpdatedAt    time.Time        `json:"updated_at"`
	Decision     *Decision        `json:"decision"`
	Provisioning Provisioning     `json:"provisioning"`
	Version      uint64           `json:"version"`
	// History is set by GET /requests/{id} only.
	History          []Event `json:"history,omitempty"`
	HistoryTruncated bool    `json:"history_truncated,omitempty"`
}

// Identity is a request's federated identity.
type Identity struct {
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuer_assigned_id"`
}

// Decision is a request's decision.
type Decision struct {
	By        string              `json:"by"`
	ByID      string              `json:"by_id,omitempty"`
	ActorKind approvals.ActorKind `json:"actor_kind,omitempty"`
	At        time.Time           `json:"at"`
	Reason    string              `json:"reason"`
	Automatic bool                `json:"automatic"`
}

// Provisioning is where a request's provisioning is.
type Provisioning struct {
	State          approvals.ProvisioningState  `json:"state"`
	Method         approvals.ProvisioningMethod `json:"method,omitempty"`
	UserID         string                       `json:"user_id,omitempty"`
	Attempts       int                          `json:"attempts"`
	LastError      string                       `json:"last_error,omitempty"`
	GraphRequestID string                       `json:"graph_request_id,omitempty"`
	RedeemURL      string                       `json:"redeem_url,omitempty"`
	NextAttemptAt  *time.Time                   `json:"next_attempt_at,omitempty"`
}

// Of returns the view of r.
func Of(r *approvals.Request) Request {
	v := Request{
		ID: r.ID, Source: r.Source, Email: r.Email, DisplayName: r.DisplayName,
		Claims: r.Claims, Locale: r.Locale, Status: r.Status,
		CreatedAt: r.CreatedAt.UTC(), UpdatedAt: r.UpdatedAt.UTC(), Version: r.Version,
	}
	if v.Claims == nil {
		v.Claims = map[string]any{}
	}
	if r.Identity != nil {
		v.Identity = &Identity{Issuer: r.Identity.Issuer, IssuerAssignedID: r.Identity.IssuerAssignedID}
	}
	if d := r.Decision; d != nil {
		v.Decision = &Decision{By: d.By, ByID: d.ByID, ActorKind: d.ActorKind, At: d.At.UTC(), Reason: d.Reason, Automatic: d.Automatic}
	}
	p := r.Provisioning
	v.Provisioning = Provisioning{
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

// Event is one audit event.
type Event struct {
	Seq       uint64            `json:"seq"`
	At        time.Time         `json:"at"`
	Type      string            `json:"type"`
	RequestID string            `json:"request_id,omitempty"`
	Actor     Actor             `json:"actor"`
	Details   map[string]string `json:"details,omitempty"`
}

// Actor is who caused an event.
type Actor struct {
	Kind approvals.ActorKind `json:"kind"`
	ID   string              `json:"id"`
	Name string              `json:"name,omitempty"`
}

// EventOf returns the view of ev.
func EventOf(ev approvals.Event) Event {
	return Event{
		Seq: ev.Seq, At: ev.At.UTC(), Type: string(ev.Type), RequestID: ev.RequestID,
		Actor:   Actor{Kind: ev.Actor.Kind, ID: ev.Actor.ID, Name: ev.Actor.Name},
		Details: ev.Details,
	}
}
