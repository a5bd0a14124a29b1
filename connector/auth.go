package connector

import (
	"crypto/sha1" //nolint:gosec // SHA-1 thumbprints are what Windows and the Entra portal show
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/clientip"
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
	// default is the client address internal/clientip decided (the peer,
	// or behind a trusted proxy the address it forwarded; IPv6 by its /64
	// prefix).
	ClientKey func(r *http.Request) string
}

// RateLimit is a token bucket of failed authentication attempts per
// client: Burst failures in a row are answered 401, then one more every
// Every; the other failures get 429 with Retry-After. It only ever slows
// failing calls: a call with valid credentials is never refused by it.
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

// authenticate checks the caller. Valid credentials always get through:
// a matching client certificate (the TLS handshake proved the caller holds
// its key) or Basic credentials, compared in constant time before the
// limiter is looked at, so that no one can lock Entra out by failing from
// its address or from the proxy in front of this server. The limiter only
// slows callers that fail: past the burst their failures are answered 429
// with Retry-After instead of 401, and are not counted again. With a
// password of 16 or more characters, as cmd/approvals requires, that is
// all it needs to do: guessing one is hopeless at any rate.
func (a *authenticator) authenticate(r *http.Request) (authResult, time.Duration) {
	if a.certificateOK(r) || a.basicOK(r) {
		return authOK, 0
	}
	key, now := a.clientKey(r), a.clock.Now()
	if wait := a.limiter.wait(key, now); wait > 0 {
		return authLimited, wait
	}
	a.limiter.fail(key, now)
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

// remoteClientKey is the client address clientip decided (the peer, or
// the address a trusted proxy vouches for), IPv6 addresses by their /64
// prefix (one host usually holds the whole prefix).
func remoteClientKey(r *http.Request) string {
	ip := clientip.From(r)
	if !ip.IsValid() {
		return r.RemoteAddr
	}
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
