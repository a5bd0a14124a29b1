// Package archtest holds the architecture checks the adapters' tests run
// on their own source: rules about what a package may call that the
// compiler cannot enforce.
package archtest

import (
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// StoreCalls returns, one line each, the places in the non-test Go files of
// dir that call a method on a field named Store (x.Store.Method), as
// "file:line:col: .Store.Method". An adapter that changes state only
// through approvals.Service's use cases has none (issue 10: one owner of
// every state change).
func StoreCalls(dir string) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var found []string
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			return nil, err
		}
		ast.Inspect(f, func(n ast.Node) bool {
			// x.Store.Method: a call on the Store.
			if sel, ok := n.(*ast.SelectorExpr); ok {
				if inner, ok := sel.X.(*ast.SelectorExpr); ok && inner.Sel.Name == "Store" {
					found = append(found, fmt.Sprintf("%s: .Store.%s", fset.Position(sel.Pos()), sel.Sel.Name))
				}
			}
			return true
		})
	}
	return found, nil
}

// NeverWritesTheStore fails t for every place in the package in the
// current directory that uses the Store directly; who names the package
// in the messages ("the connector").
func NeverWritesTheStore(t testing.TB, who string) {
	t.Helper()
	found, err := StoreCalls(".")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range found {
		t.Errorf("%s: %s uses the Store directly; go through approvals.Service", f, who)
	}
}
