package externalid

import (
	"context"
	"encoding/json"
	"math"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
)

func addSamples(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join(testdata, "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"data":{"userSignUpInfo":{"attributes":{"email":{"value":["a@b.example"]},"x":{"Value":1e400}}}}}`))
	f.Add([]byte(`{"DATA":{"USERSIGNUPINFO":{"IDENTITIES":[null,1,{"signInType":"federated","issuer":"MAIL","issuerAssignedId":" x@y.example "}]}}}`))
}

// FuzzDecode: any body is refused or decodes to a sign-up whose claims are
// the JSON scalars the store keeps, under valid names, without panicking.
func FuzzDecode(f *testing.F) {
	addSamples(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := Decode(body)
		if err != nil {
			if p.SignUp.Email != "" || p.SignUp.Claims != nil {
				t.Fatal("a refused payload returned data")
			}
			return
		}
		su := p.SignUp
		if su.Source != approvals.SourceExternalID || su.Email != strings.TrimSpace(su.Email) {
			t.Fatalf("source %q email %q", su.Source, su.Email)
		}
		if len(su.Locale) > maxLocaleLen || len(su.DisplayName) > maxDisplayName {
			t.Fatal("a limit was not applied")
		}
		for k, v := range su.Claims {
			if k == "" || len(k) > maxAttributeName || !utf8.ValidString(k) {
				t.Fatalf("claim name %q", k)
			}
			switch x := v.(type) {
			case string:
				if !utf8.ValidString(x) {
					t.Fatalf("claim %q is not UTF-8", k)
				}
			case bool:
			case float64:
				if math.IsInf(x, 0) || math.IsNaN(x) {
					t.Fatalf("claim %q = %v", k, x)
				}
			default:
				t.Fatalf("claim %q has type %T", k, v)
			}
		}
		if _, err := json.Marshal(su.Claims); err != nil {
			t.Fatalf("claims do not encode: %v", err)
		}
	})
}

// FuzzSubmit: any authenticated submit body gets HTTP 200,
// application/json and exactly one action, and never continue: the store
// is empty and no rule approves.
func FuzzSubmit(f *testing.F) {
	addSamples(f)
	e := newEnv(f, approvals.Policy{})
	tok := e.token(nil)
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, path := range []string{StartPath, SubmitPath} {
			r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(string(body)))
			r.Header.Set("Content-Type", "application/json")
			r.Header.Set("Authorization", "Bearer "+tok)
			w := httptest.NewRecorder()
			e.h.ServeHTTP(w, r)
			if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
				t.Fatalf("%s: %d %q", path, w.Code, w.Header().Get("Content-Type"))
			}
			var a answer
			if err := json.Unmarshal(w.Body.Bytes(), &a); err != nil || len(a.Data.Actions) != 1 {
				t.Fatalf("%s: %v %s", path, err, w.Body.String())
			}
			if path == SubmitPath && a.Data.Actions[0].ODataType == submitContinueType {
				t.Fatalf("submit continued a person no one approved: %s", body)
			}
		}
	})
}

// FuzzVerify: a token built from arbitrary bytes, or a valid token with
// arbitrary bytes in place of one of its parts, is refused unless what it
// says is exactly what the issuer signed.
func FuzzVerify(f *testing.F) {
	e := newEnv(f, approvals.Policy{})
	valid := e.token(nil)
	v := e.h.Tokens()
	if _, err := v.Verify(context.Background(), valid); err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(valid, ".")
	want, _ := unverifiedClaims(parts[1])
	f.Add("", 0)
	f.Add(parts[0], 0)
	f.Add(parts[1]+"x", 1)
	f.Add(parts[2][:10], 2)
	f.Add("eyJhbGciOiJub25lIn0", 0)
	f.Fuzz(func(t *testing.T, s string, part int) {
		for _, tok := range []string{s, replacePart(parts, part, s)} {
			c, err := v.Verify(context.Background(), tok)
			if err != nil {
				continue
			}
			got, _ := unverifiedClaims(strings.Split(tok, ".")[1])
			if got != want || c.TenantID != testTenant {
				t.Fatalf("accepted a token saying %q, the issuer signed %q", got, want)
			}
		}
		_ = BearerToken(s)
		_, _ = unverifiedIssuer(s)
	})
}

func replacePart(parts []string, i int, s string) string {
	p := append([]string(nil), parts...)
	if i < 0 {
		i = -i
	}
	p[i%3] = s
	return strings.Join(p, ".")
}

// unverifiedClaims returns the payload's JSON, re-encoded canonically.
func unverifiedClaims(seg string) (string, error) {
	b, err := decodeSegment(seg)
	if err != nil {
		return "", err
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		return "", err
	}
	out, err := json.Marshal(m)
	return string(out), err
}
