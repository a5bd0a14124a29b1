package export_test

import (
	"bytes"
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// fixedSource yields the same records every time, so that the encoded
// bytes can be compared with the files in testdata/.
type fixedSource []approvals.DecisionRecord

func (s fixedSource) Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error {
	for _, rec := range s {
		if q.Status != "" && rec.Status != q.Status {
			continue
		}
		if err := fn(rec); err != nil {
			return err
		}
	}
	return nil
}

func goldenRecords() fixedSource {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	return fixedSource{
		{ID: "18ea03df84baf80008f2146c", Email: "a@example.com", DisplayName: "-2+3", Issuer: "google.com",
			Status: approvals.StatusApproved, DecidedBy: `=HYPERLINK("x")`, DecidedByID: "7d3e1c52-0f8b-4a39-b1d2-5e6f7a8b9c0d", DecidedAt: at.Add(2 * time.Minute), Reason: "@SUM(A1)",
			CreatedAt: at.Add(time.Minute), ProvisioningState: approvals.ProvisioningSucceeded, UserID: "0b9c4c5e-52c5-4f0b-9a57-2f3e8c1d2b10"},
		{ID: "18ea04096d9100006f205584", Email: "b@spam.test", DisplayName: "B, \"quoted\"\nline <&>",
			Status: approvals.StatusDenied, Automatic: true, DecidedBy: "policy:auto-deny-domain:spam.test", DecidedByID: "auto-deny-domain:spam.test",
			DecidedAt: at.Add(4 * time.Minute).In(time.FixedZone("CET", 3600)), Reason: "matched auto-deny-domain:spam.test",
			CreatedAt: at.Add(4 * time.Minute), ProvisioningState: approvals.ProvisioningNotStarted},
		{ID: "18ea05000000000000000001", Email: "zoë@example.org", DisplayName: "Zoë\tTab", Issuer: "mail",
			Status: approvals.StatusApproved, DecidedBy: "ops-script", DecidedByID: "=ops-script", DecidedAt: at.Add(6 * time.Minute), Reason: "",
			CreatedAt: at.Add(5 * time.Minute), ProvisioningState: approvals.ProvisioningFailed},
	}
}

// The encodings are fixed: scripts parse them. A change shows as a diff
// of testdata/ (go test ./export -update rewrites the files).
func TestGoldenFiles(t *testing.T) {
	for _, f := range []export.Format{export.CSV, export.JSON, export.NDJSON} {
		t.Run(string(f), func(t *testing.T) {
			var buf bytes.Buffer
			n, err := export.Decisions(context.Background(), &buf, goldenRecords(), approvals.DecisionQuery{}, f, nil)
			if err != nil || n != 3 {
				t.Fatalf("n=%d err=%v", n, err)
			}
			path := filepath.Join("testdata", "decisions."+string(f))
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (create it with -update)", err)
			}
			if !bytes.Equal(buf.Bytes(), want) {
				t.Errorf("%s differs from %s:\n%s", f, path, buf.Bytes())
			}
		})
	}
}
