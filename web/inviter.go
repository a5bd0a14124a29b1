package web

import (
	"context"

	"github.com/approvals-dev/approvals/approvals"
)

// Inviter is the line-of-business invite flow as the UI needs it: look
// people up in the tenant, then invite them and record the invitation. The
// admin API (package web/api) runs the same flow for POST
// /api/v1/invitations over Microsoft Graph; cmd adapts it to this
// interface. Tests use a fake.
type Inviter interface {
	// Lookup returns the directory users whose mail, other mails or
	// identities match email; none is not an error.
	Lookup(ctx context.Context, email string) ([]DirectoryUser, error)
	// Invite invites the person (or, with ExistingUserID, uses the
	// existing user), writes the attributes, adds the groups and records
	// the user as a request of source invitation. Errors with code
	// EInvalid or EConflict are shown to the admin as they are. When a
	// step after the invitation fails, it returns the result so far (with
	// RequestID, whose provisioning then shows the failure and can be
	// retried) together with the error.
	Invite(ctx context.Context, in InviteInput) (InviteResult, error)
}

// DirectoryUser is a user found in the tenant.
type DirectoryUser struct {
	ID                string `json:"id"`
	DisplayName       string `json:"display_name,omitempty"`
	Mail              string `json:"mail,omitempty"`
	UserPrincipalName string `json:"user_principal_name,omitempty"`
	// UserType is "Member" or "Guest".
	UserType string `json:"user_type,omitempty"`
}

// InviteInput is an invitation an admin asked for.
type InviteInput struct {
	Email       string
	DisplayName string
	// RedirectURL is where the guest lands after redeeming.
	RedirectURL           string
	SendInvitationMessage bool
	// Message is added to Microsoft's invitation email.
	Message  string
	GroupIDs []string
	// Attributes are Graph user properties and extension_<appId>_<Name>
	// attributes to write on the user.
	Attributes map[string]any
	// ExistingUserID, when set, skips the invitation: the attributes and
	// groups are written to this existing directory user.
	ExistingUserID string
	// By is who asked; it is recorded in the audit trail.
	By approvals.Actor
}

// InviteResult is the outcome of an invitation.
type InviteResult struct {
	// UserID is the directory object id of the invited or existing user.
	UserID string
	// RedeemURL is the invitation's redemption link; empty for an existing
	// user.
	RedeemURL string
	// RequestID is the request recorded for the person, when there is one.
	RequestID string
}
