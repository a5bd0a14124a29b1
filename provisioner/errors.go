package provisioner

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	abs "github.com/microsoft/kiota-abstractions-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models/odataerrors"
)

// GraphError is a failed Microsoft Graph call: Graph's answer (status,
// code, message, request-id), or the reason no answer came (Err).
type GraphError struct {
	// Op is what was attempted, such as "invite jo@example.com".
	Op string
	// Route is the call's route template, such as "POST /invitations".
	Route string
	// Status is the HTTP status; 0 when no answer came.
	Status  int
	Code    string
	Message string
	// RequestID is Graph's request-id, or the client-request-id sent when
	// no answer came.
	RequestID string
	// ConflictProperty names the property of an ObjectConflict (duplicate
	// userPrincipalName, proxyAddresses or identities).
	ConflictProperty string
	// RetryAfter is the server's Retry-After, when it sent one.
	RetryAfter time.Duration
	// GroupID is the group a failed POST /groups/{id}/members/$ref was
	// adding the user to.
	GroupID string
	// Err is the cause when no answer came: a timeout, a reset connection,
	// a credential that could not get a token.
	Err error
}

// Error returns "<op>: Graph <code>: <message> (request-id <id>)".
func (e *GraphError) Error() string {
	var b strings.Builder
	if e.Op != "" {
		b.WriteString(e.Op)
		b.WriteString(": ")
	}
	b.WriteString(e.Summary())
	return b.String()
}

// Summary is the error without the operation: "Graph <code>: <message>
// (request-id <id>)", or what prevented an answer.
func (e *GraphError) Summary() string {
	var s string
	switch {
	case e.Status == 0 && e.Err != nil:
		s = "no answer from Graph: " + causeText(e.Err)
	case e.Code != "":
		s = fmt.Sprintf("Graph %s: %s", e.Code, e.Message)
	default:
		s = fmt.Sprintf("Graph HTTP %d: %s", e.Status, e.Message)
	}
	switch {
	case e.RequestID == "":
	case e.Status == 0:
		s += " (client-request-id " + e.RequestID + ")"
	default:
		s += " (request-id " + e.RequestID + ")"
	}
	return s
}

// Unwrap returns the cause of a call that got no answer.
func (e *GraphError) Unwrap() error { return e.Err }

var aadsts = regexp.MustCompile(`AADSTS\d+:[^"\n]*`)

// causeText renders why a call got no answer on one line, without the
// query string (it holds a person's email) and without azidentity's
// multi-line report.
func causeText(err error) string {
	var af *azidentity.AuthenticationFailedError
	if errors.As(err, &af) {
		status := ""
		if af.RawResponse != nil {
			status = fmt.Sprintf(" (HTTP %d)", af.RawResponse.StatusCode)
		}
		if m := aadsts.FindString(af.Error()); m != "" {
			return "the token authority refused the credential" + status + ": " + strings.TrimSpace(m)
		}
		return "could not get a token" + status + ": " + firstLine(af.Error())
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		where := ue.URL
		if u, perr := url.Parse(ue.URL); perr == nil {
			u.RawQuery, u.Fragment = "", ""
			where = u.String()
		}
		return ue.Op + " " + where + ": " + causeText(ue.Err)
	}
	return firstLine(err.Error())
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// toGraphError converts what the SDK returned into a *GraphError. It never
// calls the SDK error's Error method: ODataError.Error panics when the body
// had no error.message.
func toGraphError(err error, info *callInfo) *GraphError {
	var ge *GraphError
	if errors.As(err, &ge) {
		c := *ge
		return &c
	}
	out := &GraphError{}
	if info != nil {
		out.Status, out.RequestID, out.RetryAfter = info.status, info.requestID, info.retryAfter
	}
	var oe *odataerrors.ODataError
	var ae *abs.ApiError
	switch {
	case errors.As(err, &oe):
		out.Status = oe.GetStatusCode()
		if me := oe.GetErrorEscaped(); me != nil {
			out.Code, out.Message = deref(me.GetCode()), deref(me.GetMessage())
			if ie := me.GetInnerError(); ie != nil && deref(ie.GetRequestId()) != "" {
				out.RequestID = deref(ie.GetRequestId())
			}
			for _, d := range me.GetDetails() {
				if d != nil && deref(d.GetCode()) == "ObjectConflict" {
					out.ConflictProperty = deref(d.GetTarget())
				}
			}
		}
		if out.Message == "" {
			out.Message = "the error body has no message"
		}
	case errors.As(err, &ae):
		out.Status, out.Message = ae.ResponseStatusCode, ae.Message
	case out.Status != 0:
		// An answer came but could not be read.
		out.Message = err.Error()
	default:
		out.Err = err
		if info != nil && out.RequestID == "" {
			out.RequestID = info.clientRequestID
		}
	}
	if out.Status == 0 && out.Err == nil {
		out.Err = err
	}
	return out
}

// class is how the provisioner reacts to a failed call.
type class int

const (
	// permanent failures mark the job failed until an admin retries it.
	permanent class = iota
	// transient failures are retried with backoff until the job's deadline.
	transient
	// lagging failures are the answers a just-created user gets while the
	// directory replicates; they are retried for a bounded window.
	lagging
	// conflict is a create that collided with an existing object: look
	// the person up again and link.
	conflict
)

func (c class) String() string {
	return [...]string{"permanent", "transient", "lagging", "conflict"}[c]
}

// classify decides how to react to a failed call.
func classify(e *GraphError) class {
	switch e.Status {
	case 0:
		var af *azidentity.AuthenticationFailedError
		if errors.As(e.Err, &af) && af.RawResponse != nil {
			if c := af.RawResponse.StatusCode; c >= 400 && c < 500 && c != http.StatusRequestTimeout && c != http.StatusTooManyRequests {
				return permanent // the authority refused the credential
			}
		}
		return transient // timeout, reset, DNS, authority unreachable
	case http.StatusRequestTimeout, http.StatusTooManyRequests,
		http.StatusInternalServerError, http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		return transient
	}
	if e.Status >= 200 && e.Status < 300 {
		// A success whose answer could not be read (no body, or not the
		// expected one): as good as no answer.
		return transient
	}
	switch e.Route {
	case "POST /users":
		if e.Status == http.StatusBadRequest && (e.ConflictProperty != "" || strings.HasPrefix(e.Message, "Another object with the same value for property")) {
			return conflict
		}
	case "PATCH /users/{id}", "GET /users/{id}":
		if e.Status == http.StatusNotFound || e.Status == http.StatusForbidden {
			return lagging
		}
	case "POST /groups/{id}/members/$ref":
		if e.Status == http.StatusForbidden || (e.Status == http.StatusBadRequest && strings.Contains(e.Message, "do not exist")) {
			return lagging
		}
	}
	return permanent
}

// isAlreadyMember reports Graph's answer to adding a member twice.
func isAlreadyMember(e *GraphError) bool {
	return e.Status == http.StatusBadRequest && strings.Contains(e.Message, "added object references already exist")
}

// hint says what an admin can do about a permanent failure, or "".
func hint(e *GraphError) string {
	switch {
	case e.Status == 0:
		return "Check the Graph credential settings (AZURE_*); retry when fixed."
	case e.Status == http.StatusUnauthorized:
		return "Check that the Graph credential (AZURE_*) is for this tenant and that APPROVALS_GRAPH_URL matches its cloud."
	case e.Status == http.StatusForbidden && e.Route == "POST /invitations":
		return "Check that the app has User.Invite.All and that the tenant's external collaboration settings let apps invite guests."
	case e.Status == http.StatusForbidden && e.Route == "POST /groups/{id}/members/$ref":
		return "Check that the app has GroupMember.ReadWrite.All."
	case e.Status == http.StatusForbidden:
		return "Check that the app has User.ReadWrite.All."
	case e.Status == http.StatusNotFound && e.Route == "POST /groups/{id}/members/$ref":
		return "Check APPROVALS_GROUP_IDS: the group does not exist."
	}
	return ""
}
