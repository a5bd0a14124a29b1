package provisioner

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"

	"github.com/approvals-dev/approvals/approvals"
)

// FuzzParseRetryAfter checks the Retry-After reader: never negative nor over
// maxRetryAfter; delay-seconds read as that many seconds, whatever the
// clock says; an HTTP date read as the time left until it; anything else
// read as zero.
func FuzzParseRetryAfter(f *testing.F) {
	for _, h := range []string{"", "5", " 120 ", "0", "-1", "0.5", "soon", "Wed, 21 Oct 2015 07:28:00 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
		"NaN", "-Inf", "+Inf", "1e10", "0x1p40", "1e-12", "Fri, 31 Dec 9999 23:59:59 GMT"} {
		f.Add(h, int64(1), int64(1767322800), int64(90))
	}
	f.Add("1", int64(-5), int64(0), int64(-3600))
	f.Add("x", int64(86400*365), int64(253402300000), int64(86400))
	f.Fuzz(func(t *testing.T, h string, secs, nowUnix, offset int64) {
		// Times an HTTP date can carry: years 1970 to 9999, whole seconds.
		const lastHTTPSecond = 253402300799
		now := time.Unix(min(max(nowUnix, 0), lastHTTPSecond), 0).UTC()
		capSecs := int64(maxRetryAfter / time.Second)

		got := parseRetryAfter(h, now)
		if got < 0 || got > maxRetryAfter {
			t.Fatalf("parseRetryAfter(%q) = %s, outside [0, %s]", h, got, maxRetryAfter)
		}
		trimmed := strings.TrimSpace(h)
		_, floatErr := strconv.ParseFloat(trimmed, 64)
		if _, dateErr := http.ParseTime(trimmed); got > 0 && floatErr != nil && dateErr != nil {
			t.Fatalf("parseRetryAfter(%q) = %s from neither seconds nor a date", h, got)
		}
		if floatErr == nil {
			if later := parseRetryAfter(h, now.Add(time.Hour)); later != got {
				t.Fatalf("parseRetryAfter(%q) depends on the clock: %s then %s", h, got, later)
			}
		}

		// delay-seconds: exactly that many seconds, capped.
		want := time.Duration(0)
		switch {
		case secs > capSecs:
			want = maxRetryAfter
		case secs > 0:
			want = time.Duration(secs) * time.Second
		}
		if d := parseRetryAfter(" "+strconv.FormatInt(secs, 10)+"\t", now); d != want {
			t.Fatalf("parseRetryAfter(%d) = %s, want %s", secs, d, want)
		}

		// An HTTP date: the time left until it, capped; zero when past.
		at := now.Add(time.Duration(offset%(2*capSecs)) * time.Second)
		if at.Year() < 1970 || at.Year() > 9999 {
			return
		}
		want = 0
		if left := at.Sub(now); left > 0 {
			want = min(left, maxRetryAfter)
		}
		if d := parseRetryAfter(at.Format(http.TimeFormat), now); d != want {
			t.Fatalf("parseRetryAfter(%q) at %s = %s, want %s", at.Format(http.TimeFormat), now.Format(time.RFC3339), d, want)
		}
	})
}

// staticCredential hands out a fixed token.
type staticCredential struct{}

func (staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: "token", ExpiresOn: time.Now().Add(time.Hour)}, nil
}

// cannedGraph answers every call with one response, or fails it with err,
// and remembers the client-request-id of the last call.
type cannedGraph struct {
	status          int
	header          http.Header
	body            []byte
	err             error
	clientRequestID string
}

func (g *cannedGraph) RoundTrip(req *http.Request) (*http.Response, error) {
	g.clientRequestID = req.Header.Get("client-request-id")
	if req.Body != nil {
		_ = req.Body.Close()
	}
	if g.err != nil {
		return nil, g.err
	}
	return &http.Response{
		Status: strconv.Itoa(g.status), StatusCode: g.status, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: g.header.Clone(), Body: io.NopCloser(bytes.NewReader(g.body)), ContentLength: int64(len(g.body)), Request: req,
	}, nil
}

// wireFailure is a call that got no answer.
type wireFailure struct{ msg string }

func (e *wireFailure) Error() string { return e.msg }

// The shape bits of FuzzToGraphError's inputs.
const (
	shapeNoAnswer      = 1 << iota // the transport fails the call
	shapeRawBody                   // the body is the raw string, not a Graph error envelope
	shapeNoMessage                 // the envelope has no error.message
	shapeInnerError                // the envelope carries innerError.request-id
	shapeConflict                  // the envelope's details name an ObjectConflict target
	shapeNoContentType             // the answer has no Content-Type
)

// FuzzToGraphError drives a real Directory call (the msgraph SDK and its
// middleware, over an in-memory transport) into what Graph or the network
// can answer, and checks the *GraphError the provisioner gets: always one,
// with the answer's status, a message, Graph's code, request-id (the
// envelope's, else the header's), conflict target and Retry-After; or, when
// no answer came, the cause on one line, its client-request-id, and not the
// query string holding the person's email.
func FuzzToGraphError(f *testing.F) {
	for _, s := range []struct {
		status              uint16
		shape               uint8
		code, message       string
		innerID, target     string
		headerID, retryAfer string
		raw                 string
	}{
		{403, shapeInnerError, "Authorization_RequestDenied", "Insufficient privileges to complete the operation.", "5f0c1d2e-0000-4000-8000-000000000001", "", "0b7e6d5c-0000-4000-8000-000000000002", "", ""},
		{400, shapeConflict, "Request_BadRequest", "Another object with the same value for property userPrincipalName already exists.", "", "userPrincipalName", "r2", "", ""},
		{429, shapeInnerError, "TooManyRequests", "Too many requests.", "", "", "r3", "7", ""},
		{503, 0, "serviceNotAvailable", "Service unavailable", "", "", "r4", "Wed, 21 Oct 2015 07:28:00 GMT", ""},
		{404, shapeNoMessage, "Request_ResourceNotFound", "", "", "", "r5", "", ""},
		{483, shapeNoMessage | shapeInnerError, "", "", "", "", "r6", "", ""},
		{502, shapeRawBody, "", "", "", "", "", "", "<html><body>Bad Gateway</body></html>"},
		{500, shapeRawBody, "", "", "", "", "r6", "", `{"error":{"code":1}}`},
		{500, shapeRawBody | shapeNoContentType, "", "", "", "", "", "", ""},
		{200, shapeRawBody, "", "", "", "", "r7", "", `{}`},
		{200, shapeRawBody, "", "", "", "", "r8", "", `{"value":[]}`},
		{204, shapeRawBody | shapeNoContentType, "", "", "", "", "", "", ""},
		{700, shapeRawBody, "", "", "", "", "", "", `{"error":{"code":"x","message":"y"}}`},
		{0, shapeNoAnswer, "", "", "", "", "", "", "read tcp 10.0.0.1:443: connection reset by peer"},
		{0, shapeNoAnswer, "", "", "", "", "", "", "first line\nsecond line ?$filter=mail eq 'pat@example.com'"},
	} {
		f.Add(s.status, s.shape, s.code, s.message, s.innerID, s.target, s.headerID, s.retryAfer, s.raw)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	const base = "https://graph.test/v1.0"
	const email = "pat@example.com"
	f.Fuzz(func(t *testing.T, status uint16, shape uint8, code, message, innerID, target, headerID, retryAfter, raw string) {
		g := &cannedGraph{status: int(status), header: http.Header{}}
		if g.status < 100 || g.status > 999 {
			g.status = 100 + g.status%900
		}
		if shape&shapeNoAnswer != 0 {
			g.err = &wireFailure{raw}
		}
		if shape&shapeNoContentType == 0 {
			g.header.Set("Content-Type", "application/json")
		}
		g.header.Set("request-id", headerID)
		g.header.Set("Retry-After", retryAfter)
		if shape&shapeRawBody != 0 {
			g.body = []byte(raw)
		} else {
			g.body = graphErrorBody(shape, code, message, innerID, target)
		}
		d, err := NewDirectory(GraphConfig{URL: base, Credential: staticCredential{}, Transport: g,
			Clock: approvals.ClockFunc(func() time.Time { return now })})
		if err != nil {
			t.Fatal(err)
		}
		_, err = d.FindUsers(context.Background(), MailFilter(email))
		if err == nil {
			if g.err != nil || g.status >= 400 {
				t.Fatalf("status %d, transport error %v: no error", g.status, g.err)
			}
			return
		}
		var ge *GraphError
		if !errors.As(err, &ge) {
			t.Fatalf("%T %v is not a *GraphError", err, err)
		}
		if ge.Op != "find users" || ge.Route != "GET /users" {
			t.Fatalf("op %q, route %q", ge.Op, ge.Route)
		}
		if (ge.Status == 0) != (ge.Err != nil) {
			t.Fatalf("status %d with cause %v", ge.Status, ge.Err)
		}
		summary := ge.Summary() // must not panic, whatever the body
		if got := ge.Error(); got != ge.Op+": "+summary {
			t.Fatalf("Error() = %q, Summary() = %q", got, summary)
		}
		if again := toGraphError(ge, nil); again == ge || *again != *ge {
			t.Fatalf("a *GraphError was not copied: %+v, %+v", again, ge)
		}

		if g.err != nil {
			if ge.Status != 0 || !errors.Is(ge, g.err) {
				t.Fatalf("no answer: status %d, cause %v", ge.Status, ge.Err)
			}
			if ge.RequestID == "" || ge.RequestID != g.clientRequestID {
				t.Fatalf("request id %q, client-request-id sent %q", ge.RequestID, g.clientRequestID)
			}
			// One line, and the URL without its query (the email).
			first, _, _ := strings.Cut(strings.TrimSpace(raw), "\n")
			want := "no answer from Graph: Get " + base + "/users: " + first + " (client-request-id " + ge.RequestID + ")"
			if summary != want {
				t.Fatalf("summary %q, want %q", summary, want)
			}
			return
		}

		if ge.Status != g.status {
			t.Fatalf("status %d, want %d", ge.Status, g.status)
		}
		if ge.Message == "" {
			t.Fatalf("status %d without a message: %+v", ge.Status, ge)
		}
		if want := parseRetryAfter(retryAfter, now); ge.RetryAfter != want {
			t.Fatalf("Retry-After %q: %s, want %s", retryAfter, ge.RetryAfter, want)
		}
		if ge.RequestID != g.header.Get("request-id") && ge.RequestID == "" {
			t.Fatalf("request id %q, header %q", ge.RequestID, g.header.Get("request-id"))
		}
		if shape&(shapeRawBody|shapeNoContentType) != 0 || g.status < 400 || g.status >= 600 {
			return
		}
		// A Graph error envelope: its fields, as JSON carries them.
		var env struct {
			Error struct {
				Code, Message string
				InnerError    struct {
					RequestID string `json:"request-id"`
				}
			}
		}
		if err := json.Unmarshal(g.body, &env); err != nil {
			t.Fatal(err)
		}
		wantMessage := env.Error.Message
		if wantMessage == "" {
			wantMessage = "the error body has no message"
		}
		wantID := env.Error.InnerError.RequestID
		if wantID == "" {
			wantID = g.header.Get("request-id")
		}
		wantTarget := ""
		if shape&shapeConflict != 0 {
			wantTarget = jsonString(target)
		}
		if ge.Code != env.Error.Code || ge.Message != wantMessage || ge.RequestID != wantID || ge.ConflictProperty != wantTarget {
			t.Fatalf("got code %q message %q request-id %q conflict %q\nwant code %q message %q request-id %q conflict %q\nbody %s",
				ge.Code, ge.Message, ge.RequestID, ge.ConflictProperty, env.Error.Code, wantMessage, wantID, wantTarget, g.body)
		}
		wantSummary := "Graph " + ge.Code + ": " + ge.Message
		if ge.Code == "" {
			wantSummary = "Graph HTTP " + strconv.Itoa(ge.Status) + ": " + ge.Message
		}
		if !strings.HasPrefix(summary, wantSummary) {
			t.Fatalf("summary %q", summary)
		}
	})
}

// graphErrorBody is Graph's error envelope with the given fields.
func graphErrorBody(shape uint8, code, message, innerID, target string) []byte {
	e := map[string]any{"code": code}
	if shape&shapeNoMessage == 0 {
		e["message"] = message
	}
	if shape&shapeInnerError != 0 {
		e["innerError"] = map[string]any{"date": "2026-01-02T03:04:05", "request-id": innerID, "client-request-id": innerID}
	}
	if shape&shapeConflict != 0 {
		e["details"] = []any{
			map[string]any{"code": "ObjectConflict", "message": message, "target": target},
			map[string]any{"code": "Other", "message": "m", "target": "other"},
		}
	}
	b, err := json.Marshal(map[string]any{"error": e})
	if err != nil {
		panic(err)
	}
	return b
}

// jsonString is s as it reads back from JSON (invalid UTF-8 replaced).
func jsonString(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}
