package externalid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// BenchmarkVerify is token validation's own cost per call: full (the
// RS256 signature and every claim, as for a token seen the first time) and
// cached (Entra reuses its token: exp, nbf and the claims are checked
// again, the signature is not).
func BenchmarkVerify(b *testing.B) {
	e := newEnv(b, approvals.Policy{})
	v := e.h.Tokens()
	tok := e.token(nil)
	ctx := context.Background()
	if _, err := v.Verify(ctx, tok); err != nil {
		b.Fatal(err)
	}
	b.Run("full", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			v.mu.Lock()
			clear(v.verified)
			v.mu.Unlock()
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := v.Verify(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkHandler is one whole call of each extension, token included,
// in process (no network).
func BenchmarkHandler(b *testing.B) {
	e := newEnv(b, approvals.Policy{})
	tok := e.token(nil)
	body := string(readTestdata(b, "submit_reference.json"))
	post := func(path string) {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		e.h.ServeHTTP(w, r)
		if w.Code != http.StatusOK {
			b.Fatal(w.Code)
		}
	}
	post(SubmitPath) // the person is pending from here on
	for _, path := range []string{StartPath, SubmitPath} {
		b.Run(path[strings.LastIndexByte(path, '-')+1:], func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				post(path)
			}
		})
	}
	b.Run("decode", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if _, err := Decode([]byte(body)); err != nil {
				b.Fatal(err)
			}
		}
	})
}
