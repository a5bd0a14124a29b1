package memory_test

import (
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
	"github.com/approvals-dev/approvals/store/storetest"
)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock approvals.Clock) approvals.Store {
		return memory.New(clock)
	})
}
