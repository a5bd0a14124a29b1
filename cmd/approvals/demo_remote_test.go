package main

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestDemoPublicURL(t *testing.T) {
	tcp := func(s string) net.Addr { a, _ := net.ResolveTCPAddr("tcp", s); return a }
	tests := []struct {
		flag string
		addr net.Addr
		want string // "" for an error
	}{
		{"", tcp("127.0.0.1:18081"), "http://127.0.0.1:18081"},
		{"", tcp("0.0.0.0:18081"), "http://localhost:18081"},
		{"", tcp("[::]:18081"), "http://localhost:18081"},
		{"http://demo-host:8080/", tcp("0.0.0.0:18081"), "http://demo-host:8080"},
		{"https://approvals.example", tcp("0.0.0.0:18081"), "https://approvals.example"},
		{"demo-host:8080", tcp("0.0.0.0:1"), ""},
		{"http://demo-host:8080/path", tcp("0.0.0.0:1"), ""},
		{"ftp://demo-host", tcp("0.0.0.0:1"), ""},
	}
	for _, tt := range tests {
		got, err := demoPublicURL(tt.flag, tt.addr)
		if tt.want == "" && err == nil || tt.want != "" && got != tt.want {
			t.Errorf("demoPublicURL(%q, %v) = %q, %v; want %q", tt.flag, tt.addr, got, err, tt.want)
		}
	}
}

// A demo reached under another name (a remote machine's, a container's
// mapped port) serves its sign-in provider on the same port under that
// name: the login redirect names the public URL, the server reaches its
// provider through its own listener, and the provider answers there.
func TestDemoUsableUnderAPublicURL(t *testing.T) {
	const public = "http://approvals-demo.invalid:18099"
	d, _, _ := startDemo(t, "--public-url", public)
	if d.PublicURL != public {
		t.Fatalf("PublicURL = %q", d.PublicURL)
	}
	// A browser on another machine: every connection goes to the demo's
	// port, whatever the name.
	listener := d.main.listener.Addr().String()
	var dialer net.Dialer
	browser := &http.Client{
		Transport: &http.Transport{DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return dialer.DialContext(ctx, "tcp", listener)
		}},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	resp, err := browser.Get(public + "/auth/login")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	loc := resp.Header.Get("Location")
	if resp.StatusCode/100 != 3 || !strings.HasPrefix(loc, public+"/demo-idp/") {
		t.Fatalf("GET /auth/login = %d to %q; want a redirect to %s/demo-idp/", resp.StatusCode, loc, public)
	}
	resp, err = browser.Get(loc)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 || !strings.Contains(string(body), "Ada") {
		t.Fatalf("the sign-in page at %s: %d %.300s", loc, resp.StatusCode, body)
	}
}
