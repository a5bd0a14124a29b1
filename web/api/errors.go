package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"runtime/debug"
	"strings"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// The error codes of the API that are not approvals.ErrorCode values.
const (
	codeUnauthorized     = "unauthorized"
	codeMethodNotAllowed = "method_not_allowed"
	codeTooLarge         = "too_large"
	codeNotImplemented   = "not_implemented"
	// codeGraphError: Microsoft Graph refused a call of the invite flow.
	codeGraphError = "graph_error"
	// codeIncomplete: the invitation was made but a later step failed.
	codeIncomplete = "provisioning_incomplete"
)

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// apiError is an error answer decided by a handler. cause, when set, is
// logged and never shown.
type apiError struct {
	status  int
	code    string
	message string
	cause   error
}

func (e *apiError) Error() string {
	if e.cause != nil {
		return e.code + ": " + e.message + ": " + e.cause.Error()
	}
	return e.code + ": " + e.message
}

func (e *apiError) Unwrap() error { return e.cause }

func invalid(format string, args ...any) *apiError {
	return &apiError{status: http.StatusBadRequest, code: string(approvals.EInvalid), message: fmt.Sprintf(format, args...)}
}

// handleError is Echo's error handler: it turns whatever a handler or the
// router returned into a JSON error, and logs what the caller must not
// see.
func (s *server) handleError(err error, c echo.Context) {
	req := c.Request()
	if c.Response().Committed {
		// A streamed answer failed after its first byte; the handler
		// already logged and aborted it.
		return
	}
	status, code, msg := http.StatusInternalServerError, string(approvals.EInternal), "internal error"
	var ae *apiError
	var he *echo.HTTPError
	switch {
	case errors.As(err, &ae):
		status, code, msg = ae.status, ae.code, ae.message
		if ae.cause != nil && status >= 500 {
			s.log.Error("api: request failed", "method", req.Method, "path", req.URL.Path, "error", err)
		}
	case errors.As(err, &he):
		status = he.Code
		switch he.Code {
		case http.StatusNotFound:
			code, msg = string(approvals.ENotFound), fmt.Sprintf("no such route: %s %s; see %s%s", req.Method, req.URL.Path, Prefix, openAPIPath)
		case http.StatusMethodNotAllowed:
			code, msg = codeMethodNotAllowed, fmt.Sprintf("%s is not allowed on %s; allowed: %s", req.Method, req.URL.Path, c.Response().Header().Get(echo.HeaderAllow))
		default:
			code, msg = strings.ReplaceAll(strings.ToLower(http.StatusText(he.Code)), " ", "_"), http.StatusText(he.Code)
			if he.Code >= 500 {
				s.log.Error("api: request failed", "method", req.Method, "path", req.URL.Path, "error", err)
			}
		}
	case errors.Is(err, context.Canceled) && req.Context().Err() != nil:
		// The caller went away; nobody reads the answer.
		s.log.Debug("api: caller went away", "method", req.Method, "path", req.URL.Path)
		return
	default:
		ec := approvals.Code(err)
		status, code = ec.HTTPStatus(), string(ec)
		if ec == approvals.EInternal {
			s.log.Error("api: request failed", "method", req.Method, "path", req.URL.Path, "error", err)
		} else {
			msg = approvals.Message(err)
		}
	}
	if status == http.StatusUnauthorized && c.Response().Header().Get("WWW-Authenticate") == "" {
		c.Response().Header().Set("WWW-Authenticate", `Bearer realm="approvals"`)
	}
	writeJSON(c, status, errorBody{Error: errorDetail{Code: code, Message: msg}})
}

// writeJSON sends v with the given status.
func writeJSON(c echo.Context, status int, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding the answer: %w", err)
	}
	w := c.Response()
	// A failed handler may have set download headers before it failed.
	w.Header().Del("Content-Disposition")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, err = w.Write(append(b, '\n'))
	return err
}

// recoverPanics turns a panic into a 500 JSON answer and logs its stack
// once. http.ErrAbortHandler passes through: it is how a streamed answer
// that failed halfway is cut off, so the caller sees a broken download
// rather than a short one that looks complete.
func (s *server) recoverPanics(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			r := recover()
			if r == nil {
				return
			}
			if r == http.ErrAbortHandler {
				panic(r)
			}
			req := c.Request()
			s.log.Error("api: panic", "method", req.Method, "path", req.URL.Path, "panic", fmt.Sprint(r), "stack", string(debug.Stack()))
			err = &apiError{status: http.StatusInternalServerError, code: string(approvals.EInternal), message: "internal error"}
		}()
		return next(c)
	}
}
