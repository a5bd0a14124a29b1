package connector

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // thumbprints
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/clientip"
)

func TestBasicAuth(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	body := readTestdata(t, "check-status-facebook.json")
	tests := []struct {
		name   string
		header string // Authorization; "" for none
		status int
	}{
		{"missing", "", http.StatusUnauthorized},
		{"wrong user", basicHeader("someone", testPassword), http.StatusUnauthorized},
		{"wrong password", basicHeader(testUser, "correct horse battery stapler"), http.StatusUnauthorized},
		{"password prefix", basicHeader(testUser, testPassword[:5]), http.StatusUnauthorized},
		{"swapped", basicHeader(testPassword, testUser), http.StatusUnauthorized},
		{"empty", basicHeader("", ""), http.StatusUnauthorized},
		{"not base64", "Basic !!!not-base64", http.StatusUnauthorized},
		{"no colon", "Basic " + b64(testUser+testPassword), http.StatusUnauthorized},
		{"bearer", "Bearer " + testPassword, http.StatusUnauthorized},
		{"right", basicHeader(testUser, testPassword), http.StatusOK},
		{"right, lower-case scheme", "basic " + b64(testUser+":"+testPassword), http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(body))
			r.Header.Set("Content-Type", "application/json")
			if tt.header != "" {
				r.Header.Set("Authorization", tt.header)
			}
			w := e.do(r)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if ct := w.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if tt.status == http.StatusUnauthorized {
				if got := w.Header().Get("WWW-Authenticate"); got != `Basic realm="approvals connector"` {
					t.Errorf("WWW-Authenticate = %q", got)
				}
				if strings.Contains(w.Body.String(), "Continue") {
					t.Error("401 says Continue")
				}
			} else {
				readReply(t, w, CheckApprovalStatusPath)
			}
		})
	}
}

func basicHeader(user, pass string) string { return "Basic " + b64(user+":"+pass) }

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

// testCert is a generated client certificate.
type testCert struct {
	tls    tls.Certificate
	sha1   string
	sha256 string
}

// newTestCert makes a self-signed client certificate valid over
// [notBefore, notAfter].
func newTestCert(t *testing.T, cn string, notBefore, notAfter time.Time) testCert {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()),
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    notBefore,
		NotAfter:     notAfter,
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	s1 := sha1.Sum(der) //nolint:gosec // thumbprint
	s256 := sha256.Sum256(der)
	return testCert{
		tls:    tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key},
		sha1:   hex.EncodeToString(s1[:]),
		sha256: hex.EncodeToString(s256[:]),
	}
}

// colonUpper writes a thumbprint the way Windows and OpenSSL show it.
func colonUpper(h string) string {
	var parts []string
	for i := 0; i < len(h); i += 2 {
		parts = append(parts, strings.ToUpper(h[i:i+2]))
	}
	return strings.Join(parts, ":")
}

func TestCertificateAuth(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	oldCert := newTestCert(t, "entra-connector-2025", now.AddDate(-1, 0, 0), now.AddDate(0, 1, 0))
	newCert := newTestCert(t, "entra-connector-2026", now.AddDate(0, 0, -1), now.AddDate(1, 0, 0))
	strangerCert := newTestCert(t, "stranger", now.AddDate(0, 0, -1), now.AddDate(1, 0, 0))
	expiredCert := newTestCert(t, "expired", now.AddDate(-2, 0, 0), now.AddDate(0, 0, -1))
	futureCert := newTestCert(t, "future", now.AddDate(0, 0, 1), now.AddDate(1, 0, 0))

	tests := []struct {
		name        string
		thumbprints []string
		basic       bool // Basic configured too
		cert        *testCert
		sendBasic   bool
		status      int
	}{
		{name: "no certificate", thumbprints: []string{newCert.sha1}, status: http.StatusUnauthorized},
		{name: "wrong certificate", thumbprints: []string{newCert.sha1}, cert: &strangerCert, status: http.StatusUnauthorized},
		{name: "right SHA-1", thumbprints: []string{newCert.sha1}, cert: &newCert, status: http.StatusOK},
		{name: "right SHA-1, as Windows shows it", thumbprints: []string{colonUpper(newCert.sha1)}, cert: &newCert, status: http.StatusOK},
		{name: "right SHA-256", thumbprints: []string{newCert.sha256}, cert: &newCert, status: http.StatusOK},
		{name: "right SHA-256, upper case", thumbprints: []string{strings.ToUpper(newCert.sha256)}, cert: &newCert, status: http.StatusOK},
		{name: "rollover: old certificate", thumbprints: []string{oldCert.sha1, newCert.sha256}, cert: &oldCert, status: http.StatusOK},
		{name: "rollover: new certificate", thumbprints: []string{oldCert.sha1, newCert.sha256}, cert: &newCert, status: http.StatusOK},
		{name: "rollover: stranger", thumbprints: []string{oldCert.sha1, newCert.sha256}, cert: &strangerCert, status: http.StatusUnauthorized},
		{name: "expired certificate with a pinned thumbprint", thumbprints: []string{expiredCert.sha256}, cert: &expiredCert, status: http.StatusUnauthorized},
		{name: "not yet valid certificate", thumbprints: []string{futureCert.sha256}, cert: &futureCert, status: http.StatusUnauthorized},
		{name: "Basic only configured, certificate ignored", basic: true, cert: &newCert, status: http.StatusUnauthorized},
		{name: "both configured, right certificate", thumbprints: []string{newCert.sha1}, basic: true, cert: &newCert, status: http.StatusOK},
		{name: "both configured, wrong certificate, right Basic", thumbprints: []string{newCert.sha1}, basic: true, cert: &strangerCert, sendBasic: true, status: http.StatusOK},
		{name: "certificate only configured, Basic ignored", thumbprints: []string{newCert.sha1}, sendBasic: true, status: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, approvals.Policy{}, func(c *Config) {
				c.Clock = clock
				c.Auth = Auth{Thumbprints: tt.thumbprints}
				if tt.basic {
					c.Auth.Username, c.Auth.Password = testUser, testPassword
				}
			})
			srv := httptest.NewUnstartedServer(e.h)
			srv.TLS = &tls.Config{ClientAuth: tls.RequestClientCert, MinVersion: tls.VersionTLS12}
			srv.StartTLS()
			defer srv.Close()
			client := srv.Client()
			tr := client.Transport.(*http.Transport).Clone()
			if tt.cert != nil {
				tr.TLSClientConfig.Certificates = []tls.Certificate{tt.cert.tls}
			}
			client.Transport = tr
			defer tr.CloseIdleConnections()

			req, err := http.NewRequest(http.MethodPost, srv.URL+CheckApprovalStatusPath, bytes.NewReader(readTestdata(t, "check-status-facebook.json")))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "application/json")
			if tt.sendBasic {
				req.SetBasicAuth(testUser, testPassword)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			w := httptest.NewRecorder()
			w.Code = resp.StatusCode
			for k, v := range resp.Header {
				w.Header()[k] = v
			}
			if _, err := w.Body.ReadFrom(resp.Body); err != nil {
				t.Fatal(err)
			}
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", w.Code, tt.status, w.Body)
			}
			if tt.status == http.StatusOK {
				if rep := readReply(t, w, CheckApprovalStatusPath); rep.Action != "Continue" {
					t.Errorf("got %+v", rep)
				}
			} else if w.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}

func TestFailureLimit(t *testing.T) {
	clock := newFakeClock()
	now := clock.Now()
	cert := newTestCert(t, "entra", now.AddDate(0, 0, -1), now.AddDate(1, 0, 0))
	e := newEnv(t, approvals.Policy{}, func(c *Config) {
		c.Clock = clock
		c.Auth.Thumbprints = []string{cert.sha256}
		c.Auth.FailureLimit = RateLimit{Burst: 3, Every: 10 * time.Second}
	})
	call := func(addr, user, pass string, withCert bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(signUp("ann@example.com", nil)))
		r.RemoteAddr = addr
		r.Header.Set("Content-Type", "application/json")
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		if withCert {
			leaf, err := x509.ParseCertificate(cert.tls.Certificate[0])
			if err != nil {
				t.Fatal(err)
			}
			r.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}
		}
		return e.do(r)
	}
	const attacker = "203.0.113.7:40000"
	for i := range 3 {
		if w := call(attacker, testUser, fmt.Sprint("guess", i), false); w.Code != http.StatusUnauthorized {
			t.Fatalf("failure %d: %d, want 401", i, w.Code)
		}
	}
	// Throttled: another failure is 429, but the right password is never
	// refused by the limiter.
	w := call("203.0.113.7:40001", testUser, "guess-again", false)
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("throttled failure: %d Retry-After %q, want 429 and 10", w.Code, w.Header().Get("Retry-After"))
	}
	if ct := w.Header().Get("Content-Type"); ct != "application/json" {
		t.Errorf("429 Content-Type %q", ct)
	}
	if w := call("203.0.113.7:40001", testUser, testPassword, false); w.Code != http.StatusOK {
		t.Fatalf("the right password from the throttled address: %d, want 200", w.Code)
	}
	// Others are not affected, and a valid certificate is never throttled.
	if w := call("198.51.100.1:5000", testUser, testPassword, false); w.Code != http.StatusOK {
		t.Errorf("another client: %d", w.Code)
	}
	if w := call(attacker, "", "", true); w.Code != http.StatusOK {
		t.Errorf("certificate from a throttled address: %d", w.Code)
	}
	// One more failed attempt every 10 s is looked at (and answered 401).
	clock.Advance(4 * time.Second)
	if w := call(attacker, testUser, "guess-4s", false); w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "6" {
		t.Errorf("after 4 s: %d Retry-After %q, want 429 and 6", w.Code, w.Header().Get("Retry-After"))
	}
	clock.Advance(6 * time.Second)
	if w := call(attacker, testUser, "guess-10s", false); w.Code != http.StatusUnauthorized {
		t.Errorf("after 10 s with a wrong password: %d, want 401", w.Code)
	}
	// IPv6 clients are counted by /64.
	for i := range 3 {
		call(fmt.Sprintf("[2001:db8:1:2::%d]:443", i+1), testUser, "guess", false)
	}
	if w := call("[2001:db8:1:2:ffff::9]:443", testUser, "guess", false); w.Code != http.StatusTooManyRequests {
		t.Errorf("same /64: %d, want 429", w.Code)
	}
	if w := call("[2001:db8:1:2:ffff::9]:443", testUser, testPassword, false); w.Code != http.StatusOK {
		t.Errorf("same /64 with the right password: %d, want 200", w.Code)
	}
	if w := call("[2001:db8:1:3::1]:443", testUser, "guess", false); w.Code != http.StatusUnauthorized {
		t.Errorf("other /64: %d, want 401", w.Code)
	}
}

func TestFailureLimiterBounded(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	l := newFailureLimiter(2, time.Second, 100)
	for i := range 1000 {
		l.fail(fmt.Sprint("10.0.", i/256, ".", i%256), now)
	}
	if n := len(l.tat); n > 100 || l.n.Load() != int64(n) {
		t.Fatalf("%d clients tracked (n=%d), want at most 100", n, l.n.Load())
	}
	// Full buckets are forgotten once their time has passed.
	later := now.Add(time.Minute)
	if w := l.wait("10.0.3.231", later); w != 0 {
		t.Errorf("wait after a minute = %v", w)
	}
	if !l.empty() {
		t.Errorf("%d clients still tracked after every bucket refilled", l.n.Load())
	}
}

func TestParseThumbprint(t *testing.T) {
	tests := []struct {
		in   string
		size int // 0: error
	}{
		{strings.Repeat("a1", 20), 20},
		{strings.Repeat("A1", 32), 32},
		{" " + colonUpper(strings.Repeat("0f", 20)) + " ", 20},
		{strings.Repeat("0f ", 32), 32},
		{strings.Repeat("a1", 21), 0},
		{strings.Repeat("a1", 16), 0},
		{strings.Repeat("g1", 20), 0},
		{"", 0},
		{"sha1:" + strings.Repeat("a1", 20), 0},
	}
	for _, tt := range tests {
		b, err := parseThumbprint(tt.in)
		if (err == nil) != (tt.size > 0) || len(b) != tt.size {
			t.Errorf("parseThumbprint(%q) = %d bytes, %v; want %d", tt.in, len(b), err, tt.size)
		}
	}
}

// TestValidCredentialsNeverThrottled is the lock-out an attacker could
// cause: failing from Entra's address, or from the reverse proxy every call
// comes through, must never get Entra's correct calls refused.
func TestValidCredentialsNeverThrottled(t *testing.T) {
	trusted, err := clientip.ParseTrusted("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name      string
		proxied   bool
		attacker  func(i int) (peer, xff string)
		entraPeer string
		entraXFF  string
	}{
		{name: "same address, no proxy",
			attacker:  func(int) (string, string) { return "20.190.128.5:40000", "" },
			entraPeer: "20.190.128.5:40001"},
		{name: "behind a trusted proxy, attacker and Entra share the proxy",
			proxied:   true,
			attacker:  func(int) (string, string) { return "10.0.0.2:5000", "198.51.100.66" },
			entraPeer: "10.0.0.2:5001", entraXFF: "20.190.128.5"},
		{name: "behind a trusted proxy, attacker spoofs Entra's address",
			proxied:   true,
			attacker:  func(int) (string, string) { return "10.0.0.2:5000", "20.190.128.5" },
			entraPeer: "10.0.0.2:5001", entraXFF: "20.190.128.5"},
		{name: "behind a proxy nobody configured: every call is the proxy's",
			attacker:  func(i int) (string, string) { return "10.0.0.2:5000", fmt.Sprint("198.51.100.", i) },
			entraPeer: "10.0.0.2:5001", entraXFF: "20.190.128.5"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, approvals.Policy{})
			h := e.h
			if tc.proxied {
				h = trusted.Middleware(h)
			}
			call := func(peer, xff, pass string) *httptest.ResponseRecorder {
				r := httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(signUp("ann@example.com", nil)))
				r.RemoteAddr = peer
				r.Header.Set("Content-Type", "application/json")
				if xff != "" {
					r.Header.Set("X-Forwarded-For", xff)
				}
				r.SetBasicAuth(testUser, pass)
				w := httptest.NewRecorder()
				h.ServeHTTP(w, r)
				return w
			}
			// Ten failures use up the default burst; the next ones are
			// throttled, interleaved with Entra's correct calls.
			for i := range DefaultFailureBurst {
				peer, xff := tc.attacker(i)
				if w := call(peer, xff, "wrong"); w.Code != http.StatusUnauthorized {
					t.Fatalf("failure %d: %d, want 401", i, w.Code)
				}
			}
			for i := range 20 {
				if i%2 == 0 {
					peer, xff := tc.attacker(i)
					if w := call(peer, xff, "wrong"); w.Code != http.StatusTooManyRequests {
						t.Fatalf("failure past the burst: %d, want 429", w.Code)
					}
					continue
				}
				w := call(tc.entraPeer, tc.entraXFF, testPassword)
				if w.Code != http.StatusOK {
					t.Fatalf("correct call %d: %d %s, want 200", i, w.Code, w.Body)
				}
				if rep := readReply(t, w, CheckApprovalStatusPath); rep.Action != "Continue" {
					t.Fatalf("correct call %d: %+v", i, rep)
				}
			}
		})
	}
}

// TestFailuresCountedAgainstTheForwardedClient checks that behind a
// trusted proxy the limiter counts the client the proxy names, and that a
// client reaching the server directly cannot pick its address with a
// forwarding header.
func TestFailuresCountedAgainstTheForwardedClient(t *testing.T) {
	trusted, err := clientip.ParseTrusted("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, approvals.Policy{}, func(c *Config) { c.Auth.FailureLimit = RateLimit{Burst: 2, Every: time.Minute} })
	h := trusted.Middleware(e.h)
	call := func(peer, xff string) int {
		r := httptest.NewRequest(http.MethodPost, CheckApprovalStatusPath, bytes.NewReader(signUp("ann@example.com", nil)))
		r.RemoteAddr = peer
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("X-Forwarded-For", xff)
		r.SetBasicAuth(testUser, "wrong")
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	// Through the proxy: one client throttled, another not.
	for range 2 {
		call("10.0.0.2:1", "198.51.100.1")
	}
	if got := call("10.0.0.2:1", "198.51.100.1"); got != http.StatusTooManyRequests {
		t.Errorf("throttled client through the proxy: %d, want 429", got)
	}
	if got := call("10.0.0.3:1", "1.2.3.4, 198.51.100.2, 10.0.0.9"); got != http.StatusUnauthorized {
		t.Errorf("other client through the proxy: %d, want 401", got)
	}
	// Directly: a spoofed header changes nothing, the peer is counted.
	for i := range 2 {
		call("203.0.113.9:1", fmt.Sprint("192.0.2.", i))
	}
	if got := call("203.0.113.9:1", "192.0.2.200"); got != http.StatusTooManyRequests {
		t.Errorf("untrusted peer rotating X-Forwarded-For: %d, want 429", got)
	}
	if !strings.Contains(e.logs.String(), `"client":"198.51.100.1"`) {
		t.Errorf("the failure log does not name the forwarded client:\n%s", e.logs.String())
	}
}
