package querystring

import (
	"net/url"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	good := []string{"", "status=denied", "status=denied&since=2999-01-01", "q=a%3Bb", "q=100%25", "a=%C3%A9", "a=+b", "a", "&&", "a=1&a=2"}
	for _, raw := range good {
		if err := Check(raw); err != nil {
			t.Errorf("Check(%q) = %v, want nil", raw, err)
		}
	}
	bad := []struct{ raw, fragment string }{
		{"status=denied;since=2999-01-01", `"status=denied;since=2999-01-01" contains ";"`},
		{"format=csv&status=denied;since=2999-01-01", `"status=denied;since=2999-01-01"`},
		{"q=%zz", `"%zz", which is not a percent-escape`},
		{"q=100%", `"%"`},
		{"q=%4", `"%4"`},
		{"%zz=1", "write a \"%\" inside a value as %25"},
		{"since=" + strings.Repeat("x", 200) + ";", "..."},
	}
	for _, b := range bad {
		err := Check(b.raw)
		if err == nil {
			t.Errorf("Check(%q) = nil, want an error", b.raw)
			continue
		}
		if !strings.Contains(err.Error(), b.fragment) {
			t.Errorf("Check(%q) = %q, want it to contain %q", b.raw, err, b.fragment)
		}
	}
}

// FuzzCheck holds Check to url.ParseQuery: it refuses exactly the query
// strings Go cannot read in full, and its message is short, valid UTF-8
// when quoted, and never empty.
func FuzzCheck(f *testing.F) {
	for _, s := range []string{"", "a=1", "status=denied;since=2999-01-01", "q=%zz", "q=%", "q=%4", "a=%C3%A9&b=+", "%%%", ";", "a=\xff;"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		err := Check(raw)
		_, perr := url.ParseQuery(raw)
		if (err == nil) != (perr == nil) {
			t.Fatalf("Check(%q) = %v, url.ParseQuery: %v", raw, err, perr)
		}
		if err == nil {
			return
		}
		msg := err.Error()
		if msg == "" || len(msg) > 600 || !utf8.ValidString(msg) {
			t.Fatalf("message %q", msg)
		}
		if strings.Contains(msg, "cannot be read") {
			t.Fatalf("Check(%q): url.ParseQuery refused it for a reason Check does not name: %v", raw, perr)
		}
	})
}
