package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/apiview"
	"github.com/approvals-dev/approvals/internal/defaults"
)

// SecretPrefix starts a Standard Webhooks secret.
const SecretPrefix = "whsec_"

// MinSecretBytes is the shortest decoded webhook secret accepted.
const MinSecretBytes = 24

// ParseSecret decodes a Standard Webhooks secret: SecretPrefix followed
// by the base64 of at least MinSecretBytes bytes. The error never holds
// the secret.
func ParseSecret(s string) ([]byte, error) {
	rest, ok := strings.CutPrefix(strings.TrimSpace(s), SecretPrefix)
	if !ok {
		return nil, fmt.Errorf("the webhook secret must start with %q", SecretPrefix)
	}
	key, err := base64.StdEncoding.DecodeString(rest)
	if err != nil {
		if key, err = base64.RawStdEncoding.DecodeString(rest); err != nil {
			return nil, errors.New("the webhook secret is not " + SecretPrefix + " followed by base64")
		}
	}
	if len(key) < MinSecretBytes {
		return nil, fmt.Errorf("the webhook secret holds %d bytes; it needs at least %d (generate one with: echo %s$(head -c 32 /dev/urandom | base64))", len(key), MinSecretBytes, SecretPrefix)
	}
	return key, nil
}

// Sign returns the webhook-signature header value for a message: "v1,"
// and the base64 of HMAC-SHA256 keyed with key over id.timestamp.body.
func Sign(key []byte, id string, timestamp int64, body []byte) string {
	mac := hmac.New(sha256.New, key)
	fmt.Fprintf(mac, "%s.%d.", id, timestamp)
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// Event is the body of a webhook (SPEC "Events out").
type Event struct {
	Type      string    `json:"type"`
	Timestamp time.Time `json:"timestamp"`
	Data      EventData `json:"data"`
}

// EventData is the data of a webhook: the request as the admin API shows
// it.
type EventData struct {
	Request apiview.Request `json:"request"`
}

// EventOf returns the webhook body of the delivery d.
func EventOf(d *approvals.Delivery) (Event, error) {
	if d.Request == nil || d.Event == nil {
		return Event{}, errors.New("the delivery holds no event and request")
	}
	return Event{Type: string(d.Event.Type), Timestamp: d.Event.At.UTC(), Data: EventData{Request: apiview.Of(d.Request)}}, nil
}

// newClient returns the HTTP client of the webhook couriers: it follows no
// redirect (a receiver that moved answers 3xx, which is retried).
func newClient(c *http.Client) *http.Client {
	if c != nil {
		return c
	}
	return &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// Webhook is the Courier of ChannelWebhook: a Standard Webhooks POST of
// the event to the delivery's Recipient.
type Webhook struct {
	// Key is the decoded secret (ParseSecret).
	Key []byte
	// Client sends the calls; one that follows no redirect when nil.
	Client *http.Client
	// Clock stamps webhook-timestamp; the system clock when nil.
	Clock approvals.Clock
}

// Deliver implements approvals.Courier.
func (w *Webhook) Deliver(ctx context.Context, d *approvals.Delivery) error {
	ev, err := EventOf(d)
	if err != nil {
		return &approvals.DeliveryError{Permanent: true, Err: err}
	}
	body, err := json.Marshal(ev)
	if err != nil {
		return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("encode webhook: %w", err)}
	}
	ts := defaults.Clock(w.Clock).Now().Unix()
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("webhook-id", d.ID)
	h.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	h.Set("webhook-signature", Sign(w.Key, d.ID, ts, body))
	return post(ctx, newClient(w.Client), d.Recipient, h, body)
}

// post sends body to u and classifies the answer: 2xx is success; 408,
// 429 and 5xx (and no answer) are temporary, with the Retry-After they
// carry; other 4xx are permanent; anything else is temporary. Errors name
// the host only: Teams and Slack URLs hold tokens in their paths.
func post(ctx context.Context, c *http.Client, u string, h http.Header, body []byte) error {
	pu, err := url.Parse(u)
	if err != nil || pu.Host == "" {
		return &approvals.DeliveryError{Permanent: true, Err: errors.New("the webhook URL is not valid")}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return &approvals.DeliveryError{Permanent: true, Err: errors.New("the webhook URL is not valid")}
	}
	req.Header = h
	if req.Header.Get("User-Agent") == "" {
		req.Header.Set("User-Agent", "approvals-webhooks/1")
	}
	resp, err := c.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // without the URL
		}
		if ctx.Err() != nil {
			err = fmt.Errorf("no answer in time: %w", ctx.Err())
		}
		return &approvals.DeliveryError{Err: fmt.Errorf("POST %s: %w", pu.Host, err)}
	}
	defer resp.Body.Close()
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return nil
	}
	msg := fmt.Sprintf("POST %s: %s", pu.Host, resp.Status)
	if s := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "")); s != "" {
		msg += ": " + strings.Join(strings.Fields(s), " ")
	}
	de := &approvals.DeliveryError{Err: errors.New(msg)}
	switch code := resp.StatusCode; {
	case code == http.StatusRequestTimeout || code == http.StatusTooManyRequests || code >= 500:
		de.RetryAfter = retryAfter(resp.Header.Get("Retry-After"), time.Now())
	case code >= 400:
		de.Permanent = true
	}
	return de
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s <= 0 {
			return 0
		}
		return time.Duration(min(s, int64(maxRetryAfter/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// RequestURL returns the reviewer UI's page of request id under the
// public URL base.
func RequestURL(base, id string) string {
	return strings.TrimRight(base, "/") + "/requests/" + url.PathEscape(id)
}

// summary is the one line Teams and Slack show of a new pending request.
func summary(r *approvals.Request) string {
	name := r.DisplayName
	if name == "" {
		name = r.Email
	}
	s := fmt.Sprintf("New access request from %s (%s)", name, r.Email)
	if r.Identity != nil && r.Identity.Issuer != "" {
		s += " via " + r.Identity.Issuer
	}
	return s
}

// Teams is the Courier of ChannelTeams: an Adaptive Card posted to a
// Teams Workflows webhook, with a button opening the request page.
type Teams struct {
	// URL is the Workflows webhook (APPROVALS_TEAMS_WEBHOOK_URL).
	URL string
	// PublicURL is the server's public URL (APPROVALS_PUBLIC_URL).
	PublicURL string
	Client    *http.Client
}

// TeamsMessage returns the message posted for d (CONTRACT section 8).
func TeamsMessage(d *approvals.Delivery, publicURL string) map[string]any {
	r := d.Request
	facts := []map[string]string{{"title": "Email", "value": r.Email}, {"title": "Status", "value": string(r.Status)}}
	if r.Identity != nil {
		facts = append(facts, map[string]string{"title": "Identity provider", "value": r.Identity.Issuer})
	}
	card := map[string]any{
		"$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
		"type":    "AdaptiveCard",
		"version": "1.4",
		"body": []any{
			map[string]any{"type": "TextBlock", "text": summary(r), "wrap": true, "weight": "Bolder"},
			map[string]any{"type": "FactSet", "facts": facts},
		},
		"actions": []any{map[string]any{"type": "Action.OpenUrl", "title": "Open request", "url": RequestURL(publicURL, r.ID)}},
	}
	return map[string]any{"type": "message", "attachments": []any{map[string]any{
		"contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": nil, "content": card}}}
}

// Deliver implements approvals.Courier.
func (t *Teams) Deliver(ctx context.Context, d *approvals.Delivery) error {
	return postMessage(ctx, t.Client, t.URL, d, func() map[string]any { return TeamsMessage(d, t.PublicURL) })
}

// postMessage posts the JSON message about d's request, which message
// builds, to the chat webhook at url.
func postMessage(ctx context.Context, c *http.Client, url string, d *approvals.Delivery, message func() map[string]any) error {
	if d.Request == nil {
		return &approvals.DeliveryError{Permanent: true, Err: errors.New("the delivery holds no request")}
	}
	body, _ := json.Marshal(message())
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	return post(ctx, newClient(c), url, h, body)
}

// Slack is the Courier of ChannelSlack: a message with the request page's
// link posted to a Slack incoming webhook.
type Slack struct {
	// URL is the incoming webhook (APPROVALS_SLACK_WEBHOOK_URL).
	URL string
	// PublicURL is the server's public URL (APPROVALS_PUBLIC_URL).
	PublicURL string
	Client    *http.Client
}

// slackEscape escapes the characters Slack's mrkdwn gives a meaning.
var slackEscape = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// SlackMessage returns the message posted for d.
func SlackMessage(d *approvals.Delivery, publicURL string) map[string]any {
	r := d.Request
	link := RequestURL(publicURL, r.ID)
	text := slackEscape.Replace(summary(r)) + ": <" + link + "|Open request>"
	return map[string]any{
		"text":   text,
		"blocks": []any{map[string]any{"type": "section", "text": map[string]string{"type": "mrkdwn", "text": text}}},
	}
}

// Deliver implements approvals.Courier.
func (s *Slack) Deliver(ctx context.Context, d *approvals.Delivery) error {
	return postMessage(ctx, s.Client, s.URL, d, func() map[string]any { return SlackMessage(d, s.PublicURL) })
}
