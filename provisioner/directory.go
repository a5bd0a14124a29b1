package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
)

// DefaultGraphURL is Microsoft Graph v1.0 in the global cloud.
const DefaultGraphURL = "https://graph.microsoft.com/v1.0"

// DefaultGraphTimeout bounds one Graph call.
const DefaultGraphTimeout = 30 * time.Second

// GraphConfig says where Microsoft Graph is and how to reach it.
type GraphConfig struct {
	// URL is the Graph base URL (APPROVALS_GRAPH_URL); DefaultGraphURL when
	// empty. National clouds: https://graph.microsoft.us/v1.0,
	// https://dod-graph.microsoft.us/v1.0,
	// https://microsoftgraph.chinacloudapi.cn/v1.0.
	URL string
	// Credential gets the access tokens; see NewCredential. Tokens are
	// requested for "<scheme>://<host of URL>/.default" and attached to
	// requests for URL's host only.
	Credential azcore.TokenCredential
	// Transport is the HTTP transport under the SDK's middleware;
	// a clone of http.DefaultTransport when nil.
	Transport http.RoundTripper
	// Timeout bounds one call; DefaultGraphTimeout when zero.
	Timeout time.Duration
	// Logger receives one debug line per call; discarded when nil.
	Logger *slog.Logger
	// Metrics registers the Graph call metrics; none when nil. Collectors
	// already registered by another Directory on the same registerer are
	// shared.
	Metrics prometheus.Registerer
	// Clock measures call latency; the system clock when nil.
	Clock approvals.Clock
}

// Directory is the set of Microsoft Graph operations the approval server
// needs, on top of msgraph-sdk-go: finding people, creating guests,
// inviting, writing attributes and adding group members. It is safe for
// concurrent use. Errors from Graph are *GraphError.
type Directory struct {
	client  *graphClient
	base    string
	timeout time.Duration
	log     *slog.Logger
}

// NewDirectory returns a Directory for the Graph at cfg.URL.
//
// The SDK client is built with an explicit middleware list: no retry
// handler (the provisioner's durable retry is the only retry policy, so
// Retry-After is honoured once and a retried body cannot be sent
// mislabelled, kiota-http-go issue 183) and no request compression (the
// bodies are small, and a gzip-labelled plain body is a 400).
func NewDirectory(cfg GraphConfig) (*Directory, error) {
	if cfg.Credential == nil {
		return nil, errors.New("new directory: a credential is required")
	}
	base := strings.TrimRight(cfg.URL, "/")
	if base == "" {
		base = DefaultGraphURL
	}
	u, err := url.Parse(base)
	if err != nil || u.Host == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return nil, fmt.Errorf("new directory: Graph URL %q is not an absolute https URL", cfg.URL)
	}
	scope := u.Scheme + "://" + u.Host + "/.default"
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cfg.Credential, []string{scope}, []string{u.Hostname()})
	if err != nil {
		return nil, fmt.Errorf("new directory: %w", err)
	}
	parent := cfg.Transport
	if parent == nil {
		parent = http.DefaultTransport.(*http.Transport).Clone()
	}
	logger := defaults.Logger(cfg.Logger)
	clock := defaults.Clock(cfg.Clock)
	m, err := newGraphMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new directory: %w", err)
	}
	opts := graphClientOptions()
	middleware := []khttp.Middleware{
		msgraphcore.NewGraphTelemetryHandler(&opts),
		khttp.NewParametersNameDecodingHandler(),
		khttp.NewUserAgentHandler(),
		khttp.NewHeadersInspectionHandler(),
		khttp.NewRedirectHandler(),
	}
	httpClient := &http.Client{
		Transport: khttp.NewCustomTransportWithParentTransport(&instrumented{
			base: parent, basePath: strings.TrimRight(u.EscapedPath(), "/"), metrics: m, log: logger, clock: clock,
		}, middleware...),
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	client, err := newGraphClient(auth, httpClient, base)
	if err != nil {
		return nil, fmt.Errorf("new directory: %w", err)
	}
	timeout := defaults.Positive(cfg.Timeout, DefaultGraphTimeout)
	return &Directory{client: client, base: base, timeout: timeout, log: logger}, nil
}

// DirectoryUser is what the provisioner reads of a directory user.
type DirectoryUser struct {
	ID                string               `json:"id"`
	DisplayName       string               `json:"display_name,omitempty"`
	Mail              string               `json:"mail,omitempty"`
	OtherMails        []string             `json:"other_mails,omitempty"`
	UserPrincipalName string               `json:"user_principal_name,omitempty"`
	UserType          string               `json:"user_type,omitempty"`
	ExternalUserState string               `json:"external_user_state,omitempty"`
	Identities        []approvals.Identity `json:"identities,omitempty"`
}

var userSelect = []string{"id", "displayName", "mail", "otherMails", "userPrincipalName", "userType", "externalUserState", "identities"}

func toDirectoryUser(u models.Userable) DirectoryUser {
	d := DirectoryUser{
		ID:                deref(u.GetId()),
		DisplayName:       deref(u.GetDisplayName()),
		Mail:              deref(u.GetMail()),
		OtherMails:        u.GetOtherMails(),
		UserPrincipalName: deref(u.GetUserPrincipalName()),
		UserType:          deref(u.GetUserType()),
		ExternalUserState: deref(u.GetExternalUserState()),
	}
	for _, id := range u.GetIdentities() {
		if id == nil {
			continue
		}
		d.Identities = append(d.Identities, approvals.Identity{Issuer: deref(id.GetIssuer()), IssuerAssignedID: deref(id.GetIssuerAssignedId())})
	}
	return d
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}

// quote renders s as an OData string literal.
func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// IdentityFilter is the $filter that finds a user by federated identity.
func IdentityFilter(id approvals.Identity) string {
	return "identities/any(c:c/issuerAssignedId eq " + quote(id.IssuerAssignedID) + " and c/issuer eq " + quote(approvals.NormalizeIssuer(id.Issuer)) + ")"
}

// MailFilter is the $filter that finds a user by primary mail.
func MailFilter(email string) string { return "mail eq " + quote(strings.TrimSpace(email)) }

// OtherMailsFilter is the $filter that finds a user by alternate mail; an
// invited guest carries the invited address there.
func OtherMailsFilter(email string) string {
	return "otherMails/any(x:x eq " + quote(strings.TrimSpace(email)) + ")"
}

// FindUsers returns the users matching a $filter (at most 20).
func (d *Directory) FindUsers(ctx context.Context, filter string) (_ []DirectoryUser, err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "GET /users", "find users")
	top := int32(20)
	resp, err := d.client.Users().Get(ctx, &users.UsersRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UsersRequestBuilderGetQueryParameters{Filter: &filter, Select: userSelect, Top: &top},
	})
	if err != nil {
		return nil, err
	}
	if resp == nil || resp.GetValue() == nil {
		// Graph answers a list with a value collection, empty when
		// nothing matches. An answer without one (an empty 200 from a
		// proxy, say) is not "nobody": taking it for that would create a
		// second account for a person already in the directory.
		return nil, errors.New("the answer has no value collection")
	}
	var out []DirectoryUser
	for _, u := range resp.GetValue() {
		if u != nil {
			out = append(out, toDirectoryUser(u))
		}
	}
	return out, nil
}

// FindPerson looks a person up the way the provisioner does before
// creating anything: by federated identity when there is one, then by
// mail, then by otherMails. It returns the matches of the first query that
// finds any, and nil when the person is not in the directory.
func (d *Directory) FindPerson(ctx context.Context, email string, id *approvals.Identity) ([]DirectoryUser, error) {
	var filters []string
	if id != nil && id.Issuer != "" && id.IssuerAssignedID != "" {
		filters = append(filters, IdentityFilter(*id))
	}
	if strings.TrimSpace(email) != "" {
		filters = append(filters, MailFilter(email), OtherMailsFilter(email))
	}
	for _, f := range filters {
		found, err := d.FindUsers(ctx, f)
		if err != nil || len(found) > 0 {
			return found, err
		}
	}
	return nil, nil
}

// GetUser returns one user by object id or user principal name.
func (d *Directory) GetUser(ctx context.Context, id string) (_ DirectoryUser, err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "GET /users/{id}", "get user %s", id)
	u, err := d.client.Users().ByUserId(id).Get(ctx, &users.UserItemRequestBuilderGetRequestConfiguration{
		QueryParameters: &users.UserItemRequestBuilderGetQueryParameters{Select: userSelect},
	})
	if err != nil {
		return DirectoryUser{}, err
	}
	if u == nil {
		return DirectoryUser{}, errors.New("empty answer")
	}
	return toDirectoryUser(u), nil
}

// NewGuest is a guest account to create with POST /users.
type NewGuest struct {
	UserPrincipalName string
	Mail              string
	DisplayName       string
	Identity          approvals.Identity
	// Properties are further user properties and extension attributes,
	// such as UserProperties returns.
	Properties map[string]any
}

// CreateGuest creates an enabled Guest account with a federated identity
// and returns it.
func (d *Directory) CreateGuest(ctx context.Context, g NewGuest) (_ DirectoryUser, err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "POST /users", "create guest %s", g.UserPrincipalName)
	u := models.NewUser()
	extra := map[string]any{}
	for k, v := range g.Properties {
		switch k {
		case "userPrincipalName", "mail", "displayName", "accountEnabled", "userType", "identities":
			continue // set below, typed
		}
		extra[k] = v
	}
	u.SetAdditionalData(extra)
	u.SetUserPrincipalName(&g.UserPrincipalName)
	u.SetMail(&g.Mail)
	u.SetDisplayName(&g.DisplayName)
	enabled, guest := true, "Guest"
	u.SetAccountEnabled(&enabled)
	u.SetUserType(&guest)
	oid := models.NewObjectIdentity()
	signIn, issuer, assigned := "federated", approvals.NormalizeIssuer(g.Identity.Issuer), g.Identity.IssuerAssignedID
	oid.SetSignInType(&signIn)
	oid.SetIssuer(&issuer)
	oid.SetIssuerAssignedId(&assigned)
	u.SetIdentities([]models.ObjectIdentityable{oid})
	created, err := d.client.Users().Post(ctx, u, nil)
	if err != nil {
		return DirectoryUser{}, err
	}
	if created == nil || deref(created.GetId()) == "" {
		return DirectoryUser{}, errors.New("the answer has no user id")
	}
	return toDirectoryUser(created), nil
}

// Invitation is a B2B invitation to send with POST /invitations.
type Invitation struct {
	Email       string
	DisplayName string
	RedirectURL string
	// SendMessage lets Microsoft email the invitation; otherwise the
	// caller may send RedeemURL itself.
	SendMessage bool
	// Message is a custom text for Microsoft's invitation email.
	Message string
}

// Invited is the result of an invitation.
type Invited struct {
	// UserID is the invited user's object id (invitedUser.id), not the
	// invitation's id.
	UserID       string
	InvitationID string
	RedeemURL    string
}

// Invite invites an external person as a guest. Graph answers an invitation
// of a guest who exists already with that guest's id.
func (d *Directory) Invite(ctx context.Context, inv Invitation) (_ Invited, err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "POST /invitations", "invite %s", inv.Email)
	body := models.NewInvitation()
	body.SetInvitedUserEmailAddress(&inv.Email)
	body.SetInviteRedirectUrl(&inv.RedirectURL)
	if inv.DisplayName != "" {
		body.SetInvitedUserDisplayName(&inv.DisplayName)
	}
	body.SetSendInvitationMessage(&inv.SendMessage)
	if inv.Message != "" {
		mi := models.NewInvitedUserMessageInfo()
		mi.SetCustomizedMessageBody(&inv.Message)
		body.SetInvitedUserMessageInfo(mi)
	}
	got, err := d.client.Invitations().Post(ctx, body, nil)
	if err != nil {
		return Invited{}, err
	}
	if got == nil || got.GetInvitedUser() == nil || deref(got.GetInvitedUser().GetId()) == "" {
		return Invited{}, errors.New("the answer has no invitedUser.id")
	}
	return Invited{UserID: deref(got.GetInvitedUser().GetId()), InvitationID: deref(got.GetId()), RedeemURL: deref(got.GetInviteRedeemUrl())}, nil
}

// UpdateUser writes properties (built-in names and extension attributes)
// on a user.
func (d *Directory) UpdateUser(ctx context.Context, userID string, props map[string]any) (err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "PATCH /users/{id}", "update user %s", userID)
	u := models.NewUser()
	u.SetAdditionalData(toWire(props))
	_, err = d.client.Users().ByUserId(userID).Patch(ctx, u, nil)
	return err
}

// toWire converts property values to the types the SDK's JSON writer
// knows.
func toWire(props map[string]any) map[string]any {
	out := make(map[string]any, len(props))
	for k, v := range props {
		switch x := v.(type) {
		case int:
			out[k] = int64(x)
		default:
			out[k] = v
		}
	}
	return out
}

// AddToGroup adds a user to a group. A user who is a member already counts
// as added.
func (d *Directory) AddToGroup(ctx context.Context, groupID, userID string) (err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "POST /groups/{id}/members/$ref", "add user %s to group %s", userID, groupID)
	ref := models.NewReferenceCreate()
	// The reference names the object in the same Graph (and cloud) as the
	// call.
	id := d.base + "/directoryObjects/" + url.PathEscape(userID)
	ref.SetOdataId(&id)
	err = d.client.Groups().ByGroupId(groupID).Members().Ref().Post(ctx, ref, nil)
	if err != nil && isAlreadyMember(toGraphError(err, info)) {
		return nil
	}
	return err
}

// call prepares the context of one Graph call: a timeout, and a record the
// transport fills with the answer's request-id and Retry-After.
func (d *Directory) call(ctx context.Context) (context.Context, *callInfo, context.CancelFunc) {
	info := &callInfo{}
	ctx = context.WithValue(ctx, callInfoKey{}, info)
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	return ctx, info, cancel
}

// wrap turns an SDK error into a *GraphError carrying the operation.
func (d *Directory) wrap(err *error, info *callInfo, route, format string, args ...any) {
	if *err == nil {
		return
	}
	ge := toGraphError(*err, info)
	ge.Op = fmt.Sprintf(format, args...)
	ge.Route = route
	*err = ge
}
