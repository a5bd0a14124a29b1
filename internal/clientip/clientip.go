// Package clientip decides the address of the client behind an HTTP
// request, once, for every part of the server that needs it: the failure
// limiters, the request log and anything else that names the caller.
//
// By default the client is the peer of the TCP connection
// (http.Request.RemoteAddr). Forwarding headers are believed only from a
// peer in a trusted proxy network (APPROVALS_TRUSTED_PROXIES): then the
// client is the rightmost hop of the Forwarded (RFC 7239, its for=
// parameters) or, without one, the X-Forwarded-For header that is not
// itself a trusted proxy. A client cannot choose its own address by
// sending these headers: anything left of the first untrusted hop is
// ignored, and a malformed hop stops the walk at the trusted proxy that
// forwarded it.
package clientip

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
)

// Trusted is a set of networks whose forwarding headers are believed. The
// zero value trusts nobody: the peer address is always the client.
type Trusted struct {
	prefixes []netip.Prefix
}

// ParseTrusted parses a comma-separated list of CIDRs ("10.0.0.0/8,
// 2001:db8::/32"); a bare address means that one host. An empty list
// trusts nobody. The error names the entry that is wrong and the setting
// to fix.
func ParseTrusted(list string) (Trusted, error) {
	var t Trusted
	for _, s := range strings.Split(list, ",") {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			a, aerr := netip.ParseAddr(s)
			if aerr != nil || a.Zone() != "" {
				return Trusted{}, fmt.Errorf("APPROVALS_TRUSTED_PROXIES: %q is not a network in CIDR form such as 10.0.0.0/8 or 2001:db8::/32 (or a single address)", s)
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		if p.Addr().Is4In6() {
			// Compare against unmapped addresses, as Client does.
			bits := p.Bits() - 96
			if bits < 0 {
				return Trusted{}, fmt.Errorf("APPROVALS_TRUSTED_PROXIES: %q is an IPv4-mapped network shorter than ::ffff:0:0/96; write it as an IPv4 CIDR", s)
			}
			p = netip.PrefixFrom(p.Addr().Unmap(), bits)
		}
		t.prefixes = append(t.prefixes, p.Masked())
	}
	return t, nil
}

// Empty reports whether t trusts nobody.
func (t Trusted) Empty() bool { return len(t.prefixes) == 0 }

// String returns the networks, comma-separated.
func (t Trusted) String() string {
	s := make([]string, len(t.prefixes))
	for i, p := range t.prefixes {
		s[i] = p.String()
	}
	return strings.Join(s, ",")
}

// contains reports whether a is in a trusted network.
func (t Trusted) contains(a netip.Addr) bool {
	for _, p := range t.prefixes {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// Peer returns the address of r's TCP peer, unmapped from IPv4-in-IPv6
// and without a zone; the zero Addr when RemoteAddr does not parse (a
// handler called by a test without one, for example).
func Peer(r *http.Request) netip.Addr {
	return parseHostPort(r.RemoteAddr)
}

// Client decides the address of the client behind r; it is the one
// function that does, and Middleware records its answer for From. Walking
// from the peer leftwards through the forwarding header's hops, it moves
// to the next hop only while the current address is a trusted proxy and
// the next hop is a well-formed address.
func (t Trusted) Client(r *http.Request) netip.Addr {
	cur := Peer(r)
	if len(t.prefixes) == 0 || !cur.IsValid() || !t.contains(cur) {
		return cur
	}
	hops, forwarded := r.Header.Values("Forwarded"), true
	if len(hops) == 0 {
		hops, forwarded = r.Header.Values("X-Forwarded-For"), false
	}
	// Header lines in order, then elements in order: the rightmost
	// element of the last line is the hop nearest to us.
	for line := len(hops) - 1; line >= 0; line-- {
		v := hops[line]
		for {
			var elem string
			v, elem = cutLastElement(v)
			var next netip.Addr
			if forwarded {
				next = forwardedFor(elem)
			} else {
				next = parseHostPort(strings.TrimSpace(elem))
			}
			if !next.IsValid() {
				return cur
			}
			cur = next
			if !t.contains(cur) {
				return cur
			}
			if v == "" {
				break
			}
		}
	}
	return cur
}

// cutLastElement splits a comma-separated header value before its last
// element, commas inside quoted strings not counting; rest is "" when elem
// was the only one.
func cutLastElement(v string) (rest, elem string) {
	quoted := false
	for i := len(v) - 1; i >= 0; i-- {
		switch v[i] {
		case '"':
			// A quote preceded by a backslash is escaped.
			if i == 0 || v[i-1] != '\\' {
				quoted = !quoted
			}
		case ',':
			if !quoted {
				return v[:i], v[i+1:]
			}
		}
	}
	return "", v
}

// forwardedFor returns the address in the for= parameter of one element
// of a Forwarded header (RFC 7239 section 4): for=192.0.2.60,
// for="[2001:db8:cafe::17]:4711", for="192.0.2.43:47011". An element
// without for=, with "unknown", an obfuscated identifier ("_hidden") or
// anything else that is not an address gives the zero Addr.
func forwardedFor(elem string) netip.Addr {
	var found netip.Addr
	n := 0
	for pair := range strings.SplitSeq(elem, ";") {
		name, value, ok := strings.Cut(strings.TrimSpace(pair), "=")
		if !ok || !strings.EqualFold(strings.TrimSpace(name), "for") {
			continue
		}
		if n++; n > 1 {
			return netip.Addr{} // two for= in one element: ambiguous
		}
		value = strings.TrimSpace(value)
		if len(value) >= 2 && value[0] == '"' && value[len(value)-1] == '"' {
			value = value[1 : len(value)-1]
		}
		found = parseHostPort(value)
	}
	return found
}

// parseHostPort parses "ip", "ip:port", "[ipv6]" or "[ipv6]:port" and
// returns the address unmapped and without its zone; the zero Addr for
// anything else.
func parseHostPort(s string) netip.Addr {
	if ap, err := netip.ParseAddrPort(s); err == nil {
		return clean(ap.Addr())
	}
	if strings.HasPrefix(s, "[") && strings.HasSuffix(s, "]") {
		s = s[1 : len(s)-1]
		if a, err := netip.ParseAddr(s); err == nil && a.Is6() {
			return clean(a)
		}
		return netip.Addr{}
	}
	if a, err := netip.ParseAddr(s); err == nil {
		return clean(a)
	}
	return netip.Addr{}
}

func clean(a netip.Addr) netip.Addr { return a.Unmap().WithZone("") }

type clientKey struct{}

// Middleware records the client address of every request for From. With
// no trusted proxy it returns next itself: From then reads the peer
// address, at no cost per request.
func (t Trusted) Middleware(next http.Handler) http.Handler {
	if len(t.prefixes) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if c := t.Client(r); c != Peer(r) {
			r = r.WithContext(context.WithValue(r.Context(), clientKey{}, c))
		}
		next.ServeHTTP(w, r)
	})
}

// From returns the client address Middleware decided for r, or the peer
// address when r did not pass through a Middleware that trusts a proxy.
// It never reads a forwarding header itself.
func From(r *http.Request) netip.Addr {
	if c, ok := r.Context().Value(clientKey{}).(netip.Addr); ok {
		return c
	}
	return Peer(r)
}

// String returns From(r) as text, or r.RemoteAddr as sent when it is not
// an address (so that a log still says something).
func String(r *http.Request) string {
	if a := From(r); a.IsValid() {
		return a.String()
	}
	return r.RemoteAddr
}
