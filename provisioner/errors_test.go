package provisioner

import (
	"errors"
	"io"
	"net/http"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

func TestClassify(t *testing.T) {
	authFailed := &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 401}}
	tests := []struct {
		e    GraphError
		want class
	}{
		{GraphError{Route: "GET /users", Err: io.ErrUnexpectedEOF}, transient},
		{GraphError{Route: "GET /users", Err: authFailed}, permanent},
		{GraphError{Route: "GET /users", Err: &azidentity.AuthenticationFailedError{RawResponse: &http.Response{StatusCode: 429}}}, transient},
		{GraphError{Route: "GET /users", Err: &azidentity.AuthenticationFailedError{}}, transient},
		{GraphError{Route: "POST /invitations", Status: 429}, transient},
		{GraphError{Route: "POST /invitations", Status: 503}, transient},
		{GraphError{Route: "POST /invitations", Status: 504}, transient},
		{GraphError{Route: "POST /invitations", Status: 403, Code: "Authorization_RequestDenied"}, permanent},
		{GraphError{Route: "POST /invitations", Status: 400, Code: "BadRequest"}, permanent},
		{GraphError{Route: "POST /users", Status: 400, Message: "Another object with the same value for property userPrincipalName already exists."}, conflict},
		{GraphError{Route: "POST /users", Status: 400, ConflictProperty: "identities"}, conflict},
		{GraphError{Route: "POST /users", Status: 400, Message: "Property 'lastName' does not exist on type 'microsoft.graph.user'."}, permanent},
		{GraphError{Route: "POST /users", Status: 403}, permanent},
		{GraphError{Route: "PATCH /users/{id}", Status: 404, Code: "Request_ResourceNotFound"}, lagging},
		{GraphError{Route: "PATCH /users/{id}", Status: 403}, lagging},
		{GraphError{Route: "PATCH /users/{id}", Status: 400}, permanent},
		{GraphError{Route: "POST /groups/{id}/members/$ref", Status: 400, Message: "One or more added object references do not exist for the following modified properties: 'members'."}, lagging},
		{GraphError{Route: "POST /groups/{id}/members/$ref", Status: 403}, lagging},
		{GraphError{Route: "POST /groups/{id}/members/$ref", Status: 404}, permanent},
		{GraphError{Route: "POST /groups/{id}/members/$ref", Status: 401}, permanent},
		{GraphError{Route: "GET /users", Status: 200, Message: "the answer has no value collection"}, transient},
		{GraphError{Route: "POST /invitations", Status: 201, Message: "the answer has no invitedUser.id"}, transient},
	}
	for _, tt := range tests {
		if got := classify(&tt.e); got != tt.want {
			t.Errorf("%s %d %q %v: %s, want %s", tt.e.Route, tt.e.Status, tt.e.Message, tt.e.Err, got, tt.want)
		}
	}
	if !isAlreadyMember(&GraphError{Status: 400, Message: "One or more added object references already exist for the following modified properties: 'members'."}) {
		t.Error("already a member not recognised")
	}
	var ge *GraphError
	if err := (&GraphError{Op: "x", Err: io.EOF}); !errors.As(error(err), &ge) || !errors.Is(err, io.EOF) {
		t.Error("GraphError does not unwrap")
	}
}

func TestTransient(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want bool
	}{
		{&GraphError{Route: "POST /invitations", Status: 429}, true},
		{&GraphError{Route: "PATCH /users/{id}", Status: 404}, true},
		{&GraphError{Route: "GET /users", Err: io.EOF}, true},
		{&GraphError{Route: "GET /users", Status: 200, Message: "the answer has no value collection"}, true},
		{&GraphError{Route: "POST /invitations", Status: 403}, false},
		{&GraphError{Route: "POST /users", Status: 400, ConflictProperty: "userPrincipalName"}, false},
		{errors.New("not Graph"), false},
		{nil, false},
	} {
		if got := Transient(tt.err); got != tt.want {
			t.Errorf("Transient(%v) = %v", tt.err, got)
		}
	}
}

func TestBackoff(t *testing.T) {
	p := &Provisioner{cfg: Config{Retry: RetryPolicy{Base: 100 * time.Millisecond, Max: time.Second}}}
	for attempt := 1; attempt <= 12; attempt++ {
		want := min(100*time.Millisecond<<(attempt-1), time.Second)
		for range 50 {
			if d := p.backoff(attempt, 0); d < want/2 || d > want {
				t.Fatalf("attempt %d: %s outside [%s, %s]", attempt, d, want/2, want)
			}
		}
	}
	for range 50 {
		if d := p.backoff(1, 3*time.Second); d < 3*time.Second || d > 3300*time.Millisecond {
			t.Fatalf("Retry-After 3s: %s", d)
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"": 0, "5": 5 * time.Second, "0.5": 500 * time.Millisecond, "-1": 0, "soon": 0,
		now.Add(90 * time.Second).Format(http.TimeFormat): 90 * time.Second,
	} {
		if got := parseRetryAfter(h, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", h, got, want)
		}
	}
}
