package clientip

import (
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
)

func mustTrust(t testing.TB, list string) Trusted {
	t.Helper()
	tr, err := ParseTrusted(list)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}

func request(peer string, headers ...string) *http.Request {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = peer
	for i := 0; i+1 < len(headers); i += 2 {
		r.Header.Add(headers[i], headers[i+1])
	}
	return r
}

func TestParseTrusted(t *testing.T) {
	good := map[string]string{
		"":                              "",
		" , ":                           "",
		"10.0.0.0/8":                    "10.0.0.0/8",
		"10.1.2.3/8, 2001:db8::/32":     "10.0.0.0/8,2001:db8::/32",
		"192.0.2.7":                     "192.0.2.7/32",
		"::1":                           "::1/128",
		"::ffff:10.0.0.0/104":           "10.0.0.0/8",
		"172.16.0.0/12,,192.168.0.0/16": "172.16.0.0/12,192.168.0.0/16",
	}
	for in, want := range good {
		tr, err := ParseTrusted(in)
		if err != nil || tr.String() != want {
			t.Errorf("ParseTrusted(%q) = %q, %v; want %q", in, tr.String(), err, want)
		}
	}
	for _, in := range []string{"10.0.0/8", "10.0.0.0/33", "proxy.internal", "10.0.0.0/8;192.168.0.0/16", "fe80::1%eth0", "::ffff:0:0/90", "*"} {
		_, err := ParseTrusted(in)
		if err == nil || !strings.Contains(err.Error(), "APPROVALS_TRUSTED_PROXIES") || !strings.Contains(err.Error(), "CIDR") {
			t.Errorf("ParseTrusted(%q) = %v, want an error naming the setting and the CIDR form", in, err)
		}
	}
}

func TestClient(t *testing.T) {
	proxies := "10.0.0.0/8, 2001:db8:aaaa::/48"
	tests := []struct {
		name    string
		trusted string
		peer    string
		headers []string
		want    string
	}{
		{"no proxy configured: the peer", "", "203.0.113.5:4000", []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.5"},
		{"spoofed X-Forwarded-For from an untrusted peer is ignored", proxies, "203.0.113.5:4000", []string{"X-Forwarded-For", "198.51.100.1"}, "203.0.113.5"},
		{"spoofed Forwarded from an untrusted peer is ignored", proxies, "203.0.113.5:4000", []string{"Forwarded", "for=198.51.100.1"}, "203.0.113.5"},
		{"trusted proxy without header: the proxy", proxies, "10.0.0.2:4000", nil, "10.0.0.2"},
		{"trusted proxy: the hop it names", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "198.51.100.1"}, "198.51.100.1"},
		{"the client's own spoofed hop left of the real one is ignored", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "1.2.3.4, 198.51.100.1"}, "198.51.100.1"},
		{"chain of trusted proxies", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "1.2.3.4, 198.51.100.1, 10.9.9.9, 10.0.0.3"}, "198.51.100.1"},
		{"chain over several header lines", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "1.2.3.4, 198.51.100.1", "X-Forwarded-For", "10.0.0.3"}, "198.51.100.1"},
		{"all hops trusted: the leftmost", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "10.1.1.1, 10.0.0.3"}, "10.1.1.1"},
		{"hop with a port", proxies, "10.0.0.2:4000", []string{"X-Forwarded-For", "198.51.100.1:5555"}, "198.51.100.1"},
		{"IPv6 hop", proxies, "[2001:db8:aaaa::1]:443", []string{"X-Forwarded-For", "2001:db8:bbbb::7"}, "2001:db8:bbbb::7"},
		{"IPv6 hop in brackets with a port", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", "[2001:db8:bbbb::7]:80"}, "2001:db8:bbbb::7"},
		{"IPv4-mapped peer and hop", proxies, "[::ffff:10.0.0.2]:1", []string{"X-Forwarded-For", "::ffff:198.51.100.1"}, "198.51.100.1"},
		{"Forwarded", proxies, "10.0.0.2:1", []string{"Forwarded", "for=198.51.100.1;proto=https;by=10.0.0.2"}, "198.51.100.1"},
		{"Forwarded chain, quoted IPv6 with port", proxies, "10.0.0.2:1", []string{"Forwarded", `for=1.2.3.4, for="[2001:db8:cafe::17]:4711", for=10.0.0.9`}, "2001:db8:cafe::17"},
		{"Forwarded parameter names in any case", proxies, "10.0.0.2:1", []string{"Forwarded", "proto=https; For=198.51.100.1"}, "198.51.100.1"},
		{"Forwarded wins over X-Forwarded-For", proxies, "10.0.0.2:1", []string{"Forwarded", "for=198.51.100.1", "X-Forwarded-For", "198.51.100.2"}, "198.51.100.1"},
		{"Forwarded quoted comma is not a separator", proxies, "10.0.0.2:1", []string{"Forwarded", `for=198.51.100.1;x="a,b"`}, "198.51.100.1"},
		{"malformed hop stops at the proxy", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", "198.51.100.1, garbage"}, "10.0.0.2"},
		{"empty header", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", ""}, "10.0.0.2"},
		{"trailing comma", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", "198.51.100.1,"}, "10.0.0.2"},
		{"malformed hop after a trusted one", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", "nope, 10.0.0.3"}, "10.0.0.3"},
		{"Forwarded unknown", proxies, "10.0.0.2:1", []string{"Forwarded", "for=unknown"}, "10.0.0.2"},
		{"Forwarded obfuscated", proxies, "10.0.0.2:1", []string{"Forwarded", "for=_hidden, for=10.0.0.5"}, "10.0.0.5"},
		{"Forwarded without for", proxies, "10.0.0.2:1", []string{"Forwarded", "proto=https"}, "10.0.0.2"},
		{"Forwarded with two for in one element", proxies, "10.0.0.2:1", []string{"Forwarded", "for=1.1.1.1;for=198.51.100.1"}, "10.0.0.2"},
		{"Forwarded unquoted IPv6 with a port is accepted", proxies, "10.0.0.2:1", []string{"Forwarded", "for=[2001:db8::1]:80"}, "2001:db8::1"},
		{"zone dropped", proxies, "10.0.0.2:1", []string{"X-Forwarded-For", "fe80::1%eth0"}, "fe80::1"},
		{"peer that is not an address", proxies, "pipe", []string{"X-Forwarded-For", "198.51.100.1"}, "invalid IP"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr := mustTrust(t, tc.trusted)
			r := request(tc.peer, tc.headers...)
			if got := tr.Client(r).String(); got != tc.want {
				t.Errorf("Client = %s, want %s", got, tc.want)
			}
			var seen string
			tr.Middleware(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
				seen = From(r).String()
			})).ServeHTTP(httptest.NewRecorder(), r)
			if seen != tc.want {
				t.Errorf("From after Middleware = %s, want %s", seen, tc.want)
			}
		})
	}
}

func TestFromWithoutMiddlewareIsThePeer(t *testing.T) {
	r := request("203.0.113.9:1", "X-Forwarded-For", "198.51.100.1", "Forwarded", "for=198.51.100.2")
	if got := From(r); got != netip.MustParseAddr("203.0.113.9") {
		t.Errorf("From = %s", got)
	}
	if got := String(request("@")); got != "@" {
		t.Errorf("String of an unparsable peer = %q", got)
	}
}

func TestMiddlewareWithoutProxiesIsNext(t *testing.T) {
	next := http.NotFoundHandler()
	if h := (Trusted{}).Middleware(next); h == nil {
		t.Fatal("nil handler")
	}
	var tr Trusted
	if !tr.Empty() {
		t.Error("zero Trusted not empty")
	}
}

// FuzzClient holds Client to its promises on any headers: the answer is
// the peer when the peer is untrusted, otherwise the peer or an address
// that appears in the headers.
func FuzzClient(f *testing.F) {
	for _, s := range []string{"198.51.100.1", "1.2.3.4, 10.0.0.3", `for="[2001:db8::1]:80";proto=https, for=10.0.0.1`, "", ",", `"`, `for="a,b`} {
		f.Add("10.0.0.2:1", s, s)
	}
	tr, err := ParseTrusted("10.0.0.0/8,2001:db8::/32")
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, peer, xff, fwd string) {
		headers := []string{}
		if xff != "" {
			headers = append(headers, "X-Forwarded-For", xff)
		}
		if fwd != "" {
			headers = append(headers, "Forwarded", fwd)
		}
		r := request(peer, headers...)
		got := tr.Client(r)
		p := Peer(r)
		if !tr.contains(p) {
			if got != p {
				t.Fatalf("untrusted peer %q: Client = %s", peer, got)
			}
			return
		}
		if got != p && !got.IsValid() {
			t.Fatalf("Client = invalid address from a trusted peer")
		}
		if got != p && got.Zone() != "" {
			t.Fatalf("Client kept a zone: %s", got)
		}
	})
}
