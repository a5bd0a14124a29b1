package main

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// TestServeBehindATrustedProxy runs the server as the README's reverse
// proxy deployment has it (APPROVALS_TRUSTED_PROXIES names the proxy, here
// loopback): failures from one client behind the proxy are throttled, Entra's
// correct calls through the same proxy are all answered, and the request log
// names the client the proxy forwarded rather than the proxy.
func TestServeBehindATrustedProxy(t *testing.T) {
	g := graphtest.New(graphtest.Options{})
	t.Cleanup(g.Close)
	env := crashEnv(t.TempDir() + "/approvals.db")
	env["APPROVALS_LOG_LEVEL"] = "info"
	env["APPROVALS_TRUSTED_PROXIES"] = "127.0.0.0/8"
	_, base, logs := startServerEnv(t, g, env, abuseTimeouts)
	client := clientFrom("127.0.0.1", true)
	call := func(xff, password string) int {
		req, _ := http.NewRequest(http.MethodPost, base+"/connector/check-approval-status", strings.NewReader(`{"email":"proxy@crash.example"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Forwarded-For", xff)
		req.SetBasicAuth(crashUser, password)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	const attacker, entra = "198.51.100.66", "20.190.128.5"
	codes := map[int]int{}
	for range 15 {
		codes[call("6.6.6.6, "+attacker, "wrong-password-guess")]++
	}
	if codes[http.StatusUnauthorized] != 10 || codes[http.StatusTooManyRequests] != 5 {
		t.Errorf("15 failures from one client: %v, want 10 x 401 and 5 x 429", codes)
	}
	for i := range 10 {
		if got := call(entra, crashPassword); got != http.StatusOK {
			t.Fatalf("Entra's call %d through the proxy: %d, want 200", i, got)
		}
		if got := call(attacker, "wrong-again"); got != http.StatusTooManyRequests {
			t.Fatalf("attacker's failure %d: %d, want 429", i, got)
		}
	}
	// A spoofed hop left of the attacker's real address changes nothing.
	if got := call(entra+", "+attacker, "wrong"); got != http.StatusTooManyRequests {
		t.Errorf("attacker spoofing Entra's address: %d, want 429", got)
	}
	// A correct call from another client the proxy forwards is served.
	status, a, err := postSignUp(context.Background(), client, base+"/connector/check-approval-status", crashUser, crashPassword, []byte(`{"email":"x@crash.example"}`))
	if err != nil || status != http.StatusOK || a.Action != "Continue" {
		t.Errorf("direct correct call: %d %+v %v", status, a, err)
	}
	// Request lines reach the log in batches, at most 100 ms late.
	for _, want := range []string{`"client":"` + entra + `"`, `"client":"` + attacker + `"`, `"client":"127.0.0.1"`} {
		for deadline := time.Now().Add(5 * time.Second); !strings.Contains(logs.String(), want) && time.Now().Before(deadline); {
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the request log has no %s", want)
		}
	}
	if strings.Contains(logs.String(), `"client":"6.6.6.6"`) {
		t.Error("the request log believed a spoofed hop")
	}
	t.Logf("RESULT proxy: 15 failures %v, then 10 correct calls through the same proxy all 200", codes)
}
