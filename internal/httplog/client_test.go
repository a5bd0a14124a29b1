package httplog

import (
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/clientip"
	"github.com/approvals-dev/approvals/internal/logcapture"
)

// The request line names the client clientip decided: the peer, or behind
// a trusted proxy the address it forwarded; a spoofed header from anyone
// else changes nothing.
func TestLogLineNamesTheClient(t *testing.T) {
	trusted, err := clientip.ParseTrusted("10.0.0.0/8")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ peer, xff, want string }{
		{"203.0.113.5:1234", "198.51.100.1", `"client":"203.0.113.5"`},
		{"10.0.0.2:1234", "1.2.3.4, 198.51.100.1", `"client":"198.51.100.1"`},
	} {
		var log logcapture.Buffer
		h := trusted.Middleware(Middleware(slog.New(slog.NewJSONHandler(&log, nil)), approvals.SystemClock, http.NotFoundHandler()))
		r := httptest.NewRequest(http.MethodGet, "/x", nil)
		r.RemoteAddr = tc.peer
		r.Header.Set("X-Forwarded-For", tc.xff)
		h.ServeHTTP(httptest.NewRecorder(), r)
		if !strings.Contains(log.String(), tc.want) {
			t.Errorf("peer %s, X-Forwarded-For %q: log %s, want %s", tc.peer, tc.xff, log.String(), tc.want)
		}
	}
}
