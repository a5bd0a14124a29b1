// Package connector serves the two endpoints Microsoft Entra's API
// connectors call during self-service sign-up in a workforce tenant: "check
// approval status" after the person federates with an identity provider,
// and "request approval" before Entra creates the user. It decodes Entra's
// flat JSON claims, authenticates the caller (HTTP Basic or a pinned client
// certificate), maps the call onto approvals.Service and answers with one of
// the three response shapes Entra understands, in the person's language.
//
// The wire contract is shared/CONTRACT.md section 1; docs/CONNECTOR.md
// describes the endpoints, the messages and the error behaviour.
package connector

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"mime"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/httplog"
	"github.com/approvals-dev/approvals/internal/recent"
)

// The paths the handler serves, each also with a trailing slash. Mount the
// handler so that it sees them unchanged, e.g. mux.Handle("/connector/", h);
// do not strip the prefix.
const (
	CheckApprovalStatusPath = "/connector/check-approval-status"
	RequestApprovalPath     = "/connector/request-approval"
)

// DefaultMaxBodyBytes is the default limit on a request body. Entra's
// claims are a few hundred bytes; custom attributes add a little.
const DefaultMaxBodyBytes = 64 << 10

// maxMaxBodyBytes bounds Config.MaxBodyBytes.
const maxMaxBodyBytes = 16 << 20

// Config configures the connector endpoints.
type Config struct {
	// Service records and looks up requests. Required.
	Service *approvals.Service
	// Auth says how the caller authenticates. Required.
	Auth Auth
	// Messages overrides the texts shown to people: message key, then
	// lower-case language code ("en", "fr", ...), then text. A language the
	// connector does not ship gets English for the keys not given.
	Messages map[MessageKey]map[string]string
	// Logger receives one line per call; slog.Default() when nil.
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// Clock is used for certificate validity and the failure limit;
	// Service.Clock when nil, and the system clock when that is nil too.
	Clock approvals.Clock
}

// Validate reports every problem of the configuration at once.
func (c Config) Validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Service == nil, "connector: Service is required"},
		{c.Service != nil && c.Service.Store == nil, "connector: Service.Store is required"},
		{c.MaxBodyBytes < 0 || c.MaxBodyBytes > maxMaxBodyBytes, fmt.Sprintf("connector: MaxBodyBytes must be between 0 (default %d) and %d", DefaultMaxBodyBytes, maxMaxBodyBytes)},
	}
	var errs []error
	for _, ch := range checks {
		if ch.bad {
			errs = append(errs, errors.New(ch.msg))
		}
	}
	errs = append(errs, c.Auth.validate())
	if _, err := newCatalog(c.Messages); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// New returns the http.Handler serving both connector endpoints, or the
// configuration's problems.
func New(cfg Config) (http.Handler, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	clock := cfg.Clock
	if clock == nil {
		clock = cfg.Service.Clock
	}
	if clock == nil {
		clock = approvals.SystemClock
	}
	auth, err := newAuthenticator(cfg.Auth, clock)
	if err != nil {
		return nil, err
	}
	cat, err := newCatalog(cfg.Messages)
	if err != nil {
		return nil, err
	}
	answers, err := compileAnswers(cat)
	if err != nil {
		return nil, err
	}
	h := &handler{
		svc:     cfg.Service,
		auth:    auth,
		decoder: NewDecoder(),
		answers: answers,

		continueBody:     []byte(continueJSON),
		unauthorizedBody: []byte(unauthorizedJSON),
		throttledBody:    []byte(throttledJSON),
		log:              cfg.Logger,
		maxBody:          cfg.MaxBodyBytes,
		clock:            clock,
		blocked:          &recent.Set{Window: blockedAuditWindow, Max: blockedAuditMax},
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}

	e := echo.New()
	e.HTTPErrorHandler = h.routingError
	e.Use(h.recoverPanic, h.authenticate)
	check := func(c echo.Context) error { return h.serve(c, stepCheck) }
	request := func(c echo.Context) error { return h.serve(c, stepRequest) }
	// With a trailing slash too: an admin may paste either into the
	// portal, and Entra shows a generic error page for a 404.
	e.POST(CheckApprovalStatusPath, check)
	e.POST(CheckApprovalStatusPath+"/", check)
	e.POST(RequestApprovalPath, request)
	e.POST(RequestApprovalPath+"/", request)
	return e, nil
}

// step is one of the two connector calls.
type step int

const (
	stepCheck step = iota
	stepRequest
)

func (s step) String() string {
	if s == stepCheck {
		return "check_approval_status"
	}
	return "request_approval"
}

// action is the shape of an answer.
type action int

const (
	actionContinue action = iota
	actionBlock
	actionValidation
)

// answer holds the encoded bodies of one message in one language.
type answer struct {
	block      []byte // 200 ShowBlockPage
	validation []byte // 400 ValidationError
}

// Fixed answers. The Continue answer adds no claims. The other two go to
// callers that did not authenticate: they are not meant for people, as
// Entra shows its own error page when its credentials are wrong.
const (
	continueJSON     = `{"version":"1.0.0","action":"Continue"}`
	unauthorizedJSON = `{"version":"1.0.0","action":"ShowBlockPage","userMessage":"The API connector's credentials were not accepted."}`
	throttledJSON    = `{"version":"1.0.0","action":"ShowBlockPage","userMessage":"Too many failed authentication attempts. Try again later."}`
)

// version is the free-text version of every answer.
const version = "1.0.0"

// compileAnswers encodes every answer once, so that a call only writes
// bytes.
func compileAnswers(c catalog) (map[string]map[MessageKey]answer, error) {
	out := make(map[string]map[MessageKey]answer, len(c))
	for lang, texts := range c {
		m := make(map[MessageKey]answer, len(texts))
		for k, text := range texts {
			block, err := json.Marshal(struct {
				Version     string `json:"version"`
				Action      string `json:"action"`
				UserMessage string `json:"userMessage"`
			}{version, "ShowBlockPage", text})
			if err != nil {
				return nil, err
			}
			validation, err := json.Marshal(struct {
				Version     string `json:"version"`
				Status      int    `json:"status"`
				Action      string `json:"action"`
				UserMessage string `json:"userMessage"`
			}{version, http.StatusBadRequest, "ValidationError", text})
			if err != nil {
				return nil, err
			}
			m[k] = answer{block: block, validation: validation}
		}
		out[lang] = m
	}
	return out, nil
}

// handler serves the connector endpoints.
type handler struct {
	svc     *approvals.Service
	auth    *authenticator
	decoder *Decoder
	answers map[string]map[MessageKey]answer
	// The fixed answers, as bytes once.
	continueBody, unauthorizedBody, throttledBody []byte
	log                                           *slog.Logger
	maxBody                                       int64
	clock                                         approvals.Clock
	// blocked remembers which requests had a blocked check recorded
	// lately, so that a person retrying sign-in does not add a durable
	// audit write per attempt.
	blocked *recent.Set
}

// blockedAuditWindow is how long a blocked check of one request is
// recorded once; blockedAuditMax bounds the memory it takes.
const (
	blockedAuditWindow = time.Hour
	blockedAuditMax    = 10000
)

// outcome is how a call ends: the answer, and what to log about it.
type outcome struct {
	name   string // for the log
	action action
	key    MessageKey
	locale string
	reason string // why the input was refused
	// st is the person's request, when there is one (known).
	st      approvals.Standing
	known   bool
	created bool
	err     error // an internal error, logged once
	// httpStatus overrides the status of the action's shape: 413 for a
	// body over the limit, which Entra never sends (its claims are small),
	// so that other clients get the standard answer.
	httpStatus int
}

func continueOutcome(st approvals.Standing) outcome {
	return outcome{name: "continue", action: actionContinue, st: st, known: true}
}

func blockOutcome(key MessageKey, st approvals.Standing) outcome {
	return outcome{name: string(key), action: actionBlock, key: key, st: st, known: true}
}

func tryLater(err error) outcome {
	return outcome{name: "unavailable", action: actionBlock, key: MsgTryLater, err: err}
}

// serve handles one call of either step.
func (h *handler) serve(c echo.Context, st step) error {
	r := c.Request()
	var o outcome
	su, err := h.readSignUp(c.Response(), r, st)
	switch {
	case err != nil:
		o = h.refused(st, err)
	case st == stepCheck:
		o = h.checkApprovalStatus(r, su)
	default:
		o = h.requestApproval(r, su)
	}
	if o.locale == "" {
		o.locale = su.Locale
	}
	status := h.write(c, o)
	h.logCall(r, st, o, su, status)
	return nil
}

// reasonBodyTooLarge refuses a body over Config.MaxBodyBytes.
const reasonBodyTooLarge = "body too large"

// readSignUp checks the content type, reads the body within the limit and
// decodes it.
func (h *handler) readSignUp(w http.ResponseWriter, r *http.Request, st step) (approvals.SignUp, error) {
	if !isJSON(r.Header.Get("Content-Type")) {
		return approvals.SignUp{}, &DecodeError{Key: MsgBadRequest, Reason: "content type is not application/json"}
	}
	if r.ContentLength > h.maxBody {
		return approvals.SignUp{}, &DecodeError{Key: MsgTooLarge, Reason: reasonBodyTooLarge}
	}
	body, err := readBody(http.MaxBytesReader(w, r.Body, h.maxBody), r.ContentLength)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return approvals.SignUp{}, &DecodeError{Key: MsgTooLarge, Reason: reasonBodyTooLarge}
		}
		return approvals.SignUp{}, &DecodeError{Key: MsgBadRequest, Reason: "body unreadable"}
	}
	if st == stepCheck {
		return h.decoder.DecodeCheck(body)
	}
	return h.decoder.Decode(body)
}

// isJSON reports whether a Content-Type header names application/json,
// parameters (a charset) allowed. The two forms Entra sends are compared
// first, saving the parser's map.
func isJSON(ct string) bool {
	if ct == "application/json" || ct == "application/json; charset=utf-8" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// readBody reads r whole into a buffer sized from the declared length,
// when there is one, so that a body is read without regrowing the buffer.
func readBody(r io.Reader, length int64) ([]byte, error) {
	if length <= 0 || length > DefaultMaxBodyBytes {
		return io.ReadAll(r)
	}
	// ReadFrom keeps bytes.MinRead free before each read: with that much
	// beyond the declared length, it never grows.
	buf := bytes.NewBuffer(make([]byte, 0, length+bytes.MinRead))
	_, err := buf.ReadFrom(r)
	return buf.Bytes(), err
}

// refused answers input that could not be used. At the request step that
// is a ValidationError, which keeps the person on the attribute page. The
// check step may not answer ValidationError, and any other status than 200
// there is undocumented (Entra shows a generic error page), so it blocks
// with a 200 ShowBlockPage. Either way the person never gets through.
func (h *handler) refused(st step, err error) outcome {
	var de *DecodeError
	if !errors.As(err, &de) {
		return tryLater(err)
	}
	o := outcome{name: "refused", action: actionBlock, key: de.Key, locale: de.Locale, reason: de.Reason}
	switch {
	case de.Reason == reasonBodyTooLarge:
		// 413 with a block page at both steps: never Continue, and
		// nothing a user could fix on the attribute page.
		o.httpStatus = http.StatusRequestEntityTooLarge
	case st == stepRequest:
		o.action = actionValidation
	}
	return o
}

// checkApprovalStatus is the first step: no request lets Entra continue to
// the attribute page; any request decides as requestDecided says.
func (h *handler) checkApprovalStatus(r *http.Request, su approvals.SignUp) outcome {
	st, err := h.svc.CheckStatus(r.Context(), su.Email, su.Identity)
	switch {
	case approvals.Code(err) == approvals.ENotFound:
		return outcome{name: "continue", action: actionContinue}
	case err != nil:
		return tryLater(err)
	}
	o := requestDecided(st, MsgAlreadyProcessing)
	if o.action == actionBlock {
		h.recordBlocked(r, st, o.key)
	}
	return o
}

// requestApproval is the second step: record the request (idempotently:
// Entra retries after 20 s) and answer from its state.
func (h *handler) requestApproval(r *http.Request, su approvals.SignUp) outcome {
	req, created, err := h.svc.RequestApproval(r.Context(), su)
	if err != nil {
		if approvals.Code(err) == approvals.EInvalid {
			return invalidOutcome(err, su.Locale)
		}
		return tryLater(err)
	}
	o := requestDecided(req.Standing(), MsgPending)
	o.created = created
	return o
}

// invalidOutcome is the ValidationError of a sign-up the service refused:
// a name or another attribute with a control or text-direction character,
// or else the email. The reason names the field, never its value.
func invalidOutcome(err error, locale string) outcome {
	o := outcome{name: "refused", action: actionValidation, key: MsgInvalidEmail, locale: locale, reason: "email refused by the service"}
	var e *approvals.Error
	if !errors.As(err, &e) || e.Field == "" || e.Field == claimEmail {
		return o
	}
	field := e.Field
	if len(field) > 100 {
		field = field[:100]
	}
	o.key, o.reason = MsgInvalidText, approvals.ReplaceUnsafe(strings.ToValidUTF8(field, "\uFFFD"), nil)+": control or text-direction character"
	switch e.Field {
	case claimDisplayName, "givenName", claimSurname:
		o.key = MsgInvalidName
	}
	return o
}

// requestDecided maps a request's state onto an answer. Continue only when
// Entra may create the account: the request was auto-approved (by_entra),
// or our provisioning is complete. While the provisioner is still creating
// the account, or failed to and waits for an admin, Continue would make
// Entra create a second one, so the person is told to wait.
func requestDecided(st approvals.Standing, pending MessageKey) outcome {
	switch st.Status {
	case approvals.StatusPending:
		return blockOutcome(pending, st)
	case approvals.StatusDenied:
		return blockOutcome(MsgDenied, st)
	case approvals.StatusApproved:
		switch st.Provisioning {
		case approvals.ProvisioningByEntra, approvals.ProvisioningSucceeded:
			return continueOutcome(st)
		}
		return blockOutcome(MsgProvisioning, st)
	}
	o := tryLater(fmt.Errorf("request %s has unknown status %q", st.ID, st.Status))
	o.st, o.known = st, true
	return o
}

// recordBlocked has the service note in the audit trail that the person
// tried to sign up again and was stopped at the first step, once per
// request, message and blockedAuditWindow: someone retrying a dozen times
// in a minute is one event, not a dozen durable writes. A failure is only
// logged: the answer stays the same.
func (h *handler) recordBlocked(r *http.Request, st approvals.Standing, key MessageKey) {
	if !h.blocked.First(st.ID+"\x00"+string(key), h.clock.Now()) {
		return
	}
	if err := h.svc.NoteBlockedCheck(r.Context(), st, string(key)); err != nil {
		h.log.LogAttrs(r.Context(), slog.LevelError, "connector: cannot record a blocked sign-up in the audit trail",
			slog.String("request_id", st.ID), slog.String("error", err.Error()))
	}
}

// answerFor returns the encoded answer of key in the language of locale.
func (h *handler) answerFor(locale string, key MessageKey) answer {
	lang := Language(locale, func(l string) bool { _, ok := h.answers[l]; return ok })
	if lang == "" {
		lang = fallbackLanguage
	}
	return h.answers[lang][key]
}

// write sends the answer of o and returns the HTTP status.
func (h *handler) write(c echo.Context, o outcome) int {
	status, body := http.StatusOK, h.continueBody
	switch o.action {
	case actionBlock:
		body = h.answerFor(o.locale, o.key).block
	case actionValidation:
		status, body = http.StatusBadRequest, h.answerFor(o.locale, o.key).validation
	}
	if o.httpStatus != 0 {
		status = o.httpStatus
	}
	_ = c.Blob(status, echo.MIMEApplicationJSON, body) // a write error means the caller left
	return status
}

// logCall writes the one log line of a call: its fields join the server's
// request line when the server logs through httplog.Middleware, which
// already has the HTTP fields, and make a line of their own otherwise. It
// never logs claims, the full email or credentials.
func (h *handler) logCall(r *http.Request, st step, o outcome, su approvals.SignUp, status int) {
	level := slog.LevelInfo
	switch {
	case o.err != nil:
		level = slog.LevelError
	case o.reason != "":
		level = slog.LevelWarn
	}
	ctx := r.Context()
	attrs := make([]slog.Attr, 0, 10)
	attrs = append(attrs,
		slog.String("step", st.String()),
		slog.String("outcome", o.name))
	attrs = h.appendCallAttrs(attrs, o, su, st)
	if httplog.Annotate(ctx, level, attrs...) || !h.log.Enabled(ctx, level) {
		return
	}
	attrs = append(attrs, slog.Int("status", status))
	if id := r.Header.Get("X-Request-Id"); id != "" {
		attrs = append(attrs, slog.String("http_request_id", truncate(id, 128)))
	}
	h.log.LogAttrs(ctx, level, "connector call", attrs...)
}

// appendCallAttrs appends what is known of the call's person and request.
func (h *handler) appendCallAttrs(attrs []slog.Attr, o outcome, su approvals.SignUp, st step) []slog.Attr {
	if o.known {
		attrs = append(attrs, slog.String("request_id", o.st.ID), slog.String("request_status", string(o.st.Status)))
	}
	if st == stepRequest && o.known {
		attrs = append(attrs, slog.Bool("created", o.created))
	}
	if su.Email != "" {
		attrs = append(attrs, slog.String("email_domain", emailDomain(su.Email)))
	}
	if su.Identity != nil {
		attrs = append(attrs, slog.String("issuer", truncate(su.Identity.Issuer, 64)))
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("reason", o.reason))
	}
	if o.err != nil {
		attrs = append(attrs, slog.String("error", redact(o.err.Error(), su.Email)))
	}
	return attrs
}

// emailDomain returns the part after the last '@', enough to follow the
// auto-approve and auto-deny rules without logging who signed up.
func emailDomain(email string) string {
	at := strings.LastIndexByte(email, '@')
	return truncate(strings.ToLower(email[at+1:]), 253)
}

// redact removes the email from an error text, in case a store quoted it.
func redact(s, email string) string {
	if email == "" {
		return s
	}
	masked := "<email@" + emailDomain(email) + ">"
	s = strings.ReplaceAll(s, email, masked)
	return strings.ReplaceAll(s, strings.ToLower(email), masked)
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// authenticate lets through callers with a good certificate or Basic
// credentials, and answers 401 or 429 to the others.
func (h *handler) authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		res, wait := h.auth.authenticate(r)
		switch res {
		case authOK:
			return next(c)
		case authLimited:
			secs := int(math.Ceil(wait.Seconds()))
			c.Response().Header().Set("Retry-After", strconv.Itoa(secs))
			h.log.LogAttrs(r.Context(), slog.LevelDebug, "connector call throttled after failed authentication",
				slog.String("client", h.auth.clientKey(r)), slog.Int("retry_after_s", secs))
			return c.Blob(http.StatusTooManyRequests, echo.MIMEApplicationJSON, h.throttledBody)
		}
		c.Response().Header().Set("WWW-Authenticate", challenge)
		_, _, hasBasic := r.BasicAuth()
		h.log.LogAttrs(r.Context(), slog.LevelWarn, "connector authentication failed",
			slog.String("client", h.auth.clientKey(r)),
			slog.Bool("basic_sent", hasBasic),
			slog.Bool("certificate_sent", r.TLS != nil && len(r.TLS.PeerCertificates) > 0),
			slog.String("path", truncate(r.URL.Path, 128)))
		return c.Blob(http.StatusUnauthorized, echo.MIMEApplicationJSON, h.unauthorizedBody)
	}
}

// recoverPanic turns a panic, which would be a bug, into a "try again
// later" block, so that the person still gets one of the three shapes.
func (h *handler) recoverPanic(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) (err error) {
		defer func() {
			if p := recover(); p != nil {
				r := c.Request()
				h.log.LogAttrs(r.Context(), slog.LevelError, "connector: panic while serving a call",
					slog.String("path", truncate(r.URL.Path, 128)), slog.String("panic", fmt.Sprint(p)))
				if !c.Response().Committed {
					_ = c.Blob(http.StatusOK, echo.MIMEApplicationJSON, h.answerFor("", MsgTryLater).block)
				}
				err = nil
			}
		}()
		return next(c)
	}
}

// routingError answers what Echo's router refuses (an authenticated call
// to an unknown path or with a method other than POST) with the status it
// chose and a ShowBlockPage body, so that even a misconfigured connector
// URL gets JSON.
func (h *handler) routingError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	status := http.StatusInternalServerError
	var he *echo.HTTPError
	if errors.As(err, &he) {
		status = he.Code
	}
	key := MsgBadRequest
	if status >= 500 {
		status, key = http.StatusOK, MsgTryLater
		h.log.LogAttrs(c.Request().Context(), slog.LevelError, "connector: unexpected error", slog.String("error", err.Error()))
	}
	_ = c.Blob(status, echo.MIMEApplicationJSON, h.answerFor("", key).block)
}
