package approvals_test

import (
	"context"
	"errors"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

func TestRequestApprovalRefusesControlCharacters(t *testing.T) {
	tests := []struct {
		name  string
		su    approvals.SignUp
		field string
	}{
		{"DisplayNameBidi", approvals.SignUp{Email: "a@example.com", DisplayName: "Ann\u202egnp.exe"}, "displayName"},
		{"DisplayNameNUL", approvals.SignUp{Email: "a@example.com", DisplayName: "A\x00"}, "displayName"},
		{"ClaimNewline", approvals.SignUp{Email: "a@example.com", Claims: map[string]any{"city": "x\ny", "country": "ok"}}, "city"},
		{"FirstClaimByName", approvals.SignUp{Email: "a@example.com", Claims: map[string]any{"zzz": "\a", "aaa": "\x1b"}}, "aaa"},
		{"ClaimName", approvals.SignUp{Email: "a@example.com", Claims: map[string]any{"ci\u202ety": "x"}}, "ci\ufffdty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st := memory.New(nil)
			s := &approvals.Service{Store: st}
			_, _, err := s.RequestApproval(context.Background(), tt.su)
			var e *approvals.Error
			if !errors.As(err, &e) || e.Code != approvals.EInvalid || e.Field != tt.field {
				t.Fatalf("RequestApproval = %v; want invalid naming %q", err, tt.field)
			}
			if n, _ := st.Count(context.Background()); n[approvals.StatusPending] != 0 {
				t.Errorf("%d requests created", n[approvals.StatusPending])
			}
		})
	}
}
