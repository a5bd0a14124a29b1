package main

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestConfigNotify(t *testing.T) {
	secret := "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name string
		env  map[string]string
		want string
	}{
		{"webhooks", map[string]string{"APPROVALS_WEBHOOK_URLS": "https://hooks.example.com/a, http://127.0.0.1:9/b", "APPROVALS_WEBHOOK_SECRET": secret}, ""},
		{"webhook without secret", map[string]string{"APPROVALS_WEBHOOK_URLS": "https://hooks.example.com/a"}, "APPROVALS_WEBHOOK_SECRET (or APPROVALS_WEBHOOK_SECRET_FILE) is required"},
		{"http webhook", map[string]string{"APPROVALS_WEBHOOK_URLS": "http://hooks.example.com/a", "APPROVALS_WEBHOOK_SECRET": secret}, "must be an https URL"},
		{"short secret", map[string]string{"APPROVALS_WEBHOOK_URLS": "https://h.example.com", "APPROVALS_WEBHOOK_SECRET": "whsec_" + base64.StdEncoding.EncodeToString(make([]byte, 16))}, "at least 24"},
		{"secret without prefix", map[string]string{"APPROVALS_WEBHOOK_SECRET": base64.StdEncoding.EncodeToString(make([]byte, 32))}, `must start with "whsec_"`},
		{"http teams", map[string]string{"APPROVALS_TEAMS_WEBHOOK_URL": "http://prod.example.com/workflows/token"}, "APPROVALS_TEAMS_WEBHOOK_URL must be an https URL"},
		{"slack", map[string]string{"APPROVALS_SLACK_WEBHOOK_URL": "https://hooks.slack.com/services/T/B/x"}, ""},
		{"http slack", map[string]string{"APPROVALS_SLACK_WEBHOOK_URL": "http://hooks.slack.com/services/T/B/x"}, "APPROVALS_SLACK_WEBHOOK_URL must be"},
		{"bad reviewer", map[string]string{"APPROVALS_REVIEWER_EMAILS": "ops@example.com,nobody"}, `"nobody" is not an email address`},
		{"digest", map[string]string{"APPROVALS_REVIEWER_DIGEST": "15m"}, ""},
		{"bad digest", map[string]string{"APPROVALS_REVIEWER_DIGEST": "often"}, "APPROVALS_REVIEWER_DIGEST"},
		{"applicant", map[string]string{"APPROVALS_NOTIFY_APPLICANT": "received,approved,denied"}, ""},
		{"bad applicant", map[string]string{"APPROVALS_NOTIFY_APPLICANT": "approved,rejected"}, `"rejected" is not one of`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkConfig(t, tt.env, tt.want)
			if err != nil && (strings.Contains(err.Error(), "token") || strings.Contains(err.Error(), "/services/")) {
				t.Errorf("error %q shows a Teams or Slack URL", err)
			}
		})
	}
}

// TestServeSendsWebhooks runs the real wiring: the demo's sample sign-ups
// go through the connector, and every one of them reaches a loopback
// receiver as a signed request.received (or auto_*) webhook.
func TestServeSendsWebhooks(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	secret := "whsec_" + base64.StdEncoding.EncodeToString(key)
	var mu sync.Mutex
	byRequest := map[string][]string{}
	bad := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, ev, signed := readWebhook(r, key)
		mu.Lock()
		defer mu.Unlock()
		if !signed {
			bad++
		}
		byRequest[ev.Data.Request.ID] = append(byRequest[ev.Data.Request.ID], ev.Type)
	}))
	t.Cleanup(srv.Close) // after the demo's stop

	d, _, _ := startDemoEnv(t, map[string]string{"APPROVALS_WEBHOOK_URLS": srv.URL + "/hook", "APPROVALS_WEBHOOK_SECRET": secret})
	code, body := call(t, "GET", d.PublicURL+"/api/v1/requests?limit=100", "Bearer "+d.APIKey, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list struct {
		Requests []struct {
			ID string `json:"id"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(body, &list); err != nil || len(list.Requests) == 0 {
		t.Fatalf("list %s: %v", body, err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		missing := ""
		for _, r := range list.Requests {
			if len(byRequest[r.ID]) == 0 {
				missing = r.ID
			}
		}
		mu.Unlock()
		if missing == "" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no webhook for request %s after 30 s; got %v", missing, byRequest)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	if bad > 0 {
		t.Errorf("%d webhooks with a bad signature", bad)
	}
	for id, types := range byRequest {
		if !strings.HasPrefix(types[0], "request.") {
			t.Errorf("request %s: first webhook %v", id, types)
		}
	}
	t.Logf("%d requests, webhooks %v", len(list.Requests), byRequest)
}
