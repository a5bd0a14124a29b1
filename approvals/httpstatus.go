package approvals

import "net/http"

// httpStatusOf is the one table from error codes to HTTP statuses; the
// admin API and the reviewer UI both answer with it.
var httpStatusOf = map[ErrorCode]int{
	EInvalid:     http.StatusBadRequest,
	ENotFound:    http.StatusNotFound,
	EConflict:    http.StatusConflict,
	EForbidden:   http.StatusForbidden,
	EUnavailable: http.StatusServiceUnavailable,
	EInternal:    http.StatusInternalServerError,
}

// HTTPStatus returns the HTTP status that answers an error with code c:
// 400 invalid, 404 not found, 409 conflict, 403 forbidden, 503 unavailable,
// and 500 for internal errors and any code not listed.
func (c ErrorCode) HTTPStatus() int {
	if st, ok := httpStatusOf[c]; ok {
		return st
	}
	return http.StatusInternalServerError
}
