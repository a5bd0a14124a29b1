package notify

import (
	"strings"
	"testing"
	"time"
)

// FuzzParseSecret: any input is accepted or refused without a panic, an
// accepted secret has at least MinSecretBytes bytes, and no error shows
// the secret's body.
func FuzzParseSecret(f *testing.F) {
	f.Add(testSecret)
	f.Add("whsec_")
	f.Add("whsec_AAAA")
	f.Fuzz(func(t *testing.T, s string) {
		key, err := ParseSecret(s)
		if err == nil && len(key) < MinSecretBytes {
			t.Fatalf("accepted %d bytes", len(key))
		}
		if body := strings.TrimPrefix(strings.TrimSpace(s), SecretPrefix); err != nil && len(body) >= 8 && strings.Contains(err.Error(), body) {
			t.Fatalf("error %q shows the secret", err)
		}
	})
}

// FuzzRetryAfter: a Retry-After header never gives a negative wait or
// one beyond maxRetryAfter (for seconds).
func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"120", "0", "-5", "Wed, 21 Oct 2015 07:28:00 GMT", "soon", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d := retryAfter(v, now)
		if d < 0 {
			t.Fatalf("retryAfter(%q) = %s", v, d)
		}
	})
}
