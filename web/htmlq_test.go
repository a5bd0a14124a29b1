package web_test

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// A tiny CSS selector engine for the handler tests: type, #id, .class,
// [attr], [attr=v], [attr^=v], [attr$=v], [attr*=v], descendant (space) and child (>)
// combinators.

type attrCond struct{ name, op, value string }

type compound struct {
	tag     string
	id      string
	classes []string
	attrs   []attrCond
}

type selector struct {
	parts []compound
	combs []byte // combs[i] joins parts[i] and parts[i+1]: ' ' or '>'
}

func parseSelector(s string) (selector, error) {
	var sel selector
	var cur compound
	empty := true
	pendingComb := byte(0)
	flush := func() {
		if !empty {
			if len(sel.parts) > 0 {
				c := pendingComb
				if c == 0 {
					c = ' '
				}
				sel.combs = append(sel.combs, c)
			}
			sel.parts = append(sel.parts, cur)
			cur, empty, pendingComb = compound{}, true, 0
		}
	}
	ident := func(i int) (string, int) {
		j := i
		for j < len(s) && (isIdent(s[j])) {
			j++
		}
		return s[i:j], j
	}
	for i := 0; i < len(s); {
		switch ch := s[i]; {
		case ch == ' ':
			flush()
			i++
		case ch == '>':
			flush()
			pendingComb = '>'
			i++
		case ch == '#':
			var v string
			v, i = ident(i + 1)
			cur.id, empty = v, false
		case ch == '.':
			var v string
			v, i = ident(i + 1)
			cur.classes, empty = append(cur.classes, v), false
		case ch == '[':
			end := strings.IndexByte(s[i:], ']')
			if end < 0 {
				return sel, fmt.Errorf("unclosed [ in %q", s)
			}
			body := s[i+1 : i+end]
			i += end + 1
			ac := attrCond{name: body}
			for _, op := range []string{"^=", "$=", "*=", "="} {
				if k, v, ok := strings.Cut(body, op); ok {
					ac = attrCond{name: k, op: op, value: strings.Trim(v, `"'`)}
					break
				}
			}
			for i := 0; i < len(ac.name); i++ {
				if !isIdent(ac.name[i]) {
					return sel, fmt.Errorf("bad attribute name %q in selector %q", ac.name, s)
				}
			}
			cur.attrs, empty = append(cur.attrs, ac), false
		case isIdent(ch) || ch == '*':
			var v string
			if ch == '*' {
				v, i = "*", i+1
			} else {
				v, i = ident(i)
			}
			cur.tag, empty = v, false
		default:
			return sel, fmt.Errorf("unsupported %q in selector %q", ch, s)
		}
	}
	flush()
	if len(sel.parts) == 0 {
		return sel, fmt.Errorf("empty selector")
	}
	return sel, nil
}

func isIdent(c byte) bool {
	return c == '-' || c == '_' || c >= '0' && c <= '9' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z'
}

func attrOf(n *html.Node, name string) (string, bool) {
	for _, a := range n.Attr {
		if a.Namespace == "" && a.Key == name {
			return a.Val, true
		}
	}
	return "", false
}

func (c compound) match(n *html.Node) bool {
	if n.Type != html.ElementNode || (c.tag != "" && c.tag != "*" && c.tag != n.Data) {
		return false
	}
	if c.id != "" {
		if v, _ := attrOf(n, "id"); v != c.id {
			return false
		}
	}
	if len(c.classes) > 0 {
		v, _ := attrOf(n, "class")
		have := strings.Fields(v)
		for _, want := range c.classes {
			found := false
			for _, h := range have {
				found = found || h == want
			}
			if !found {
				return false
			}
		}
	}
	for _, a := range c.attrs {
		v, ok := attrOf(n, a.name)
		switch {
		case !ok:
			return false
		case a.op == "=" && v != a.value, a.op == "^=" && !strings.HasPrefix(v, a.value),
			a.op == "$=" && !strings.HasSuffix(v, a.value), a.op == "*=" && !strings.Contains(v, a.value):
			return false
		}
	}
	return true
}

func (s selector) matches(n *html.Node, last int) bool {
	if !s.parts[last].match(n) {
		return false
	}
	if last == 0 {
		return true
	}
	if s.combs[last-1] == '>' {
		return n.Parent != nil && s.matches(n.Parent, last-1)
	}
	for p := n.Parent; p != nil; p = p.Parent {
		if p.Type == html.ElementNode && s.matches(p, last-1) {
			return true
		}
	}
	return false
}

// queryAll returns the elements under root matching the selector, in
// document order.
func queryAll(t testing.TB, root *html.Node, selector string) []*html.Node {
	t.Helper()
	sel, err := parseSelector(selector)
	if err != nil {
		t.Fatal(err)
	}
	var out []*html.Node
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && sel.matches(n, len(sel.parts)-1) {
			out = append(out, n)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	return out
}

// queryOne returns the first match and fails the test when there is none.
func queryOne(t testing.TB, root *html.Node, selector string) *html.Node {
	t.Helper()
	all := queryAll(t, root, selector)
	if len(all) == 0 {
		t.Fatalf("no element matches %q", selector)
	}
	return all[0]
}

// textOf returns the text content of n with whitespace collapsed.
func textOf(n *html.Node) string {
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}

func attr(n *html.Node, name string) string {
	v, _ := attrOf(n, name)
	return v
}

func renderNode(n *html.Node) string {
	var b bytes.Buffer
	_ = html.Render(&b, n)
	return b.String()
}

func TestSelector(t *testing.T) {
	doc, err := html.Parse(strings.NewReader(`<div id="a" class="x y"><p><span data-k="v1">one</span></p><span class="z">two</span></div><span>three</span>`))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		sel  string
		want []string
	}{
		{"span", []string{"one", "two", "three"}},
		{"#a span", []string{"one", "two"}},
		{"div > span", []string{"two"}},
		{"div.x.y > p > span", []string{"one"}},
		{"[data-k=v1]", []string{"one"}},
		{"span[data-k^=v]", []string{"one"}},
		{"span[data-k$=1]", []string{"one"}},
		{"span[data-k$=2]", nil},
		{"span[data-k*=1]", []string{"one"}},
		{".z", []string{"two"}},
		{"div.q span", nil},
	} {
		var got []string
		for _, n := range queryAll(t, doc, tc.sel) {
			got = append(got, textOf(n))
		}
		if strings.Join(got, "|") != strings.Join(tc.want, "|") {
			t.Errorf("%q: got %q, want %q", tc.sel, got, tc.want)
		}
	}
}
