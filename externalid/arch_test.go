package externalid

import (
	"testing"

	"github.com/approvals-dev/approvals/internal/archtest"
)

// TestExtensionsNeverWriteTheStore holds the extensions to their place, as
// the connector's test does: they change state only through
// approvals.Service's use cases, never by calling the Store itself (issue
// 10: one owner of every state change).
func TestExtensionsNeverWriteTheStore(t *testing.T) {
	archtest.NeverWritesTheStore(t, "the extensions")
}
