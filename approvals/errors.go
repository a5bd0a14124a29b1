package approvals

import (
	"errors"
	"fmt"
)

// ErrorCode classifies an error so that each edge (HTTP API, connector,
// command line) can answer it the right way.
type ErrorCode string

// The error codes. Their values are also the "code" field of the admin API's
// JSON errors.
const (
	ENotFound    ErrorCode = "not_found"
	EInvalid     ErrorCode = "invalid"
	EConflict    ErrorCode = "conflict"
	EForbidden   ErrorCode = "forbidden"
	EUnavailable ErrorCode = "unavailable"
	EInternal    ErrorCode = "internal"
)

// Error is a domain error: a code for machines, a message for people.
type Error struct {
	Code    ErrorCode
	Message string
	// Field names the input field an EInvalid error is about, as the admin
	// API's JSON names it; empty when the error is not about one field.
	Field string
}

// Error implements error.
func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Errorf returns an *Error with the given code and formatted message.
func Errorf(code ErrorCode, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Code returns the code of the first *Error in err's chain, EInternal for
// any other non-nil error, and "" for nil.
func Code(err error) ErrorCode {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return EInternal
}

// Message returns the message of the first *Error in err's chain, or a
// generic text that reveals no internal detail.
func Message(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Message
	}
	return "internal error"
}

// ErrNotFound is returned by stores when a request does not exist.
var ErrNotFound = &Error{Code: ENotFound, Message: "request not found"}

// wrap adds the operation to err, keeping the chain for errors.As.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *err)
	}
}
