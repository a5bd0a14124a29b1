package notify

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/apiview"
)

// testSecret is a valid secret: whsec_ and 32 bytes.
var testSecret = SecretPrefix + base64.StdEncoding.EncodeToString([]byte("0123456789abcdef0123456789abcdef"))

// verify checks a Standard Webhooks signature as a receiver would, written
// from the specification and not from Sign: it accepts any of the
// space-separated v1 signatures and rejects timestamps 5 minutes away.
func verify(secret string, h http.Header, body []byte, now time.Time) error {
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		return err
	}
	id, ts := h.Get("webhook-id"), h.Get("webhook-timestamp")
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return errors.New("bad timestamp")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > 5*time.Minute || d < -5*time.Minute {
		return errors.New("timestamp too far")
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(body)))
	want := mac.Sum(nil)
	for _, sig := range strings.Fields(h.Get("webhook-signature")) {
		v, b64, ok := strings.Cut(sig, ",")
		if !ok || v != "v1" {
			continue
		}
		got, err := base64.StdEncoding.DecodeString(b64)
		if err == nil && hmac.Equal(got, want) {
			return nil
		}
	}
	return errors.New("no valid signature")
}

func testRequest() *approvals.Request {
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	return &approvals.Request{
		ID: approvals.NewID(at), Source: approvals.SourceSignUp, Email: "ada@example.com", DisplayName: "Ada <Lovelace>",
		Identity: &approvals.Identity{Issuer: approvals.IssuerGoogle, IssuerAssignedID: "g-1"},
		Claims:   map[string]any{"city": "London"}, Locale: "en-GB", Status: approvals.StatusPending,
		CreatedAt: at, UpdatedAt: at, Version: 1,
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
	}
}

func testDelivery(url string) *approvals.Delivery {
	r := testRequest()
	ev := approvals.Event{Seq: 3, At: r.CreatedAt, Type: approvals.EventReceived, RequestID: r.ID, Actor: approvals.ConnectorActor}
	a := approvals.NewAnnouncement(ev, r)
	return &approvals.Delivery{ID: approvals.ChildDeliveryID(a.ID, approvals.ChannelWebhook, "0"), Channel: approvals.ChannelWebhook,
		Kind: string(ev.Type), RequestID: r.ID, Recipient: url, Event: &ev, Request: r, State: approvals.DeliveryPending}
}

func TestParseSecret(t *testing.T) {
	for _, tt := range []struct {
		in string
		ok bool
	}{
		{testSecret, true},
		{SecretPrefix + base64.RawStdEncoding.EncodeToString(make([]byte, 24)), true},
		{SecretPrefix + base64.StdEncoding.EncodeToString(make([]byte, 23)), false},
		{base64.StdEncoding.EncodeToString(make([]byte, 32)), false},
		{SecretPrefix + "not base64!!", false},
		{"", false},
	} {
		_, err := ParseSecret(tt.in)
		if (err == nil) != tt.ok {
			t.Errorf("ParseSecret(%q) = %v; want ok %v", tt.in, err, tt.ok)
		}
		if err != nil && len(tt.in) > 10 && strings.Contains(err.Error(), tt.in[6:]) {
			t.Errorf("ParseSecret's error %q shows the secret", err)
		}
	}
}

// TestWebhookSigned checks one webhook against an independent receiver:
// the headers, the signature, and the body holding the request exactly as
// the admin API shows it.
func TestWebhookSigned(t *testing.T) {
	now := time.Now()
	var got struct {
		h    http.Header
		body []byte
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got.h = r.Header.Clone()
		got.body, _ = io.ReadAll(r.Body)
		w.WriteHeader(http.StatusNoContent)
	}))
	defer srv.Close()
	key, err := ParseSecret(testSecret)
	if err != nil {
		t.Fatal(err)
	}
	d := testDelivery(srv.URL + "/hook")
	w := &Webhook{Key: key}
	if err := w.Deliver(context.Background(), d); err != nil {
		t.Fatalf("Deliver = %v", err)
	}
	if err := verify(testSecret, got.h, got.body, now); err != nil {
		t.Errorf("receiver rejects the webhook: %v", err)
	}
	if err := verify(SecretPrefix+base64.StdEncoding.EncodeToString(make([]byte, 32)), got.h, got.body, now); err == nil {
		t.Error("a receiver with another secret accepts the webhook")
	}
	if id := got.h.Get("webhook-id"); id != d.ID {
		t.Errorf("webhook-id %q; want the delivery id %q", id, d.ID)
	}
	if ct := got.h.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type %q", ct)
	}
	var body map[string]json.RawMessage
	if err := json.Unmarshal(got.body, &body); err != nil {
		t.Fatal(err)
	}
	wantReq, _ := json.Marshal(apiview.Of(d.Request))
	if string(body["type"]) != `"request.received"` || string(body["timestamp"]) != `"2026-12-01T10:00:00Z"` {
		t.Errorf("body %s", got.body)
	}
	var data struct {
		Request json.RawMessage `json:"request"`
	}
	if err := json.Unmarshal(body["data"], &data); err != nil || string(data.Request) != string(wantReq) {
		t.Errorf("data.request = %s (%v)\nwant %s", data.Request, err, wantReq)
	}
	// A tampered body fails verification.
	if err := verify(testSecret, got.h, append(got.body, ' '), now); err == nil {
		t.Error("a tampered body verifies")
	}
}

// TestWebhookAnswers checks how answers are classified.
func TestWebhookAnswers(t *testing.T) {
	key, _ := ParseSecret(testSecret)
	for _, tt := range []struct {
		status     int
		retryAfter string
		permanent  bool
		ok         bool
		wait       time.Duration
	}{
		{status: 200, ok: true}, {status: 202, ok: true}, {status: 204, ok: true},
		{status: 408}, {status: 429, retryAfter: "120", wait: 120 * time.Second}, {status: 500}, {status: 503, retryAfter: "7", wait: 7 * time.Second},
		{status: 502, retryAfter: "soon"},
		{status: 301},
		{status: 400, permanent: true}, {status: 401, permanent: true}, {status: 404, permanent: true}, {status: 410, permanent: true},
	} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if tt.retryAfter != "" {
				w.Header().Set("Retry-After", tt.retryAfter)
			}
			if tt.status == 301 {
				w.Header().Set("Location", "/elsewhere")
			}
			w.WriteHeader(tt.status)
			_, _ = io.WriteString(w, "  detail\nline ")
		}))
		err := (&Webhook{Key: key}).Deliver(context.Background(), testDelivery(srv.URL+"/secret-token-path"))
		srv.Close()
		if tt.ok {
			if err != nil {
				t.Errorf("%d: Deliver = %v; want success", tt.status, err)
			}
			continue
		}
		var de *approvals.DeliveryError
		if !errors.As(err, &de) {
			t.Errorf("%d: Deliver = %v; want a DeliveryError", tt.status, err)
			continue
		}
		if de.Permanent != tt.permanent || de.RetryAfter != tt.wait {
			t.Errorf("%d: permanent %v, retry after %s; want %v, %s", tt.status, de.Permanent, de.RetryAfter, tt.permanent, tt.wait)
		}
		if strings.Contains(err.Error(), "secret-token-path") || !strings.Contains(err.Error(), strconv.Itoa(tt.status)) || !strings.Contains(err.Error(), "detail line") {
			t.Errorf("%d: error %q: want the status and the answer, without the URL's path", tt.status, err)
		}
	}
}

func TestWebhookTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	key, _ := ParseSecret(testSecret)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err := (&Webhook{Key: key}).Deliver(ctx, testDelivery(srv.URL))
	if err == nil || approvals.IsPermanentDelivery(err) {
		t.Errorf("Deliver to a silent receiver = %v; want a temporary failure", err)
	}
}

func TestRetryAfterDate(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	if got := retryAfter(now.Add(90*time.Second).Format(http.TimeFormat), now); got != 90*time.Second {
		t.Errorf("retryAfter(date) = %s", got)
	}
	if got := retryAfter("999999999", now); got != maxRetryAfter {
		t.Errorf("retryAfter(huge) = %s", got)
	}
}

// TestTeamsAndSlack checks the posts' shapes and the request page link.
func TestTeamsAndSlack(t *testing.T) {
	var bodies []map[string]any
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var m map[string]any
		if err := json.NewDecoder(r.Body).Decode(&m); err != nil {
			t.Error(err)
		}
		bodies = append(bodies, m)
		if r.URL.Path == "/teams" {
			w.WriteHeader(http.StatusAccepted)
			return
		}
		_, _ = io.WriteString(w, "ok")
	}))
	defer srv.Close()
	d := testDelivery("")
	pub := "https://approvals.example.com/"
	if err := (&Teams{URL: srv.URL + "/teams", PublicURL: pub}).Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	if err := (&Slack{URL: srv.URL + "/slack", PublicURL: pub}).Deliver(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	link := "https://approvals.example.com/requests/" + d.Request.ID
	teams, _ := json.Marshal(bodies[0])
	for _, want := range []string{`"type":"message"`, `"contentType":"application/vnd.microsoft.card.adaptive"`, `"contentUrl":null`,
		`"type":"AdaptiveCard"`, `"version":"1.4"`, `"type":"Action.OpenUrl"`, `"title":"Open request"`, `"url":"` + link + `"`, "ada@example.com"} {
		if !strings.Contains(string(teams), want) {
			t.Errorf("Teams message lacks %s: %s", want, teams)
		}
	}
	text, _ := bodies[1]["text"].(string)
	if !strings.Contains(text, "<"+link+"|Open request>") || !strings.Contains(text, "Ada &lt;Lovelace&gt;") {
		t.Errorf("Slack text %q", text)
	}
}
