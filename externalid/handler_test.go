package externalid

import (
	"context"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/signupmsg"
	"github.com/approvals-dev/approvals/store/bolt"
)

func find(t *testing.T, e *env, email string) *approvals.Request {
	t.Helper()
	r, err := e.store.FindByPerson(context.Background(), approvals.ExternalIDPersonKey(email))
	if err != nil {
		t.Fatalf("FindByPerson(%s): %v", email, err)
	}
	return r
}

var reviewer = approvals.Actor{Kind: approvals.ActorReviewer, ID: "r1", Name: "Rita Reviewer"}

// TestLifecycle takes one person through the documented pattern: blocked
// at submit, approved, then let through at both steps on the second
// attempt, and Entra creates the account (by_entra).
func TestLifecycle(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	tok := e.token(nil)
	start, submit := readTestdata(t, "start_reference.json"), readTestdata(t, "submit_reference.json")
	en := signupmsg.Builtin()["en"]

	if a := e.post(StartPath, start, tok); a.action(t) != startContinueType {
		t.Fatalf("first start: %s", a.Raw)
	}
	a := e.post(SubmitPath, submit, tok)
	if a.action(t) != submitBlockType || a.Data.Actions[0].Message != en[signupmsg.MsgPending] || a.Data.Actions[0].Title != en[signupmsg.MsgTitle] {
		t.Fatalf("first submit: %s", a.Raw)
	}
	if a.Data.ODataType != "microsoft.graph.onAttributeCollectionSubmitResponseData" {
		t.Errorf("data type %q", a.Data.ODataType)
	}
	r := find(t, e, "larissa@contoso.com")
	if r.Source != approvals.SourceExternalID || r.Status != approvals.StatusPending || r.Locale != "en-us" ||
		r.Claims["givenName"] != "Larissa" || r.Claims["extension_0123456789abcdef0123456789abcdef_graduationYear"] != float64(2010) ||
		r.Claims["extension_0123456789abcdef0123456789abcdef_onMailingList"] != false {
		t.Fatalf("recorded %+v", r)
	}
	// Entra's retry: the same request, the same answer.
	if a := e.post(SubmitPath+"/", submit, tok); a.action(t) != submitBlockType {
		t.Fatalf("retried submit: %s", a.Raw)
	}
	if again := find(t, e, "larissa@contoso.com"); again.ID != r.ID || again.Version != r.Version {
		t.Fatalf("retry changed the request: %+v", again)
	}
	// Waiting: blocked at start.
	a = e.post(StartPath+"/", start, tok)
	if a.action(t) != startBlockType || a.Data.Actions[0].Message != en[signupmsg.MsgAlreadyProcessing] {
		t.Fatalf("start while pending: %s", a.Raw)
	}
	if _, err := e.svc.Approve(context.Background(), r.ID, reviewer, "known customer"); err != nil {
		t.Fatal(err)
	}
	if r := find(t, e, "larissa@contoso.com"); r.Provisioning.State != approvals.ProvisioningByEntra {
		t.Fatalf("approved external request provisioning %q, want by_entra", r.Provisioning.State)
	}
	if a := e.post(StartPath, start, tok); a.action(t) != startContinueType {
		t.Fatalf("start after approval: %s", a.Raw)
	}
	if a := e.post(SubmitPath, submit, tok); a.action(t) != submitContinueType {
		t.Fatalf("submit after approval: %s", a.Raw)
	}
}

func TestDeniedAndPolicy(t *testing.T) {
	e := newEnv(t, approvals.Policy{AutoApproveDomains: []string{"example.org"}, AutoDenyDomains: []string{"gmail.com"}})
	tok := e.token(nil)
	ctx := context.Background()
	// Auto-approved: continue at once, by_entra.
	if a := e.post(SubmitPath, readTestdata(t, "submit_captured_email_attribute.json"), tok); a.action(t) != submitContinueType {
		t.Fatalf("auto-approved: %s", a.Raw)
	}
	r := find(t, e, "marie.curie@example.org")
	if r.Status != approvals.StatusApproved || r.Provisioning.State != approvals.ProvisioningByEntra || r.Decision == nil || !r.Decision.Automatic {
		t.Fatalf("auto-approved request %+v", r)
	}
	if r.Application == nil || r.Application.ID != "9e8f7a6b-5c4d-4e3f-a0b1-c2d3e4f5a6b7" || r.Application.DisplayName != "Woodgrove Groceries" {
		t.Errorf("application %+v", r.Application)
	}
	if r.DisplayName != "Marie Curie" || r.Claims["city"] != "Paris" {
		t.Errorf("attributes %q %v", r.DisplayName, r.Claims)
	}
	// Auto-denied, in Spanish.
	a := e.post(SubmitPath, readTestdata(t, "submit_google_no_identities.json"), tok)
	if a.action(t) != submitBlockType || a.Data.Actions[0].Message != signupmsg.Builtin()["es"][signupmsg.MsgDenied] {
		t.Fatalf("auto-denied: %s", a.Raw)
	}
	// The start call carries the Google identity the submit lacked: the
	// same request all the same (the key is the email).
	if a := e.post(StartPath, readTestdata(t, "start_google.json"), tok); a.action(t) != startBlockType {
		t.Fatalf("start of a denied person: %s", a.Raw)
	}
	// A reviewer's denial.
	if a := e.post(SubmitPath, readTestdata(t, "submit_captured_emailaddress.json"), tok); a.action(t) != submitBlockType {
		t.Fatal(a.Raw)
	}
	jan := find(t, e, "jan@example.pl")
	if _, err := e.svc.Deny(ctx, jan.ID, reviewer, "unknown"); err != nil {
		t.Fatal(err)
	}
	if a := e.post(SubmitPath, readTestdata(t, "submit_captured_emailaddress.json"), tok); a.Data.Actions[0].Message != signupmsg.Builtin()["pl"][signupmsg.MsgDenied] {
		t.Fatalf("denied in Polish: %s", a.Raw)
	}
}

func TestValidationErrors(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	tok := e.token(nil)
	body := `{"data":{"authenticationContext":{"client":{"locale":"fr-FR"}},"userSignUpInfo":{"attributes":{
		"email":{"value":"not an address"},"city":{"value":"` + long(2000) + `"}}}}}`
	a := e.post(SubmitPath, []byte(body), tok)
	if a.action(t) != submitErrorType {
		t.Fatalf("%s", a.Raw)
	}
	fr := signupmsg.Builtin()["fr"]
	act := a.Data.Actions[0]
	if act.Message != fr[signupmsg.MsgFixErrors] || act.AttributeErrors["city"] != fr[signupmsg.MsgTooLarge] {
		t.Fatalf("validation error %+v", act)
	}
	// Email problems point at the email attribute.
	a = e.post(SubmitPath, []byte(`{"data":{"userSignUpInfo":{"attributes":{"Email":{"value":"not an address"}}}}}`), tok)
	if a.action(t) != submitErrorType || a.Data.Actions[0].AttributeErrors["Email"] == "" {
		t.Fatalf("%s", a.Raw)
	}
	// No email at all at submit: nothing to fix, blocked.
	if a := e.post(SubmitPath, []byte(`{"data":{}}`), tok); a.action(t) != submitBlockType {
		t.Fatalf("%s", a.Raw)
	}
	// Start never answers a validation error; without an email it lets
	// the person on to the page, where submit decides.
	if a := e.post(StartPath, []byte(body), tok); a.action(t) != startContinueType && a.action(t) != startBlockType {
		t.Fatalf("%s", a.Raw)
	}
}

func TestBadRequestsAndRoutes(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	tok := e.token(nil)
	req := func(method, path, ct, body string) (int, string) {
		r, _ := http.NewRequest(method, e.srv.URL+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+tok)
		if ct != "" {
			r.Header.Set("Content-Type", ct)
		}
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("Content-Type")
	}
	// Authenticated but unusable: 200 and a block page, never continue.
	for _, tt := range []struct{ ct, body string }{{"text/plain", "{}"}, {"application/json", "{"}, {"application/json", strings.Repeat(" ", DefaultMaxBodyBytes+10)}} {
		r, _ := http.NewRequest(http.MethodPost, e.srv.URL+SubmitPath, strings.NewReader(tt.body))
		r.Header.Set("Authorization", "Bearer "+tok)
		r.Header.Set("Content-Type", tt.ct)
		resp, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		var a answer
		buf := new(strings.Builder)
		_, _ = ioCopy(buf, resp)
		a.Raw = buf.String()
		if resp.StatusCode != http.StatusOK || !strings.Contains(a.Raw, submitBlockType) {
			t.Errorf("%s %q: %d %s", tt.ct, truncate(tt.body, 10), resp.StatusCode, a.Raw)
		}
	}
	if s, _ := req(http.MethodGet, StartPath, "", ""); s != http.StatusMethodNotAllowed {
		t.Errorf("GET: %d", s)
	}
	if s, ct := req(http.MethodPost, "/external-id/other", "application/json", "{}"); s != http.StatusNotFound || ct != "application/json" {
		t.Errorf("unknown path: %d %s", s, ct)
	}
}

// TestStoreUnavailableFailsClosed: with the store gone, both steps block
// with "try later"; nothing continues.
func TestStoreUnavailableFailsClosed(t *testing.T) {
	e := newEnv(t, approvals.Policy{AutoApproveDomains: []string{"contoso.com"}})
	tok := e.token(nil)
	// bbolt, as served: the memory store answers lookups even when closed.
	b, err := bolt.Open(filepath.Join(t.TempDir(), "approvals.db"), bolt.Options{Clock: e.clock})
	if err != nil {
		t.Fatal(err)
	}
	e.svc.Store = b
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	en := signupmsg.Builtin()["en"]
	if a := e.post(StartPath, readTestdata(t, "start_reference.json"), tok); a.action(t) != startBlockType || a.Data.Actions[0].Message != en[signupmsg.MsgTryLater] {
		t.Fatalf("start: %s", a.Raw)
	}
	if a := e.post(SubmitPath, readTestdata(t, "submit_reference.json"), tok); a.action(t) != submitBlockType || a.Data.Actions[0].Message != en[signupmsg.MsgTryLater] {
		t.Fatalf("submit: %s", a.Raw)
	}
	if !strings.Contains(e.logs.String(), `"level":"ERROR"`) {
		t.Error("the store error was not logged")
	}
}

func TestMessageOverrides(t *testing.T) {
	e := newEnv(t, approvals.Policy{}, func(c *Config) {
		c.Messages = map[signupmsg.Key]map[string]string{signupmsg.MsgTitle: {"en": "Contoso sign-up"}, signupmsg.MsgPending: {"nl": "Even geduld."}}
	})
	tok := e.token(nil)
	a := e.post(SubmitPath, readTestdata(t, "submit_reference.json"), tok)
	if a.Data.Actions[0].Title != "Contoso sign-up" {
		t.Errorf("title %q", a.Data.Actions[0].Title)
	}
	body := strings.Replace(string(readTestdata(t, "submit_captured_emailaddress.json")), `"locale":"pl"`, `"locale":"nl-NL"`, 1)
	if a := e.post(SubmitPath, []byte(body), tok); a.Data.Actions[0].Message != "Even geduld." {
		t.Errorf("nl message %q", a.Data.Actions[0].Message)
	}
	if _, err := New(Config{Service: e.svc, Tokens: TokenConfig{TenantID: testTenant, AppID: testApp},
		Messages: map[signupmsg.Key]map[string]string{"nope": {"en": "x"}}}); err == nil {
		t.Error("an unknown message key was accepted")
	}
}
