package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestRunCommands(t *testing.T) {
	env := func(string) string { return "" }
	tests := []struct {
		args       []string
		code       int
		stdout     string
		stderrLine string // the single line expected on stderr
	}{
		{[]string{"version"}, 0, "approvals ", ""},
		{[]string{"help"}, 0, "Usage:", ""},
		{[]string{"bogus"}, 2, "", `unknown command "bogus"`},
		{[]string{"serve"}, 1, "", "the connector endpoints would be unauthenticated"},
		{[]string{"serve", "--listen", "nope"}, 1, "", "APPROVALS_LISTEN"},
		{[]string{"export"}, 1, "", "give one of --db (the data file) or --database-url"},
		{[]string{"export", "--db", "x.db", "--database-url", "postgres://h/db"}, 1, "", "give one of --db"},
		{[]string{"migrate"}, 1, "", "--db is required"},
		{[]string{"migrate", "--db", "x.db"}, 1, "", "--database-url is required"},
		{[]string{"migrate", "--db", "/nonexistent/approvals.db", "--database-url", "postgres://127.0.0.1:1/db"}, 1, "", "data file /nonexistent/approvals.db"},
		{[]string{"migrate", "--help"}, 0, "", ""},
		{[]string{"export", "--db", "/nonexistent/approvals.db"}, 1, "", "data file /nonexistent/approvals.db"},
		{[]string{"export", "--db", "x.db", "--format", "xml"}, 1, "", `unknown export format "xml"`},
		{[]string{"export", "--db", "x.db", "--since", "yesterday"}, 1, "", "--since"},
		{[]string{"export", "--help"}, 0, "", ""},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := run(context.Background(), tt.args, &stdout, &stderr, env)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr %q", code, tt.code, stderr.String())
			}
			if !strings.Contains(stdout.String(), tt.stdout) {
				t.Errorf("stdout %q, want %q", stdout.String(), tt.stdout)
			}
			if tt.stderrLine != "" {
				lines := strings.Split(strings.TrimSpace(stderr.String()), "\n")
				if len(lines) != 1 || !strings.Contains(lines[0], tt.stderrLine) {
					t.Errorf("stderr %q, want one line mentioning %q", stderr.String(), tt.stderrLine)
				}
			}
		})
	}
}

func call(t *testing.T, method, url, auth, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

// TestDemoEndToEnd runs the real server wiring: a sign-up through the
// connector, an approval through the admin API, provisioning through the
// SDK against the fake Graph, then an offline export that matches the HTTP
// one once the server has stopped.
func TestDemoEndToEnd(t *testing.T) {
	d, stderr, stop := startDemo(t)
	bearer := "Bearer " + d.APIKey
	basic := func() string {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(d.ConnectorUser, d.ConnectorPassword)
		return req.Header.Get("Authorization")
	}()

	for _, path := range []string{"/healthz", "/readyz"} {
		if code, body := call(t, "GET", d.PublicURL+path, "", ""); code != 200 {
			t.Fatalf("%s: %d %s", path, code, body)
		}
	}

	// The samples went through the connector: each kind is there.
	code, body := call(t, "GET", d.PublicURL+"/api/v1/requests?limit=100", bearer, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list struct {
		Requests []struct {
			ID, Email, Status string
		}
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	byEmail := map[string]string{}
	for _, r := range list.Requests {
		byEmail[r.Email] = r.Status
	}
	if len(list.Requests) != len(samples())+demoExternalIDSamples || byEmail["ann.lee@partner.example"] != "approved" || byEmail["bot@spam.example"] != "denied" || byEmail["johnsmith@outlook.com"] != "pending" {
		t.Fatalf("samples: %v", byEmail)
	}

	// A new sign-up is blocked pending, and its retry is the same request.
	signup := `{"email":"Jo.Doe@gmail.com","identities":[{"signInType":"federated","issuer":"google","issuerAssignedId":"42"}],"displayName":"Jo Doe","city":"Oslo","ui_locales":"de-DE"}`
	for range 2 {
		code, body = call(t, "POST", d.PublicURL+"/connector/request-approval", basic, signup)
		if code != 200 || !strings.Contains(string(body), `"action":"ShowBlockPage"`) {
			t.Fatalf("request-approval: %d %s", code, body)
		}
	}
	if code, _ = call(t, "POST", d.PublicURL+"/connector/request-approval", "Basic bm9wZTpub3Bl", signup); code != 401 {
		t.Fatalf("bad credentials: %d", code)
	}
	code, body = call(t, "GET", d.PublicURL+"/api/v1/requests?status=pending&limit=100", bearer, "")
	if err := json.Unmarshal(body, &list); err != nil || code != 200 {
		t.Fatal(code, err)
	}
	var joID string
	for _, r := range list.Requests {
		if r.Email == "Jo.Doe@gmail.com" {
			if joID != "" {
				t.Fatal("the retried sign-up was recorded twice")
			}
			joID = r.ID
		}
	}
	if joID == "" {
		t.Fatal("new sign-up not listed")
	}

	// Approve: provisioning runs through the Graph SDK against the fake.
	if code, body = call(t, "POST", d.PublicURL+"/api/v1/requests/"+joID+"/approve", bearer, `{"reason":"known partner"}`); code != 200 {
		t.Fatalf("approve: %d %s", code, body)
	}
	deadline := time.Now().Add(30 * time.Second)
	var one struct {
		Provisioning struct {
			State  string `json:"state"`
			UserID string `json:"user_id"`
		} `json:"provisioning"`
	}
	for {
		_, body = call(t, "GET", d.PublicURL+"/api/v1/requests/"+joID, bearer, "")
		if err := json.Unmarshal(body, &one); err != nil {
			t.Fatal(err)
		}
		if one.Provisioning.State == "succeeded" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("provisioning did not succeed: %s", body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	u, ok := d.graph.User(one.Provisioning.UserID)
	if !ok || u.UserType != "Guest" || u.UserPrincipalName != "jo.doe_gmail.com#EXT#@"+demoTenantDomain || u.Properties["city"] != "Oslo" {
		t.Fatalf("directory user %+v", u)
	}
	if groups := d.graph.GroupsOf(u.ID); len(groups) != len(demoGroups) {
		t.Fatalf("groups %v", groups)
	}
	// Now approved and provisioned, the person gets Continue.
	if code, body = call(t, "POST", d.PublicURL+"/connector/check-approval-status", basic, signup); code != 200 || !strings.Contains(string(body), `"Continue"`) {
		t.Fatalf("check after provisioning: %d %s", code, body)
	}

	_, httpExport := call(t, "GET", d.PublicURL+"/api/v1/decisions/export?format=ndjson", bearer, "")

	// While the server runs, the offline export refuses the locked file.
	db := d.main.Config.DB
	var out, errb bytes.Buffer
	start := time.Now()
	if code := run(context.Background(), []string{"export", "--db", db, "--lock-timeout", "300ms"}, &out, &errb, os.Getenv); code != 1 || !strings.Contains(errb.String(), "in use by a running server") || !strings.Contains(errb.String(), "/api/v1/decisions/export") {
		t.Fatalf("export of a locked file: exit %d, %q", code, errb.String())
	}
	if time.Since(start) > 5*time.Second {
		t.Fatal("the locked-file error took too long")
	}

	stop()
	if strings.Contains(stderr.String(), d.ConnectorPassword) || strings.Contains(stderr.String(), d.APIKey) || strings.Contains(stderr.String(), "Jo.Doe@gmail.com") {
		t.Fatal("a secret or an email reached the log")
	}

	outFile := filepath.Join(t.TempDir(), "decisions.ndjson")
	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"export", "--db", db, "--format", "ndjson", "--out", outFile}, &out, &errb, os.Getenv); code != 0 {
		t.Fatalf("offline export: exit %d, %s", code, errb.String())
	}
	offline, err := os.ReadFile(outFile)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(offline, httpExport) || bytes.Count(offline, []byte("\n")) != 3+1 { // 3 and the auto-approved External ID sample
		t.Fatalf("offline export differs from the HTTP export:\n%s\n---\n%s", offline, httpExport)
	}
}
