package api

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

// FuzzDecodeBody checks the decoder of every JSON request body against
// encoding/json: an accepted body is valid JSON without a repeated member
// that json.Unmarshal reads into the same value (so no field is silently
// taken differently), an empty one is accepted only when optional, and a
// refused one is a 400, or a 413 only when the body is over the limit,
// whose message names no Go type.
func FuzzDecodeBody(f *testing.F) {
	for _, s := range []string{
		``, `{}`, `{"reason":"known partner"}`, `{"reason":"x"} `, `{"reason":"x"}{}`, `{"reason":1}`,
		`{"reason":"x","extra":true}`, `null`, `[]`, `"x"`, `{"reason":"\ud800"}`, "{\"reason\":\"\xff\"}",
		`{"email":"pat@example.com","display_name":"Pat","group_ids":["3f2504e0-4f89-41d3-9a0c-0305e82c3301"],"attributes":{"city":"Oslo","extension_b7d8e9f0a1b2c3d4e5f6a7b8c9d0e1f2_SupplierId":42}}`,
		`{"email":"pat@example.com","send_invitation_message":null,"attributes":{"city":null}}`,
		`{"REASON":"case"}`, `{"reason":"a","reason":"b"}`, `{"reason":` + strings.Repeat("[", 10000),
		`{"email":"a@example.com","email":"b@example.com"}`, `{"attributes":{"city":"a","city":"b"}}`,
		`{"group_ids":[1]}`, `{"attributes":[]}`, `{"send_invitation_message":"yes"}`, `{"attributes":{"x":1e999}}`,
	} {
		f.Add([]byte(s), uint8(0), false)
		f.Add([]byte(s), uint8(1), true)
	}
	e := echo.New()
	f.Fuzz(func(t *testing.T, body []byte, kind uint8, optional bool) {
		req := httptest.NewRequest(http.MethodPost, Prefix+"/x", bytes.NewReader(body))
		c := e.NewContext(req, httptest.NewRecorder())
		var got, again any
		switch kind % 2 {
		case 0:
			got, again = new(decisionBody), new(decisionBody)
		default:
			got, again = new(inviteBody), new(inviteBody)
		}
		err := decodeBody(c, got, optional)
		if err != nil {
			var ae *apiError
			if !errors.As(err, &ae) || ae.message == "" || (ae.status != http.StatusBadRequest && ae.status != http.StatusRequestEntityTooLarge) {
				t.Fatalf("refused with %#v", err)
			}
			if leak := goInternals(ae.message, string(body)); leak != "" {
				t.Fatalf("the message for %q names Go's %q: %s", body, leak, ae.message)
			}
			if ae.status == http.StatusRequestEntityTooLarge && len(body) <= maxBody {
				t.Fatalf("413 for a body of %d bytes", len(body))
			}
			return
		}
		if len(bytes.TrimSpace(body)) == 0 {
			if !optional {
				t.Fatal("an empty body was accepted where one is required")
			}
			return
		}
		if len(body) > maxBody && len(bytes.TrimSpace(body[maxBody:])) > 0 {
			t.Fatalf("accepted %d bytes, over the %d limit", len(body), maxBody)
		}
		if !json.Valid(body) {
			t.Fatalf("accepted invalid JSON %q", body)
		}
		// jsontext's decoder refuses duplicate member names at any depth
		// (invalid UTF-8 is read as U+FFFD, as encoding/json does).
		if _, err := jsontext.NewDecoder(bytes.NewReader(body), jsontext.AllowInvalidUTF8(true)).ReadValue(); err != nil {
			t.Fatalf("accepted %q, which repeats a member or is not one value: %v", body, err)
		}
		if err := json.Unmarshal(body, again); err != nil {
			t.Fatalf("accepted %q, which json.Unmarshal refuses: %v", body, err)
		}
		if !reflect.DeepEqual(got, again) {
			t.Fatalf("decoded %+v, json.Unmarshal %+v", got, again)
		}
	})
}

// fuzzRoutes are the API routes FuzzAPI calls; {id} is replaced.
var fuzzRoutes = []struct{ method, path string }{
	{http.MethodGet, "/requests"},
	{http.MethodGet, "/requests/{id}"},
	{http.MethodPost, "/requests/{id}/approve"},
	{http.MethodPost, "/requests/{id}/deny"},
	{http.MethodPost, "/requests/{id}/reopen"},
	{http.MethodPost, "/requests/{id}/retry-provisioning"},
	{http.MethodGet, "/audit"},
	{http.MethodGet, "/decisions/export"},
	{http.MethodGet, "/backup"},
	{http.MethodPost, "/invitations"},
	{http.MethodGet, "/openapi.json"},
	{http.MethodDelete, "/requests/{id}"},
	{http.MethodGet, "/{id}"},
}

// FuzzAPI sends requests with fuzzed ids, query strings, bodies and
// credentials to every route of one API over a memory store (with a fake
// directory for invitations): the answer is never a 5xx, every error is
// the JSON error envelope with a code and a message, and every JSON
// answer is valid JSON.
func FuzzAPI(f *testing.F) {
	clock := newClock()
	mem := memory.New(clock)
	svc := &approvals.Service{Store: mem, Clock: clock, Provisioner: &wakeCounter{},
		Policy: approvals.Policy{AutoApproveDomains: []string{"partner.example"}}}
	var ids []string
	for i := range 5 {
		r, _, err := svc.RequestApproval(context.Background(), approvals.SignUp{
			Email:    fmt.Sprintf("p%d@example.com", i),
			Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprint(i)},
			Claims:   map[string]any{"city": "Oslo"},
		})
		if err != nil {
			f.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	// Invitations are checked and recorded; nobody is in the directory,
	// and nothing provisions them within the fuzz call.
	svc.Directory, svc.InviteRedirectURL = emptyDirectory{}, "https://apps.contoso.example/welcome"
	h, err := New(Config{
		Service: svc, Store: mem, Clock: clock,
		APIKeys:       map[string]string{"ops": opsKey},
		Backup:        func(w io.Writer) (int64, error) { n, err := io.WriteString(w, "bbolt"); return int64(n), err },
		InviteTimeout: time.Millisecond,
		Logger:        slog.New(slog.DiscardHandler),
	})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint8(0), "", "status=pending&limit=2", []byte(nil), uint8(0))
	f.Add(uint8(0), "", "cursor=AQ&limit=0", []byte(nil), uint8(0))
	f.Add(uint8(1), ids[0], "", []byte(nil), uint8(0))
	f.Add(uint8(2), ids[1], "", []byte(`{"reason":"ok"}`), uint8(0))
	f.Add(uint8(3), ids[2], "", []byte(`{"reason":""}`), uint8(0))
	f.Add(uint8(3), ids[3], "", []byte(`{"reason":"no"}`), uint8(0))
	f.Add(uint8(4), ids[3], "", []byte(`{"reason":"again"}`), uint8(0))
	f.Add(uint8(5), ids[1], "", []byte(`{}`), uint8(0))
	f.Add(uint8(6), "", "since=2026-11-21&limit=3&cursor=2&request_id="+ids[0], []byte(nil), uint8(0))
	f.Add(uint8(6), "", "since=2026-11-21T09:00:00 01:00", []byte(nil), uint8(0))
	f.Add(uint8(7), "", "format=csv&status=approved&since=2026-01-01&until=2027-01-01", []byte(nil), uint8(0))
	f.Add(uint8(7), "", "format=ndjson", []byte(nil), uint8(0))
	f.Add(uint8(8), "", "", []byte(nil), uint8(0))
	f.Add(uint8(9), "", "", []byte(`{"email":"new@example.com","group_ids":["3f2504e0-4f89-41d3-9a0c-0305e82c3301"],"attributes":{"city":"Oslo"}}`), uint8(0))
	f.Add(uint8(9), "", "", []byte(`{"email":"p0@example.com"}`), uint8(0))
	f.Add(uint8(10), "", "", []byte(nil), uint8(1))
	f.Add(uint8(11), "..%2f", "", []byte(nil), uint8(2))
	f.Add(uint8(12), "requests/x/y", "%zz", []byte(nil), uint8(3))
	f.Add(uint8(7), "", "status=denied;since=2999-01-01", []byte(nil), uint8(0))
	f.Add(uint8(0), "", "status=pending&limit=%4", []byte(nil), uint8(0))
	f.Add(uint8(2), "#\x01", "", []byte(`{"reason":"a","reason":"b"}`), uint8(0))
	f.Add(uint8(9), "", "", []byte(`{"email":"a@example.com","email":"b@example.com"}`), uint8(0))
	f.Add(uint8(9), "", "", []byte(`{"email":"a@example.com","group_ids":[7],"attributes":{"city":1e999}}`), uint8(0))
	f.Fuzz(func(t *testing.T, route uint8, id, query string, body []byte, auth uint8) {
		rt := fuzzRoutes[int(route)%len(fuzzRoutes)]
		if strings.HasPrefix(id, "#") && len(id) == 2 {
			id = ids[int(id[1])%len(ids)]
		}
		path := Prefix + strings.ReplaceAll(rt.path, "{id}", url.PathEscape(id))
		target := path
		if query != "" {
			target += "?" + query
		}
		var rd io.Reader
		if body != nil {
			rd = bytes.NewReader(body)
		}
		req, err := http.NewRequest(rt.method, target, rd)
		if err != nil {
			return // not a request a client could send
		}
		req.Header.Set("Content-Type", "application/json")
		switch auth % 4 {
		case 0:
			req.Header.Set("Authorization", "Bearer "+opsKey)
		case 1:
			req.Header.Set("Authorization", "Bearer "+opsKey+"x")
		case 2:
			req.Header.Set("Authorization", "Basic "+opsKey)
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code >= 500 && !(rt.path == "/backup" && rec.Code == http.StatusNotImplemented) {
			t.Fatalf("%s %s: %d %s", rt.method, target, rec.Code, rec.Body)
		}
		ct := rec.Header().Get("Content-Type")
		if rec.Code >= 400 {
			var e errorBody
			if ct != "application/json" || json.Unmarshal(rec.Body.Bytes(), &e) != nil || e.Error.Code == "" || e.Error.Message == "" {
				t.Fatalf("%s %s: %d %q, not the JSON error envelope: %s", rt.method, target, rec.Code, ct, rec.Body)
			}
			if leak := goInternals(e.Error.Message, target, string(body)); leak != "" {
				t.Fatalf("%s %s: the message names Go's %q: %s", rt.method, target, leak, e.Error.Message)
			}
			return
		}
		if strings.HasPrefix(ct, "application/json") && !json.Valid(rec.Body.Bytes()) {
			t.Fatalf("%s %s: %d, invalid JSON: %s", rt.method, target, rec.Code, rec.Body)
		}
	})
}

// emptyDirectory is a directory with nobody in it.
type emptyDirectory struct{}

func (emptyDirectory) LookupPerson(context.Context, string) ([]approvals.DirectoryUser, error) {
	return nil, nil
}

// goInternals returns the first Go-internal word in a message a client
// sees ("api.decisionBody", "float64", "Go value"), or "". Words that the
// caller sent (inputs: the path, the query, the body) may be quoted back
// and do not count.
func goInternals(msg string, inputs ...string) string {
	found := goQualifiedName.FindAllString(msg, -1)
	for _, w := range []string{"Go value", "Go type", "json:", "jsontext", "float64", "int64", "interface", "struct", "map[", "[]string", "*bool", "reflect", "validator", "Key: '"} {
		if strings.Contains(msg, w) {
			found = append(found, w)
		}
	}
	for _, w := range found {
		sent := false
		for _, in := range inputs {
			sent = sent || strings.Contains(in, w)
		}
		if !sent {
			return w
		}
	}
	return ""
}

// goQualifiedName matches a package-qualified Go name such as
// api.decisionBody or approvals.Request (not openapi.json).
var goQualifiedName = regexp.MustCompile(`\b(api|approvals|web|echo|validator|json|jsontext|http)\.[A-Za-z]+`)
