package export_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
	"github.com/approvals-dev/approvals/store/memory"
)

func exportFixture(t *testing.T) approvals.Store {
	t.Helper()
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	clock := approvals.ClockFunc(func() time.Time { now = now.Add(time.Minute); return now })
	st := memory.New(clock)
	svc := &approvals.Service{Store: st, Clock: clock, Policy: approvals.Policy{AutoDenyDomains: []string{"spam.test"}}}
	ctx := context.Background()
	rev := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "=HYPERLINK(\"x\")"}
	a, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: "a@example.com", DisplayName: "-2+3", Identity: &approvals.Identity{Issuer: "google", IssuerAssignedID: "1"}})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := svc.Approve(ctx, a.ID, rev, "@SUM(A1)"); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: "b@spam.test", DisplayName: "B, \"quoted\""}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.RequestApproval(ctx, approvals.SignUp{Email: "pending@example.com"}); err != nil {
		t.Fatal(err)
	}
	return st
}

func TestExportCSV(t *testing.T) {
	st := exportFixture(t)
	var buf bytes.Buffer
	n, err := export.Decisions(context.Background(), &buf, st, approvals.DecisionQuery{}, export.CSV, nil)
	if err != nil || n != 2 {
		t.Fatalf("n=%d err=%v", n, err)
	}
	rows, err := csv.NewReader(&buf).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(rows[0], ","); got != "id,email,display_name,issuer,status,automatic,decided_by,decided_at,reason,created_at,provisioning_state,user_id,decided_by_id,source" {
		t.Fatalf("header %q", got)
	}
	if len(rows) != 3 {
		t.Fatalf("want header + 2 rows, got %d", len(rows))
	}
	approved := rows[1]
	for i, want := range map[int]string{1: "a@example.com", 2: "'-2+3", 3: "google.com", 4: "approved", 5: "false", 6: "'=HYPERLINK(\"x\")", 8: "'@SUM(A1)", 10: "in_progress", 12: "oid-1", 13: "signup"} {
		if approved[i] != want {
			t.Errorf("column %s = %q, want %q", export.Columns()[i], approved[i], want)
		}
	}
	denied := rows[2]
	if denied[2] != "B, \"quoted\"" || denied[4] != "denied" || denied[5] != "true" {
		t.Errorf("denied row %q", denied)
	}
}

func TestExportJSONAndNDJSON(t *testing.T) {
	st := exportFixture(t)
	var buf bytes.Buffer
	if _, err := export.Decisions(context.Background(), &buf, st, approvals.DecisionQuery{Status: approvals.StatusDenied}, export.JSON, nil); err != nil {
		t.Fatal(err)
	}
	var recs []approvals.DecisionRecord
	if err := json.Unmarshal(buf.Bytes(), &recs); err != nil {
		t.Fatalf("%v: %s", err, buf.Bytes())
	}
	if len(recs) != 1 || recs[0].Email != "b@spam.test" || !recs[0].Automatic {
		t.Fatalf("json %+v", recs)
	}
	buf.Reset()
	var seen []int
	n, err := export.Decisions(context.Background(), &buf, st, approvals.DecisionQuery{}, export.NDJSON, func(n int) { seen = append(seen, n) })
	if err != nil || n != 2 || len(seen) != 2 {
		t.Fatalf("n=%d err=%v progress=%v", n, err, seen)
	}
	sc := bufio.NewScanner(&buf)
	lines := 0
	for sc.Scan() {
		var m map[string]any
		if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
			t.Fatalf("line %d: %v", lines, err)
		}
		if len(m) != len(export.Columns()) {
			t.Errorf("line %d has %d keys", lines, len(m))
		}
		lines++
	}
	if lines != 2 {
		t.Fatalf("%d lines", lines)
	}
	if _, err := export.ParseFormat("xml"); approvals.Code(err) != approvals.EInvalid {
		t.Fatalf("xml format: %v", err)
	}
}

// Control and text-direction characters stored before the service refused
// them stay out of every export: the CSV has U+FFFD in their place (line
// feeds kept inside the quoted cell), the JSON formats escape them, and
// decoding the JSON gives the stored text back.
func TestExportKeepsControlCharactersOut(t *testing.T) {
	name := "Ann\u202egnp.exe\x1b[2J\u0085\u2066x"
	src := fixedSource{{ID: "r1", Email: "a@example.com", DisplayName: name, Status: approvals.StatusDenied,
		Reason: "line one\r\nline two\rover", DecidedAt: time.Unix(0, 0), CreatedAt: time.Unix(0, 0)}}
	var buf bytes.Buffer
	if _, err := export.Decisions(context.Background(), &buf, src, approvals.DecisionQuery{}, export.CSV, nil); err != nil {
		t.Fatal(err)
	}
	rows, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rows[1][2], "Ann\uFFFDgnp.exe\uFFFD[2J\uFFFD\uFFFDx"; got != want {
		t.Errorf("CSV display_name %q; want %q", got, want)
	}
	if got, want := rows[1][8], "line one\nline two\uFFFDover"; got != want {
		t.Errorf("CSV reason %q; want %q", got, want)
	}
	for _, f := range []export.Format{export.JSON, export.NDJSON} {
		buf.Reset()
		if _, err := export.Decisions(context.Background(), &buf, src, approvals.DecisionQuery{}, f, nil); err != nil {
			t.Fatal(err)
		}
		for _, r := range buf.String() {
			if approvals.UnsafeRune(r) && r != '\n' {
				t.Errorf("%s export holds U+%04X raw: %q", f, r, buf.String())
			}
		}
		var rec approvals.DecisionRecord
		dec := json.NewDecoder(bytes.NewReader(bytes.TrimPrefix(buf.Bytes(), []byte("["))))
		if err := dec.Decode(&rec); err != nil || rec.DisplayName != name {
			t.Errorf("%s export decodes to %q, %v; want %q", f, rec.DisplayName, err, name)
		}
	}
}
