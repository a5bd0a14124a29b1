package graphtest

import (
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/internal/logcapture"
)

// TestQuietHandshakes drops a client mid-handshake and makes a handler
// panic on a real TLS server: of the two lines net/http logs, only the
// panic gets through.
func TestQuietHandshakes(t *testing.T) {
	var all, kept logcapture.Buffer
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { panic("boom") }))
	srv.Config.ErrorLog = log.New(io.MultiWriter(&all, quietHandshakes(&kept).Writer()), "", 0)
	srv.StartTLS()
	defer srv.Close()

	conn, err := net.Dial("tcp", srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	_ = conn.Close() // before the handshake, as a killed client does
	if resp, err := srv.Client().Get(srv.URL); err == nil {
		_ = resp.Body.Close()
	}

	deadline := time.Now().Add(10 * time.Second)
	for !(strings.Contains(all.String(), "http: TLS handshake error") && strings.Contains(all.String(), "panic serving")) {
		if time.Now().After(deadline) {
			t.Fatalf("the server did not log both errors: %q", all.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := kept.String(); strings.Contains(got, "TLS handshake error") || !strings.Contains(got, "panic serving") {
		t.Errorf("kept %q", got)
	}
}

// TestServersQuietHandshakes checks that both of a Server's listeners use
// the filter.
func TestServersQuietHandshakes(t *testing.T) {
	s := New(Options{})
	defer s.Close()
	for _, srv := range []*httptest.Server{s.graph, s.authority} {
		if l := srv.Config.ErrorLog; l == nil {
			t.Fatal("no error log")
		} else if _, ok := l.Writer().(handshakeFilter); !ok {
			t.Fatalf("error log writes to %T", l.Writer())
		}
	}
}
