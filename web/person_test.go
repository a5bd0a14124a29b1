package web_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

func TestRequestPageWarnsOfLookalikeAddress(t *testing.T) {
	e := newEnv(t)
	b, _ := e.login("rob")
	tests := []struct {
		email, want string // want "" for no warning
	}{
		{"ann@example.com", ""},
		{"\u0430nn@example.com", "mixes scripts (Cyrillic and Latin)"},
		{"\u212aelvin@gmail.com", "Kelvin sign"},
	}
	for i, tt := range tests {
		r := e.signUp(t0.Add(-time.Duration(i+1)*time.Hour), tt.email, "Ann", nil, nil)
		p := b.get("/requests/" + r.ID)
		if p.resp.StatusCode != http.StatusOK {
			t.Fatalf("%s: status %d", tt.email, p.resp.StatusCode)
		}
		warnings := queryAll(t, p.doc, "#lookalike-warning")
		switch {
		case tt.want == "" && len(warnings) != 0:
			t.Errorf("%s: warning %q; want none", tt.email, textOf(warnings[0]))
		case tt.want != "" && (len(warnings) != 1 || !strings.Contains(textOf(warnings[0]), tt.want)):
			t.Errorf("%s: %d warnings; want one saying %q", tt.email, len(warnings), tt.want)
		}
	}
}
