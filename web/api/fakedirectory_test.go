package api

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
)

// fakeDirectory is an Inviter over an in-memory tenant that holds the
// Graph contract (shared/CONTRACT.md §3) rather than accepting anything:
// emails with + # ! $ % & * and non-absolute redirect URLs are refused,
// re-inviting an address returns the same guest, unknown user properties
// and unknown objects fail as Graph fails them, and adding a member twice
// is not an error.
type fakeDirectory struct {
	mu     sync.Mutex
	users  map[string]*fakeUser // by id
	groups map[string][]string  // group id -> member ids
	next   int
	calls  []string

	// Failures to inject.
	failLookup  *InviteError
	failInvite  error
	failPatch   *InviteError
	failGroupID string // adding to this group fails with 403
}

type fakeUser struct {
	DirectoryUser
	OtherMails []string
	Attributes map[string]any
	RedeemURL  string
}

func newFakeDirectory(groupIDs ...string) *fakeDirectory {
	d := &fakeDirectory{users: map[string]*fakeUser{}, groups: map[string][]string{}}
	for _, g := range groupIDs {
		d.groups[g] = nil
	}
	return d
}

// addUser puts an existing user in the tenant.
func (d *fakeDirectory) addUser(id, mail, userType string, otherMails ...string) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.users[id] = &fakeUser{DirectoryUser: DirectoryUser{ID: id, Mail: mail, DisplayName: "User " + mail,
		UserPrincipalName: strings.ReplaceAll(mail, "@", "_") + "#EXT#@contoso.onmicrosoft.com", UserType: userType},
		OtherMails: otherMails, Attributes: map[string]any{}}
}

func graphErr(step InviteStep, status int, code, msg string) *InviteError {
	return &InviteError{Step: step, Status: status, Code: code, Message: msg, RequestID: fmt.Sprintf("req-%s-%d", step, status)}
}

func (d *fakeDirectory) Lookup(ctx context.Context, email string) ([]DirectoryUser, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.calls = append(d.calls, "lookup "+email)
	if d.failLookup != nil {
		return nil, d.failLookup
	}
	var out []DirectoryUser
	for _, u := range d.users {
		if strings.EqualFold(u.Mail, email) || slices.ContainsFunc(u.OtherMails, func(m string) bool { return strings.EqualFold(m, email) }) {
			out = append(out, u.DirectoryUser)
		}
	}
	slices.SortFunc(out, func(a, b DirectoryUser) int { return strings.Compare(a.ID, b.ID) })
	return out, nil
}

func (d *fakeDirectory) Invite(ctx context.Context, in InviteInput) (InviteResult, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	var res InviteResult
	var u *fakeUser
	if in.ExistingUserID != "" {
		if u = d.users[in.ExistingUserID]; u == nil {
			return res, graphErr(InviteStepAttributes, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", in.ExistingUserID))
		}
		res.UserID = u.ID
	} else {
		d.calls = append(d.calls, "invite "+in.Email)
		if strings.ContainsAny(in.Email, "+#!$%&*") {
			return res, graphErr(InviteStepInvite, 400, "BadRequest", "The invited user email address is invalid.")
		}
		if ru, err := url.Parse(in.RedirectURL); err != nil || !ru.IsAbs() {
			return res, graphErr(InviteStepInvite, 400, "BadRequest", "The invite redirect URL is invalid.")
		}
		if in.Message != "" && !in.SendInvitationMessage {
			return res, fmt.Errorf("fake Graph: a message without sendInvitationMessage would be silently dropped")
		}
		if d.failInvite != nil {
			return res, d.failInvite
		}
		for _, existing := range d.users {
			if strings.EqualFold(existing.Mail, in.Email) {
				u = existing // Graph re-invites the same guest
			}
		}
		if u == nil {
			d.next++
			id := fmt.Sprintf("%08d-0000-4000-8000-%012d", d.next, d.next)
			u = &fakeUser{DirectoryUser: DirectoryUser{ID: id, Mail: in.Email, DisplayName: in.DisplayName,
				UserPrincipalName: strings.ReplaceAll(in.Email, "@", "_") + "#EXT#@contoso.onmicrosoft.com", UserType: "Guest"},
				Attributes: map[string]any{}}
			u.RedeemURL = "https://login.microsoftonline.com/redeem?rd=" + url.QueryEscape(id)
			d.users[id] = u
		}
		res.UserID, res.RedeemURL = u.ID, u.RedeemURL
	}
	if len(in.Attributes) > 0 {
		d.calls = append(d.calls, "patch "+u.ID)
		if d.failPatch != nil {
			return res, d.failPatch
		}
		for k := range in.Attributes {
			if !graphAttribute(k) {
				return res, graphErr(InviteStepAttributes, 400, "Request_BadRequest", fmt.Sprintf("Property '%s' does not exist on type 'microsoft.graph.user'.", k))
			}
		}
		for k, v := range in.Attributes {
			u.Attributes[k] = v
		}
	}
	res.AttributesWritten = true
	for _, g := range in.GroupIDs {
		d.calls = append(d.calls, "group "+g)
		members, ok := d.groups[g]
		if !ok {
			e := graphErr(InviteStepGroups, 404, "Request_ResourceNotFound", fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", g))
			e.GroupID = g
			return res, e
		}
		if g == d.failGroupID {
			e := graphErr(InviteStepGroups, 403, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")
			e.GroupID = g
			return res, e
		}
		if !slices.Contains(members, u.ID) {
			d.groups[g] = append(members, u.ID)
		}
		res.GroupsAdded = append(res.GroupsAdded, g)
	}
	return res, nil
}

func (d *fakeDirectory) members(g string) []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.groups[g])
}

func (d *fakeDirectory) callLog() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return slices.Clone(d.calls)
}
