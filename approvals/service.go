package approvals

import (
	"context"
	"errors"
	"net/mail"
	"strings"
	"time"
)

// SignUp is what Entra tells us about a person signing up, already decoded
// from the connector's wire format.
type SignUp struct {
	Email       string
	DisplayName string
	Identity    *Identity
	// Claims are every other claim, keyed by Graph user property names and
	// extension_<appId>_<Name>.
	Claims map[string]any
	Locale string
	// Application is the application the person was signing up for, when
	// the caller knows it.
	Application *Application
	// Source is where the sign-up came from: SourceSignUp (the workforce
	// API connector) when empty, or SourceExternalID.
	Source Source
}

func (su SignUp) source() Source {
	if su.Source == "" {
		return SourceSignUp
	}
	return su.Source
}

// Policy decides some sign-ups without a reviewer, by email domain.
type Policy struct {
	// AutoApproveDomains and AutoDenyDomains are lower-case email domains.
	// A domain matches itself and its subdomains. Deny wins over approve.
	AutoApproveDomains []string
	AutoDenyDomains    []string
}

// Decide returns the status a policy rule gives to a new sign-up with this
// email, and the rule's name; pending and "" when no rule matches.
func (p Policy) Decide(email string) (Status, string) {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return StatusPending, ""
	}
	domain := strings.ToLower(strings.TrimSpace(email[at+1:]))
	if d := matchDomain(domain, p.AutoDenyDomains); d != "" {
		return StatusDenied, "auto-deny-domain:" + d
	}
	if d := matchDomain(domain, p.AutoApproveDomains); d != "" {
		return StatusApproved, "auto-approve-domain:" + d
	}
	return StatusPending, ""
}

func matchDomain(domain string, list []string) string {
	for _, d := range list {
		if domain == d || strings.HasSuffix(domain, "."+d) {
			return d
		}
	}
	return ""
}

// Provisioner runs the provisioning jobs that approvals enqueue in the
// store.
type Provisioner interface {
	// Wake tells the provisioner a job is due now, so that it need not wait
	// for its next poll.
	Wake()
}

// DefaultProvisioningDeadline bounds how long transient provisioning
// failures are retried before the job is marked failed.
const DefaultProvisioningDeadline = 24 * time.Hour

// Service carries out the use cases of the approval process on a Store. It
// is safe for concurrent use.
type Service struct {
	Store  Store
	Clock  Clock
	Policy Policy
	// Provisioner is woken after each approval; it may be nil.
	Provisioner Provisioner
	// ProvisioningDeadline defaults to DefaultProvisioningDeadline.
	ProvisioningDeadline time.Duration
	// Directory looks people up before an invitation; Invite answers
	// EUnavailable when it is nil.
	Directory Directory
	// InviteRedirectURL and SendInvitationMessage are an invitation's
	// defaults (APPROVALS_INVITE_REDIRECT_URL,
	// APPROVALS_SEND_INVITATION_MESSAGE).
	InviteRedirectURL     string
	SendInvitationMessage bool
	// Unicode is the person rule's Unicode half (NFC, IDNA); ASCIIOnly
	// when nil. cmd gives internal/unitext.Rules.
	Unicode Unicode
}

// Person returns the canonical identity of a person (NewPerson with the
// Service's Unicode rule). Every look-up and request goes through it.
func (s *Service) Person(email string, id *Identity) (Person, error) {
	return NewPerson(email, id, s.Unicode)
}

func (s *Service) now() time.Time {
	if s.Clock == nil {
		return time.Now().UTC()
	}
	return s.Clock.Now().UTC()
}

func (s *Service) deadline() time.Duration {
	if s.ProvisioningDeadline <= 0 {
		return DefaultProvisioningDeadline
	}
	return s.ProvisioningDeadline
}

// CheckStatus returns the standing of the person's request, or an error
// with code ENotFound when the person never asked. It is the connector's
// first step, called on every sign-in.
func (s *Service) CheckStatus(ctx context.Context, email string, id *Identity) (st Standing, err error) {
	return s.CheckStatusIn(ctx, SourceSignUp, email, id)
}

// CheckStatusIn is CheckStatus for a sign-up that enters through source:
// External ID's start step calls it with SourceExternalID, whose requests
// are keyed by ExternalIDPersonKey.
func (s *Service) CheckStatusIn(ctx context.Context, source Source, email string, id *Identity) (st Standing, err error) {
	p, err := s.Person(email, id)
	if err != nil {
		return st, ErrNotFound // an address no request can have
	}
	st, err = s.Store.FindStanding(ctx, PersonKeyIn(source, p.Email, p.Identity))
	if err != nil && err != ErrNotFound { // not found, the common answer, is not worth a formatted message per call
		wrap(&err, "CheckStatus")
	}
	return st, err
}

// RequestApproval records a sign-up, decided by policy or pending for a
// reviewer. It is idempotent: a second call for the same person (Entra
// retries after 20 s) returns the first request and created=false.
func (s *Service) RequestApproval(ctx context.Context, su SignUp) (r *Request, created bool, err error) {
	defer wrap(&err, "RequestApproval")
	if err := ValidateEmail(su.Email); err != nil {
		return nil, false, err
	}
	source := su.source()
	p, err := s.Person(su.Email, su.Identity)
	if err != nil {
		return nil, false, err
	}
	if err := CheckSignUpText(su); err != nil {
		return nil, false, err
	}
	now := s.now()
	r = &Request{
		Source:       source,
		Email:        p.Email,
		DisplayName:  su.DisplayName,
		Identity:     p.Identity,
		Claims:       su.Claims,
		Locale:       su.Locale,
		Application:  su.Application,
		Status:       StatusPending,
		CreatedAt:    now,
		Provisioning: Provisioning{State: ProvisioningNotStarted},
	}
	// Create returns the person's request when there is one (Entra retries
	// after 20 s): no look-up first.
	events := []Event{r.event(now, EventReceived, ConnectorActor, map[string]string{"source": string(source)})}
	if status, rule := s.Policy.Decide(r.Email); status != StatusPending {
		events = append(events, r.decideAutomatically(status, rule, now))
	}
	return s.Store.Create(ctx, r, events)
}

// ValidateEmail checks that email is a single plain address.
func ValidateEmail(email string) error {
	e := strings.TrimSpace(email)
	if e == "" {
		return Errorf(EInvalid, "email is required")
	}
	if PlainAddress(e) {
		return nil
	}
	a, err := mail.ParseAddress(e)
	if err != nil || a.Address != e || a.Name != "" {
		return Errorf(EInvalid, "email %q is not a valid address", email)
	}
	return nil
}

// Approve approves a pending request and enqueues its provisioning.
// Approving an approved request changes nothing and returns it.
func (s *Service) Approve(ctx context.Context, id string, by Actor, reason string) (r *Request, err error) {
	defer wrap(&err, "Approve(%q)", id)
	r, err = s.update(ctx, id, func(r *Request) ([]Event, error) {
		ev, err := r.Approve(by, reason, s.now(), s.deadline())
		return []Event{ev}, err
	})
	if err == nil && s.Provisioner != nil && r.Provisioning.State == ProvisioningInProgress {
		s.Provisioner.Wake()
	}
	return r, err
}

// Deny denies a pending request. The reason is required.
func (s *Service) Deny(ctx context.Context, id string, by Actor, reason string) (r *Request, err error) {
	return s.DenySharing(ctx, id, by, reason, false)
}

// DenySharing denies a pending request like Deny; share records the
// reviewer's choice to tell the person the reason (Decision.ShareReason),
// which the denied email then carries.
func (s *Service) DenySharing(ctx context.Context, id string, by Actor, reason string, share bool) (r *Request, err error) {
	defer wrap(&err, "Deny(%q)", id)
	return s.update(ctx, id, func(r *Request) ([]Event, error) {
		ev, err := r.Deny(by, reason, s.now())
		if err == nil && share {
			r.Decision.ShareReason = true
			ev.Details["share_reason"] = "true"
		}
		return []Event{ev}, err
	})
}

// Reopen puts a denied request back in the queue; only admins may.
func (s *Service) Reopen(ctx context.Context, id string, by Actor, reason string) (r *Request, err error) {
	defer wrap(&err, "Reopen(%q)", id)
	return s.update(ctx, id, func(r *Request) ([]Event, error) {
		ev, err := r.Reopen(by, reason, s.now())
		return []Event{ev}, err
	})
}

// RetryProvisioning re-enqueues a failed provisioning job.
func (s *Service) RetryProvisioning(ctx context.Context, id string, by Actor) (r *Request, err error) {
	defer wrap(&err, "RetryProvisioning(%q)", id)
	r, err = s.update(ctx, id, func(r *Request) ([]Event, error) {
		ev, err := r.RetryProvisioning(by, s.now(), s.deadline())
		return []Event{ev}, err
	})
	if err == nil && s.Provisioner != nil && r.Provisioning.State == ProvisioningInProgress {
		s.Provisioner.Wake()
	}
	return r, err
}

// update runs m in a store transaction; a repeated decision (ErrUnchanged)
// returns the current request without error.
func (s *Service) update(ctx context.Context, id string, m Mutation) (*Request, error) {
	r, err := s.Store.Update(ctx, id, m)
	if errors.Is(err, ErrUnchanged) {
		return r, nil
	}
	return r, err
}

// PlainAddress reports whether s is an address of the everyday form:
// ASCII, a dot-atom local part (letters, digits and !#$%&'*+-/=?^_`{|}~,
// with single dots between runs), '@', and two or more domain labels of
// letters, digits and inner hyphens, the last of letters only. Every such
// address is one net/mail parses back to itself, so ValidateEmail accepts
// it without parsing, and stricter checkers accept it too (the connector's
// fuzz test holds it to the validator package's "email" rule). Anything
// else is not refused by this function: callers fall back to the full
// checks.
func PlainAddress(s string) bool {
	at := strings.IndexByte(s, '@')
	if at <= 0 || at == len(s)-1 {
		return false
	}
	// The local part: atoms of atext separated by single dots.
	prev := byte('.')
	for i := 0; i < at; i++ {
		c := s[i]
		switch {
		case c == '.':
			if prev == '.' {
				return false
			}
		case isAlnum(c) || strings.IndexByte("!#$%&'*+-/=?^_`{|}~", c) >= 0:
		default:
			return false
		}
		prev = c
	}
	if prev == '.' {
		return false
	}
	// The domain: labels of letters, digits and inner hyphens.
	labels, start := 0, at+1
	for i := start; i <= len(s); i++ {
		if i < len(s) && s[i] != '.' {
			if c := s[i]; !isAlnum(c) && c != '-' {
				return false
			}
			continue
		}
		label := s[start:i]
		if label == "" || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		labels++
		start = i + 1
		if i == len(s) { // the last label: letters only
			for j := 0; j < len(label); j++ {
				if c := label[j] | 0x20; c < 'a' || c > 'z' {
					return false
				}
			}
		}
	}
	return labels >= 2
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}
