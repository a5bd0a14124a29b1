package connector

import (
	"testing"

	"github.com/approvals-dev/approvals/internal/archtest"
)

// TestConnectorNeverWritesTheStore holds the connector to its place: it
// changes state only through approvals.Service's use cases, never by
// calling the Store itself (issue 10: one owner of every state change).
func TestConnectorNeverWritesTheStore(t *testing.T) {
	archtest.NeverWritesTheStore(t, "the connector")
}
