package graphtest

import (
	"bytes"
	"compress/gzip"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/mail"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// response is what a Graph route answers; the wrapper writes it, so that a
// fault can replace it after the call took effect.
type response struct {
	status  int
	body    any // nil: no body
	errCode string
	header  http.Header
}

// graphError builds Graph's error envelope. details, when given, are
// {code, message, target} triples.
func graphError(status int, code, message string, details ...[3]string) response {
	e := map[string]any{"code": code, "message": message}
	if len(details) > 0 {
		var ds []any
		for _, d := range details {
			ds = append(ds, map[string]any{"code": d[0], "message": d[1], "target": d[2]})
		}
		e["details"] = ds
	}
	return response{status: status, body: map[string]any{"error": e}, errCode: code}
}

func badRequest(message string, details ...[3]string) response {
	return graphError(http.StatusBadRequest, "Request_BadRequest", message, details...)
}

func notFound(id string) response {
	return graphError(http.StatusNotFound, "Request_ResourceNotFound",
		fmt.Sprintf("Resource '%s' does not exist or one of its queried reference-property objects are not present.", id))
}

var insufficientPrivileges = graphError(http.StatusForbidden, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.")

const (
	msgMembersExist    = "One or more added object references already exist for the following modified properties: 'members'."
	msgMembersNotExist = "One or more added object references do not exist for the following modified properties: 'members'."
	msgBadPayload      = "Unable to read JSON request payload. Please ensure Content-Type header is set and payload is of valid JSON format."
)

// request is a decoded Graph call.
type request struct {
	method string
	segs   []string // unescaped path segments after /v1.0
	query  url.Values
	body   map[string]any
}

func (s *Server) serveGraph(w http.ResponseWriter, r *http.Request) {
	call := Call{
		Method:          r.Method,
		Start:           s.opts.Clock(),
		RequestID:       newGUID(),
		ContentEncoding: r.Header.Get("Content-Encoding"),
		Query:           r.URL.RawQuery,
	}
	clientRequestID := r.Header.Get("client-request-id")
	if clientRequestID == "" {
		clientRequestID = newGUID()
	}
	escaped, ok := strings.CutPrefix(r.URL.EscapedPath(), "/v1.0")
	call.Path = escaped
	req := &request{method: r.Method, query: r.URL.Query()}
	for _, seg := range strings.Split(strings.Trim(escaped, "/"), "/") {
		u, err := url.PathUnescape(seg)
		if err != nil {
			u = seg
		}
		req.segs = append(req.segs, u)
	}
	call.Route = route(r.Method, req.segs)
	s.mu.Lock()
	s.arrivals[call.Route]++
	s.mu.Unlock()

	var resp response
	var spec *FaultSpec
	body, bodyErr := readBody(r)
	call.Body = body
	authErr := s.checkToken(r)
	call.Authorized = authErr == nil
	switch {
	case !ok:
		resp = badRequest("Invalid version: the path must start with /v1.0.")
	case authErr != nil:
		resp = graphError(http.StatusUnauthorized, "InvalidAuthenticationToken", authErr.Error())
		resp.header = http.Header{"Www-Authenticate": {`Bearer realm="", authorization_uri="https://login.microsoftonline.com/common/oauth2/authorize"`}}
	case bodyErr != nil:
		resp = bodyErr.(*bodyError).resp
	default:
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req.body); err != nil || req.body == nil {
				resp = graphError(http.StatusBadRequest, "BadRequest", msgBadPayload)
				break
			}
		}
		s.mu.Lock()
		spec = s.pickFault(call.Route)
		s.mu.Unlock()
		if spec != nil {
			call.Fault = describe(spec)
		}
		if !sleep(r, s.opts.Latency+latencyOf(spec)) {
			// The client gave up while the answer was delayed: it gets
			// none. Returning without writing would let net/http send an
			// implicit empty 200, and a client whose timeout fired may
			// still read it: Go's transport sends the TLS close_notify
			// (which ends this request's context) before it closes the
			// socket, and takes a response that races its own
			// cancellation. The SDK reads an empty 200 as a successful
			// answer with no content, such as a look-up that found
			// nobody.
			call.Status, call.End = 0, s.opts.Clock()
			s.record(call)
			resetConnection(w)
			return
		}
		if spec != nil && !spec.AfterEffect && (spec.Reset || spec.Status != 0) {
			resp = faultResponse(spec)
			break
		}
		resp = s.dispatch(req, call.Route)
		if spec != nil && spec.AfterEffect && (spec.Reset || spec.Status != 0) {
			resp = faultResponse(spec)
		}
	}

	if spec != nil && spec.Reset && resp.status == 0 {
		call.End = s.opts.Clock()
		s.record(call)
		resetConnection(w)
		return
	}
	h := w.Header()
	for k, v := range resp.header {
		h[k] = v
	}
	h.Set("request-id", call.RequestID)
	h.Set("client-request-id", clientRequestID)
	h.Set("x-ms-ags-diagnostic", `{"ServerInfo":{"DataCenter":"Local","Slice":"E","Ring":"1","ScaleUnit":"000","RoleInstance":"graphtest"}}`)
	h.Set("Strict-Transport-Security", "max-age=31536000")
	call.Status, call.ErrorCode = resp.status, resp.errCode
	top, _ := resp.body.(map[string]any)
	if env, ok := top["error"].(map[string]any); ok {
		env["innerError"] = map[string]any{
			"date":              s.opts.Clock().UTC().Format("2006-01-02T15:04:05"),
			"request-id":        call.RequestID,
			"client-request-id": clientRequestID,
		}
	}
	call.End = s.opts.Clock()
	s.record(call)
	if resp.body == nil {
		w.WriteHeader(resp.status)
		return
	}
	b, _ := json.Marshal(resp.body) // decoded JSON values always marshal
	if resp.status >= 400 {
		h.Set("Content-Type", "application/json")
	} else {
		h.Set("Content-Type", "application/json;odata.metadata=minimal;odata.streaming=true;IEEE754Compatible=false;charset=utf-8")
	}
	w.WriteHeader(resp.status)
	_, _ = w.Write(b)
}

func (s *Server) record(c Call) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, c)
}

// route names the route template of a call.
func route(method string, segs []string) string {
	switch {
	case len(segs) == 1 && segs[0] == "users":
		return method + " /users"
	case len(segs) == 2 && segs[0] == "users":
		return method + " /users/{id}"
	case len(segs) == 3 && segs[0] == "users" && segs[2] == "sendMail":
		return method + " /users/{id}/sendMail"
	case len(segs) == 1 && segs[0] == "invitations":
		return method + " /invitations"
	case len(segs) == 4 && segs[0] == "groups" && segs[2] == "members" && segs[3] == "$ref":
		return method + " /groups/{id}/members/$ref"
	}
	return method + " /" + strings.Join(segs, "/")
}

type bodyError struct{ resp response }

func (e *bodyError) Error() string { return fmt.Sprint(e.resp.body) }

// readBody reads the request body, gunzipping it when it says it is gzip.
// A body labelled gzip that is not gzip is refused as Graph does.
func readBody(r *http.Request) ([]byte, error) {
	raw, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		return nil, &bodyError{graphError(http.StatusBadRequest, "BadRequest", msgBadPayload)}
	}
	switch enc := strings.ToLower(strings.TrimSpace(r.Header.Get("Content-Encoding"))); enc {
	case "", "identity":
	case "gzip":
		zr, err := gzip.NewReader(bytes.NewReader(raw))
		if err != nil {
			return raw, &bodyError{graphError(http.StatusBadRequest, "BadRequest", "The request body is labelled Content-Encoding: gzip but is not gzip data: "+err.Error()+".")}
		}
		plain, err := io.ReadAll(io.LimitReader(zr, 4<<20))
		if err != nil {
			return raw, &bodyError{graphError(http.StatusBadRequest, "BadRequest", "The gzip request body is corrupt: "+err.Error()+".")}
		}
		raw = plain
	default:
		return raw, &bodyError{graphError(http.StatusUnsupportedMediaType, "UnsupportedMediaType", "Content-Encoding '"+enc+"' is not supported.")}
	}
	if len(raw) > 0 && !strings.HasPrefix(strings.ToLower(r.Header.Get("Content-Type")), "application/json") {
		return raw, &bodyError{graphError(http.StatusUnsupportedMediaType, "BadRequest", "A supported MIME type could not be found that matches the content type of the response. None of the supported type(s) 'application/json' matches the content type '"+r.Header.Get("Content-Type")+"'.")}
	}
	return raw, nil
}

func latencyOf(f *FaultSpec) time.Duration {
	if f == nil {
		return 0
	}
	return f.Latency
}

// sleep waits d unless the client goes away first.
func sleep(r *http.Request, d time.Duration) bool {
	if d <= 0 {
		return true
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-r.Context().Done():
		return false
	}
}

func describe(f *FaultSpec) string {
	var parts []string
	if f.Reset {
		parts = append(parts, "reset")
	}
	if f.Status != 0 {
		parts = append(parts, strconv.Itoa(f.Status))
	}
	if f.RetryAfter > 0 {
		parts = append(parts, "retry-after="+f.RetryAfter.String())
	}
	if f.Latency > 0 {
		parts = append(parts, "latency="+f.Latency.String())
	}
	if f.AfterEffect {
		parts = append(parts, "after-effect")
	}
	return strings.Join(parts, " ")
}

func faultResponse(f *FaultSpec) response {
	if f.Reset {
		return response{}
	}
	code, msg := "UnknownError", "An unexpected error occurred."
	switch f.Status {
	case http.StatusTooManyRequests:
		code, msg = "TooManyRequests", "Too many requests. Retry after the number of seconds in the Retry-After header."
	case http.StatusServiceUnavailable:
		code, msg = "serviceNotAvailable", "The service is temporarily unavailable. Retry later."
	case http.StatusGatewayTimeout:
		code, msg = "UnknownError", "The gateway timed out."
	case http.StatusInternalServerError:
		code, msg = "InternalServerError", "Internal server error."
	}
	if f.Code != "" {
		code = f.Code
	}
	if f.Message != "" {
		msg = f.Message
	}
	resp := graphError(f.Status, code, msg)
	if f.RetryAfter > 0 {
		secs := int((f.RetryAfter + time.Second - 1) / time.Second)
		resp.header = http.Header{"Retry-After": {strconv.Itoa(secs)}}
	}
	return resp
}

// resetConnection drops the connection with a TCP reset and no answer.
func resetConnection(w http.ResponseWriter) {
	hj, ok := w.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler) // net/http's own way to abort a response
	}
	conn, _, err := hj.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	raw := conn
	if tc, ok := conn.(*tls.Conn); ok {
		raw = tc.NetConn()
	}
	if tcp, ok := raw.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	_ = raw.Close()
}

// handler serves one route of the fake: the application permissions that
// allow it (any one of them; none: serve checks its own), and serve.
type handler struct {
	perms []string
	serve func(*Server, *request) response
}

// handlers is the fake's routing table, by route template (as route
// names it). It is never written.
var handlers = map[string]handler{
	"GET /users":                     {[]string{PermUserReadWriteAll, "User.Read.All"}, (*Server).listUsers},
	"POST /users":                    {[]string{PermUserReadWriteAll}, (*Server).createUser},
	"GET /users/{id}":                {[]string{PermUserReadWriteAll, "User.Read.All"}, (*Server).getUser},
	"PATCH /users/{id}":              {[]string{PermUserReadWriteAll}, (*Server).patchUser},
	"POST /invitations":              {[]string{PermUserInviteAll, PermUserReadWriteAll}, (*Server).invite},
	"POST /groups/{id}/members/$ref": {[]string{PermGroupMemberReadWriteAll, "Group.ReadWrite.All"}, (*Server).addMember},
	"POST /users/{id}/sendMail":      {nil, (*Server).sendMail},
}

func (s *Server) dispatch(req *request, route string) response {
	s.mu.Lock()
	defer s.mu.Unlock()
	if h, ok := handlers[route]; ok {
		if h.perms != nil && !s.granted(h.perms...) {
			return insufficientPrivileges
		}
		return h.serve(s, req)
	}
	if len(req.segs) > 0 && slices.Contains([]string{"users", "invitations", "groups"}, req.segs[0]) {
		return graphError(http.StatusMethodNotAllowed, "Request_BadRequest", "The requested resource does not support http method '"+req.method+"'.")
	}
	return badRequest(fmt.Sprintf("Resource not found for the segment '%s'.", firstSeg(req.segs)))
}

func firstSeg(segs []string) string {
	if len(segs) == 0 {
		return ""
	}
	return segs[0]
}

func (s *Server) granted(perms ...string) bool {
	for _, p := range perms {
		if s.permissions[p] {
			return true
		}
	}
	return false
}

// The user properties the fake knows, by JSON kind.
type kind int

const (
	kString kind = iota
	kBool
	kStrings
	kIdentities
	kObject
)

var userProperties = map[string]kind{
	"accountEnabled": kBool, "ageGroup": kString, "businessPhones": kStrings, "city": kString,
	"companyName": kString, "consentProvidedForMinor": kString, "country": kString, "department": kString,
	"displayName": kString, "employeeHireDate": kString, "employeeId": kString, "employeeType": kString, "faxNumber": kString,
	"givenName": kString, "identities": kIdentities, "jobTitle": kString, "mail": kString,
	"mailNickname": kString, "mobilePhone": kString, "officeLocation": kString, "otherMails": kStrings,
	"passwordPolicies": kString, "passwordProfile": kObject, "postalCode": kString,
	"preferredLanguage": kString, "state": kString, "streetAddress": kString, "surname": kString,
	"usageLocation": kString, "userPrincipalName": kString, "userType": kString, "employeeOrgData": kObject,
	"showInAddressList": kBool, "onPremisesImmutableId": kString,
}

var readOnlyUserProperties = map[string]bool{
	"id": true, "createdDateTime": true, "creationType": true, "externalUserState": true,
	"externalUserStateChangeDateTime": true, "proxyAddresses": true, "imAddresses": true,
	"deletedDateTime": true, "lastPasswordChangeDateTime": true,
}

// defaultUserSelect is what GET returns without $select on v1.0.
var defaultUserSelect = []string{
	"businessPhones", "displayName", "givenName", "jobTitle", "mail", "mobilePhone",
	"officeLocation", "preferredLanguage", "surname", "userPrincipalName", "id",
}

var extensionName = regexp.MustCompile(`^extension_[0-9a-fA-F]{32}_[A-Za-z0-9_]+$`)

// upnLocalChars are the characters Entra allows before the @ of a user
// principal name.
var upnLocalChars = regexp.MustCompile(`^[A-Za-z0-9'.\-_!#^~]+$`)

var signInTypes = map[string]bool{"federated": true, "emailAddress": true, "userName": true, "userPrincipalName": true}

// checkUserBody validates a user body for POST (self is nil) or a PATCH
// of self, unique properties included, and returns the properties to
// store.
func (s *Server) checkUserBody(body map[string]any, self *user) (map[string]any, response, bool) {
	create := self == nil
	props := map[string]any{}
	for k, v := range body {
		if strings.HasPrefix(k, "@odata.") {
			continue // @odata.type and friends are annotations, not properties
		}
		if readOnlyUserProperties[k] {
			return nil, badRequest(fmt.Sprintf("Property '%s' is read-only and cannot be set.", k)), false
		}
		kd, known := userProperties[k]
		if !known && !extensionName.MatchString(k) {
			return nil, badRequest(fmt.Sprintf("Property '%s' does not exist on type 'microsoft.graph.user'.", k)), false
		}
		if v == nil {
			props[k] = nil
			continue
		}
		if known && !validKind(kd, v) {
			return nil, badRequest(fmt.Sprintf("Invalid value specified for property '%s' of resource 'User'.", k)), false
		}
		if !known {
			switch v.(type) {
			case string, bool, float64:
			default:
				return nil, badRequest(fmt.Sprintf("Invalid value specified for property '%s' of resource 'User'.", k)), false
			}
		}
		props[k] = v
	}
	if upn, ok := props["userPrincipalName"].(string); ok {
		if r, bad := s.checkUPN(upn); bad {
			return nil, r, false
		}
	}
	if m, ok := props["mail"].(string); ok {
		if a, err := mail.ParseAddress(m); err != nil || a.Address != m {
			return nil, badRequest("Invalid value specified for property 'mail' of resource 'User'."), false
		}
	}
	for _, it := range asSlice(props["identities"]) {
		id := it.(map[string]any) // validKind checked the shape
		st, _ := id["signInType"].(string)
		iss, _ := id["issuer"].(string)
		aid, _ := id["issuerAssignedId"].(string)
		if !signInTypes[st] || iss == "" || aid == "" {
			return nil, badRequest("Invalid value specified for property 'identities' of resource 'User'."), false
		}
	}
	if t, ok := props["userType"].(string); ok && t != "Guest" && t != "Member" {
		return nil, badRequest("Invalid value specified for property 'userType' of resource 'User'."), false
	}
	if create {
		for _, req := range []string{"accountEnabled", "displayName", "userPrincipalName"} {
			if props[req] == nil || props[req] == "" {
				return nil, badRequest(fmt.Sprintf("Invalid value specified for property '%s' of resource 'User'.", req)), false
			}
		}
		if len(asSlice(props["identities"])) == 0 && props["passwordProfile"] == nil {
			return nil, badRequest("Invalid value specified for property 'passwordProfile' of resource 'User'."), false
		}
	}
	if r, dup := s.conflict(props, self); dup {
		return nil, r, false
	}
	return props, response{}, true
}

func validKind(k kind, v any) bool {
	switch k {
	case kString:
		_, ok := v.(string)
		return ok
	case kBool:
		_, ok := v.(bool)
		return ok
	case kStrings:
		items, ok := v.([]any)
		for _, it := range items {
			if _, isStr := it.(string); !isStr {
				return false
			}
		}
		return ok
	case kIdentities:
		items, ok := v.([]any)
		for _, it := range items {
			m, isObj := it.(map[string]any)
			if !isObj {
				return false
			}
			for key, val := range m {
				if _, isStr := val.(string); !isStr || (key != "signInType" && key != "issuer" && key != "issuerAssignedId" && !strings.HasPrefix(key, "@odata.")) {
					return false
				}
			}
		}
		return ok
	case kObject:
		_, ok := v.(map[string]any)
		return ok
	}
	return false
}

func (s *Server) checkUPN(upn string) (response, bool) {
	at := strings.LastIndexByte(upn, '@')
	if at <= 0 {
		return badRequest("Invalid value specified for property 'userPrincipalName' of resource 'User'."), true
	}
	local, domain := upn[:at], upn[at+1:]
	if !strings.EqualFold(domain, s.opts.TenantDomain) {
		return badRequest("The domain portion of the userPrincipalName property is invalid. You must use one of the verified domain names in your organization."), true
	}
	if len(local) > 64 || !upnLocalChars.MatchString(local) || strings.HasPrefix(local, ".") || strings.HasSuffix(local, ".") {
		return badRequest("Invalid value specified for property 'userPrincipalName' of resource 'User'."), true
	}
	return response{}, false
}

// conflict reports the first uniqueness violation of props against every
// user but self; s.mu held.
func (s *Server) conflict(props map[string]any, self *user) (response, bool) {
	dup := func(prop string) response {
		msg := fmt.Sprintf("Another object with the same value for property %s already exists.", prop)
		return badRequest(msg, [3]string{"ObjectConflict", msg, prop})
	}
	upn, _ := props["userPrincipalName"].(string)
	m, _ := props["mail"].(string)
	for _, u := range s.users {
		if u == self {
			continue
		}
		if other, _ := u.props["userPrincipalName"].(string); upn != "" && strings.EqualFold(upn, other) {
			return dup("userPrincipalName"), true
		}
		if m != "" {
			if other, _ := u.props["mail"].(string); strings.EqualFold(m, other) {
				return dup("proxyAddresses"), true
			}
		}
		for _, a := range asSlice(props["identities"]) {
			am := a.(map[string]any)
			for _, b := range asSlice(u.props["identities"]) {
				bm, _ := b.(map[string]any)
				if strings.EqualFold(fmt.Sprint(am["issuer"]), fmt.Sprint(bm["issuer"])) &&
					strings.EqualFold(fmt.Sprint(am["issuerAssignedId"]), fmt.Sprint(bm["issuerAssignedId"])) {
					return dup("identities"), true
				}
			}
		}
	}
	return response{}, false
}

// selectUser renders a user with the $select'ed properties.
func selectUser(u *user, sel []string) map[string]any {
	out := map[string]any{"id": u.id}
	for _, p := range sel {
		if p == "id" {
			continue
		}
		if v, ok := u.props[p]; ok {
			out[p] = v
		} else if userProperties[p] == kStrings || userProperties[p] == kIdentities {
			out[p] = []any{}
		} else {
			out[p] = nil
		}
	}
	return out
}

// parseSelect reads $select; the default set when absent.
func parseSelect(q url.Values) ([]string, response, bool) {
	raw := q.Get("$select")
	if raw == "" {
		return defaultUserSelect, response{}, true
	}
	var sel []string
	for _, p := range strings.Split(raw, ",") {
		p = strings.TrimSpace(p)
		if _, known := userProperties[p]; !known && !readOnlyUserProperties[p] && !extensionName.MatchString(p) {
			return nil, badRequest(fmt.Sprintf("Could not find a property named '%s' on type 'microsoft.graph.user'.", p)), false
		}
		sel = append(sel, p)
	}
	return sel, response{}, true
}

func (s *Server) listUsers(req *request) response {
	sel, bad, ok := parseSelect(req.query)
	if !ok {
		return bad
	}
	var filter filterNode
	if f := req.query.Get("$filter"); f != "" {
		n, err := parseFilter(f)
		if err != nil {
			return badRequest(err.Error())
		}
		filter = n
	}
	top := 100
	if t := req.query.Get("$top"); t != "" {
		n, err := strconv.Atoi(t)
		if err != nil || n < 1 || n > 999 {
			return badRequest("Invalid page size specified: '" + t + "'. Must be between 1 and 999 inclusive.")
		}
		top = n
	}
	value := []any{}
	now := s.opts.Clock()
	for _, u := range s.users {
		if len(value) >= top {
			break
		}
		if s.searchLag > 0 && u.source != "seed" && now.Sub(u.created) < s.searchLag {
			continue
		}
		obj := map[string]any{"id": u.id}
		for k, v := range u.props {
			obj[k] = v
		}
		if filter == nil || filter.eval(obj, nil) {
			value = append(value, selectUser(u, sel))
		}
	}
	return response{status: http.StatusOK, body: map[string]any{
		"@odata.context": "https://graph.microsoft.com/v1.0/$metadata#users",
		"value":          value,
	}}
}

func (s *Server) createUser(req *request) response {
	props, bad, ok := s.checkUserBody(req.body, nil)
	if !ok {
		return bad
	}
	for k, v := range props {
		if v == nil {
			delete(props, k)
		}
	}
	if _, ok := props["userType"]; !ok {
		props["userType"] = "Member"
	}
	if _, ok := props["otherMails"]; !ok {
		props["otherMails"] = []any{}
	}
	if len(asSlice(props["identities"])) == 0 {
		props["identities"] = []any{map[string]any{"signInType": "userPrincipalName", "issuer": s.opts.TenantDomain, "issuerAssignedId": props["userPrincipalName"]}}
	}
	delete(props, "passwordProfile")
	now := s.opts.Clock()
	props["createdDateTime"] = now.UTC().Format(time.RFC3339)
	props["creationType"] = nil
	u := &user{id: newGUID(), created: now, source: "users", props: props}
	s.users = append(s.users, u)
	out := selectUser(u, defaultUserSelect)
	out["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	return response{status: http.StatusCreated, body: out}
}

// visible finds a user for a read or write by id or UPN, answering as the
// directory does while it is still replicating; s.mu held.
func (s *Server) visible(key string, write bool) (*user, response, bool) {
	u := s.findUser(key)
	if u == nil {
		return nil, notFound(key), false
	}
	if s.lagging(u) {
		if write && s.lagStatus == http.StatusForbidden {
			return nil, insufficientPrivileges, false
		}
		return nil, notFound(key), false
	}
	return u, response{}, true
}

func (s *Server) getUser(req *request) response {
	sel, bad, ok := parseSelect(req.query)
	if !ok {
		return bad
	}
	u, bad, ok := s.visible(req.segs[1], false)
	if !ok {
		return bad
	}
	out := selectUser(u, sel)
	out["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#users/$entity"
	return response{status: http.StatusOK, body: out}
}

func (s *Server) patchUser(req *request) response {
	u, bad, ok := s.visible(req.segs[1], true)
	if !ok {
		return bad
	}
	if req.body == nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Empty Payload. JSON content expected.")
	}
	props, bad, ok := s.checkUserBody(req.body, u)
	if !ok {
		return bad
	}
	for k, v := range props {
		if v == nil {
			delete(u.props, k)
		} else {
			u.props[k] = v
		}
	}
	return response{status: http.StatusNoContent}
}

var invitationProperties = map[string]bool{
	"invitedUserEmailAddress": true, "inviteRedirectUrl": true, "invitedUserDisplayName": true,
	"sendInvitationMessage": true, "invitedUserMessageInfo": true, "invitedUserType": true,
	"resetRedemption": true, "invitedUser": true, "invitedUserSponsors": true, "status": true,
	"inviteRedeemUrl": true, "id": true,
}

func (s *Server) invite(req *request) response {
	if req.body == nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Empty Payload. JSON content expected.")
	}
	for k := range req.body {
		if !strings.HasPrefix(k, "@odata.") && !invitationProperties[k] {
			return badRequest(fmt.Sprintf("Property '%s' does not exist on type 'microsoft.graph.invitation'.", k))
		}
	}
	if s.restricted {
		return graphError(http.StatusForbidden, "Authorization_RequestDenied",
			"Guest invitations not allowed for your company. Contact your company administrator for more details.")
	}
	email, _ := req.body["invitedUserEmailAddress"].(string)
	a, err := mail.ParseAddress(email)
	if email == "" || err != nil || a.Address != email || !invitableAddress(email) {
		return graphError(http.StatusBadRequest, "BadRequest", "The specified invitedUserEmailAddress '"+email+"' is invalid.")
	}
	redirect, _ := req.body["inviteRedirectUrl"].(string)
	if u, err := url.Parse(redirect); redirect == "" || err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return graphError(http.StatusBadRequest, "BadRequest", "The inviteRedirectUrl must be an absolute http or https URL.")
	}
	displayName, _ := req.body["invitedUserDisplayName"].(string)
	send, _ := req.body["sendInvitationMessage"].(bool)
	var message string
	if info, ok := req.body["invitedUserMessageInfo"].(map[string]any); ok {
		message, _ = info["customizedMessageBody"].(string)
	}
	now := s.opts.Clock()
	var target *user
	for _, u := range s.users {
		m, _ := u.props["mail"].(string)
		match := strings.EqualFold(m, email)
		for _, o := range asSlice(u.props["otherMails"]) {
			match = match || strings.EqualFold(fmt.Sprint(o), email)
		}
		if match {
			target = u
			break
		}
	}
	existing := target != nil
	if existing {
		if t, _ := target.props["userType"].(string); t != "Guest" {
			return badRequest("The invited user already exists in the directory as a member: " + target.id + ".")
		}
	} else {
		base := strings.ReplaceAll(strings.ToLower(email), "@", "_")
		upn := base + "#EXT#@" + s.opts.TenantDomain
		for n := 1; s.findUser(upn) != nil; n++ {
			upn = base + strconv.Itoa(n) + "#EXT#@" + s.opts.TenantDomain
		}
		if displayName == "" {
			displayName = email[:strings.IndexByte(email, '@')]
		}
		target = &user{id: newGUID(), created: now, source: "invitation", props: map[string]any{
			"userPrincipalName": upn, "displayName": displayName, "mail": email,
			"otherMails": []any{email}, "userType": "Guest", "accountEnabled": true,
			"creationType": "Invitation", "externalUserState": "PendingAcceptance",
			"createdDateTime": now.UTC().Format(time.RFC3339),
			"identities":      []any{map[string]any{"signInType": "userPrincipalName", "issuer": s.opts.TenantDomain, "issuerAssignedId": upn}},
		}}
		s.users = append(s.users, target)
	}
	id := newGUID()
	redeem := "https://login.microsoftonline.com/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3d" +
		s.opts.TenantID + "%26user%3d" + target.id + "%26ticket%3d" + id
	s.invitations = append(s.invitations, Invitation{
		ID: id, Email: email, DisplayName: displayName, RedirectURL: redirect, SendMessage: send,
		Message: message, UserID: target.id, RedeemURL: redeem, ExistingGuest: existing, At: now,
	})
	return response{status: http.StatusCreated, body: map[string]any{
		"@odata.context":          "https://graph.microsoft.com/v1.0/$metadata#invitations/$entity",
		"id":                      id,
		"inviteRedeemUrl":         redeem,
		"invitedUserDisplayName":  displayName,
		"invitedUserType":         "Guest",
		"invitedUserEmailAddress": email,
		"sendInvitationMessage":   send,
		"resetRedemption":         false,
		"inviteRedirectUrl":       redirect,
		"status":                  "PendingAcceptance",
		"invitedUserMessageInfo":  map[string]any{"messageLanguage": nil, "customizedMessageBody": nilIfEmpty(message), "ccRecipients": []any{}},
		"invitedUser":             map[string]any{"id": target.id},
	}}
}

func nilIfEmpty(s string) any {
	if s == "" {
		return nil
	}
	return s
}

func (s *Server) addMember(req *request) response {
	gid := req.segs[1]
	members, ok := s.groups[gid]
	if !ok {
		return notFound(gid)
	}
	if req.body == nil {
		return graphError(http.StatusBadRequest, "BadRequest", "Empty Payload. JSON content expected.")
	}
	ref, _ := req.body["@odata.id"].(string)
	for k := range req.body {
		if k != "@odata.id" && k != "@odata.type" {
			return badRequest(fmt.Sprintf("Property '%s' does not exist on type 'microsoft.graph.referenceCreate'.", k))
		}
	}
	u, err := url.Parse(ref)
	if ref == "" || err != nil || u.Scheme != "https" {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid object identifier '"+ref+"'.")
	}
	parts := strings.Split(strings.Trim(u.Path, "/"), "/")
	if len(parts) < 2 || (parts[len(parts)-2] != "directoryObjects" && parts[len(parts)-2] != "users") {
		return graphError(http.StatusBadRequest, "BadRequest", "Invalid object identifier '"+ref+"'.")
	}
	uid := parts[len(parts)-1]
	target := s.findUser(uid)
	if target == nil || target.id != uid {
		return badRequest(msgMembersNotExist)
	}
	if s.lagging(target) {
		if s.lagStatus == http.StatusForbidden {
			return insufficientPrivileges
		}
		return badRequest(msgMembersNotExist)
	}
	if slices.Contains(members, uid) {
		return badRequest(msgMembersExist)
	}
	s.groups[gid] = append(members, uid)
	return response{status: http.StatusNoContent}
}

// invitationRefusedChars are the characters POST /invitations refuses in
// invitedUserEmailAddress, as the Graph invitation resource page lists
// them (shared/CONTRACT.md section 3).
const invitationRefusedChars = `~!#$%^&*()+=[]{}\/|;:"<>?,`

// invitableAddress reports whether Graph accepts email as an invitation
// address: none of invitationRefusedChars, and "." and "-" in the local
// part anywhere but at its start or end ("_" anywhere).
func invitableAddress(email string) bool {
	if strings.ContainsAny(email, invitationRefusedChars) {
		return false
	}
	local := email[:max(strings.LastIndexByte(email, '@'), 0)]
	return local != "" && !strings.ContainsAny(local[:1], ".-") && !strings.ContainsAny(local[len(local)-1:], ".-")
}
