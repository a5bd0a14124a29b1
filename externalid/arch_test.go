package externalid

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// TestExtensionsNeverWriteTheStore holds the extensions to their place, as
// the connector's test does: they change state only through
// approvals.Service's use cases, never by calling the Store itself (issue
// 10: one owner of every state change).
func TestExtensionsNeverWriteTheStore(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		ast.Inspect(f, func(n ast.Node) bool {
			// x.Store.Method: a call on the Store.
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "Store" {
					t.Errorf("%s: the extensions use the Store directly (.Store.%s); go through approvals.Service", fset.Position(sel.Pos()), sel.Sel.Name)
				}
			}
			return true
		})
	}
}
