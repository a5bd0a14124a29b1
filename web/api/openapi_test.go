package api

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// openAPI is the parsed document.
type openAPI map[string]any

func loadOpenAPI(t *testing.T) openAPI {
	t.Helper()
	var doc openAPI
	if err := json.Unmarshal(OpenAPIDocument(), &doc); err != nil {
		t.Fatalf("openapi.json is not JSON: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi version %q", v)
	}
	return doc
}

func obj(v any) map[string]any { m, _ := v.(map[string]any); return m }

// resolve follows a local $ref.
func (d openAPI) resolve(n map[string]any) map[string]any {
	for i := 0; i < 10; i++ {
		ref, ok := n["$ref"].(string)
		if !ok {
			return n
		}
		cur := map[string]any(d)
		for _, part := range strings.Split(strings.TrimPrefix(ref, "#/"), "/") {
			cur = obj(cur[part])
		}
		if cur == nil {
			return nil
		}
		n = cur
	}
	return n
}

var httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// operations returns "METHOD /path" -> operation.
func (d openAPI) operations() map[string]map[string]any {
	out := map[string]map[string]any{}
	for p, item := range obj(d["paths"]) {
		for _, m := range httpMethods {
			if op := obj(obj(item)[m]); op != nil {
				out[strings.ToUpper(m)+" "+p] = op
			}
		}
	}
	return out
}

var echoParam = regexp.MustCompile(`:([A-Za-z0-9_]+)`)

// Every route the router has is documented with the same method, and every
// documented operation is a route.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	doc := loadOpenAPI(t)
	if servers, _ := doc["servers"].([]any); len(servers) != 1 || obj(servers[0])["url"] != Prefix {
		t.Errorf("servers %v, want one with url %s", doc["servers"], Prefix)
	}
	e, err := newEcho(Config{Service: newEnv(t).svc})
	if err != nil {
		t.Fatal(err)
	}
	routes := map[string]bool{}
	for _, r := range e.Routes() {
		if r.Method == echo.RouteNotFound {
			continue
		}
		if !strings.HasPrefix(r.Path, Prefix+"/") {
			t.Errorf("route %s %s is outside %s", r.Method, r.Path, Prefix)
			continue
		}
		routes[r.Method+" "+echoParam.ReplaceAllString(strings.TrimPrefix(r.Path, Prefix), "{$1}")] = true
	}
	ops := doc.operations()
	for r := range routes {
		if ops[r] == nil {
			t.Errorf("route %s is not in openapi.json", r)
		}
	}
	ids := map[string]bool{}
	for key, op := range ops {
		if !routes[key] {
			t.Errorf("openapi.json documents %s, which is not a route", key)
		}
		id, _ := op["operationId"].(string)
		if id == "" || ids[id] {
			t.Errorf("%s: operationId %q missing or repeated", key, id)
		}
		ids[id] = true
		// Path parameters are declared.
		path := strings.SplitN(key, " ", 2)[1]
		params := append(slices.Clone(anySlice(obj(obj(doc["paths"])[path])["parameters"])), anySlice(op["parameters"])...)
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			if !slices.ContainsFunc(params, func(p any) bool {
				rp := doc.resolve(obj(p))
				return rp["name"] == m[1] && rp["in"] == "path" && rp["required"] == true
			}) {
				t.Errorf("%s: path parameter %s not declared", key, m[1])
			}
		}
	}
	if len(routes) < 11 {
		t.Errorf("only %d routes registered", len(routes))
	}
}

func anySlice(v any) []any { s, _ := v.([]any); return s }

// Every documented error answer uses the Error schema, and every
// authenticated operation documents 401 and 403.
func TestOpenAPIErrorResponses(t *testing.T) {
	doc := loadOpenAPI(t)
	errorRef := "#/components/schemas/Error"
	var usesError func(s map[string]any) bool
	usesError = func(s map[string]any) bool {
		if s["$ref"] == errorRef {
			return true
		}
		s = doc.resolve(s)
		if alts := anySlice(s["oneOf"]); len(alts) > 0 {
			for _, a := range alts {
				if !usesError(obj(a)) {
					return false
				}
			}
			return true
		}
		return slices.ContainsFunc(anySlice(s["allOf"]), func(a any) bool { return usesError(obj(a)) })
	}
	for key, op := range doc.operations() {
		responses := obj(op["responses"])
		for code, r := range responses {
			n, err := strconv.Atoi(code)
			if err != nil {
				t.Errorf("%s: response %q is not a status", key, code)
				continue
			}
			if n < 400 {
				continue
			}
			content := obj(doc.resolve(obj(r))["content"])
			schema := obj(obj(content["application/json"])["schema"])
			if len(content) != 1 || schema == nil || !usesError(schema) {
				t.Errorf("%s: error response %s does not use the Error schema: %v", key, code, r)
			}
		}
		public := op["security"] != nil && len(anySlice(op["security"])) == 0
		for _, code := range []string{"400", "401", "403", "405", "500"} {
			if _, ok := responses[code]; !ok && !(public && code != "405") {
				t.Errorf("%s does not document %s", key, code)
			}
		}
	}
}

func TestOpenAPIServed(t *testing.T) {
	e := newEnv(t)
	a := e.doAuth("GET", "/api/v1/openapi.json", "", "").want(t, 200)
	if a.header.Get("Content-Type") != "application/json" || string(a.body) != string(OpenAPIDocument()) {
		t.Errorf("served document differs (%s, %d bytes)", a.header.Get("Content-Type"), len(a.body))
	}
	e.doAuth("POST", "/api/v1/openapi.json", "", "").wantError(t, 401, "unauthorized")
}

// Every documented query parameter is accepted, and the handlers accept no
// undocumented one.
func TestOpenAPIQueryParameters(t *testing.T) {
	doc := loadOpenAPI(t)
	e := newEnv(t, func(c *Config) { c.Backup = func(w io.Writer) (int64, error) { return 0, nil } })
	for key, op := range doc.operations() {
		method, path, _ := strings.Cut(key, " ")
		if method != "GET" || strings.Contains(path, "{") {
			continue
		}
		var names []string
		for _, p := range anySlice(op["parameters"]) {
			if rp := doc.resolve(obj(p)); rp["in"] == "query" {
				names = append(names, rp["name"].(string))
			}
		}
		for _, n := range names {
			if a := e.do("GET", Prefix+path+"?"+n+"=", ""); a.status != 200 {
				t.Errorf("%s?%s=: %d %s", key, n, a.status, a.body)
			}
		}
		if len(names) > 0 {
			msg := e.do("GET", Prefix+path+"?undocumented=1", "").wantError(t, 400, "invalid", "unknown query parameter").Message
			_, list, _ := strings.Cut(msg, "this route takes ")
			accepted := strings.Split(list, ", ")
			slices.Sort(accepted)
			slices.Sort(names)
			if !slices.Equal(accepted, names) {
				t.Errorf("%s accepts %v, documents %v", key, accepted, names)
			}
		}
	}
}

// The answers of the handlers match the schemas the document gives for
// them, with no undocumented fields.
func TestOpenAPIResponsesMatchHandlers(t *testing.T) {
	doc := loadOpenAPI(t)
	ge := inviteEnv(t, func(c *Config) { c.InviteTimeout = time.Second })
	e := ge.env
	ge.graph.AddUser(graphtest.User{ID: "aaaaaaaa-0000-4000-8000-000000000001", Mail: "pat@example.com"})
	r := e.signUp("ann@example.com")
	auto := e.signUp("bob@spam.example")

	check := func(method, path string, a answer) {
		t.Helper()
		op := doc.operations()[method+" "+path]
		if op == nil {
			t.Fatalf("%s %s not documented", method, path)
		}
		resp := doc.resolve(obj(obj(op["responses"])[strconv.Itoa(a.status)]))
		if resp == nil {
			t.Errorf("%s %s answered %d, which is not documented: %s", method, path, a.status, a.body)
			return
		}
		ct, _, _ := strings.Cut(a.header.Get("Content-Type"), ";")
		media := obj(obj(resp["content"])[ct])
		if media == nil {
			t.Errorf("%s %s %d: Content-Type %s not documented", method, path, a.status, ct)
			return
		}
		var v any
		if err := json.Unmarshal(a.body, &v); err != nil {
			t.Errorf("%s %s: %v", method, path, err)
			return
		}
		for _, problem := range doc.check("$", v, obj(media["schema"]), true) {
			t.Errorf("%s %s %d: %s\n%s", method, path, a.status, problem, a.body)
		}
	}
	id := "/requests/{id}"
	check("GET", "/requests", e.do("GET", "/api/v1/requests", ""))
	check("GET", "/requests", e.do("GET", "/api/v1/requests?limit=1", ""))
	check("GET", "/requests", e.do("GET", "/api/v1/requests?limit=0", ""))
	check("POST", id+"/approve", e.do("POST", "/api/v1/requests/"+r.ID+"/approve", `{"reason":"ok"}`))
	check("GET", id, e.do("GET", "/api/v1/requests/"+r.ID, ""))
	check("GET", id, e.do("GET", "/api/v1/requests/"+auto.ID, ""))
	check("GET", id, e.do("GET", "/api/v1/requests/nope", ""))
	check("GET", id, e.doAuth("GET", "/api/v1/requests/nope", "", ""))
	check("POST", id+"/deny", e.do("POST", "/api/v1/requests/"+r.ID+"/deny", `{"reason":"no"}`))
	check("POST", id+"/deny", e.do("POST", "/api/v1/requests/"+r.ID+"/deny", `{}`))
	check("POST", id+"/reopen", e.do("POST", "/api/v1/requests/"+auto.ID+"/reopen", ``))
	check("POST", id+"/retry-provisioning", e.do("POST", "/api/v1/requests/"+r.ID+"/retry-provisioning", ``))
	check("GET", "/requests", e.do("DELETE", "/api/v1/requests", ""))
	check("GET", "/audit", e.do("GET", "/api/v1/audit?limit=2", ""))
	check("GET", "/decisions/export", e.do("GET", "/api/v1/decisions/export?format=json", ""))
	check("GET", "/decisions/export", e.do("GET", "/api/v1/decisions/export?format=pdf", ""))
	check("GET", "/backup", e.do("GET", "/api/v1/backup", ""))
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com"}`))
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"pat@example.com","use_existing_id":"aaaaaaaa-0000-4000-8000-000000000001"}`))
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"new@example.com","group_ids":["`+groupA+`"]}`))
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"other@example.com","group_ids":["00000000-0000-4000-8000-000000000000"]}`))
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"pat+x@example.com"}`))
	ge.graph.RestrictInvitations(true)
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"refused@example.com"}`))
	ge.graph.RestrictInvitations(false)
	ge.graph.Fault("POST /invitations", graphtest.FaultSpec{Status: 503, Count: 1000})
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"slow@example.com"}`))
	ge.graph.Fault("GET /users", graphtest.FaultSpec{Status: 429, Count: 1000})
	check("POST", "/invitations", e.do("POST", "/api/v1/invitations", `{"email":"again@example.com"}`))
}

// check validates v against schema s and returns the problems. strict
// reports properties the schema does not declare.
func (d openAPI) check(at string, v any, s map[string]any, strict bool) []string {
	s = d.resolve(s)
	if s == nil {
		return []string{at + ": unresolvable schema"}
	}
	if v == nil {
		if s["nullable"] == true {
			return nil
		}
		return []string{at + ": null"}
	}
	var problems []string
	if all := anySlice(s["allOf"]); len(all) > 0 {
		declared := map[string]bool{}
		for _, sub := range all {
			problems = append(problems, d.check(at, v, obj(sub), false)...)
			for k := range obj(d.resolve(obj(sub))["properties"]) {
				declared[k] = true
			}
		}
		if m, ok := v.(map[string]any); ok && strict {
			problems = append(problems, undeclared(at, m, declared)...)
		}
		return problems
	}
	if alts := anySlice(s["oneOf"]); len(alts) > 0 {
		var firsts []string
		matched := 0
		for _, alt := range alts {
			p := d.check(at, v, obj(alt), strict)
			if len(p) == 0 {
				matched++
			} else {
				firsts = append(firsts, p[0])
			}
		}
		if matched != 1 {
			return []string{fmt.Sprintf("%s: matches %d of oneOf (%s)", at, matched, strings.Join(firsts, "; "))}
		}
		return nil
	}
	switch s["type"] {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			return []string{at + ": not an object"}
		}
		props := obj(s["properties"])
		for _, r := range anySlice(s["required"]) {
			if _, ok := m[r.(string)]; !ok {
				problems = append(problems, fmt.Sprintf("%s: required %q missing", at, r))
			}
		}
		for k, val := range m {
			if ps := obj(props[k]); ps != nil {
				problems = append(problems, d.check(at+"."+k, val, ps, true)...)
			} else if ap := obj(s["additionalProperties"]); ap != nil {
				problems = append(problems, d.check(at+"."+k, val, ap, true)...)
			}
		}
		if strict && s["additionalProperties"] == nil {
			declared := map[string]bool{}
			for k := range props {
				declared[k] = true
			}
			problems = append(problems, undeclared(at, m, declared)...)
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			return []string{at + ": not an array"}
		}
		for i, e := range a {
			problems = append(problems, d.check(fmt.Sprintf("%s[%d]", at, i), e, obj(s["items"]), true)...)
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			return []string{at + ": not a string"}
		}
		if enum := anySlice(s["enum"]); len(enum) > 0 && !slices.Contains(enum, any(str)) {
			problems = append(problems, fmt.Sprintf("%s: %q not in %v", at, str, enum))
		}
		if s["format"] == "date-time" {
			if _, err := time.Parse(time.RFC3339, str); err != nil {
				problems = append(problems, fmt.Sprintf("%s: %q is not RFC 3339", at, str))
			}
		}
	case "integer":
		if f, ok := v.(float64); !ok || f != math.Trunc(f) {
			problems = append(problems, at+": not an integer")
		}
	case "number":
		if _, ok := v.(float64); !ok {
			problems = append(problems, at+": not a number")
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			problems = append(problems, at+": not a boolean")
		}
	}
	return problems
}

func undeclared(at string, m map[string]any, declared map[string]bool) []string {
	var out []string
	for k := range m {
		if !declared[k] {
			out = append(out, fmt.Sprintf("%s: field %q is not documented", at, k))
		}
	}
	sort.Strings(out)
	return out
}
