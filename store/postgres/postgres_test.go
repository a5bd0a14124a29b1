package postgres_test

import (
	"context"
	"os"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/store/postgres"
	"github.com/approvals-dev/approvals/store/storetest"
)

func TestMain(m *testing.M) { os.Exit(pgtest.Main(m)) }

// open opens a store on a new database of its own.
func open(t *testing.T, clock approvals.Clock) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), pgtest.NewDatabase(t), postgres.Options{Clock: clock})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T, clock approvals.Clock) approvals.Store {
		return open(t, clock)
	})
}
