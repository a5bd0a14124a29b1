package main

import (
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/externalid/externalidtest"
)

// TestServeExternalID: with the External ID settings pointing at a fake
// issuer on loopback, serve answers the two extensions with a real token
// and refuses a call without one; without them, the routes are a JSON 404.
func TestServeExternalID(t *testing.T) {
	const tenant, app = "0d6e6a0e-0d6f-4f4a-9f43-6f3c2a1b0c9d", "3c1b0a2f-8e7d-4c6b-a5f4-e3d2c1b0a9f8"
	iss, err := externalidtest.NewIssuer(tenant)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iss.Close)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startMetricsServer(t, ln, map[string]string{
		"APPROVALS_EXTERNAL_ID_TENANT_ID": tenant,
		"APPROVALS_EXTERNAL_ID_APP_ID":    app,
		"APPROVALS_EXTERNAL_ID_ISSUERS":   iss.URL(),
	})
	base := "http://" + ln.Addr().String()
	tok, err := iss.Token(iss.Claims(app, time.Now(), time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	body := `{"type":"microsoft.graph.authenticationEvent.attributeCollectionSubmit","data":{"authenticationContext":{"client":{"locale":"en-us"}},
		"userSignUpInfo":{"attributes":{"givenName":{"value":"Larissa"}},"identities":[{"signInType":"email","issuer":"contoso.onmicrosoft.com","issuerAssignedId":"larissa@contoso.com"}]}}}`
	post := func(path, token string) (int, string) {
		req, _ := http.NewRequest(http.MethodPost, base+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var b strings.Builder
		buf := make([]byte, 4096)
		for {
			n, err := resp.Body.Read(buf)
			b.Write(buf[:n])
			if err != nil {
				break
			}
		}
		return resp.StatusCode, b.String()
	}
	if s, b := post("/external-id/attribute-collection-start", tok); s != 200 || !strings.Contains(b, "attributeCollectionStart.continueWithDefaultBehavior") {
		t.Fatalf("start: %d %s", s, b)
	}
	if s, b := post("/external-id/attribute-collection-submit/", tok); s != 200 || !strings.Contains(b, "attributeCollectionSubmit.showBlockPage") {
		t.Fatalf("submit: %d %s", s, b)
	}
	if s, _ := post("/external-id/attribute-collection-submit", ""); s != http.StatusUnauthorized {
		t.Fatalf("without a token: %d", s)
	}

	ln2, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	startMetricsServer(t, ln2, nil)
	base = "http://" + ln2.Addr().String()
	if s, b := post("/external-id/attribute-collection-start", tok); s != http.StatusNotFound || !strings.Contains(b, "not configured") {
		t.Fatalf("not configured: %d %s", s, b)
	}
}

func TestExternalIDSettingsValidated(t *testing.T) {
	tests := []struct {
		x    ExternalIDConfig
		want []string
	}{
		{ExternalIDConfig{}, nil},
		{ExternalIDConfig{AppID: "3c1b0a2f-8e7d-4c6b-a5f4-e3d2c1b0a9f8"}, []string{"APPROVALS_EXTERNAL_ID_TENANT_ID is required"}},
		{ExternalIDConfig{TenantID: "contoso"}, []string{"is not a tenant id", "APPROVALS_EXTERNAL_ID_APP_ID is required"}},
		{ExternalIDConfig{TenantID: "0d6e6a0e-0d6f-4f4a-9f43-6f3c2a1b0c9d", AppID: "x", Issuers: []string{"http://login.example.com/t/v2.0"}},
			[]string{"is not an application id", "APPROVALS_EXTERNAL_ID_ISSUERS"}},
	}
	for _, tt := range tests {
		var got []string
		for _, c := range tt.x.checks() {
			if c.bad {
				got = append(got, c.msg)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%+v: %q, want %d messages", tt.x, got, len(tt.want))
			continue
		}
		for i, w := range tt.want {
			if !strings.Contains(got[i], w) {
				t.Errorf("%+v: %q, want %q", tt.x, got[i], w)
			}
		}
	}
}
