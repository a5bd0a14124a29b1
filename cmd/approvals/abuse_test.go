package main

// The abuse test: the real server (Main, in process, with its timeouts
// shortened) gets hostile bodies, slow clients, a client that never reads,
// idle keep-alives and a flood of bad credentials, while a prober checks
// that /healthz and a normal sign-up keep answering fast.
// docs/RELIABILITY.md has the commands and the numbers.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/logcapture"
)

// The server's time limits in the abuse test, shortened from the
// production ones (httpserver.go) so that the test is quick.
var abuseTimeouts = serverTimeouts{
	readHeader: 500 * time.Millisecond,
	read:       time.Second,
	write:      time.Second,
	idle:       time.Second,
}

// startAbuseServer runs `approvals serve` in process with abuseTimeouts
// and returns it with its base URL; it stops when the test ends.
func startAbuseServer(t *testing.T) (*Main, string, *logcapture.Buffer) {
	t.Helper()
	return startServer(t, t.TempDir()+"/approvals.db", "warn", abuseTimeouts)
}

// clientFrom returns an HTTP client whose connections come from the
// loopback address ip (127.0.0.2 counts as another client than 127.0.0.1
// for the failure limit). It never reuses a connection idle for more than
// a quarter of the server's idle timeout: on a loaded machine a pause
// between two requests could otherwise let the server close a connection
// just as the client sends on it ("server closed idle connection"), a
// race of keep-alive, not of the server under test.
func clientFrom(ip string, keepAlive bool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{
		Timeout: 10 * time.Second,
		Transport: &http.Transport{DialContext: d.DialContext, DisableKeepAlives: !keepAlive, MaxIdleConnsPerHost: 16,
			IdleConnTimeout: abuseTimeouts.idle / 4},
	}
}

// rawExchange sends raw bytes on a new connection and reads one answer.
// The bytes are written from another goroutine, so that a server that
// answers before reading the whole body (a body too large) is heard.
func rawExchange(addr string, raw []byte) (*http.Response, []byte, error) {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	go func() { _, _ = conn.Write(raw) }()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp, body, err
}

// prober checks /healthz and a normal check-approval-status call from
// 127.0.0.1 every 25 ms, and records failures and the slowest answer.
type prober struct {
	mu       sync.Mutex
	n        int
	failures []string
	slowest  time.Duration
	lat      []time.Duration
}

func (p *prober) run(ctx context.Context, base, auth string) {
	client := clientFrom("127.0.0.1", true)
	body := []byte(`{"email":"prober@crash.example","ui_locales":"en-US"}`)
	for ctx.Err() == nil {
		start := time.Now()
		var fail string
		resp, err := client.Get(base + "/healthz")
		if err != nil {
			fail = "healthz: " + err.Error()
		} else {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				fail = "healthz: " + resp.Status
			}
		}
		if fail == "" {
			req, _ := http.NewRequest(http.MethodPost, base+"/connector/check-approval-status", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", auth)
			resp, err := client.Do(req)
			switch {
			case err != nil:
				fail = "check: " + err.Error()
			default:
				b, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"Continue"`)) {
					fail = fmt.Sprintf("check: %d %s", resp.StatusCode, b)
				}
			}
		}
		d := time.Since(start)
		p.mu.Lock()
		p.n++
		p.lat = append(p.lat, d)
		p.slowest = max(p.slowest, d)
		if fail != "" {
			p.failures = append(p.failures, fail)
		}
		p.mu.Unlock()
		select {
		case <-ctx.Done():
		case <-time.After(25 * time.Millisecond):
		}
	}
}

func basicAuth(user, password string) string {
	req, _ := http.NewRequest(http.MethodGet, "/", nil)
	req.SetBasicAuth(user, password)
	return req.Header.Get("Authorization")
}

// TestAbuse runs every abuse against one server while the prober runs.
func TestAbuse(t *testing.T) {
	if testing.Short() {
		t.Skip("abuse test: not in -short")
	}
	start := time.Now()
	m, base, logs := startAbuseServer(t)
	addr := strings.TrimPrefix(base, "http://")
	auth := basicAuth(crashUser, crashPassword)
	ctx, cancel := context.WithCancel(context.Background())
	var p prober
	probed := make(chan struct{})
	go func() { p.run(ctx, base, auth); close(probed) }()
	time.Sleep(200 * time.Millisecond)
	baseline := runtime.NumGoroutine()

	t.Run("bodies", func(t *testing.T) { abuseBodies(t, m, addr, auth) })
	t.Run("admin API bodies", func(t *testing.T) { abuseAPIBodies(t, addr) })
	t.Run("slow headers", func(t *testing.T) { abuseSlowHeaders(t, addr) })
	t.Run("slow body", func(t *testing.T) { abuseSlowBody(t, addr, auth) })
	t.Run("client never reads", func(t *testing.T) { abuseStalledReader(t, addr) })
	t.Run("idle keep-alive", func(t *testing.T) { abuseIdle(t, addr) })
	t.Run("bad credentials flood", func(t *testing.T) { abuseFlood(t, base) })

	// Healthy after it all: a normal sign-up is recorded once, and the
	// goroutines of the abusive connections are gone.
	client := clientFrom("127.0.0.1", false)
	for range 2 {
		status, a, err := postSignUp(ctx, client, base+"/connector/request-approval", crashUser, crashPassword,
			[]byte(`{"email":"after.abuse@crash.example","displayName":"After Abuse","ui_locales":"en-US"}`))
		if err != nil || status != 200 || a.Action != "ShowBlockPage" || !strings.Contains(a.UserMessage, "waiting for approval") {
			t.Fatalf("a normal sign-up after the abuse: %d %+v %v", status, a, err)
		}
	}
	if r, err := m.store.FindByPerson(ctx, approvals.PersonKey("after.abuse@crash.example", nil)); err != nil || r.Status != approvals.StatusPending {
		t.Fatalf("the normal sign-up was not recorded: %v", err)
	}
	for _, path := range []string{"/healthz", "/readyz"} {
		resp, err := client.Get(base + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%s after the abuse: %v %v", path, resp, err)
		}
		resp.Body.Close()
	}
	var goroutines int
	deadline := time.Now().Add(10 * time.Second)
	for {
		goroutines = runtime.NumGoroutine()
		if goroutines <= baseline+5 || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if goroutines > baseline+5 {
		buf := make([]byte, 1<<20)
		t.Errorf("%d goroutines after the abuse, %d before:\n%s", goroutines, baseline, buf[:runtime.Stack(buf, true)])
	}
	cancel()
	<-probed
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.failures {
		t.Errorf("prober: %s", f)
	}
	if p.slowest > time.Second {
		t.Errorf("the slowest /healthz + check-approval-status round took %s", p.slowest)
	}
	slices.Sort(p.lat)
	if strings.Contains(logs.String(), "panic") {
		t.Errorf("the server log mentions a panic:\n%s", logs.String())
	}
	t.Logf("RESULT abuse: prober made %d rounds (/healthz + a check-approval-status) during the abuse, %d failed; median %s, p99 %s, slowest %s; goroutines %d before, %d after; %s",
		p.n, len(p.failures), p.lat[len(p.lat)/2].Round(time.Microsecond), p.lat[len(p.lat)*99/100].Round(time.Microsecond),
		p.slowest.Round(time.Microsecond), baseline, goroutines, time.Since(start).Round(time.Millisecond))
}

// abuseBodies posts hostile bodies to both connector endpoints: the request
// step must answer a 400 ValidationError, the check step a 200
// ShowBlockPage, and a body over the limit 413 with a block page; never
// Continue, never a 5xx; nothing is stored.
func abuseBodies(t *testing.T, m *Main, addr, auth string) {
	before, err := m.store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	deepArray := `{"email":"deep@crash.example","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	deepObject := `{"email":"deep@crash.example","x":` + strings.Repeat(`{"a":`, 5000) + `1` + strings.Repeat(`}`, 5000) + `}`
	var manyKeys strings.Builder
	manyKeys.WriteString(`{"email":"not an address"`)
	for i := range 4000 {
		fmt.Fprintf(&manyKeys, `,"k%d":%d`, i, i)
	}
	manyKeys.WriteString(`}`)
	cases := []struct {
		name, contentType, body string
		chunked                 bool
		key                     string // expected message: a fragment of the English text
	}{
		// Bodies over the limit get the standard 413, with a block page
		// at both steps (connector.refused).
		{"over 64 KiB, with Content-Length", "application/json", `{"email":"big@crash.example","x":"` + strings.Repeat("a", 100<<10) + `"}`, false, "too long"},
		{"over 64 KiB, chunked", "application/json", `{"email":"big@crash.example","x":"` + strings.Repeat("a", 200<<10) + `"}`, true, "too long"},
		{"10 MiB", "application/json", strings.Repeat(" ", 10<<20), false, "too long"},
		{"arrays nested 20000 deep", "application/json", deepArray, false, "couldn't read"},
		{"objects nested 5000 deep", "application/json", deepObject, false, "couldn't read"},
		{"not UTF-8", "application/json", "{\"email\":\"utf@crash.example\",\"displayName\":\"\xff\xfe\xc0\xaf\"}", false, "couldn't read"},
		{"not UTF-8 in a name", "application/json", "{\"email\":\"utf@crash.example\",\"\xc3\x28\":\"x\"}", false, "couldn't read"},
		{"UTF-16", "application/json; charset=utf-16", "\xff\xfe{\x00\"\x00e\x00\"\x00}\x00", false, "couldn't read"},
		{"text/plain", "text/plain", `{"email":"ct@crash.example"}`, false, "couldn't read"},
		{"form", "application/x-www-form-urlencoded", `email=ct%40crash.example`, false, "couldn't read"},
		{"no content type", "", `{"email":"ct@crash.example"}`, false, "couldn't read"},
		{"bad content type", "application/json;;;=", `{"email":"ct@crash.example"}`, false, "couldn't read"},
		{"empty", "application/json", ``, false, "couldn't read"},
		{"null", "application/json", `null`, false, "couldn't read"},
		{"array", "application/json", `[{"email":"arr@crash.example"}]`, false, "couldn't read"},
		{"string", "application/json", `"arr@crash.example"`, false, "couldn't read"},
		{"truncated", "application/json", `{"email":"trunc@crash.exa`, false, "couldn't read"},
		{"trailing data", "application/json", `{"email":"trail@crash.example"} {}`, false, "couldn't read"},
		{"duplicate email", "application/json", `{"email":"a@crash.example","email":"b@crash.example"}`, false, "couldn't read"},
		{"number out of range", "application/json", `{"email":"num@crash.example","x":1e999}`, false, "couldn't read"},
		{"NUL in email", "application/json", "{\"email\":\"nul\\u0000@crash.example\"}", false, "not valid"},
		{"no email", "application/json", `{"displayName":"No Email"}`, false, "not valid"},
		{"email an object", "application/json", `{"email":{"a":"b"}}`, false, "not valid"},
		{"email of 10000 characters", "application/json", `{"email":"` + strings.Repeat("a", 10000) + `@crash.example"}`, false, "not valid"},
		{"4000 members", "application/json", manyKeys.String(), false, "not valid"},
		{"display name of 300 characters", "application/json", `{"email":"long@crash.example","displayName":"` + strings.Repeat("é", 300) + `"}`, false, "too long"},
		{"identities not an array", "application/json", `{"email":"id@crash.example","identities":"google.com"}`, false, "couldn't read"},
		{"identity of blanks", "application/json", `{"email":"id@crash.example","identities":[{"signInType":"federated","issuer":"  ","issuerAssignedId":" "}]}`, false, "couldn't read"},
	}
	for _, tc := range cases {
		for _, step := range []string{"request-approval", "check-approval-status"} {
			t.Run(tc.name+"/"+step, func(t *testing.T) {
				var raw bytes.Buffer
				fmt.Fprintf(&raw, "POST /connector/%s HTTP/1.1\r\nHost: %s\r\nAuthorization: %s\r\n", step, addr, auth)
				if tc.contentType != "" {
					fmt.Fprintf(&raw, "Content-Type: %s\r\n", tc.contentType)
				}
				if tc.chunked {
					fmt.Fprintf(&raw, "Transfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n0\r\n\r\n", len(tc.body), tc.body)
				} else {
					fmt.Fprintf(&raw, "Content-Length: %d\r\n\r\n%s", len(tc.body), tc.body)
				}
				resp, body, err := rawExchange(addr, raw.Bytes())
				if err != nil {
					t.Fatalf("no answer: %v", err)
				}
				var a connectorAnswer
				if err := json.Unmarshal(body, &a); err != nil || resp.Header.Get("Content-Type") != "application/json" {
					t.Fatalf("%s %q: not a JSON answer: %s", resp.Status, resp.Header.Get("Content-Type"), body)
				}
				wantStatus, wantAction := http.StatusBadRequest, "ValidationError"
				switch {
				case tc.key == "too long" && tc.name != "display name of 300 characters":
					wantStatus, wantAction = http.StatusRequestEntityTooLarge, "ShowBlockPage"
				case step == "check-approval-status":
					wantStatus, wantAction = http.StatusOK, "ShowBlockPage"
				}
				if resp.StatusCode != wantStatus || a.Action != wantAction || !strings.Contains(a.UserMessage, tc.key) {
					t.Errorf("%s %s %q, want %d %s with %q", resp.Status, a.Action, a.UserMessage, wantStatus, wantAction, tc.key)
				}
				if wantAction == "ValidationError" && fmt.Sprint(a.Status) != "400" {
					t.Errorf(`a ValidationError without "status":400: %s`, body)
				}
			})
		}
	}
	// Outside the two shapes, still JSON, never 5xx.
	for _, tc := range []struct {
		name, raw string
		status    int
	}{
		{"GET a connector endpoint", "GET /connector/request-approval HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\n\r\n", 405},
		{"unknown connector path", "POST /connector/nope HTTP/1.1\r\nHost: x\r\nAuthorization: " + auth + "\r\nContent-Length: 2\r\n\r\n{}", 404},
		{"headers over 64 KiB", "POST /connector/request-approval HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("b", 80<<10) + "\r\n\r\n", 431},
		{"malformed request line", "POST  /connector/request-approval HTTP/9.9\r\n\r\n", 400},
		{"no credentials", "POST /connector/request-approval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}", 401},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body, err := rawExchange(addr, []byte(tc.raw))
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			if resp.StatusCode != tc.status {
				t.Errorf("%s %s, want %d", resp.Status, body, tc.status)
			}
			if tc.status != 400 && tc.status != 431 && !json.Valid(body) {
				t.Errorf("not JSON: %s", body)
			}
		})
	}
	after, err := m.store.Count(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range after {
		if before[st] != n {
			t.Errorf("refused bodies changed the store: %v before, %v after", before, after)
			break
		}
	}
}

// abuseAPIBodies sends hostile bodies to the admin API: JSON errors, 4xx.
func abuseAPIBodies(t *testing.T, addr string) {
	path := "/api/v1/requests/000000000000000000000000/approve"
	for _, tc := range []struct {
		name, body string
		status     int
	}{
		{"over 64 KiB", `{"reason":"` + strings.Repeat("a", 100<<10) + `"}`, 413},
		{"nested 20000 deep", `{"reason":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`, 400},
		{"unknown field", `{"reason":"x","approve":true}`, 400},
		{"not JSON", `reason=x`, 400},
		{"trailing data", `{"reason":"x"}{}`, 400},
		{"not UTF-8 (no such request)", "{\"reason\":\"\xff\"}", 404},
	} {
		t.Run(tc.name, func(t *testing.T) {
			raw := fmt.Sprintf("POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s", path, crashAPIKey, len(tc.body), tc.body)
			resp, body, err := rawExchange(addr, []byte(raw))
			if err != nil {
				t.Fatalf("no answer: %v", err)
			}
			var e struct {
				Error struct{ Code, Message string }
			}
			if resp.StatusCode != tc.status || json.Unmarshal(body, &e) != nil || e.Error.Message == "" {
				t.Errorf("%s %s, want %d with a JSON error", resp.Status, body, tc.status)
			}
		})
	}
}

// connClosedWithin reads from conn until the server closes it, and
// returns how long that took; it fails after limit.
func connClosedWithin(conn net.Conn, limit time.Duration) (time.Duration, []byte, error) {
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(limit))
	b, err := io.ReadAll(conn)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return time.Since(start), b, fmt.Errorf("still open after %s", limit)
	}
	return time.Since(start), b, nil // EOF or a reset: closed
}

// abuseSlowHeaders opens 32 connections that send their headers one byte
// every 100 ms: each is cut off at the read-header timeout.
func abuseSlowHeaders(t *testing.T, addr string) {
	const conns = 32
	head := "POST /connector/request-approval HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Slow: " + strings.Repeat("s", 100)
	var wg sync.WaitGroup
	var worst atomic.Int64
	for range conns {
		wg.Go(func() {
			conn, err := net.Dial("tcp", addr)
			if err != nil {
				t.Error(err)
				return
			}
			defer conn.Close()
			start := time.Now()
			go dribble(conn, head)
			_, b, err := connClosedWithin(conn, 5*time.Second)
			if err != nil {
				t.Errorf("slow headers: %v", err)
			}
			if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 4")) {
				t.Errorf("slow headers got %q", b)
			}
			worst.Store(max(worst.Load(), int64(time.Since(start))))
		})
	}
	wg.Wait()
	t.Logf("RESULT abuse/slow headers: %d connections sending a byte every 100 ms, all cut off; the last after %s (read-header timeout %s)",
		conns, time.Duration(worst.Load()).Round(time.Millisecond), abuseTimeouts.readHeader)
	if time.Duration(worst.Load()) > abuseTimeouts.readHeader+2*time.Second {
		t.Errorf("a slow-header connection lasted %s", time.Duration(worst.Load()))
	}
}

// dribble writes s to conn a byte every 100 ms, as a slow client does,
// until the server cuts it off.
func dribble(conn net.Conn, s string) {
	for i := range len(s) {
		if _, err := conn.Write([]byte{s[i]}); err != nil {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// abuseSlowBody sends whole headers, then the body one byte every 100 ms:
// the read timeout cuts it off, with a ValidationError at most.
func abuseSlowBody(t *testing.T, addr, auth string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := `{"email":"slow.body@crash.example","displayName":"` + strings.Repeat("s", 200) + `"}`
	fmt.Fprintf(conn, "POST /connector/request-approval HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n", auth, len(body))
	go dribble(conn, body)
	took, b, err := connClosedWithin(conn, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > 0 && !bytes.HasPrefix(b, []byte("HTTP/1.1 400")) || bytes.Contains(b, []byte("Continue")) {
		t.Errorf("slow body got %q", b)
	}
	t.Logf("RESULT abuse/slow body: cut off after %s (read timeout %s); answer %q", took.Round(time.Millisecond), abuseTimeouts.read, firstLine(b))
}

func firstLine(b []byte) string {
	line, _, _ := bytes.Cut(b, []byte("\r\n"))
	return string(line)
}

// abuseStalledReader pipelines 300 requests for the 47 KB OpenAPI
// document on a connection with a 4 KiB receive buffer and never reads:
// the server's write blocks, and the write timeout closes the connection.
func abuseStalledReader(t *testing.T, addr string) {
	const requests = 300
	d := net.Dialer{Control: func(_, _ string, c syscall.RawConn) error {
		var serr error
		err := c.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		return errors.Join(err, serr)
	}}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	req := "GET /api/v1/openapi.json HTTP/1.1\r\nHost: x\r\n\r\n"
	go func() { _, _ = conn.Write([]byte(strings.Repeat(req, requests))) }()
	time.Sleep(abuseTimeouts.write + 2*time.Second)
	_, b, err := connClosedWithin(conn, 10*time.Second)
	if err != nil {
		t.Fatalf("a client that never reads kept its connection: %v", err)
	}
	answered := bytes.Count(b, []byte("HTTP/1.1 200"))
	if answered >= requests {
		t.Errorf("all %d answers were delivered: the write never blocked, so nothing was tested", answered)
	}
	t.Logf("RESULT abuse/never reads: %d pipelined requests of 47 KB, %d answers read back before the server closed the connection (write timeout %s)",
		requests, answered, abuseTimeouts.write)
}

// abuseIdle leaves a keep-alive connection idle: the server closes it
// after the idle timeout.
func abuseIdle(t *testing.T, addr string) {
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	br := bufio.NewReader(conn)
	fmt.Fprintf(conn, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	start := time.Now()
	_ = conn.SetReadDeadline(start.Add(5 * time.Second))
	_, err = br.ReadByte()
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("an idle keep-alive connection is still open after 5 s")
	}
	t.Logf("RESULT abuse/idle: keep-alive connection closed after %s idle (idle timeout %s)", time.Since(start).Round(time.Millisecond), abuseTimeouts.idle)
}

// abuseFlood sends bad Basic credentials from 127.0.0.2 on 12 connections
// at once (8 keep-alive, 4 new per request): after the burst every answer
// is 429 with Retry-After, while the right password from that address is
// answered 200 (the limiter slows failures only), and 127.0.0.1 (the
// prober) is served as usual.
func abuseFlood(t *testing.T, base string) {
	const perWorker = 40
	if l, err := net.Listen("tcp", "127.0.0.2:0"); err != nil {
		t.Skipf("this machine cannot use 127.0.0.2 as a second client address: %v", err)
	} else {
		l.Close()
	}
	bad := basicAuth(crashUser, "wrong-password-guess-0000")
	var unauthorized, throttled, other atomic.Int64
	var noRetryAfter atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for w := range 12 {
		client := clientFrom("127.0.0.2", w < 8)
		wg.Go(func() {
			for i := range perWorker {
				body := fmt.Sprintf(`{"email":"flood%d.%d@crash.example"}`, w, i)
				req, _ := http.NewRequest(http.MethodPost, base+"/connector/request-approval", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", bad)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("flood: %v", err)
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				switch resp.StatusCode {
				case 401:
					unauthorized.Add(1)
				case 429:
					throttled.Add(1)
					if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
						noRetryAfter.Add(1)
					}
				default:
					other.Add(1)
				}
			}
		})
	}
	wg.Wait()
	took := time.Since(start)
	// The right password from the throttled address is never refused by
	// the limiter: the flood cannot lock Entra out.
	client := clientFrom("127.0.0.2", false)
	status, a, err := postSignUp(context.Background(), client, base+"/connector/check-approval-status", crashUser, crashPassword, []byte(`{"email":"x@crash.example"}`))
	if err != nil || status != 200 || a.Action != "Continue" {
		t.Errorf("the right password from the throttled address: %d %+v %v, want 200 Continue", status, a, err)
	}
	status, a, err = postSignUp(context.Background(), clientFrom("127.0.0.1", false), base+"/connector/check-approval-status", crashUser, crashPassword, []byte(`{"email":"x@crash.example"}`))
	if err != nil || status != 200 || a.Action != "Continue" {
		t.Errorf("the right password from another address: %d %+v %v", status, a, err)
	}
	total := 12 * perWorker
	// Burst 10, one more every 6 s; concurrent first attempts may all pass
	// the check before the first failure is counted.
	maxUnauthorized := int64(10 + int(took/(6*time.Second)) + 12)
	if unauthorized.Load() < 10 || unauthorized.Load() > maxUnauthorized || other.Load() != 0 || noRetryAfter.Load() != 0 {
		t.Errorf("flood of %d: %d 401, %d 429 (%d without Retry-After), %d other", total, unauthorized.Load(), throttled.Load(), noRetryAfter.Load(), other.Load())
	}
	t.Logf("RESULT abuse/flood: %d bad-password requests from one address in %s (%.0f/s): %d answered 401, %d answered 429 with Retry-After; the right password from that address: 200; from another: 200",
		total, took.Round(time.Millisecond), float64(total)/took.Seconds(), unauthorized.Load(), throttled.Load())
}
