package approvals

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// ExportFormat is the file format of a decision export.
type ExportFormat string

// The export formats.
const (
	FormatCSV    ExportFormat = "csv"
	FormatJSON   ExportFormat = "json"
	FormatNDJSON ExportFormat = "ndjson"
)

// ParseExportFormat returns the format named s; empty means CSV.
func ParseExportFormat(s string) (ExportFormat, error) {
	switch f := ExportFormat(s); f {
	case "":
		return FormatCSV, nil
	case FormatCSV, FormatJSON, FormatNDJSON:
		return f, nil
	}
	return "", Errorf(EInvalid, "unknown export format %q; use csv, json or ndjson", s)
}

// ContentType returns the MIME type of the format.
func (f ExportFormat) ContentType() string {
	switch f {
	case FormatJSON:
		return "application/json"
	case FormatNDJSON:
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

// ExportColumns are the decision export's columns, in order. They are the
// CSV header and the keys of the JSON objects.
var ExportColumns = []string{
	"id", "email", "display_name", "issuer", "status", "automatic", "decided_by",
	"decided_at", "reason", "created_at", "provisioning_state", "user_id",
}

// DecisionRecord is one row of a decision export.
type DecisionRecord struct {
	ID                string            `json:"id"`
	Email             string            `json:"email"`
	DisplayName       string            `json:"display_name"`
	Issuer            string            `json:"issuer"`
	Status            Status            `json:"status"`
	Automatic         bool              `json:"automatic"`
	DecidedBy         string            `json:"decided_by"`
	DecidedAt         time.Time         `json:"decided_at"`
	Reason            string            `json:"reason"`
	CreatedAt         time.Time         `json:"created_at"`
	ProvisioningState ProvisioningState `json:"provisioning_state"`
	UserID            string            `json:"user_id"`
}

// NewDecisionRecord flattens a decided request into an export row.
func NewDecisionRecord(r *Request) DecisionRecord {
	rec := DecisionRecord{
		ID: r.ID, Email: r.Email, DisplayName: r.DisplayName, Status: r.Status,
		CreatedAt: r.CreatedAt, ProvisioningState: r.Provisioning.State, UserID: r.Provisioning.UserID,
	}
	if r.Identity != nil {
		rec.Issuer = r.Identity.Issuer
	}
	if d := r.Decision; d != nil {
		rec.Automatic, rec.DecidedBy, rec.DecidedAt, rec.Reason = d.Automatic, d.By, d.At, d.Reason
	}
	return rec
}

func (rec DecisionRecord) cells() []string {
	return []string{
		rec.ID, rec.Email, rec.DisplayName, rec.Issuer, string(rec.Status), strconv.FormatBool(rec.Automatic),
		rec.DecidedBy, rec.DecidedAt.UTC().Format(time.RFC3339), rec.Reason,
		rec.CreatedAt.UTC().Format(time.RFC3339), string(rec.ProvisioningState), rec.UserID,
	}
}

// NeutralizeFormula defuses a CSV cell that a spreadsheet would run as a
// formula (one starting with = + - @, a tab or a carriage return) by
// prefixing a single quote, as OWASP recommends.
func NeutralizeFormula(cell string) string {
	if cell == "" {
		return cell
	}
	switch cell[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + cell
	}
	return cell
}

// ExportDecisions streams every decision matching q to w in format f and
// returns how many rows it wrote. It holds one row at a time, so memory
// stays constant whatever the number of decisions. progress, when not nil,
// is called after every row with the running count.
func ExportDecisions(ctx context.Context, w io.Writer, s Store, q DecisionQuery, f ExportFormat, progress func(n int)) (n int, err error) {
	defer wrap(&err, "ExportDecisions")
	bw := bufio.NewWriterSize(w, 64<<10)
	var write func(DecisionRecord) error
	finish := func() error { return nil }
	switch f {
	case FormatCSV, "":
		cw := csv.NewWriter(bw)
		cw.UseCRLF = true // RFC 4180
		if err := cw.Write(ExportColumns); err != nil {
			return 0, err
		}
		write = func(rec DecisionRecord) error {
			cells := rec.cells()
			for i := range cells {
				cells[i] = NeutralizeFormula(cells[i])
			}
			return cw.Write(cells)
		}
		finish = func() error { cw.Flush(); return cw.Error() }
	case FormatNDJSON:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		write = func(rec DecisionRecord) error { return enc.Encode(rec) }
	case FormatJSON:
		enc := json.NewEncoder(bw)
		enc.SetEscapeHTML(false)
		if _, err := bw.WriteString("["); err != nil {
			return 0, err
		}
		write = func(rec DecisionRecord) error {
			if n > 0 {
				if _, err := bw.WriteString(","); err != nil {
					return err
				}
			}
			return enc.Encode(rec)
		}
		finish = func() error { _, err := bw.WriteString("]\n"); return err }
	default:
		return 0, Errorf(EInvalid, "unknown export format %q; use csv, json or ndjson", f)
	}
	err = s.Decisions(ctx, q, func(rec DecisionRecord) error {
		if err := write(rec); err != nil {
			return err
		}
		n++
		if progress != nil {
			progress(n)
		}
		return nil
	})
	if err != nil {
		return n, err
	}
	if err := finish(); err != nil {
		return n, err
	}
	return n, bw.Flush()
}
