package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/export"
)

// export is GET /decisions/export?format=&since=&until=&status=: every
// decision in the range, streamed in constant memory by
// export.Decisions. Parameters are checked before the first byte
// is sent, so a bad one gets a JSON error.
func (s *server) export(c echo.Context) error {
	q := c.QueryParams()
	if err := onlyParams(q, "format", "since", "until", "status"); err != nil {
		return err
	}
	format, err := export.ParseFormat(q.Get("format"))
	if err != nil {
		return err
	}
	dq := approvals.DecisionQuery{Status: approvals.Status(q.Get("status"))}
	if dq.Status != "" && dq.Status != approvals.StatusApproved && dq.Status != approvals.StatusDenied {
		return invalid("status %q has no decisions to export; use approved or denied, or leave it out for both", dq.Status)
	}
	if dq.Since, err = timeParam("since", q.Get("since")); err != nil {
		return err
	}
	if dq.Until, err = timeParam("until", q.Get("until")); err != nil {
		return err
	}
	if !dq.Since.IsZero() && !dq.Until.IsZero() && !dq.Until.After(dq.Since) {
		return invalid("until must be later than since")
	}

	now := s.clock.Now().UTC()
	w := c.Response()
	w.Header().Set("Content-Type", format.ContentType())
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="decisions-%s.%s"`, now.Format("20060102T150405Z"), format))
	n, err := export.Decisions(c.Request().Context(), s.streamTo(w), s.store, dq, format, nil)
	details := map[string]string{
		"format": string(format), "rows": strconv.Itoa(n),
		"status": string(dq.Status), "since": q.Get("since"), "until": q.Get("until"),
	}
	if err != nil {
		if w.Committed {
			// Rows have left: the caller holds part of the export.
			s.recordAdmin(c, approvals.EventDecisionsExportFailed, details)
		}
		return s.streamFailed(c, "export", err)
	}
	s.recordAdmin(c, approvals.EventDecisionsExported, details)
	return nil
}

// downloadBackup is GET /backup: a consistent snapshot of the live
// database, taken in one read transaction while the server keeps serving.
func (s *server) downloadBackup(c echo.Context) error {
	if s.backup == nil {
		msg := "backups are not available: this server does not keep its data in a bbolt file"
		if s.noBackup != "" {
			msg = s.noBackup
		}
		return &apiError{status: http.StatusNotImplemented, code: codeNotImplemented, message: msg}
	}
	now := s.clock.Now().UTC()
	w := c.Response()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", fmt.Sprintf(`attachment; filename="approvals-%s.db"`, now.Format("20060102T150405Z")))
	n, err := s.backup(s.streamTo(w))
	if err != nil {
		if w.Committed {
			s.recordAdmin(c, approvals.EventBackupFailed, map[string]string{"bytes": strconv.FormatInt(w.Size, 10)})
		}
		return s.streamFailed(c, "backup", err)
	}
	s.recordAdmin(c, approvals.EventBackupDownloaded, map[string]string{"bytes": strconv.FormatInt(n, 10)})
	return nil
}

// streamFailed handles an error of a streamed answer. Before the first
// byte it becomes a JSON error; after it, the connection is cut
// (http.ErrAbortHandler) so that the caller sees a failed download rather
// than a short file that looks complete.
func (s *server) streamFailed(c echo.Context, what string, err error) error {
	req := c.Request()
	if !c.Response().Committed {
		c.Response().Header().Del("Content-Disposition")
		if approvals.Code(err) == approvals.EInternal && !errors.Is(err, req.Context().Err()) {
			return &apiError{status: http.StatusInternalServerError, code: string(approvals.EInternal),
				message: what + " failed; see the server log", cause: err}
		}
		return err
	}
	if req.Context().Err() == nil {
		s.log.Error("api: "+what+" failed while streaming; cutting the connection", "path", req.URL.Path, "error", err)
	}
	panic(http.ErrAbortHandler)
}

// streamTo returns w with a write deadline that moves forward with every
// write: a long download is not cut off by the server's write timeout,
// while a stalled client still is.
func (s *server) streamTo(w http.ResponseWriter) io.Writer {
	return &deadlineWriter{w: w, rc: http.NewResponseController(w), timeout: s.streamWriteTimeout}
}

type deadlineWriter struct {
	w       io.Writer
	rc      *http.ResponseController
	timeout time.Duration
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	// Connection deadlines are wall-clock by nature: the injected Clock
	// (fake in tests) has no say over the network. ErrNotSupported (a
	// test recorder) leaves the write unbounded, which is fine there.
	_ = d.rc.SetWriteDeadline(time.Now().Add(d.timeout))
	return d.w.Write(p)
}
