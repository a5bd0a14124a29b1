package graphtest

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The fake token authority serves what MSAL needs for the client
// credentials flow with instance discovery disabled:
//
//	GET  /{tenant}/v2.0/.well-known/openid-configuration
//	POST /{tenant}/oauth2/v2.0/token   grant_type=client_credentials
//
// The client authenticates with the client secret, or with a client
// assertion (certificate or workload identity) whose issuer and subject are
// the client id; the assertion's signature is not checked. Access tokens are
// JWTs signed with a key only this server knows, with the audience taken from
// the requested scope ("https://host/.default"), so the fake Graph accepts
// only tokens asked for its own host.

const tokenLifetime = time.Hour

type tokenClaims struct {
	Aud   string   `json:"aud"`
	Iss   string   `json:"iss"`
	Tid   string   `json:"tid"`
	AppID string   `json:"appid"`
	Roles []string `json:"roles,omitempty"`
	Iat   int64    `json:"iat"`
	Nbf   int64    `json:"nbf"`
	Exp   int64    `json:"exp"`
}

func (s *Server) serveAuthority(w http.ResponseWriter, r *http.Request) {
	parts := strings.Split(strings.Trim(r.URL.Path, "/"), "/")
	if len(parts) < 2 || (parts[0] != s.opts.TenantID && !strings.EqualFold(parts[0], s.opts.TenantDomain)) {
		s.oauthError(w, http.StatusBadRequest, "invalid_tenant", 90002, "Tenant '"+parts[0]+"' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud.")
		return
	}
	rest := strings.Join(parts[1:], "/")
	base := s.authority.URL + "/" + parts[0]
	switch {
	case r.Method == http.MethodGet && rest == "v2.0/.well-known/openid-configuration":
		writeJSON(w, http.StatusOK, map[string]any{
			"token_endpoint":                        base + "/oauth2/v2.0/token",
			"authorization_endpoint":                base + "/oauth2/v2.0/authorize",
			"issuer":                                base + "/v2.0",
			"jwks_uri":                              base + "/discovery/v2.0/keys",
			"response_types_supported":              []string{"code", "id_token", "code id_token", "id_token token"},
			"subject_types_supported":               []string{"pairwise"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"token_endpoint_auth_methods_supported": []string{"client_secret_post", "private_key_jwt", "client_secret_basic"},
			"tenant_region_scope":                   "NA",
		})
	case r.Method == http.MethodPost && rest == "oauth2/v2.0/token":
		s.serveToken(w, r)
	default:
		s.oauthError(w, http.StatusNotFound, "invalid_request", 900561, "The endpoint only accepts POST requests and the openid-configuration GET.")
	}
}

func (s *Server) serveToken(w http.ResponseWriter, r *http.Request) {
	if err := r.ParseForm(); err != nil {
		s.oauthError(w, http.StatusBadRequest, "invalid_request", 900144, "The request body must contain the following parameter: 'grant_type'.")
		return
	}
	if gt := r.PostForm.Get("grant_type"); gt != "client_credentials" {
		s.oauthError(w, http.StatusBadRequest, "unsupported_grant_type", 70003, "The app requested an unsupported grant type '"+gt+"'.")
		return
	}
	if r.PostForm.Get("client_id") != s.opts.ClientID {
		s.oauthError(w, http.StatusBadRequest, "unauthorized_client", 700016, "Application with identifier '"+r.PostForm.Get("client_id")+"' was not found in the directory.")
		return
	}
	switch {
	case r.PostForm.Has("client_secret"):
		if !hmac.Equal([]byte(r.PostForm.Get("client_secret")), []byte(s.opts.ClientSecret)) {
			s.oauthError(w, http.StatusUnauthorized, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.")
			return
		}
	case r.PostForm.Has("client_assertion"):
		if !s.validAssertion(r.PostForm.Get("client_assertion")) {
			s.oauthError(w, http.StatusUnauthorized, "invalid_client", 700027, "Client assertion failed signature validation or names another client.")
			return
		}
	default:
		s.oauthError(w, http.StatusUnauthorized, "invalid_client", 7000218, "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.")
		return
	}
	var aud string
	for _, sc := range strings.Fields(r.PostForm.Get("scope")) {
		if strings.HasSuffix(sc, "/.default") {
			aud = strings.TrimSuffix(sc, "/.default")
		}
	}
	if aud == "" {
		s.oauthError(w, http.StatusBadRequest, "invalid_scope", 1002012, "The provided value for scope "+r.PostForm.Get("scope")+" is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).")
		return
	}
	s.mu.Lock()
	now := s.opts.Clock()
	var roles []string
	for p := range s.permissions {
		roles = append(roles, p)
	}
	s.tokens++
	s.mu.Unlock()
	slices.Sort(roles)
	tok := s.signToken(tokenClaims{
		Aud: aud, Iss: "https://sts.windows.net/" + s.opts.TenantID + "/", Tid: s.opts.TenantID,
		AppID: s.opts.ClientID, Roles: roles,
		Iat: now.Unix(), Nbf: now.Unix(), Exp: now.Add(tokenLifetime).Unix(),
	})
	secs := int(tokenLifetime/time.Second) - 1
	writeJSON(w, http.StatusOK, map[string]any{
		"token_type": "Bearer", "expires_in": secs, "ext_expires_in": secs, "access_token": tok,
	})
}

// validAssertion accepts a JWT whose issuer and subject are the client id.
func (s *Server) validAssertion(a string) bool {
	parts := strings.Split(a, ".")
	if len(parts) != 3 {
		return false
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return false
	}
	var c struct{ Iss, Sub string }
	return json.Unmarshal(payload, &c) == nil && c.Iss == s.opts.ClientID && c.Sub == s.opts.ClientID
}

func (s *Server) signToken(c tokenClaims) string {
	header := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`))
	body, _ := json.Marshal(c) // a struct of strings and ints always marshals
	unsigned := header + "." + base64.RawURLEncoding.EncodeToString(body)
	return unsigned + "." + base64.RawURLEncoding.EncodeToString(s.mac(unsigned))
}

func (s *Server) mac(data string) []byte {
	m := hmac.New(sha256.New, s.tokenKey)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// checkToken validates the bearer token of a Graph call; the error text is
// Graph's message.
func (s *Server) checkToken(r *http.Request) error {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return graphMessage("Access token is empty.")
	}
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok {
		return graphMessage("Access token validation failure. Invalid scheme.")
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		return graphMessage("Access token validation failure. Invalid audience.")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	if err != nil || !hmac.Equal(sig, s.mac(parts[0]+"."+parts[1])) {
		return graphMessage("Access token validation failure. Invalid signature.")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var c tokenClaims
	if err != nil || json.Unmarshal(payload, &c) != nil {
		return graphMessage("Access token validation failure. Malformed token.")
	}
	if strings.TrimSuffix(c.Aud, "/") != s.graph.URL {
		return graphMessage("Access token validation failure. Invalid audience.")
	}
	if c.Tid != s.opts.TenantID {
		return graphMessage("Access token validation failure. Invalid tenant.")
	}
	if s.opts.Clock().Unix() >= c.Exp {
		return graphMessage("Lifetime validation failed, the token is expired.")
	}
	return nil
}

func (s *Server) oauthError(w http.ResponseWriter, status int, code string, aadsts int, desc string) {
	writeJSON(w, status, map[string]any{
		"error":             code,
		"error_description": "AADSTS" + strconv.Itoa(aadsts) + ": " + desc,
		"error_codes":       []int{aadsts},
		"timestamp":         s.opts.Clock().UTC().Format("2006-01-02 15:04:05Z"),
		"trace_id":          newGUID(),
		"correlation_id":    newGUID(),
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, _ := json.Marshal(v) // maps of JSON values always marshal
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
