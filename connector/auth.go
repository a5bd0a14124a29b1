package connector

import (
	"crypto/sha1" //nolint:gosec // SHA-1 thumbprints are what Windows and the Entra portal show
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// Auth says how Entra's API connector proves who it is. Either method
// configured suffices; at least one must be.
type Auth struct {
	// Username and Password are the HTTP Basic credentials set on the API
	// connector. Both or neither.
	Username string
	Password string
	// Thumbprints are the accepted client certificates: the SHA-1 (40 hex
	// digits, as the Entra portal and Windows show) or SHA-256 (64 hex
	// digits) of the leaf certificate's DER encoding, in any case, colons
	// or spaces allowed between bytes. List the old and the new certificate
	// during a rollover: Entra always sends the newest valid one.
	Thumbprints []string
	// FailureLimit throttles clients that fail authentication.
	FailureLimit RateLimit
	// ClientKey names the client a failed attempt is counted against. The
	// default is the IP address of r.RemoteAddr (IPv6 by its /64 prefix).
	// Behind a reverse proxy, return the address the proxy vouches for.
	ClientKey func(r *http.Request) string
}

// RateLimit is a token bucket of failed authentication attempts per
// client: Burst failures in a row are answered 401, then one more every
// Every; the rest get 429 with Retry-After, whatever credentials they carry,
// so that guessing a password cannot go faster.
type RateLimit struct {
	// Burst defaults to 10.
	Burst int
	// Every defaults to 6 seconds (10 failures a minute after the burst).
	Every time.Duration
	// MaxClients bounds the memory used: at most this many clients are
	// tracked at once. It defaults to 10000.
	MaxClients int
}

// Defaults of RateLimit.
const (
	DefaultFailureBurst = 10
	DefaultFailureEvery = 6 * time.Second
	DefaultMaxClients   = 10000
)

func (l RateLimit) withDefaults() RateLimit {
	if l.Burst == 0 {
		l.Burst = DefaultFailureBurst
	}
	if l.Every == 0 {
		l.Every = DefaultFailureEvery
	}
	if l.MaxClients == 0 {
		l.MaxClients = DefaultMaxClients
	}
	return l
}

// authResult is what authenticate found.
type authResult int

const (
	authFailed authResult = iota
	authOK
	authLimited
)

// authenticator checks the caller of a connector endpoint.
type authenticator struct {
	basic        bool
	userHash     [sha256.Size]byte
	passHash     [sha256.Size]byte
	sha1Prints   map[[sha1.Size]byte]bool
	sha256Prints map[[sha256.Size]byte]bool
	limiter      *failureLimiter
	clientKey    func(*http.Request) string
	clock        approvals.Clock
}

// challenge is the WWW-Authenticate header of every 401.
const challenge = `Basic realm="approvals connector"`

func newAuthenticator(a Auth, clock approvals.Clock) (*authenticator, error) {
	au := &authenticator{
		basic:        a.Username != "",
		userHash:     sha256.Sum256([]byte(a.Username)),
		passHash:     sha256.Sum256([]byte(a.Password)),
		sha1Prints:   map[[sha1.Size]byte]bool{},
		sha256Prints: map[[sha256.Size]byte]bool{},
		clientKey:    a.ClientKey,
		clock:        clock,
	}
	for _, t := range a.Thumbprints {
		b, err := parseThumbprint(t)
		if err != nil {
			return nil, err
		}
		switch len(b) {
		case sha1.Size:
			au.sha1Prints[[sha1.Size]byte(b)] = true
		case sha256.Size:
			au.sha256Prints[[sha256.Size]byte(b)] = true
		}
	}
	if au.clientKey == nil {
		au.clientKey = remoteClientKey
	}
	l := a.FailureLimit.withDefaults()
	au.limiter = newFailureLimiter(l.Burst, l.Every, l.MaxClients)
	return au, nil
}

// parseThumbprint decodes a SHA-1 or SHA-256 thumbprint written in hex,
// with optional ':' or ' ' separators.
func parseThumbprint(s string) ([]byte, error) {
	h := strings.NewReplacer(":", "", " ", "").Replace(strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || (len(b) != sha1.Size && len(b) != sha256.Size) {
		return nil, fmt.Errorf("connector: certificate thumbprint %q is not 40 (SHA-1) or 64 (SHA-256) hex digits", s)
	}
	return b, nil
}

// authenticate checks the caller. A matching client certificate is enough
// and is never throttled: it cannot be guessed, as the TLS handshake proved
// the caller holds its private key. Otherwise a throttled client is refused
// before its credentials are looked at, so that a correct guess made while
// throttled does not get through.
func (a *authenticator) authenticate(r *http.Request) (authResult, time.Duration) {
	if a.certificateOK(r) {
		return authOK, 0
	}
	key := a.clientKey(r)
	if !a.limiter.empty() {
		if wait := a.limiter.wait(key, a.clock.Now()); wait > 0 {
			return authLimited, wait
		}
	}
	if a.basicOK(r) {
		return authOK, 0
	}
	a.limiter.fail(key, a.clock.Now())
	return authFailed, 0
}

// certificateOK reports whether the leaf certificate of the TLS handshake,
// valid now, has an accepted thumbprint. The chain is not verified: the
// server requests a certificate without verifying it, and the thumbprint
// pins the exact certificate the admin uploaded to Entra.
func (a *authenticator) certificateOK(r *http.Request) bool {
	if len(a.sha1Prints)+len(a.sha256Prints) == 0 || r.TLS == nil || len(r.TLS.PeerCertificates) == 0 {
		return false
	}
	leaf := r.TLS.PeerCertificates[0]
	now := a.clock.Now()
	if now.Before(leaf.NotBefore) || now.After(leaf.NotAfter) {
		return false
	}
	return a.sha1Prints[sha1.Sum(leaf.Raw)] || a.sha256Prints[sha256.Sum256(leaf.Raw)] //nolint:gosec // thumbprint, not a signature
}

// basicOK compares both Basic fields in constant time. Hashing first makes
// the comparison fixed-length, so the time taken says nothing about the
// length of the configured values either.
func (a *authenticator) basicOK(r *http.Request) bool {
	if !a.basic {
		return false
	}
	user, pass, ok := r.BasicAuth()
	if !ok {
		return false
	}
	u := sha256.Sum256([]byte(user))
	p := sha256.Sum256([]byte(pass))
	return subtle.ConstantTimeCompare(u[:], a.userHash[:])&subtle.ConstantTimeCompare(p[:], a.passHash[:]) == 1
}

// remoteClientKey is the IP address of the peer, IPv6 addresses by their
// /64 prefix (one host usually holds the whole prefix).
func remoteClientKey(r *http.Request) string {
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	ip := ap.Addr().Unmap()
	if ip.Is6() {
		if p, err := ip.Prefix(64); err == nil {
			return p.String()
		}
	}
	return ip.String()
}

// validate checks an Auth as Config.Validate does.
func (a Auth) validate() error {
	var errs []error
	if a.Username == "" && a.Password == "" && len(a.Thumbprints) == 0 {
		errs = append(errs, errors.New("connector: no caller authentication configured: set a username and password, or client-certificate thumbprints"))
	}
	if (a.Username == "") != (a.Password == "") {
		errs = append(errs, errors.New("connector: set both the Basic username and password, or neither"))
	}
	if strings.Contains(a.Username, ":") {
		errs = append(errs, errors.New("connector: the Basic username cannot contain ':'"))
	}
	for _, t := range a.Thumbprints {
		if _, err := parseThumbprint(t); err != nil {
			errs = append(errs, err)
		}
	}
	l := a.FailureLimit
	if l.Burst < 0 || l.Every < 0 || l.MaxClients < 0 {
		errs = append(errs, errors.New("connector: the failure limit's Burst, Every and MaxClients cannot be negative"))
	}
	return errors.Join(errs...)
}
