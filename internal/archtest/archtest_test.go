package archtest

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// StoreCalls finds a call on a Store field in the package's source and
// passes over test files and other selectors.
func TestStoreCalls(t *testing.T) {
	dir := t.TempDir()
	write := func(name, src string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("a.go", "package a\n\nfunc f(h *h) { h.svc.Store.Update(nil) }\n")
	write("b.go", "package a\n\nfunc g(h *h) { h.svc.Approve(); h.Store() }\n")
	write("a_test.go", "package a\n\nfunc t(h *h) { h.svc.Store.Create(nil) }\n")
	found, err := StoreCalls(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(found) != 1 || !strings.HasSuffix(found[0], "a.go:3:16: .Store.Update") {
		t.Errorf("StoreCalls = %q, want the one call in a.go", found)
	}
}

// A file that does not parse is an error, not a pass.
func TestStoreCallsUnparsable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "a.go"), []byte("package a\nfunc {"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := StoreCalls(dir); err == nil {
		t.Error("StoreCalls of an unparsable file: no error")
	}
}
