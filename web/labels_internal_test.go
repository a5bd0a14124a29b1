package web

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

func tickLabels(ch *chart) []string {
	var out []string
	for _, l := range ch.Labels {
		if l.Anchor == "end" { // the value axis
			out = append(out, l.Text)
		}
	}
	return out
}

func TestDurationAxisUnitsFollowTheData(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		name    string
		seconds []float64
		ticks   []string
		point   string // the title of the first point
	}{
		{"a one-minute median", []float64{60, nan, 45}, []string{"0 s", "20 s", "40 s", "60 s"}, "a: 60 s"},
		{"a few seconds", []float64{1.5, nan, 0.5}, []string{"0 s", "0.5 s", "1 s", "1.5 s"}, "a: 1.5 s"},
		{"minutes", []float64{30 * 60, nan, 90 * 60}, []string{"0 min", "50 min", "100 min"}, "a: 30 min"},
		{"hours", []float64{5 * 3600, nan, 26 * 3600}, []string{"0 h", "10 h", "20 h", "30 h"}, "a: 5 h"},
		{"days", []float64{3 * 86400, nan, 9 * 86400}, []string{"0 d", "5 d", "10 d"}, "a: 3 d"},
		{"no decisions", []float64{nan, nan, nan}, []string{"0 s", "0.5 s", "1 s"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ch := durationChart("m", "Median", "D", []string{"a", "b", "c"}, series{Name: "Median", Class: "s-median", Values: tt.seconds}, 1)
			if got := tickLabels(ch); !slices.Equal(got, tt.ticks) {
				t.Errorf("ticks %q, want %q", got, tt.ticks)
			}
			if tt.point != "" && (len(ch.Points) == 0 || ch.Points[0].Title != tt.point) {
				t.Errorf("points %+v, want the first titled %q", ch.Points, tt.point)
			}
			if labels := strings.Join(tickLabels(ch), " "); strings.Contains(labels, "0.0") {
				t.Errorf("ticks %q", labels)
			}
		})
	}
}

func TestPluralNouns(t *testing.T) {
	for _, tt := range []struct {
		n          int
		word, want string
	}{
		{0, "match", "0 matches"}, {1, "match", "1 match"}, {2, "match", "2 matches"},
		{3, "request", "3 requests"}, {1, "request", "1 request"}, {1200, "box", "1,200 boxes"},
		{2, "directory user", "2 directory users"}, {2, "address", "2 addresses"},
	} {
		if got := plural(tt.n, tt.word); got != tt.want {
			t.Errorf("plural(%d, %q) = %q, want %q", tt.n, tt.word, got, tt.want)
		}
	}
}

func TestSentenceCase(t *testing.T) {
	for in, want := range map[string]string{
		"request not found": "Request not found", "élan": "Élan", "Already": "Already", "": "", "42 left": "42 left",
	} {
		if got := sentence(in); got != want {
			t.Errorf("sentence(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRequestPageNavigationFollowsWhereItCameFrom(t *testing.T) {
	for back, want := range map[string]string{
		"/": "queue", "/?status=denied": "queue", "/invite": "invite", "/audit?since=2026-01-01&request=x": "audit",
		"/dashboard": "dashboard", "/export": "export", "/invitee": "queue",
	} {
		if got := navOf(back); got != want {
			t.Errorf("navOf(%q) = %q, want %q", back, got, want)
		}
		if backLabels[navOf(back)] == "" {
			t.Errorf("no breadcrumb for %q", back)
		}
	}
}

// eventTypeConstants finds every constant of type approvals.EventType
// declared anywhere in the module, by reading the source.
func eventTypeConstants(t *testing.T) map[string]string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("the module root: %v", err)
	}
	found := map[string]string{}
	fset := token.NewFileSet()
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			switch d.Name() {
			case "testdata", "node_modules", ".git", "artifacts":
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			gd, ok := decl.(*ast.GenDecl)
			if !ok || gd.Tok != token.CONST {
				continue
			}
			for _, spec := range gd.Specs {
				vs := spec.(*ast.ValueSpec)
				if !isEventType(vs.Type) {
					continue
				}
				for i, name := range vs.Names {
					lit, ok := vs.Values[i].(*ast.BasicLit)
					if !ok || lit.Kind != token.STRING {
						t.Errorf("%s: %s is not a string literal", fset.Position(name.Pos()), name.Name)
						continue
					}
					v, _ := strconv.Unquote(lit.Value)
					rel, _ := filepath.Rel(root, path)
					found[v] = rel + ": " + name.Name
				}
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return found
}

func isEventType(e ast.Expr) bool {
	switch x := e.(type) {
	case *ast.Ident:
		return x.Name == "EventType"
	case *ast.SelectorExpr:
		return x.Sel.Name == "EventType"
	}
	return false
}

func TestEveryEventTypeHasALabel(t *testing.T) {
	consts := eventTypeConstants(t)
	for _, must := range []approvals.EventType{approvals.EventReceived, approvals.EventBlockedAtCheck} {
		if _, ok := consts[string(must)]; !ok {
			t.Fatalf("the source scan missed %s: found %v", must, consts)
		}
	}
	for v, where := range consts {
		l, ok := eventLabels[approvals.EventType(v)]
		if !ok || l == "" || strings.ContainsAny(l, "._") {
			t.Errorf("event type %q (%s) has no label for the audit trail and the timeline: add it to eventLabels", v, where)
		}
	}
	for v := range eventLabels {
		if _, ok := consts[string(v)]; !ok {
			t.Errorf("eventLabels names %q, which no EventType constant declares", v)
		}
	}
}
