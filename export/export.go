// Package export encodes decisions as the files administrators download:
// CSV (RFC 4180, with spreadsheet formulas defused), a JSON array, or
// NDJSON, one row per decided request, in constant memory. The admin API,
// the reviewer UI and `approvals export` all write through it, so the
// three give the same bytes.
package export

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
)

// Format is the file format of a decision export.
type Format string

// The export formats.
const (
	CSV    Format = "csv"
	JSON   Format = "json"
	NDJSON Format = "ndjson"
)

// ParseFormat returns the format named s; empty means CSV. An unknown name
// is an approvals.EInvalid error that says which names exist.
func ParseFormat(s string) (Format, error) {
	switch f := Format(s); f {
	case "":
		return CSV, nil
	case CSV, JSON, NDJSON:
		return f, nil
	}
	return "", approvals.Errorf(approvals.EInvalid, "unknown export format %q; use csv, json or ndjson", s)
}

// ContentType returns the MIME type of the format.
func (f Format) ContentType() string {
	switch f {
	case JSON:
		return "application/json"
	case NDJSON:
		return "application/x-ndjson"
	}
	return "text/csv; charset=utf-8"
}

// Columns returns the export's columns, in order: the CSV header and the
// keys of the JSON objects. Columns are only ever added at the end.
func Columns() []string {
	return []string{
		"id", "email", "display_name", "issuer", "status", "automatic", "decided_by",
		"decided_at", "reason", "created_at", "provisioning_state", "user_id", "decided_by_id",
		"source",
	}
}

// cells is rec as CSV cells, in the order of Columns.
func cells(rec approvals.DecisionRecord) []string {
	return []string{
		rec.ID, rec.Email, rec.DisplayName, rec.Issuer, string(rec.Status), strconv.FormatBool(rec.Automatic),
		rec.DecidedBy, rec.DecidedAt.UTC().Format(time.RFC3339), rec.Reason,
		rec.CreatedAt.UTC().Format(time.RFC3339), string(rec.ProvisioningState), rec.UserID, rec.DecidedByID,
		string(rec.Source),
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

// CleanCell keeps control and text-direction characters
// (approvals.UnsafeRune) out of a CSV cell, for data stored before the
// service refused them: each becomes U+FFFD, except line feeds (a
// reviewer's reason may have several lines; a quoted cell holds them), and
// a CR LF pair becomes a line feed.
func CleanCell(cell string) string {
	if strings.Contains(cell, "\r\n") {
		cell = strings.ReplaceAll(cell, "\r\n", "\n")
	}
	return approvals.ReplaceUnsafe(cell, func(r rune) bool { return r == '\n' })
}

// escapeUnsafe writes JSON with the control and text-direction
// characters that encoding/json leaves raw (C1 controls, bidirectional
// controls) escaped as \uXXXX, so that an export printed to a terminal
// cannot rewrite what it shows. Each Write is a whole encoded value (one
// json.Encoder.Encode), so a character is never split between two. Such
// characters only occur inside JSON strings, where the escape means the
// same character.
type escapeUnsafe struct{ w io.Writer }

func (e escapeUnsafe) Write(p []byte) (int, error) {
	if !hasUnsafe(p) {
		return e.w.Write(p)
	}
	out := make([]byte, 0, len(p)+32)
	for i := 0; i < len(p); {
		r, size := utf8.DecodeRune(p[i:])
		if r >= utf8.RuneSelf && approvals.UnsafeRune(r) {
			out = fmt.Appendf(out, "\\u%04x", r)
		} else {
			out = append(out, p[i:i+size]...)
		}
		i += size
	}
	if _, err := e.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}

// hasUnsafe reports whether p may hold a non-ASCII UnsafeRune: their UTF-8
// forms start with 0xC2 (C1), 0xD8 (U+061C) or 0xE2 (U+200E to U+2069).
func hasUnsafe(p []byte) bool {
	for _, b := range p {
		if b == 0xc2 || b == 0xd8 || b == 0xe2 {
			return true
		}
	}
	return false
}

// Source is where the decisions come from: the store's export read model
// (approvals.Store has it).
type Source interface {
	// Decisions calls fn with the record of every decided request matching
	// q, in decision order.
	Decisions(ctx context.Context, q approvals.DecisionQuery, fn func(approvals.DecisionRecord) error) error
}

// Decisions streams every decision of src matching q to w in format f and
// returns how many rows it wrote. It holds one row at a time, so memory
// stays constant whatever the number of decisions. progress, when not nil,
// is called after every row with the running count.
func Decisions(ctx context.Context, w io.Writer, src Source, q approvals.DecisionQuery, f Format, progress func(n int)) (n int, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("export decisions: %w", err)
		}
	}()
	bw := bufio.NewWriterSize(w, 64<<10)
	var write func(approvals.DecisionRecord) error
	finish := func() error { return nil }
	switch f {
	case CSV, "":
		cw := csv.NewWriter(bw)
		cw.UseCRLF = true // RFC 4180
		if err := cw.Write(Columns()); err != nil {
			return 0, err
		}
		write = func(rec approvals.DecisionRecord) error {
			row := cells(rec)
			for i := range row {
				row[i] = NeutralizeFormula(CleanCell(row[i]))
			}
			return cw.Write(row)
		}
		finish = func() error { cw.Flush(); return cw.Error() }
	case NDJSON:
		enc := json.NewEncoder(escapeUnsafe{bw})
		enc.SetEscapeHTML(false)
		write = func(rec approvals.DecisionRecord) error { return enc.Encode(rec) }
	case JSON:
		enc := json.NewEncoder(escapeUnsafe{bw})
		enc.SetEscapeHTML(false)
		if _, err := bw.WriteString("["); err != nil {
			return 0, err
		}
		write = func(rec approvals.DecisionRecord) error {
			if n > 0 {
				if _, err := bw.WriteString(","); err != nil {
					return err
				}
			}
			return enc.Encode(rec)
		}
		finish = func() error { _, err := bw.WriteString("]\n"); return err }
	default:
		return 0, approvals.Errorf(approvals.EInvalid, "unknown export format %q; use csv, json or ndjson", f)
	}
	err = src.Decisions(ctx, q, func(rec approvals.DecisionRecord) error {
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
