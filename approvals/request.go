// Package approvals is the domain of the sign-up approval server: a person's
// request to join the tenant, the decision a reviewer or a rule takes on it,
// the provisioning of the approved account, and the audit trail of every
// change. It imports only the standard library; storage, Microsoft Graph,
// HTTP and the clock reach it through the interfaces declared here.
package approvals

import (
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"strings"
	"time"
)

// Status is where a request stands in the approval process.
type Status string

// The statuses of a request.
const (
	StatusPending  Status = "pending"
	StatusApproved Status = "approved"
	StatusDenied   Status = "denied"
)

// Statuses lists every status, in the order the UI and counts show them.
var Statuses = []Status{StatusPending, StatusApproved, StatusDenied}

// Valid reports whether s is one of the known statuses.
func (s Status) Valid() bool {
	return s == StatusPending || s == StatusApproved || s == StatusDenied
}

// ProvisioningState is how far the creation of the account has gone.
type ProvisioningState string

// The provisioning states of a request.
const (
	ProvisioningNotStarted ProvisioningState = "not_started"
	ProvisioningInProgress ProvisioningState = "in_progress"
	ProvisioningSucceeded  ProvisioningState = "succeeded"
	ProvisioningFailed     ProvisioningState = "failed"
	// ProvisioningByEntra marks auto-approved sign-ups: Entra created the
	// account itself after the connector answered Continue.
	ProvisioningByEntra ProvisioningState = "by_entra"
)

// ProvisioningMethod is the Microsoft Graph path used to create the account.
type ProvisioningMethod string

// The provisioning methods.
const (
	// MethodCreateUser is POST /users with a Guest identities[] entry, for
	// Google, Facebook and email one-time-passcode people.
	MethodCreateUser ProvisioningMethod = "create_user"
	// MethodInvitation is POST /invitations then PATCH /users/{id}, for Entra
	// ID and Microsoft-account people.
	MethodInvitation ProvisioningMethod = "invitation"
)

// Source says how a request entered the system.
type Source string

// The sources of a request.
const (
	// SourceSignUp is a request recorded by the Entra API connector.
	SourceSignUp Source = "signup"
	// SourceInvitation is a line-of-business invitation made through the API
	// or the reviewer UI.
	SourceInvitation Source = "invitation"
	// SourceExternalID is a request recorded by an Entra External ID
	// custom authentication extension (OnAttributeCollectionSubmit) in an
	// external tenant. Entra creates the account itself when the person
	// signs up again after approval: it is never provisioned through Graph.
	SourceExternalID Source = "external_id"
)

// Identity is the federated identity Entra sends for Google, Facebook and
// email one-time-passcode users. Entra ID and Microsoft-account users have
// none.
type Identity struct {
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuer_assigned_id"`
}

// Well-known identity issuers, in the spelling Graph stores.
const (
	IssuerGoogle   = "google.com"
	IssuerFacebook = "facebook.com"
	IssuerMail     = "mail"
)

// NormalizeIssuer maps the spellings Entra and its documentation use for the
// same identity provider onto one: "facebook" and "Facebook.com" both become
// "facebook.com". Unknown issuers are only trimmed and lower-cased.
func NormalizeIssuer(issuer string) string {
	s := strings.ToLower(strings.TrimSpace(issuer))
	switch s {
	case "google", "google.com":
		return IssuerGoogle
	case "facebook", "facebook.com":
		return IssuerFacebook
	case "mail", "email":
		return IssuerMail
	}
	return s
}

// CreatesUserDirectly reports whether an account for this identity is made
// with POST /users (Google, Facebook, email OTP) rather than an invitation.
// A nil identity (Entra ID and Microsoft-account users) is invited.
func (id *Identity) CreatesUserDirectly() bool {
	if id == nil {
		return false
	}
	switch NormalizeIssuer(id.Issuer) {
	case IssuerGoogle, IssuerFacebook, IssuerMail:
		return true
	}
	return false
}

// Request is one person's request to get an account in the tenant.
type Request struct {
	ID          string    `json:"id"`
	Source      Source    `json:"source,omitempty"`
	Email       string    `json:"email"`
	DisplayName string    `json:"display_name,omitempty"`
	Identity    *Identity `json:"identity,omitempty"`
	// Claims holds every claim Entra sent other than email and identities,
	// under the names Entra used: built-in Graph user properties and
	// extension_<appId>_<Name> custom attributes. Values are JSON scalars
	// (string, bool or float64).
	Claims map[string]any `json:"claims,omitempty"`
	Locale string         `json:"locale,omitempty"`
	// Application is the application the person was signing up for, when
	// Entra names it (External ID's clientServicePrincipal): the approved
	// email can send the person back to it.
	Application *Application `json:"application,omitempty"`
	// Invitation is what a line-of-business invitation asked for; nil for
	// sign-ups.
	Invitation *InvitationOptions `json:"invitation,omitempty"`
	Status     Status             `json:"status"`
	CreatedAt  time.Time          `json:"created_at"`
	UpdatedAt  time.Time          `json:"updated_at"`
	// Decision is nil while the request is pending and has never been
	// decided.
	Decision     *Decision    `json:"decision,omitempty"`
	Provisioning Provisioning `json:"provisioning"`
	// Version increases by one with every stored change.
	Version uint64 `json:"version"`
}

// Application names an application people sign up for.
type Application struct {
	// ID is the application (client) id.
	ID          string `json:"id"`
	DisplayName string `json:"display_name,omitempty"`
}

// Key returns the request's person key: PersonKey, or ExternalIDPersonKey
// for a request from an external tenant.
func (r *Request) Key() string { return PersonKeyIn(r.Source, r.Email, r.Identity) }

// PersonKeyIn returns the person key of a sign-up that entered through
// source: ExternalIDPersonKey for SourceExternalID, PersonKey otherwise.
func PersonKeyIn(source Source, email string, id *Identity) string {
	if source == SourceExternalID {
		return ExternalIDPersonKey(email)
	}
	return PersonKey(email, id)
}

// ExternalIDPersonKey is the person key of a sign-up in an Entra External
// ID external tenant: the lower-cased email alone, in a namespace of its
// own. Two reasons. An external tenant is another directory: a person
// approved there gets an account there (Entra creates it), which does not
// give them one in the workforce tenant, so the same person signing up
// through both contracts has two requests, each decided on its own. And
// the extensions' payloads do not carry the identity reliably (the submit
// call may have no identities at all while the start call has them), but
// always the email Entra verified, so keying on the identity would let the
// start step miss a request the submit step recorded.
func ExternalIDPersonKey(email string) string {
	return "external_id\x00" + asciiLower(strings.TrimSpace(email))
}

// Standing is what the connector's first step needs to know of a person's
// request: enough to answer Entra without reading the whole request, which
// a store can keep beside its person index.
type Standing struct {
	ID           string
	Status       Status
	Provisioning ProvisioningState
}

// Standing returns r's standing.
func (r *Request) Standing() Standing {
	return Standing{ID: r.ID, Status: r.Status, Provisioning: r.Provisioning.State}
}

// Clone returns a deep copy of r, so that a caller may change it without
// touching a value another goroutine holds.
func (r *Request) Clone() *Request {
	if r == nil {
		return nil
	}
	c := *r
	if r.Identity != nil {
		id := *r.Identity
		c.Identity = &id
	}
	if r.Claims != nil {
		c.Claims = make(map[string]any, len(r.Claims))
		for k, v := range r.Claims {
			c.Claims[k] = v
		}
	}
	if r.Decision != nil {
		d := *r.Decision
		c.Decision = &d
	}
	if r.Invitation != nil {
		inv := *r.Invitation
		c.Invitation = &inv
	}
	if r.Application != nil {
		app := *r.Application
		c.Application = &app
	}
	if r.Provisioning.Lease != nil {
		l := *r.Provisioning.Lease
		c.Provisioning.Lease = &l
	}
	c.Provisioning.GroupsDone = append([]string(nil), r.Provisioning.GroupsDone...)
	c.Provisioning.GroupIDs = append([]string(nil), r.Provisioning.GroupIDs...)
	return &c
}

// Decision records who decided on a request, when, and why.
type Decision struct {
	// By is the actor's display form, as the API and exports show it.
	By string `json:"by"`
	// ByID is the actor's stable id: a reviewer's object id, an API key
	// name, or a policy rule name.
	ByID      string    `json:"by_id,omitempty"`
	ActorKind ActorKind `json:"actor_kind,omitempty"`
	At        time.Time `json:"at"`
	Reason    string    `json:"reason,omitempty"`
	// ShareReason is the reviewer's choice to tell the person why their
	// request was denied: only then does the denied email carry Reason.
	ShareReason bool `json:"share_reason,omitempty"`
	Automatic   bool `json:"automatic"`
}

// Provisioning is the state of the account creation for an approved
// request. It doubles as the durable job: the store keeps an index of
// requests whose provisioning is in progress, ordered by NextAttemptAt.
type Provisioning struct {
	State     ProvisioningState  `json:"state"`
	Method    ProvisioningMethod `json:"method,omitempty"`
	UserID    string             `json:"user_id,omitempty"`
	Attempts  int                `json:"attempts"`
	LastError string             `json:"last_error,omitempty"`
	// RequestID is Graph's request-id of the call that produced LastError.
	RequestID string `json:"graph_request_id,omitempty"`
	// GraphStatus and GraphCode are Graph's HTTP status and error code of
	// that call, when Graph answered; FailedGroupID the group it was
	// adding the user to, when that was the step.
	GraphStatus   int    `json:"graph_status,omitempty"`
	GraphCode     string `json:"graph_code,omitempty"`
	FailedGroupID string `json:"failed_group_id,omitempty"`
	// Step is the last Graph step completed, so that a restarted worker
	// resumes after it instead of repeating it.
	Step ProvisioningStep `json:"step,omitempty"`
	// GroupIDs are groups this request's user is added to besides the
	// configured ones, such as those asked for in a line-of-business
	// invitation.
	GroupIDs []string `json:"group_ids,omitempty"`
	// GroupsDone lists the group ids the user was already added to.
	GroupsDone []string `json:"groups_done,omitempty"`
	// RedeemURL is the invitation's redeem link, when an invitation was
	// made.
	RedeemURL     string    `json:"redeem_url,omitempty"`
	NextAttemptAt time.Time `json:"next_attempt_at,omitempty"`
	// Deadline bounds the retries of transient failures.
	Deadline time.Time `json:"deadline,omitempty"`
	// Lease is the claim of the worker running the job, set by
	// JobQueue.ClaimJobs; nil when no worker holds it. The transitions
	// that end or reschedule an attempt clear it.
	Lease *Lease `json:"lease,omitempty"`
}

// ProvisioningStep names the last completed step of a provisioning job.
type ProvisioningStep string

// The steps of a provisioning job, in order.
const (
	StepNone       ProvisioningStep = ""
	StepLookedUp   ProvisioningStep = "looked_up"
	StepCreated    ProvisioningStep = "created"    // user created or invitation made: UserID known
	StepAttributes ProvisioningStep = "attributes" // attributes written
	StepGroups     ProvisioningStep = "groups"     // every group added
)

// Pending reports whether the provisioning job is waiting for a worker.
func (p Provisioning) Pending() bool { return p.State == ProvisioningInProgress }

// NewID returns a new request id: the creation time in nanoseconds and 48
// random bits, in 24 lower-case hex digits, so that ids sort by creation
// time and cannot be guessed from one another.
func NewID(now time.Time) string {
	var b [12]byte
	binary.BigEndian.PutUint64(b[:8], uint64(now.UnixNano()))
	_, _ = rand.Read(b[8:]) // crypto/rand.Read never fails on supported platforms
	return hex.EncodeToString(b[:])
}
