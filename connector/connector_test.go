package connector

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/httplog"
)

var johnFacebook = &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "0123456789"}

const johnEmail = "johnsmith@fabrikam.onmicrosoft.com"

// request records the person of the documentation's Facebook payload as a
// request, through the connector itself.
func (e *env) request(name string) *approvals.Request {
	e.t.Helper()
	w := e.post(RequestApprovalPath, readTestdata(e.t, name))
	readReply(e.t, w, RequestApprovalPath)
	su, err := NewDecoder().Decode(readTestdata(e.t, name))
	if err != nil {
		e.t.Fatal(err)
	}
	return e.requestOf(su.Email, su.Identity)
}

func TestCheckApprovalStatus(t *testing.T) {
	deny := func(e *env, r *approvals.Request) {
		if _, err := e.svc.Deny(context.Background(), r.ID, approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1"}, "unknown company"); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name   string
		policy approvals.Policy
		setup  func(e *env) // records the earlier state, if any
		action string
		want   MessageKey
	}{
		{name: "no earlier request", action: "Continue"},
		{name: "pending", setup: func(e *env) { e.request("request-approval-facebook.json") },
			action: "ShowBlockPage", want: MsgAlreadyProcessing},
		{name: "denied by a reviewer", setup: func(e *env) { deny(e, e.request("request-approval-facebook.json")) },
			action: "ShowBlockPage", want: MsgDenied},
		{name: "auto-denied", policy: approvals.Policy{AutoDenyDomains: []string{"onmicrosoft.com"}},
			setup:  func(e *env) { e.request("request-approval-facebook.json") },
			action: "ShowBlockPage", want: MsgDenied},
		{name: "auto-approved, created by Entra", policy: approvals.Policy{AutoApproveDomains: []string{"fabrikam.onmicrosoft.com"}},
			setup:  func(e *env) { e.request("request-approval-facebook.json") },
			action: "Continue"},
		{name: "approved, provisioning in progress",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningInProgress)
			},
			action: "ShowBlockPage", want: MsgProvisioning},
		{name: "approved, provisioning failed",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningFailed)
			},
			action: "ShowBlockPage", want: MsgProvisioning},
		{name: "approved, provisioned",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningSucceeded)
			},
			action: "Continue"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.policy)
			if tt.setup != nil {
				tt.setup(e)
			}
			before := e.count()
			e.postWanting(t, CheckApprovalStatusPath, "check-status-facebook.json", tt.action, tt.want)
			if e.count() != before {
				t.Errorf("the check step changed the number of requests: %d -> %d", before, e.count())
			}
			if tt.action == "ShowBlockPage" {
				r := e.requestOf(johnEmail, johnFacebook)
				evs, _, err := e.store.Audit(context.Background(), approvals.AuditQuery{RequestID: r.ID})
				if err != nil {
					t.Fatal(err)
				}
				if last := evs[len(evs)-1]; last.Type != approvals.EventBlockedAtCheck || last.Details["message"] != string(tt.want) {
					t.Errorf("last audit event = %+v, want %s", last, approvals.EventBlockedAtCheck)
				}
			}
		})
	}
}

func TestRequestApproval(t *testing.T) {
	tests := []struct {
		name       string
		policy     approvals.Policy
		setup      func(e *env)
		action     string
		want       MessageKey
		wantStatus approvals.Status
		wantState  approvals.ProvisioningState
	}{
		{name: "new request waits for a reviewer", action: "ShowBlockPage", want: MsgPending,
			wantStatus: approvals.StatusPending, wantState: approvals.ProvisioningNotStarted},
		{name: "Entra's retry finds the pending request", setup: func(e *env) { e.request("request-approval-facebook.json") },
			action: "ShowBlockPage", want: MsgPending, wantStatus: approvals.StatusPending, wantState: approvals.ProvisioningNotStarted},
		{name: "auto-approved domain lets Entra create the account",
			policy: approvals.Policy{AutoApproveDomains: []string{"onmicrosoft.com"}},
			action: "Continue", wantStatus: approvals.StatusApproved, wantState: approvals.ProvisioningByEntra},
		{name: "auto-denied domain",
			policy: approvals.Policy{AutoApproveDomains: []string{"onmicrosoft.com"}, AutoDenyDomains: []string{"fabrikam.onmicrosoft.com"}},
			action: "ShowBlockPage", want: MsgDenied, wantStatus: approvals.StatusDenied, wantState: approvals.ProvisioningNotStarted},
		{name: "denied earlier stays denied",
			setup: func(e *env) {
				r := e.request("request-approval-facebook.json")
				if _, err := e.svc.Deny(context.Background(), r.ID, approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1"}, "no"); err != nil {
					t.Fatal(err)
				}
			},
			action: "ShowBlockPage", want: MsgDenied, wantStatus: approvals.StatusDenied, wantState: approvals.ProvisioningNotStarted},
		{name: "approved while provisioning is in progress",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningInProgress)
			},
			action: "ShowBlockPage", want: MsgProvisioning, wantStatus: approvals.StatusApproved, wantState: approvals.ProvisioningInProgress},
		{name: "approved, provisioning failed",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningFailed)
			},
			action: "ShowBlockPage", want: MsgProvisioning, wantStatus: approvals.StatusApproved, wantState: approvals.ProvisioningFailed},
		{name: "approved and provisioned",
			setup: func(e *env) {
				e.approveAndProvision(e.request("request-approval-facebook.json").ID, approvals.ProvisioningSucceeded)
			},
			action: "Continue", wantStatus: approvals.StatusApproved, wantState: approvals.ProvisioningSucceeded},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, tt.policy)
			if tt.setup != nil {
				tt.setup(e)
			}
			e.postWanting(t, RequestApprovalPath, "request-approval-facebook.json", tt.action, tt.want)
			if n := e.count(); n != 1 {
				t.Errorf("%d requests stored, want 1", n)
			}
			r := e.requestOf(johnEmail, johnFacebook)
			if r.Status != tt.wantStatus || r.Provisioning.State != tt.wantState {
				t.Errorf("stored %s/%s, want %s/%s", r.Status, r.Provisioning.State, tt.wantStatus, tt.wantState)
			}
		})
	}
}

// TestRequestApprovalStoresClaims checks what reaches the store from the
// documentation's payloads: everything the provisioner needs, nothing it
// must not send to Graph.
func TestRequestApprovalStoresClaims(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	for _, name := range []string{"request-approval-facebook.json", "request-approval-entra.json", "request-approval-lastname.json"} {
		readReply(t, e.post(RequestApprovalPath, readTestdata(t, name)), RequestApprovalPath)
	}
	fb := e.requestOf(johnEmail, johnFacebook)
	if fb.Source != approvals.SourceSignUp || fb.DisplayName != "John Smith" || fb.Locale != "en-US" {
		t.Errorf("facebook request = %+v", fb)
	}
	if got := fb.Claims["extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_CustomAttribute2"]; got != "custom attribute value" {
		t.Errorf("extension claim = %v", got)
	}
	if fb.Claims["streetAddress"] != "1000 Microsoft Way" || len(fb.Claims) != 11 {
		t.Errorf("claims = %v", fb.Claims)
	}
	entra := e.requestOf(johnEmail, nil)
	if entra.ID == fb.ID || entra.Identity != nil || entra.Claims["city"] != "Redmond" {
		t.Errorf("entra request = %+v (facebook %s)", entra, fb.ID)
	}
	marie := e.requestOf("marie.dupont@example.fr", &approvals.Identity{Issuer: "facebook.com", IssuerAssignedID: "9876543210"})
	if marie.Identity.Issuer != approvals.IssuerFacebook || marie.Claims["surname"] != "Dupont" || marie.Claims["lastName"] != nil {
		t.Errorf("lastName request = %+v", marie)
	}
	for _, r := range []*approvals.Request{fb, entra, marie} {
		for _, k := range []string{"email", "identities", "ui_locales", "step", "client_id", "lastName"} {
			if _, ok := r.Claims[k]; ok {
				t.Errorf("request %s keeps claim %q", r.ID, k)
			}
		}
	}
}

// TestIssuerSpellings: the check step may say "google" where the request
// step said "google.com"; it is the same person.
func TestIssuerSpellings(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	readReply(t, e.post(RequestApprovalPath, readTestdata(t, "request-approval-google.json")), RequestApprovalPath)
	rep := readReply(t, e.post(CheckApprovalStatusPath, readTestdata(t, "check-status-google.json")), CheckApprovalStatusPath)
	if rep.Action != "ShowBlockPage" || rep.UserMessage != text("es", MsgAlreadyProcessing) {
		t.Errorf("check after request = %+v", rep)
	}
}

func TestRequestApprovalRetriedSequentially(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	body := readTestdata(t, "request-approval-facebook.json")
	for i := range 3 {
		rep := readReply(t, e.post(RequestApprovalPath, body), RequestApprovalPath)
		if rep.Action != "ShowBlockPage" || rep.UserMessage != text("en", MsgPending) {
			t.Fatalf("call %d: %+v", i, rep)
		}
	}
	if n := e.count(); n != 1 {
		t.Fatalf("%d requests after 3 identical calls, want 1", n)
	}
	assertReceivedOnce(t, e)
	if got := strings.Count(e.logs.String(), `"created":true`); got != 1 {
		t.Errorf("%d calls logged created=true, want 1", got)
	}
}

func TestRequestApprovalConcurrentDuplicates(t *testing.T) {
	for _, policy := range []approvals.Policy{{}, {AutoApproveDomains: []string{"onmicrosoft.com"}}} {
		e := newEnv(t, policy)
		body := readTestdata(t, "request-approval-facebook.json")
		const n = 50
		recs := make([]*httptest.ResponseRecorder, n)
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range n {
			wg.Go(func() {
				<-start
				recs[i] = e.post(RequestApprovalPath, body)
			})
		}
		close(start)
		wg.Wait()
		answers := make([]reply, n)
		for i, w := range recs {
			answers[i] = readReply(t, w, RequestApprovalPath)
		}
		if c := e.count(); c != 1 {
			t.Fatalf("%d requests after %d concurrent identical calls, want 1", c, n)
		}
		for i, a := range answers {
			if a.Action != answers[0].Action || a.UserMessage != answers[0].UserMessage {
				t.Errorf("answer %d = %+v, answer 0 = %+v", i, a, answers[0])
			}
		}
		assertReceivedOnce(t, e)
	}
}

// assertReceivedOnce checks the audit trail holds one request.received.
func assertReceivedOnce(t *testing.T, e *env) {
	t.Helper()
	if received := e.countEvents(approvals.EventReceived); received != 1 {
		t.Errorf("%d request.received events, want 1", received)
	}
}

func TestBadInput(t *testing.T) {
	type input struct {
		name        string
		body        []byte
		contentType string
		chunked     bool // no Content-Length
		key         MessageKey
		lang        string
		status      int // 413 for bodies over the limit; 0: the step's usual status
	}
	big := signUp("big@example.com", map[string]any{"city": strings.Repeat("x", DefaultMaxBodyBytes)})
	inputs := []input{
		{name: "oversize", body: big, key: MsgTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "oversize without Content-Length", body: big, chunked: true, key: MsgTooLarge, status: http.StatusRequestEntityTooLarge},
		{name: "text/plain", body: readTestdata(t, "request-approval-facebook.json"), contentType: "text/plain", key: MsgBadRequest},
		{name: "form", body: []byte("email=a%40example.com"), contentType: "application/x-www-form-urlencoded", key: MsgBadRequest},
		{name: "no content type", body: readTestdata(t, "request-approval-facebook.json"), contentType: "-", key: MsgBadRequest},
		{name: "displayName too long", body: signUp("long@example.com", map[string]any{"displayName": strings.Repeat("n", 300), "ui_locales": "de-DE"}), key: MsgTooLarge, lang: "de"},
	}
	malformed := map[string]MessageKey{
		"malformed/doc-as-printed-comments.json": MsgBadRequest,
		"malformed/trailing-comma.json":          MsgBadRequest,
		"malformed/empty.json":                   MsgBadRequest,
		"malformed/array.json":                   MsgBadRequest,
		"malformed/string.json":                  MsgBadRequest,
		"malformed/duplicate-email.json":         MsgBadRequest,
		"malformed/non-utf8.json":                MsgBadRequest,
		"malformed/two-objects.json":             MsgBadRequest,
		"malformed/identities-not-array.json":    MsgBadRequest,
		"malformed/identity-without-issuer.json": MsgBadRequest,
		"malformed/truncated.json":               MsgBadRequest,
		"malformed/number-out-of-range.json":     MsgBadRequest,
		"malformed/deeply-nested.json":           MsgBadRequest,
		"malformed/missing-email.json":           MsgInvalidEmail,
		"malformed/invalid-email.json":           MsgInvalidEmail,
		"malformed/email-not-string.json":        MsgInvalidEmail,
	}
	for _, name := range testdataFiles(t, "malformed/*.json") {
		key, ok := malformed[name]
		if !ok {
			t.Fatalf("testdata %s has no expectation", name)
		}
		in := input{name: name, body: readTestdata(t, name), key: key}
		if name == "malformed/invalid-email.json" {
			in.lang = "fr"
		}
		inputs = append(inputs, in)
	}
	for _, in := range inputs {
		for _, path := range []string{CheckApprovalStatusPath, RequestApprovalPath} {
			t.Run(in.name+path, func(t *testing.T) {
				e := newEnv(t, approvals.Policy{AutoApproveDomains: []string{"example.com", "onmicrosoft.com"}})
				var body io.Reader = bytes.NewReader(in.body)
				if in.chunked {
					body = io.MultiReader(body)
				}
				r := httptest.NewRequest(http.MethodPost, path, body)
				switch in.contentType {
				case "":
					r.Header.Set("Content-Type", "application/json")
				case "-":
				default:
					r.Header.Set("Content-Type", in.contentType)
				}
				r.SetBasicAuth(testUser, testPassword)
				w := e.do(r)
				rep := readReply(t, w, path)
				wantAction, wantStatus := "ShowBlockPage", http.StatusOK
				if path == RequestApprovalPath {
					wantAction, wantStatus = "ValidationError", http.StatusBadRequest
				}
				if in.status != 0 {
					wantAction, wantStatus = "ShowBlockPage", in.status
				}
				if w.Code != wantStatus {
					t.Errorf("HTTP %d, want %d", w.Code, wantStatus)
				}
				lang := in.lang
				if lang == "" {
					lang = "en"
				}
				if rep.Action != wantAction || rep.UserMessage != text(lang, in.key) {
					t.Errorf("got %d %+v, want %s %q", w.Code, rep, wantAction, text(lang, in.key))
				}
				if n := e.count(); n != 0 {
					t.Errorf("bad input stored %d requests", n)
				}
				if !strings.Contains(e.logs.String(), `"outcome":"refused"`) {
					t.Errorf("refusal not logged: %s", e.logs)
				}
			})
		}
	}
}

// TestCharsetAccepted: a charset parameter on the content type is fine.
func TestCharsetAccepted(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	r := httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(readTestdata(t, "check-status-facebook.json")))
	r.Header.Set("Content-Type", "application/json; charset=utf-8")
	r.SetBasicAuth(testUser, testPassword)
	if rep := readReply(t, e.do(r), CheckApprovalStatusPath); rep.Action != "Continue" {
		t.Errorf("got %+v", rep)
	}
}

func TestLocalizedMessages(t *testing.T) {
	tests := []struct {
		uiLocales string
		lang      string
	}{
		{"en-US", "en"}, {"fr-FR", "fr"}, {"pl", "pl"}, {"de", "de"}, {"es-ES", "es"},
		{"fr-CA", "fr"}, {"DE-at", "de"}, {"es_MX", "es"}, {"pl-PL", "pl"},
		{"pt-BR", "en"}, {"", "en"}, {"zh-Hant en-GB", "en"}, {"nl-BE fr-BE", "fr"}, {"<script>", "en"},
		{"fr-FR,en-US", "fr"}, {"fr-FR, en-US", "fr"}, {"fr-FR,fr;q=0.9,en;q=0.8", "fr"},
		{"pt-BR,pt;q=0.9,de;q=0.8,en;q=0.7", "de"}, {"en;q=0.4,pl;q=0.6", "pl"},
		{"fr-FR,fr;q=0.9,en-US;q=0.8,en;q=0.7,de;q=0.6,pl;q=0.5,es;q=0.4,nl;q=0.3,it;q=0.2", "fr"},
	}
	for _, tt := range tests {
		t.Run(tt.uiLocales, func(t *testing.T) {
			e := newEnv(t, approvals.Policy{AutoDenyDomains: []string{"denied.example"}})
			extra := map[string]any{"ui_locales": tt.uiLocales}
			cases := []struct {
				path, email string
				key         MessageKey
			}{
				{RequestApprovalPath, "ann@example.com", MsgPending},
				{CheckApprovalStatusPath, "ann@example.com", MsgAlreadyProcessing},
				{RequestApprovalPath, "bob@denied.example", MsgDenied},
				{CheckApprovalStatusPath, "bob@denied.example", MsgDenied},
				{RequestApprovalPath, "not an email", MsgInvalidEmail},
			}
			for _, c := range cases {
				rep := readReply(t, e.post(c.path, signUp(c.email, extra)), c.path)
				if want := text(tt.lang, c.key); rep.UserMessage != want {
					t.Errorf("%s %s: message %q, want %q", c.path, c.email, rep.UserMessage, want)
				}
			}
		})
	}
}

func TestOperatorOverrides(t *testing.T) {
	e := newEnv(t, approvals.Policy{AutoDenyDomains: []string{"denied.example"}}, func(c *Config) {
		c.Messages = map[MessageKey]map[string]string{
			MsgPending: {"en": "Thanks! Contoso's partner team reviews requests within two working days.", "fr": "Merci ! L'équipe partenaires de Contoso examine les demandes sous deux jours ouvrés."},
			MsgDenied:  {"nl": "Uw aanvraag is afgewezen. Neem contact op met partners@contoso.com."},
		}
	})
	tests := []struct {
		email, locale string
		want          string
	}{
		{"a@example.com", "en-US", "Thanks! Contoso's partner team reviews requests within two working days."},
		{"b@example.com", "fr-FR", "Merci ! L'équipe partenaires de Contoso examine les demandes sous deux jours ouvrés."},
		{"c@example.com", "de-DE", text("de", MsgPending)},
		// A language only the operator added: its own text where given,
		// otherwise the (overridden) English one.
		{"d@denied.example", "nl-NL", "Uw aanvraag is afgewezen. Neem contact op met partners@contoso.com."},
		{"e@example.com", "nl-NL", "Thanks! Contoso's partner team reviews requests within two working days."},
		{"f@denied.example", "en", text("en", MsgDenied)},
	}
	for _, tt := range tests {
		rep := readReply(t, e.post(RequestApprovalPath, signUp(tt.email, map[string]any{"ui_locales": tt.locale})), RequestApprovalPath)
		if rep.UserMessage != tt.want {
			t.Errorf("%s %s: %q, want %q", tt.email, tt.locale, rep.UserMessage, tt.want)
		}
	}
}

// failingStore fails or panics on the calls the connector makes.
type failingStore struct {
	approvals.Store
	panics bool
}

func (s failingStore) fail(email string) error {
	if s.panics {
		panic("store exploded")
	}
	return errors.New("bolt: disk I/O error while reading person " + email)
}

func (s failingStore) FindByPerson(_ context.Context, key string) (*approvals.Request, error) {
	email, _, _ := strings.Cut(key, "\x00")
	return nil, s.fail(email)
}

func (s failingStore) FindStanding(_ context.Context, key string) (approvals.Standing, error) {
	email, _, _ := strings.Cut(key, "\x00")
	return approvals.Standing{}, s.fail(email)
}

func (s failingStore) Create(_ context.Context, r *approvals.Request, _ []approvals.Event) (*approvals.Request, bool, error) {
	return nil, false, s.fail(r.Email)
}

func TestStoreFailure(t *testing.T) {
	for _, panics := range []bool{false, true} {
		e := newEnv(t, approvals.Policy{AutoApproveDomains: []string{"onmicrosoft.com"}}, func(c *Config) {
			c.Service = &approvals.Service{Store: failingStore{Store: c.Service.Store, panics: panics}, Clock: c.Service.Clock, Policy: c.Service.Policy}
		})
		for _, path := range []string{CheckApprovalStatusPath, RequestApprovalPath} {
			for _, locale := range []string{"en-US", "pl-PL"} {
				body := readTestdata(t, "request-approval-facebook.json")
				body = bytes.Replace(body, []byte(`"ui_locales": "en-US"`), []byte(`"ui_locales": "`+locale+`"`), 1)
				rep := readReply(t, e.post(path, body), path)
				want := text(locale[:2], MsgTryLater)
				if panics {
					want = text("en", MsgTryLater) // the panic handler does not know the locale
				}
				if rep.Action != "ShowBlockPage" || rep.UserMessage != want {
					t.Errorf("panics=%v %s: got %+v, want try-later block", panics, path, rep)
				}
			}
		}
		logs := e.logs.String()
		if !strings.Contains(logs, `"level":"ERROR"`) {
			t.Errorf("store failure not logged as an error: %s", logs)
		}
		e.assertNoLeak(johnEmail, strings.ToLower(johnEmail), testPassword, "goroutine ")
	}
}

func TestLogs(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	r := httptest.NewRequest(http.MethodPost, RequestApprovalPath, bytes.NewReader(readTestdata(t, "request-approval-facebook.json")))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-Id", "req-42")
	r.SetBasicAuth(testUser, testPassword)
	readReply(t, e.do(r), RequestApprovalPath)
	req := e.requestOf(johnEmail, johnFacebook)
	logs := e.logs.String()
	for _, want := range []string{`"http_request_id":"req-42"`, `"request_id":"` + req.ID + `"`, `"outcome":"pending"`,
		`"email_domain":"fabrikam.onmicrosoft.com"`, `"step":"request_approval"`, `"created":true`, `"issuer":"facebook.com"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "\n"); n != 1 {
		t.Errorf("%d log lines for one call, want 1:\n%s", n, logs)
	}

	// Behind httplog.Middleware, as in approvals serve, the call's fields
	// join the server's request line: still one line per call.
	e.logs.Reset()
	served := httplog.Middleware(slog.New(slog.NewJSONHandler(e.logs, nil)), approvals.SystemClock, e.h)
	r = httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(readTestdata(t, "request-approval-facebook.json")))
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Request-Id", "req-43")
	r.SetBasicAuth(testUser, testPassword)
	w := httptest.NewRecorder()
	served.ServeHTTP(w, r)
	readReply(t, w, CheckApprovalStatusPath)
	logs = e.logs.String()
	for _, want := range []string{`"msg":"http request"`, `"http_request_id":"req-43"`, `"route":"/connector/check-approval-status"`,
		`"status":200`, `"request_id":"` + req.ID + `"`, `"outcome":"already_processing"`, `"step":"check_approval_status"`} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %s:\n%s", want, logs)
		}
	}
	if n := strings.Count(logs, "\n"); n != 1 {
		t.Errorf("%d log lines for one call behind the server's middleware, want 1:\n%s", n, logs)
	}
	// Wrong credentials are logged without the credentials.
	r = httptest.NewRequest(http.MethodPost, RequestApprovalPath, bytes.NewReader(readTestdata(t, "request-approval-facebook.json")))
	r.SetBasicAuth(testUser, "guess-"+testPassword)
	if w := e.do(r); w.Code != http.StatusUnauthorized {
		t.Fatalf("wrong password answered %d", w.Code)
	}
	e.assertNoLeak(johnEmail, testPassword, testUser, "0123456789", "1000 Microsoft Way", "John Smith", "custom attribute value")
}

func TestRouting(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	tests := []struct {
		method, path string
		auth         bool
		status       int
	}{
		{http.MethodGet, CheckApprovalStatusPath, true, http.StatusMethodNotAllowed},
		{http.MethodPut, RequestApprovalPath, true, http.StatusMethodNotAllowed},
		{http.MethodPost, "/connector/unknown", true, http.StatusNotFound},
		{http.MethodPost, "/check-approval-status", true, http.StatusNotFound},
		{http.MethodPost, "/connector/unknown", false, http.StatusUnauthorized},
		{http.MethodGet, CheckApprovalStatusPath, false, http.StatusUnauthorized},
	}
	for _, tt := range tests {
		r := httptest.NewRequest(tt.method, tt.path, strings.NewReader(`{"email":"a@example.com"}`))
		r.Header.Set("Content-Type", "application/json")
		if tt.auth {
			r.SetBasicAuth(testUser, testPassword)
		}
		w := e.do(r)
		if w.Code != tt.status || w.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s %s: %d %q, want %d JSON", tt.method, tt.path, w.Code, w.Header().Get("Content-Type"), tt.status)
		}
		if strings.Contains(w.Body.String(), "Continue") {
			t.Errorf("%s %s answered Continue", tt.method, tt.path)
		}
	}
	if e.count() != 0 {
		t.Error("a refused call stored a request")
	}
}

func TestConfigValidate(t *testing.T) {
	svc := &approvals.Service{Store: newEnv(t, approvals.Policy{}).store}
	basic := Auth{Username: "u", Password: "p"}
	tests := []struct {
		name string
		cfg  Config
		want string // a part of the error; "" for none
	}{
		{"basic", Config{Service: svc, Auth: basic}, ""},
		{"thumbprint only", Config{Service: svc, Auth: Auth{Thumbprints: []string{strings.Repeat("ab", 20)}}}, ""},
		{"no service", Config{Auth: basic}, "Service is required"},
		{"no store", Config{Service: &approvals.Service{}, Auth: basic}, "Service.Store is required"},
		{"no auth", Config{Service: svc}, "no caller authentication"},
		{"username without password", Config{Service: svc, Auth: Auth{Username: "u"}}, "both the Basic username and password"},
		{"password without username", Config{Service: svc, Auth: Auth{Password: "p"}}, "both the Basic username and password"},
		{"colon in username", Config{Service: svc, Auth: Auth{Username: "u:x", Password: "p"}}, "cannot contain ':'"},
		{"short thumbprint", Config{Service: svc, Auth: Auth{Thumbprints: []string{"abcd"}}}, "not 40 (SHA-1) or 64 (SHA-256)"},
		{"non-hex thumbprint", Config{Service: svc, Auth: Auth{Thumbprints: []string{strings.Repeat("zz", 20)}}}, "not 40"},
		{"negative limit", Config{Service: svc, Auth: Auth{Username: "u", Password: "p", FailureLimit: RateLimit{Burst: -1}}}, "cannot be negative"},
		{"negative body limit", Config{Service: svc, Auth: basic, MaxBodyBytes: -1}, "MaxBodyBytes"},
		{"huge body limit", Config{Service: svc, Auth: basic, MaxBodyBytes: 1 << 30}, "MaxBodyBytes"},
		{"unknown message key", Config{Service: svc, Auth: basic, Messages: map[MessageKey]map[string]string{"welcome": {"en": "Hi"}}}, `unknown message key "welcome"`},
		{"upper-case language", Config{Service: svc, Auth: basic, Messages: map[MessageKey]map[string]string{MsgDenied: {"EN": "No"}}}, `language "EN"`},
		{"locale instead of language", Config{Service: svc, Auth: basic, Messages: map[MessageKey]map[string]string{MsgDenied: {"en-US": "No"}}}, `language "en-US"`},
		{"empty text", Config{Service: svc, Auth: basic, Messages: map[MessageKey]map[string]string{MsgDenied: {"en": " "}}}, "non-empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := New(tt.cfg)
			if tt.want == "" {
				if err != nil || h == nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New: %v, want an error with %q", err, tt.want)
			}
		})
	}
	// Every problem is reported at once.
	err := Config{}.Validate()
	if err == nil || !strings.Contains(err.Error(), "Service is required") || !strings.Contains(err.Error(), "no caller authentication") {
		t.Errorf("Validate of the zero Config: %v", err)
	}
}

// TestBlockedCheckRecordedOncePerWindow: a pending person retrying sign-in
// adds one request.blocked_at_check event per hour, not one per attempt.
func TestBlockedCheckRecordedOncePerWindow(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	body := signUp("retrier@example.com", nil)
	if w := e.post(RequestApprovalPath, body); w.Code != http.StatusOK {
		t.Fatalf("request-approval: %d", w.Code)
	}
	blocked := func() int { return e.countEvents(approvals.EventBlockedAtCheck) }
	for range 5 {
		if rep := readReply(t, e.post(CheckApprovalStatusPath, body), CheckApprovalStatusPath); rep.Action != "ShowBlockPage" {
			t.Fatalf("check answered %+v", rep)
		}
	}
	if n := blocked(); n != 1 {
		t.Fatalf("%d blocked_at_check events after 5 checks in a minute, want 1", n)
	}
	e.clock.Advance(blockedAuditWindow + time.Second)
	e.post(CheckApprovalStatusPath, body)
	if n := blocked(); n != 2 {
		t.Fatalf("%d blocked_at_check events after the window, want 2", n)
	}
}

// TestTrailingSlashAnswersTheSame: an admin pasting
// ".../request-approval/" into the Entra portal must get the endpoint, not
// a 404 that Entra turns into its generic error page.
func TestTrailingSlashAnswersTheSame(t *testing.T) {
	for _, path := range []string{CheckApprovalStatusPath, RequestApprovalPath} {
		for _, email := range []string{"new@example.com", "other@example.com"} {
			plain, slash := newEnv(t, approvals.Policy{}), newEnv(t, approvals.Policy{})
			body := signUp(email, map[string]any{"ui_locales": "fr-FR"})
			// Both stores hold the same history first.
			plain.post(RequestApprovalPath, signUp("new@example.com", nil))
			slash.post(RequestApprovalPath, signUp("new@example.com", nil))
			want := plain.post(path, body)
			got := slash.post(path+"/", body)
			if got.Code != want.Code || got.Body.String() != want.Body.String() || got.Header().Get("Content-Type") != "application/json" {
				t.Errorf("POST %s/ for %s: %d %s, want %d %s", path, email, got.Code, got.Body, want.Code, want.Body)
			}
			if plain.count() != slash.count() {
				t.Errorf("POST %s/ stored %d requests, without the slash %d", path, slash.count(), plain.count())
			}
		}
		e := newEnv(t, approvals.Policy{})
		r := httptest.NewRequest(http.MethodGet, path+"/", nil)
		r.SetBasicAuth(testUser, testPassword)
		if w := e.do(r); w.Code != http.StatusMethodNotAllowed {
			t.Errorf("GET %s/: %d, want 405 as without the slash", path, w.Code)
		}
		r = httptest.NewRequest(http.MethodPost, path+"/", strings.NewReader(`{"email":"a@example.com"}`))
		r.Header.Set("Content-Type", "application/json")
		if w := e.do(r); w.Code != http.StatusUnauthorized {
			t.Errorf("POST %s/ without credentials: %d, want 401", path, w.Code)
		}
	}
}

// TestStoredLocaleKeepsTheList: a comma-separated or weighted ui_locales
// used to be thrown away (empty stored locale, English answer). The raw
// list is stored, as CONTRACT section 1 asks, and the answer is in the
// best supported language.
func TestStoredLocaleKeepsTheList(t *testing.T) {
	for in, want := range map[string]string{
		"fr-FR,en-US":                "fr-FR,en-US",
		" fr-FR,fr;q=0.9,en;q=0.8 ":  "fr-FR,fr;q=0.9,en;q=0.8",
		"pl-PL pl en":                "pl-PL pl en",
		"de-DE, de;q=0.9":            "de-DE, de;q=0.9",
		"fr\u0000":                   "",
		strings.Repeat("fr-FR,", 50): "",
		"es-ES,es;q=0.9,*;q=0.1":     "es-ES,es;q=0.9,*;q=0.1",
	} {
		e := newEnv(t, approvals.Policy{})
		rep := readReply(t, e.post(RequestApprovalPath, signUp("ann@example.com", map[string]any{"ui_locales": in})), RequestApprovalPath)
		r, err := e.store.FindByPerson(context.Background(), approvals.PersonKey("ann@example.com", nil))
		if err != nil {
			t.Fatal(err)
		}
		if r.Locale != want {
			t.Errorf("ui_locales %q stored as %q, want %q", in, r.Locale, want)
		}
		lang := Language(want, func(l string) bool { _, ok := builtinMessages()[l]; return ok })
		if lang == "" {
			lang = "en"
		}
		if rep.UserMessage != text(lang, MsgPending) {
			t.Errorf("ui_locales %q: message %q, want the %s one", in, rep.UserMessage, lang)
		}
	}
}
