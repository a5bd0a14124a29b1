// Package graphtest is a fake Microsoft Graph and a fake Microsoft Entra
// token authority, for tests and the demo mode. It serves over TLS the
// calls the provisioner makes (shared/CONTRACT.md section 3) the way the real
// services answer them: the real azidentity credentials get tokens from the
// authority, and the real msgraph-sdk-go client talks to the Graph.
//
// It is strict where Graph is strict: request bodies may be gzipped and a
// body labelled gzip that is not gzip gets 400, unknown properties get 400,
// duplicate user principal names, mails and identities get 400 with
// ObjectConflict, a member already in a group gets 400, every error carries
// the documented envelope with a message and a request-id, and a request
// without a valid bearer token for this host gets 401. @odata.type is
// ignored and extension_* properties are kept.
//
// Faults are scripted per route (Fault): throttling with Retry-After,
// server errors, latency and connection resets, before or after the call
// takes effect. ReplicationLag makes just-created users invisible to PATCH
// and group adds for a while, as the directory's eventual consistency does.
// Every call is recorded (Calls).
package graphtest

import (
	"bytes"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"io"
	"log"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// Default identities of the fake tenant and of the application allowed to
// call it.
const (
	DefaultTenantID     = "8f1c2b7e-1111-4d2a-9c3e-000000000001"
	DefaultTenantDomain = "contoso.onmicrosoft.com"
	DefaultClientID     = "3b7d4c1a-2222-4e5f-8a9b-000000000002"
	DefaultClientSecret = "graphtest-client-secret"
)

// The application permissions the fake checks, as Graph names them.
const (
	PermUserReadWriteAll        = "User.ReadWrite.All"
	PermUserInviteAll           = "User.Invite.All"
	PermGroupMemberReadWriteAll = "GroupMember.ReadWrite.All"
)

// Options configures a Server. The zero value is a TLS server for
// DefaultTenantID with every permission granted.
type Options struct {
	// Clock tells the time for created dates, token lifetimes and
	// replication lag; time.Now when nil.
	Clock func() time.Time
	// TenantID, TenantDomain, ClientID and ClientSecret default to the
	// Default* constants.
	TenantID     string
	TenantDomain string
	ClientID     string
	ClientSecret string
	// Permissions granted to the application; every permission when nil.
	Permissions []string
	// Latency is added to every Graph call, for a realistic demo.
	Latency time.Duration
	// Seed makes probabilistic faults reproducible; 0 picks a random seed.
	Seed uint64
	// GraphListener and AuthorityListener, when set, are used instead of
	// a random loopback port (the demo may want fixed ports).
	GraphListener     net.Listener
	AuthorityListener net.Listener
}

// Identity is one entry of a user's identities collection.
type Identity struct {
	SignInType       string `json:"signInType"`
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuerAssignedId"`
}

// User is a snapshot of a directory user.
type User struct {
	ID                string
	UserPrincipalName string
	DisplayName       string
	Mail              string
	OtherMails        []string
	UserType          string
	Identities        []Identity
	// Properties holds every property as stored, including extension_*
	// attributes, keyed by Graph property name.
	Properties map[string]any
	// CreatedAt is when the user was created; Source says how: "users"
	// (POST /users), "invitation" or "seed" (AddUser).
	CreatedAt time.Time
	Source    string
}

// Invitation is a snapshot of an invitation made through POST
// /invitations.
type Invitation struct {
	ID            string
	Email         string
	DisplayName   string
	RedirectURL   string
	SendMessage   bool
	Message       string
	UserID        string
	RedeemURL     string
	ExistingGuest bool
	At            time.Time
}

// Call is one recorded HTTP exchange with the fake Graph.
type Call struct {
	Method string
	// Path is the request path as sent (escaped), without the /v1.0 prefix.
	Path string
	// Route is the route template, such as "PATCH /users/{id}".
	Route string
	Query string
	// Body is the decoded (gunzipped) request body.
	Body            []byte
	ContentEncoding string
	Authorized      bool
	// Start is when the request arrived, End when the answer was sent.
	Start, End time.Time
	// Status is the status answered; 0 when the connection was reset.
	Status    int
	ErrorCode string
	RequestID string
	// Fault describes the fault injected into this call, if any.
	Fault string
}

// FaultSpec scripts a failure on a route. A fault applies to the next Count
// matching calls (every matching call when Count is 0), each with the given
// Probability (always when 0).
type FaultSpec struct {
	// Status is the HTTP status to answer, such as 429, 503 or 504; 0 with
	// Reset false only adds Latency.
	Status int
	// RetryAfter is sent as the Retry-After header, in whole seconds
	// (rounded up), when positive.
	RetryAfter time.Duration
	// Code and Message override the error body's code and message.
	Code, Message string
	// Latency delays the answer.
	Latency time.Duration
	// Reset closes the connection without an answer (a TCP reset).
	Reset bool
	// AfterEffect applies the fault after the call has taken effect: the
	// user is created, but the client sees the failure.
	AfterEffect bool
	Count       int
	Probability float64
}

type fault struct {
	route string
	spec  FaultSpec
	left  int // remaining applications; -1 for unlimited
}

type user struct {
	id      string
	created time.Time
	source  string
	props   map[string]any
}

// Server is a running fake Graph and token authority. Its methods are safe
// for concurrent use.
type Server struct {
	opts      Options
	graph     *httptest.Server
	authority *httptest.Server
	tokenKey  []byte

	mu          sync.Mutex
	rng         *mrand.Rand
	users       []*user
	groups      map[string][]string // group id -> member ids, in order added
	invitations []Invitation
	calls       []Call
	arrivals    map[string]int
	faults      []*fault
	lag         time.Duration
	lagStatus   int
	searchLag   time.Duration
	restricted  bool
	permissions map[string]bool
	tokens      int
	sent        []SentMail
}

// New starts a fake Graph and token authority over TLS on loopback ports.
// Close it when done.
func New(opts Options) *Server {
	if opts.Clock == nil {
		opts.Clock = time.Now
	}
	if opts.TenantID == "" {
		opts.TenantID = DefaultTenantID
	}
	if opts.TenantDomain == "" {
		opts.TenantDomain = DefaultTenantDomain
	}
	if opts.ClientID == "" {
		opts.ClientID = DefaultClientID
	}
	if opts.ClientSecret == "" {
		opts.ClientSecret = DefaultClientSecret
	}
	if opts.Permissions == nil {
		opts.Permissions = []string{PermUserReadWriteAll, PermUserInviteAll, PermGroupMemberReadWriteAll, PermMailSend}
	}
	seed := opts.Seed
	if seed == 0 {
		seed = mrand.Uint64()
	}
	s := &Server{
		opts:        opts,
		tokenKey:    randomBytes(32),
		rng:         mrand.New(mrand.NewPCG(seed, seed^0x9e3779b97f4a7c15)),
		groups:      map[string][]string{},
		arrivals:    map[string]int{},
		permissions: map[string]bool{},
		lagStatus:   http.StatusNotFound,
	}
	for _, p := range opts.Permissions {
		s.permissions[p] = true
	}
	s.authority = startTLS(http.HandlerFunc(s.serveAuthority), opts.AuthorityListener)
	s.graph = startTLS(http.HandlerFunc(s.serveGraph), opts.GraphListener)
	return s
}

func startTLS(h http.Handler, l net.Listener) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	if l != nil {
		srv.Listener.Close()
		srv.Listener = l
	}
	srv.Config.ErrorLog = quietHandshakes(os.Stderr)
	srv.StartTLS()
	return srv
}

// quietHandshakes is a server error log that drops "TLS handshake error"
// lines: a client killed mid-handshake (a child process in the crash
// tests) is not an error of the fake. Other errors still reach w.
func quietHandshakes(w io.Writer) *log.Logger {
	return log.New(handshakeFilter{w}, "", log.LstdFlags)
}

type handshakeFilter struct{ w io.Writer }

// Write gets one log line per call (log.Logger writes each entry whole).
func (f handshakeFilter) Write(p []byte) (int, error) {
	if bytes.Contains(p, []byte("http: TLS handshake error")) {
		return len(p), nil
	}
	return f.w.Write(p)
}

// Start is New for a test: the Server closes when tb and its subtests
// end.
func Start(tb testing.TB, opts Options) *Server {
	s := New(opts)
	tb.Cleanup(s.Close)
	return s
}

// Close shuts both servers down.
func (s *Server) Close() {
	s.graph.CloseClientConnections()
	s.authority.CloseClientConnections()
	s.graph.Close()
	s.authority.Close()
}

// URL returns the Graph base URL, for APPROVALS_GRAPH_URL:
// https://127.0.0.1:port/v1.0.
func (s *Server) URL() string { return s.graph.URL + "/v1.0" }

// AuthorityURL returns the token authority host, for AZURE_AUTHORITY_HOST:
// https://127.0.0.1:port/.
func (s *Server) AuthorityURL() string { return s.authority.URL + "/" }

// TenantID returns the fake tenant's id, for AZURE_TENANT_ID.
func (s *Server) TenantID() string { return s.opts.TenantID }

// TenantDomain returns the fake tenant's initial domain.
func (s *Server) TenantDomain() string { return s.opts.TenantDomain }

// ClientID returns the application id the authority accepts.
func (s *Server) ClientID() string { return s.opts.ClientID }

// ClientSecret returns the client secret the authority accepts.
func (s *Server) ClientSecret() string { return s.opts.ClientSecret }

// CertPool returns a pool trusting the servers' certificate.
func (s *Server) CertPool() *x509.CertPool {
	pool := x509.NewCertPool()
	pool.AddCert(s.graph.Certificate())
	return pool
}

// Transport returns a new HTTP transport that trusts the servers'
// certificate, for the SDK's and azidentity's clients.
func (s *Server) Transport() *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		TLSClientConfig:     &tls.Config{RootCAs: s.CertPool(), MinVersion: tls.VersionTLS12},
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
}

// Client returns an HTTP client that trusts the servers' certificate.
func (s *Server) Client() *http.Client {
	return &http.Client{Transport: s.Transport(), Timeout: 30 * time.Second}
}

// TokensIssued returns how many access tokens the authority has issued.
func (s *Server) TokensIssued() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.tokens
}

// Fault scripts a failure on a route such as "POST /users",
// "PATCH /users/{id}", "GET /users", "GET /users/{id}", "POST /invitations",
// "POST /groups/{id}/members/$ref", or "*" for every route. Faults are
// tried in the order added; the first that applies wins.
func (s *Server) Fault(route string, f FaultSpec) {
	s.mu.Lock()
	defer s.mu.Unlock()
	left := f.Count
	if left == 0 {
		left = -1
	}
	s.faults = append(s.faults, &fault{route: route, spec: f, left: left})
}

// ClearFaults removes every scripted fault.
func (s *Server) ClearFaults() { set(s, &s.faults, nil) }

// ReplicationLag makes users created less than d ago answer PATCH and GET
// /users/{id} with 404 Request_ResourceNotFound, and group adds with 400
// "One or more added object references do not exist", as a real directory
// does for a while after creation. 0 turns it off.
func (s *Server) ReplicationLag(d time.Duration) { s.setLag(d, http.StatusNotFound) }

// ScopedReplicationLag is ReplicationLag for an application whose rights
// are scoped to a dynamic administrative unit: PATCH and group adds of a
// user created less than d ago answer 403 Authorization_RequestDenied.
func (s *Server) ScopedReplicationLag(d time.Duration) { s.setLag(d, http.StatusForbidden) }

func (s *Server) setLag(d time.Duration, status int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lag, s.lagStatus = d, status
}

// SearchLag makes users created less than d ago invisible to GET /users
// with $filter, as the directory's list queries are eventually consistent
// too: a create whose answer was lost may not be found right away. 0
// turns it off.
func (s *Server) SearchLag(d time.Duration) { set(s, &s.searchLag, d) }

// RestrictInvitations makes POST /invitations answer 403, as in a tenant
// whose external collaboration settings forbid invitations by apps.
func (s *Server) RestrictInvitations(restricted bool) { set(s, &s.restricted, restricted) }

// set stores v in the field of s that p points to, under s.mu.
func set[T any](s *Server, p *T, v T) {
	s.mu.Lock()
	defer s.mu.Unlock()
	*p = v
}

// SetPermissions replaces the application permissions granted. The fake
// checks the grant at each call (real Graph checks the token's roles, so a
// change there needs a new token).
func (s *Server) SetPermissions(perms ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.permissions = map[string]bool{}
	for _, p := range perms {
		s.permissions[p] = true
	}
}

// AddGroup creates a group with the given object id (a new one when id is
// empty) and returns the id.
func (s *Server) AddGroup(id string) string {
	if id == "" {
		id = newGUID()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.groups[id]; !ok {
		s.groups[id] = nil
	}
	return id
}

// Members returns the member ids of a group, in the order they were added.
func (s *Server) Members(groupID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.groups[groupID])
}

// GroupsOf returns the ids of the groups the user is a member of, sorted.
func (s *Server) GroupsOf(userID string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for g, members := range s.groups {
		if slices.Contains(members, userID) {
			out = append(out, g)
		}
	}
	slices.Sort(out)
	return out
}

// AddUser stores a pre-existing user and returns its id. Zero fields get
// plausible values: a new id, a Guest user type, a user principal name
// derived from the mail.
func (s *Server) AddUser(u User) string {
	props := map[string]any{}
	for k, v := range u.Properties {
		props[k] = v
	}
	if u.ID == "" {
		u.ID = newGUID()
	}
	if u.UserType == "" {
		u.UserType = "Guest"
	}
	if u.UserPrincipalName == "" {
		u.UserPrincipalName = strings.ReplaceAll(strings.ToLower(u.Mail), "@", "_") + "#EXT#@" + s.opts.TenantDomain
	}
	if u.DisplayName == "" {
		u.DisplayName = u.Mail
	}
	props["userPrincipalName"] = u.UserPrincipalName
	props["displayName"] = u.DisplayName
	props["userType"] = u.UserType
	props["accountEnabled"] = true
	if u.Mail != "" {
		props["mail"] = u.Mail
	}
	others := make([]any, 0, len(u.OtherMails))
	for _, m := range u.OtherMails {
		others = append(others, m)
	}
	props["otherMails"] = others
	ids := make([]any, 0, len(u.Identities))
	for _, id := range u.Identities {
		ids = append(ids, map[string]any{"signInType": id.SignInType, "issuer": id.Issuer, "issuerAssignedId": id.IssuerAssignedID})
	}
	props["identities"] = ids
	created := u.CreatedAt
	s.mu.Lock()
	defer s.mu.Unlock()
	if created.IsZero() {
		created = s.opts.Clock().Add(-24 * time.Hour)
	}
	props["createdDateTime"] = created.UTC().Format(time.RFC3339)
	s.users = append(s.users, &user{id: u.ID, created: created, source: "seed", props: props})
	return u.ID
}

// Users returns a snapshot of every user, in creation order.
func (s *Server) Users() []User {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]User, 0, len(s.users))
	for _, u := range s.users {
		out = append(out, u.snapshot())
	}
	return out
}

// User returns a snapshot of the user with the given id.
func (s *Server) User(id string) (User, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u := s.findUser(id); u != nil {
		return u.snapshot(), true
	}
	return User{}, false
}

// Invitations returns a snapshot of every invitation made.
func (s *Server) Invitations() []Invitation {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.invitations)
}

// Calls returns every recorded Graph call, in arrival order.
func (s *Server) Calls() []Call {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := slices.Clone(s.calls)
	slices.SortStableFunc(out, func(a, b Call) int { return a.Start.Compare(b.Start) })
	return out
}

// CallsTo returns the recorded calls on one route, such as "POST /users".
func (s *Server) CallsTo(route string) []Call {
	var out []Call
	for _, c := range s.Calls() {
		if c.Route == route {
			out = append(out, c)
		}
	}
	return out
}

// Arrivals returns how many calls on route have arrived, including those
// still being answered (Calls holds answered calls only).
func (s *Server) Arrivals(route string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.arrivals[route]
}

// ResetCalls forgets the recorded calls.
func (s *Server) ResetCalls() { set(s, &s.calls, nil) }

func (u *user) snapshot() User {
	props := make(map[string]any, len(u.props))
	for k, v := range u.props {
		props[k] = v
	}
	out := User{
		ID:         u.id,
		Properties: props,
		CreatedAt:  u.created,
		Source:     u.source,
	}
	out.UserPrincipalName, _ = props["userPrincipalName"].(string)
	out.DisplayName, _ = props["displayName"].(string)
	out.Mail, _ = props["mail"].(string)
	out.UserType, _ = props["userType"].(string)
	for _, m := range asSlice(props["otherMails"]) {
		if s, ok := m.(string); ok {
			out.OtherMails = append(out.OtherMails, s)
		}
	}
	for _, it := range asSlice(props["identities"]) {
		m, _ := it.(map[string]any)
		id := Identity{}
		id.SignInType, _ = m["signInType"].(string)
		id.Issuer, _ = m["issuer"].(string)
		id.IssuerAssignedID, _ = m["issuerAssignedId"].(string)
		out.Identities = append(out.Identities, id)
	}
	return out
}

func asSlice(v any) []any {
	s, _ := v.([]any)
	return s
}

// findUser finds a user by object id or user principal name; s.mu held.
func (s *Server) findUser(key string) *user {
	for _, u := range s.users {
		if strings.EqualFold(u.id, key) {
			return u
		}
		if upn, _ := u.props["userPrincipalName"].(string); strings.EqualFold(upn, key) {
			return u
		}
	}
	return nil
}

// lagging reports whether u is still invisible to writes; s.mu held.
func (s *Server) lagging(u *user) bool {
	return s.lag > 0 && u.source != "seed" && s.opts.Clock().Sub(u.created) < s.lag
}

// pickFault returns the fault to apply to a call on route; s.mu held.
func (s *Server) pickFault(route string) *FaultSpec {
	for _, f := range s.faults {
		if f.left == 0 || (f.route != "*" && f.route != route) {
			continue
		}
		if f.spec.Probability > 0 && s.rng.Float64() >= f.spec.Probability {
			continue
		}
		if f.left > 0 {
			f.left--
		}
		spec := f.spec
		return &spec
	}
	return nil
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails on supported platforms
	return b
}

func newGUID() string {
	b := randomBytes(16)
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	h := hex.EncodeToString(b)
	return fmt.Sprintf("%s-%s-%s-%s-%s", h[:8], h[8:12], h[12:16], h[16:20], h[20:])
}
