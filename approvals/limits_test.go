package approvals_test

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
)

func TestReasonLimitCountsCharactersNotBytes(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		ok     bool
	}{
		{"empty", "", true},
		{"600 é (1,200 bytes)", strings.Repeat("é", 600), true},
		{"the limit in 3-byte characters", strings.Repeat("€", approvals.MaxReasonLength), true},
		{"the limit in emoji", strings.Repeat("🙂", approvals.MaxReasonLength), true},
		{"one character over", strings.Repeat("a", approvals.MaxReasonLength+1), false},
		{"invalid UTF-8", "ok \xff\xfe", false},
		{"a cut character", "caf\xc3", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := approvals.CheckReason(tt.reason)
			if (err == nil) != tt.ok {
				t.Fatalf("CheckReason = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && approvals.Code(err) != approvals.EInvalid {
				t.Errorf("code %s, want invalid", approvals.Code(err))
			}
		})
	}
}

func TestDecisionsRefuseReasonsOverTheLimit(t *testing.T) {
	now := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid", Name: "Rita", Admin: true}
	long := strings.Repeat("é", approvals.MaxReasonLength+1)
	pending := func() *approvals.Request { return &approvals.Request{ID: "r1", Status: approvals.StatusPending} }

	if _, err := pending().Approve(reviewer, long, now, time.Hour); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("Approve with %d characters: %v, want invalid", approvals.MaxReasonLength+1, err)
	}
	if _, err := pending().Deny(reviewer, long, now); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("Deny with %d characters: %v, want invalid", approvals.MaxReasonLength+1, err)
	}
	if _, err := pending().Deny(reviewer, "no \xff", now); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("Deny with invalid UTF-8: %v, want invalid", err)
	}
	denied := pending()
	if _, err := denied.Deny(reviewer, strings.Repeat("é", approvals.MaxReasonLength), now); err != nil {
		t.Fatalf("Deny with %d é: %v", approvals.MaxReasonLength, err)
	}
	if _, err := denied.Reopen(reviewer, long, now); approvals.Code(err) != approvals.EInvalid {
		t.Errorf("Reopen with %d characters: %v, want invalid", approvals.MaxReasonLength+1, err)
	}
}

func TestTruncateNeverCutsACharacter(t *testing.T) {
	tests := []struct {
		in   string
		n    int
		want string
	}{
		{"short", 10, "short"},
		{"ééééé", 5, "ééééé"},
		{"éééééé", 5, "ééééé…"},
		{"🙂🙂🙂", 2, "🙂🙂…"},
		{"ab\xffcd", 10, "ab\uFFFDcd"},
		{"abc", 0, "…"},
	}
	for _, tt := range tests {
		got := approvals.Truncate(tt.in, tt.n)
		if got != tt.want || !utf8.ValidString(got) {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tt.in, tt.n, got, tt.want)
		}
	}
}
