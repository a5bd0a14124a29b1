package approvals

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Directory is what the domain needs to know of the tenant's directory:
// whether a person is in it already. The provisioner's Microsoft Graph
// adapter implements it.
type Directory interface {
	// LookupPerson returns the directory users whose mail or otherMails is
	// email; none is not an error. It retries throttled and unavailable
	// answers within ctx's deadline.
	LookupPerson(ctx context.Context, email string) ([]DirectoryUser, error)
}

// DirectoryUser is a user the directory has.
type DirectoryUser struct {
	ID                string `json:"id"`
	DisplayName       string `json:"display_name"`
	Mail              string `json:"mail"`
	UserPrincipalName string `json:"user_principal_name"`
	// UserType is "Guest" or "Member".
	UserType string `json:"user_type"`
}

// InvitationOptions are what a line-of-business invitation asked of Graph's
// POST /invitations, kept on its request so that the provisioner (and a
// retry after a failure) makes the invitation asked for.
type InvitationOptions struct {
	// RedirectURL is where the guest lands after redeeming.
	RedirectURL string `json:"redirect_url"`
	// SendMessage lets Microsoft send its invitation email, with Message
	// as its customized text.
	SendMessage bool   `json:"send_message"`
	Message     string `json:"message,omitempty"`
	// ExistingUserID is set when the invitation used a directory user that
	// existed already instead of inviting.
	ExistingUserID string `json:"existing_user_id,omitempty"`
}

// Invitation is a line-of-business application's (or a reviewer's) request
// to invite an external person.
type Invitation struct {
	Email       string
	DisplayName string
	// RedirectURL is where the guest lands after redeeming (an absolute
	// https URL); the Service's InviteRedirectURL when empty.
	RedirectURL string
	// SendInvitationMessage lets Microsoft send its invitation email; the
	// Service's SendInvitationMessage when nil.
	SendInvitationMessage *bool
	// Message is the customized text of Microsoft's email.
	Message string
	// Attributes are Graph user properties (UserProperties) and
	// extension_<appId>_<Name> custom attributes; values are strings,
	// numbers (float64) or booleans.
	Attributes map[string]any
	// GroupIDs are the groups the user is added to (and only these: the
	// groups configured for sign-ups are not).
	GroupIDs []string
	// ExistingUserID, when set, uses this directory user (one that
	// LookupPerson finds for Email) instead of inviting.
	ExistingUserID string
}

// Limits of an invitation, in characters.
const (
	MaxEmailLength       = 254
	MaxDisplayNameLength = 256
	MaxURLLength         = 2048
	MaxMessageLength     = 4000
	MaxInviteItems       = 100
)

// InvitationRefusedChars are the characters Graph's POST /invitations
// refuses in invitedUserEmailAddress (shared/CONTRACT.md section 3, from
// the Graph invitation resource page).
const InvitationRefusedChars = `~!#$%^&*()+=[]{}\/|;:"<>?,`

// InvitationProblem returns why Graph's POST /invitations would refuse
// email, or "" when it would not: a character of InvitationRefusedChars,
// or a local part that starts or ends with "." or "-". A person on the
// invitation path (Identity.CreatesUserDirectly false) with such an
// address can never be provisioned: reviewers see the problem when the
// request arrives, not as a failed provisioning after approval.
func InvitationProblem(email string) string {
	if i := strings.IndexAny(email, InvitationRefusedChars); i >= 0 {
		r, _ := utf8.DecodeRuneInString(email[i:])
		return fmt.Sprintf("the address contains %q, which Microsoft Graph invitations refuse (they refuse any of %s)", r, strings.Join(strings.Split(InvitationRefusedChars, ""), " "))
	}
	at := strings.LastIndexByte(email, '@')
	if at <= 0 {
		return ""
	}
	switch local := email[:at]; {
	case local[0] == '.' || local[0] == '-':
		return fmt.Sprintf("the address starts with %q, which Microsoft Graph invitations refuse", local[:1])
	case local[len(local)-1] == '.' || local[len(local)-1] == '-':
		return fmt.Sprintf("the part before @ ends with %q, which Microsoft Graph invitations refuse", local[len(local)-1:])
	}
	return ""
}

// InvitationProblem returns why r's account could never be made, when r is
// on the invitation path (no identity that creates the user directly) and
// its address is one InvitationProblem refuses; "" otherwise.
func (r *Request) InvitationProblem() string {
	if r.Identity.CreatesUserDirectly() || (r.Invitation != nil && r.Invitation.ExistingUserID != "") {
		return ""
	}
	return InvitationProblem(r.Email)
}

var objectID = regexp.MustCompile(`^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$`)

// IsObjectID reports whether s is a directory object id (a GUID).
func IsObjectID(s string) bool { return objectID.MatchString(s) }

// fieldErrorf returns an EInvalid error naming the field it is about.
func fieldErrorf(field, format string, args ...any) *Error {
	e := Errorf(EInvalid, format, args...)
	e.Field = field
	return e
}

// normalize trims inv and fills in the defaults.
func (inv *Invitation) normalize(redirectURL string, send bool) {
	inv.Email = strings.TrimSpace(inv.Email)
	inv.DisplayName = strings.TrimSpace(inv.DisplayName)
	inv.RedirectURL = strings.TrimSpace(inv.RedirectURL)
	inv.Message = strings.TrimSpace(inv.Message)
	if inv.RedirectURL == "" {
		inv.RedirectURL = redirectURL
	}
	if inv.SendInvitationMessage == nil {
		inv.SendInvitationMessage = &send
	}
	inv.ExistingUserID = strings.ToLower(strings.TrimSpace(inv.ExistingUserID))
	groups := make([]string, 0, len(inv.GroupIDs))
	for _, g := range inv.GroupIDs {
		groups = append(groups, strings.ToLower(strings.TrimSpace(g)))
	}
	inv.GroupIDs = groups
}

// validate checks a normalized invitation. The error, if any, joins one
// *Error per field that is wrong (code EInvalid, Field the admin API's
// JSON name), so that a form can show them all; Code and Message give the
// first.
func (inv *Invitation) validate() error {
	var errs []error
	add := func(field, format string, args ...any) { errs = append(errs, fieldErrorf(field, format, args...)) }
	switch {
	case inv.Email == "":
		add("email", "email is required")
	case utf8.RuneCountInString(inv.Email) > MaxEmailLength:
		add("email", "email is longer than %d characters", MaxEmailLength)
	case ValidateEmail(inv.Email) != nil:
		add("email", "email %q is not a valid email address", inv.Email)
	case InvitationProblem(inv.Email) != "":
		add("email", "email %q cannot be invited: %s; use another address", inv.Email, InvitationProblem(inv.Email))
	}
	if utf8.RuneCountInString(inv.DisplayName) > MaxDisplayNameLength {
		add("display_name", "display_name is longer than %d characters", MaxDisplayNameLength)
	} else if err := CheckText("display_name", inv.DisplayName); err != nil {
		errs = append(errs, err)
	}
	if err := checkClaims(inv.Attributes); err != nil {
		var e *Error
		if errors.As(err, &e) {
			e.Field = "attributes." + e.Field
		}
		errs = append(errs, err)
	}
	if u, err := url.Parse(inv.RedirectURL); err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || len(inv.RedirectURL) > MaxURLLength {
		add("redirect_url", "redirect_url %q must be an absolute https URL of at most %d characters", inv.RedirectURL, MaxURLLength)
	}
	switch {
	case utf8.RuneCountInString(inv.Message) > MaxMessageLength:
		add("message", "message is longer than %d characters", MaxMessageLength)
	case inv.Message != "" && !*inv.SendInvitationMessage:
		add("message", "message is the text of Microsoft's invitation email: set send_invitation_message to true, or leave message out and send your own email with the redeem_url")
	case inv.Message != "" && inv.ExistingUserID != "":
		add("message", "message cannot be used with use_existing_id: an existing user is not invited")
	}
	if inv.ExistingUserID != "" && !IsObjectID(inv.ExistingUserID) {
		add("use_existing_id", "use_existing_id %q is not a user object id (a GUID)", inv.ExistingUserID)
	}
	if len(inv.GroupIDs) > MaxInviteItems {
		add("group_ids", "group_ids has more than %d entries", MaxInviteItems)
	} else {
		for i, g := range inv.GroupIDs {
			if !IsObjectID(g) {
				add("group_ids", "group_ids[%d] %q is not a group object id (a GUID such as 3f2504e0-4f89-41d3-9a0c-0305e82c3301)", i, g)
				break
			}
			if slices.Index(inv.GroupIDs, g) != i {
				add("group_ids", "group_ids lists %s twice", g)
				break
			}
		}
	}
	if len(inv.Attributes) > MaxInviteItems {
		add("attributes", "attributes has more than %d entries", MaxInviteItems)
	} else {
		for _, k := range slices.Sorted(maps.Keys(inv.Attributes)) {
			if err := CheckAttribute(k); err != nil {
				var e *Error
				if errors.As(err, &e) {
					e.Field = "attributes"
				}
				errs = append(errs, err)
				break
			}
			switch inv.Attributes[k].(type) {
			case string, bool, float64:
				continue
			}
			add("attributes", "attributes.%s must be a string, number or boolean", k)
			break
		}
	}
	return errors.Join(errs...)
}

// InviteOutcome is what Service.Invite did.
type InviteOutcome struct {
	// Existing lists the directory users found for the email when the
	// invitation gave no ExistingUserID: nothing was recorded, and the
	// caller chooses one of them or gives up.
	Existing []DirectoryUser
	// Request is the recorded request, as it stood when Invite returned:
	// its provisioning succeeded, failed, or is still in progress (Graph
	// slow or throttled; the provisioner finishes it).
	Request *Request
}

// invitePoll bounds the interval at which Invite looks at the request while
// it waits for the provisioner.
const invitePoll = 250 * time.Millisecond

// Invite records a line-of-business invitation as a request with source
// invitation, approved by by through the state machine with its own
// groups, and waits (until ctx ends) for the provisioner to invite the
// person, write the attributes and add the groups, as it does for any
// approved request.
//
// Before recording anything it checks inv (EInvalid errors naming the
// field) and looks the person up in the directory: when the person is
// there and inv has no ExistingUserID, it returns the matches in
// InviteOutcome.Existing and records nothing. A person who already has a
// request here gets EConflict naming it. When ctx ends first, the request
// is returned as it stands, still in progress, without error.
func (s *Service) Invite(ctx context.Context, inv Invitation, by Actor) (out InviteOutcome, err error) {
	defer wrap(&err, "Invite")
	if s.Directory == nil {
		return out, Errorf(EUnavailable, "invitations are not configured on this server (no Microsoft Graph credentials)")
	}
	if err := s.CheckInvitation(&inv); err != nil {
		return out, err
	}
	matches, err := s.Directory.LookupPerson(ctx, inv.Email)
	if err != nil {
		return out, err
	}
	if inv.ExistingUserID == "" && len(matches) > 0 {
		out.Existing = matches
		return out, nil
	}
	if inv.ExistingUserID != "" && !slices.ContainsFunc(matches, func(u DirectoryUser) bool { return strings.EqualFold(u.ID, inv.ExistingUserID) }) {
		return out, fieldErrorf("use_existing_id", "use_existing_id %s is not one of the directory users with email %s; look the person up to see them", inv.ExistingUserID, inv.Email)
	}
	// One person is one request, whichever door they came in by: a
	// sign-up with Google or an email passcode has its own key, which
	// Create's check cannot see.
	if other, err := s.requestOfAddress(ctx, inv.Email); err != nil {
		return out, err
	} else if other != nil {
		return out, alreadyRequested(inv.Email, other)
	}
	r, events := s.invitationRequest(inv, by)
	r, created, err := s.Store.Create(ctx, r, events)
	if err != nil {
		return out, err
	}
	if !created {
		return out, alreadyRequested(inv.Email, r)
	}
	if s.Provisioner != nil {
		s.Provisioner.Wake()
	}
	out.Request, err = s.awaitProvisioning(ctx, r)
	return out, err
}

// alreadyRequested is Invite's conflict with the person's request r.
func alreadyRequested(email string, r *Request) error {
	via := "without an identity provider"
	if r.Identity != nil {
		via = "with identity provider " + r.Identity.Issuer
	}
	return Errorf(EConflict, "%s already has request %s (%s, provisioning %s, signed up %s); decide or retry that request instead of inviting again",
		email, r.ID, r.Status, r.Provisioning.State, via)
}

// AddressScanLimit bounds how many of the most recent requests
// requestOfAddress reads: the Store has no index by address.
const AddressScanLimit = 5000

// requestOfAddress returns a request whose address is email's, whatever
// its identity, from the AddressScanLimit most recent requests, or nil.
func (s *Service) requestOfAddress(ctx context.Context, email string) (*Request, error) {
	address := PersonKey(email, nil)
	if r, err := s.Store.FindByPerson(ctx, address); err == nil {
		return r, nil
	} else if Code(err) != ENotFound {
		return nil, err
	}
	q := ListQuery{Order: NewestFirst, Limit: MaxPageSize}
	for read := 0; read < AddressScanLimit; {
		page, err := s.Store.List(ctx, q)
		if err != nil {
			return nil, err
		}
		for _, r := range page.Requests {
			if PersonKey(r.Email, nil) == address {
				return r, nil
			}
		}
		read += len(page.Requests)
		if page.NextCursor == "" || len(page.Requests) == 0 {
			return nil, nil
		}
		q.Cursor = page.NextCursor
	}
	return nil, nil
}

// CheckInvitation trims inv, fills in the Service's defaults and checks it,
// without any directory call. The error joins one *Error (code EInvalid)
// per field that is wrong, with Field set, so that a form can show them
// all; Code and Message give the first.
func (s *Service) CheckInvitation(inv *Invitation) error {
	inv.normalize(s.InviteRedirectURL, s.SendInvitationMessage)
	err := inv.validate()
	if _, bad := FieldErrors(err)["email"]; bad {
		return err
	}
	// The address's own check runs whatever else is wrong, so that the
	// form shows every field's problem at once.
	p, perr := s.Person(inv.Email, nil)
	if perr != nil {
		return errors.Join(err, fieldErrorf("email", "%s", Message(perr)))
	}
	if err == nil {
		inv.Email = p.Email
	}
	return err
}

// FieldErrors returns the message of each *Error in err's tree that names a
// field, by field (the first one per field).
func FieldErrors(err error) map[string]string {
	out := map[string]string{}
	var walk func(error)
	walk = func(err error) {
		if e, ok := err.(*Error); ok && e.Field != "" {
			if _, seen := out[e.Field]; !seen {
				out[e.Field] = e.Message
			}
		}
		switch u := err.(type) {
		case interface{ Unwrap() []error }:
			for _, e := range u.Unwrap() {
				walk(e)
			}
		case interface{ Unwrap() error }:
			if e := u.Unwrap(); e != nil {
				walk(e)
			}
		}
	}
	if err != nil {
		walk(err)
	}
	return out
}

// invitationRequest returns the approved request an invitation records,
// with its audit events.
func (s *Service) invitationRequest(inv Invitation, by Actor) (*Request, []Event) {
	now := s.now()
	r := &Request{
		ID:     NewID(now),
		Source: SourceInvitation, Email: inv.Email, DisplayName: inv.DisplayName,
		Claims: inv.Attributes, Status: StatusPending, CreatedAt: now,
		Invitation: &InvitationOptions{
			RedirectURL: inv.RedirectURL, SendMessage: *inv.SendInvitationMessage, Message: inv.Message,
			ExistingUserID: inv.ExistingUserID,
		},
	}
	recorded := r.event(now, EventInvitationCreated, by, map[string]string{
		"email": inv.Email, "redirect_url": inv.RedirectURL,
		"send_invitation_message": strconv.FormatBool(*inv.SendInvitationMessage),
		"group_ids":               strings.Join(inv.GroupIDs, ","),
	})
	if inv.ExistingUserID != "" {
		recorded = r.event(now, EventInvitationLinked, by, map[string]string{"email": inv.Email, "user_id": inv.ExistingUserID})
	}
	// A new pending request may always be approved.
	approved, _ := r.Approve(by, "invited through the line-of-business invite flow", now, s.deadline())
	r.Provisioning.GroupIDs = inv.GroupIDs
	if inv.ExistingUserID != "" {
		r.Provisioning.UserID, r.Provisioning.Step = inv.ExistingUserID, StepCreated
	}
	return r, []Event{recorded, approved}
}

// awaitProvisioning reads r until its provisioning is no longer in progress
// or ctx ends, and returns it as it then stands.
func (s *Service) awaitProvisioning(ctx context.Context, r *Request) (*Request, error) {
	delay := 10 * time.Millisecond
	for r.Provisioning.State == ProvisioningInProgress {
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return r, nil
		case <-t.C:
		}
		delay = min(delay*2, invitePoll)
		cur, err := s.Store.Get(context.WithoutCancel(ctx), r.ID)
		if err != nil {
			return r, err
		}
		r = cur
	}
	return r, nil
}

// DirectoryError is a directory call that failed, as the Directory adapter
// reports it.
type DirectoryError struct {
	Failure
	// Transient is true when trying again later may succeed (throttling,
	// Graph unavailable); RetryAfter is Graph's Retry-After, when sent.
	Transient  bool
	RetryAfter time.Duration
	// Err is the adapter's own error.
	Err error
}

// Error implements error.
func (e *DirectoryError) Error() string { return e.Cause }

// Unwrap returns the adapter's error.
func (e *DirectoryError) Unwrap() error { return e.Err }
