package approvals_test

import (
	"net/http"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

func TestErrorCodeHTTPStatus(t *testing.T) {
	for code, want := range map[approvals.ErrorCode]int{
		approvals.EInvalid:     http.StatusBadRequest,
		approvals.ENotFound:    http.StatusNotFound,
		approvals.EConflict:    http.StatusConflict,
		approvals.EForbidden:   http.StatusForbidden,
		approvals.EUnavailable: http.StatusServiceUnavailable,
		approvals.EInternal:    http.StatusInternalServerError,
		"made_up":              http.StatusInternalServerError,
	} {
		if got := code.HTTPStatus(); got != want {
			t.Errorf("%q.HTTPStatus() = %d, want %d", code, got, want)
		}
	}
}
