// Package externalid serves the two custom authentication extensions an
// Entra External ID external tenant calls during sign-up:
// OnAttributeCollectionStart (the check step: is this person already
// waiting or denied?) and OnAttributeCollectionSubmit (the request step:
// record the request, or let Entra create the approved person's account).
// It checks Entra's bearer token (TokenVerifier), decodes the payload
// tolerantly (Decode), maps the call onto approvals.Service and answers with
// exactly one action, HTTP 200 application/json, in the person's language
// from the message catalogue the workforce connector uses
// (internal/signupmsg).
//
// The wire contract is shared/CONTRACT.md section 2; docs/EXTERNAL_ID.md
// describes the set-up in a tenant and the behaviour.
package externalid

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/httplog"
	"github.com/approvals-dev/approvals/internal/recent"
	"github.com/approvals-dev/approvals/internal/signupmsg"
)

// The paths the handler serves, each also with a trailing slash. Mount the
// handler so that it sees them unchanged (mux.Handle("/external-id/", h)).
const (
	StartPath  = "/external-id/attribute-collection-start"
	SubmitPath = "/external-id/attribute-collection-submit"
)

// DefaultMaxBodyBytes is the default limit on a payload.
const DefaultMaxBodyBytes = 64 << 10

// DefaultTokenBudget is how long a call waits for an issuer's keys when
// they are not cached: Entra gives the whole call 1,000 ms by default, and
// an answer after it is lost anyway.
const DefaultTokenBudget = 500 * time.Millisecond

// Config configures the extension endpoints.
type Config struct {
	// Service records and looks up requests. Required.
	Service *approvals.Service
	// Tokens says which bearer tokens are accepted. Required.
	Tokens TokenConfig
	// Messages overrides the texts shown to people, as the connector's
	// Config.Messages does (the same keys and map).
	Messages map[signupmsg.Key]map[string]string
	// Logger receives one line per call; slog.Default() when nil.
	Logger *slog.Logger
	// MaxBodyBytes limits payloads; DefaultMaxBodyBytes when 0.
	MaxBodyBytes int64
	// TokenBudget bounds the wait for keys; DefaultTokenBudget when 0.
	TokenBudget time.Duration
}

// Handler serves both extension endpoints. Close stops nothing it did not
// start; it has no background work beyond the key fetches, which end by
// their timeout.
type Handler struct {
	svc     *approvals.Service
	tokens  *TokenVerifier
	answers map[string]answers
	log     *slog.Logger
	maxBody int64
	budget  time.Duration
	// blocked remembers the blocked start calls recorded lately, so that a
	// person retrying does not add a durable audit write per attempt.
	blocked *recent.Set
}

// blockedAuditWindow is how long a blocked start of one request is
// recorded once; blockedAuditMax bounds the memory it takes.
const (
	blockedAuditWindow = time.Hour
	blockedAuditMax    = 10000
)

// answers are the encoded fixed answers of one language.
type answers struct {
	startBlock, submitBlock map[signupmsg.Key][]byte
	texts                   map[signupmsg.Key]string
}

// New returns the handler, or the configuration's problems.
func New(cfg Config) (*Handler, error) {
	var errs []error
	if cfg.Service == nil || cfg.Service.Store == nil {
		errs = append(errs, errors.New("external ID: Service with a Store is required"))
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxBodyBytes > 16<<20 {
		errs = append(errs, errors.New("external ID: MaxBodyBytes must be between 0 and 16 MiB"))
	}
	if cfg.TokenBudget < 0 {
		errs = append(errs, errors.New("external ID: TokenBudget must not be negative"))
	}
	tokens, err := NewTokenVerifier(cfg.Tokens)
	errs = append(errs, err)
	cat, err := signupmsg.NewCatalog(cfg.Messages)
	if err != nil {
		errs = append(errs, fmt.Errorf("external ID: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	h := &Handler{
		svc: cfg.Service, tokens: tokens, log: cfg.Logger, maxBody: cfg.MaxBodyBytes, budget: cfg.TokenBudget,
		answers: make(map[string]answers, len(cat)),
		blocked: &recent.Set{Window: blockedAuditWindow, Max: blockedAuditMax},
	}
	if h.log == nil {
		h.log = slog.Default()
	}
	if h.maxBody == 0 {
		h.maxBody = DefaultMaxBodyBytes
	}
	if h.budget == 0 {
		h.budget = DefaultTokenBudget
	}
	for lang, texts := range cat {
		a := answers{startBlock: map[signupmsg.Key][]byte{}, submitBlock: map[signupmsg.Key][]byte{}, texts: texts}
		for k, text := range texts {
			a.startBlock[k] = mustJSON(blockPage(eventStart, texts[signupmsg.MsgTitle], text))
			a.submitBlock[k] = mustJSON(blockPage(eventSubmit, texts[signupmsg.MsgTitle], text))
		}
		h.answers[lang] = a
	}
	return h, nil
}

// Tokens returns the handler's token verifier (to Warm it at start).
func (h *Handler) Tokens() *TokenVerifier { return h.tokens }

// event is one of the two extension events.
type event int

const (
	eventStart event = iota
	eventSubmit
)

func (e event) String() string {
	if e == eventStart {
		return "attribute_collection_start"
	}
	return "attribute_collection_submit"
}

// The odata types of the answers (CONTRACT section 2: lower camel case).
func (e event) responseType() string {
	if e == eventStart {
		return "microsoft.graph.onAttributeCollectionStartResponseData"
	}
	return "microsoft.graph.onAttributeCollectionSubmitResponseData"
}

func (e event) actionPrefix() string {
	if e == eventStart {
		return "microsoft.graph.attributeCollectionStart."
	}
	return "microsoft.graph.attributeCollectionSubmit."
}

// response is the body of every answer: one action.
type response struct {
	Data responseData `json:"data"`
}

type responseData struct {
	ODataType string   `json:"@odata.type"`
	Actions   []action `json:"actions"`
}

type action struct {
	ODataType       string            `json:"@odata.type"`
	Title           string            `json:"title,omitempty"`
	Message         string            `json:"message,omitempty"`
	AttributeErrors map[string]string `json:"attributeErrors,omitempty"`
}

func blockPage(e event, title, message string) response {
	return response{Data: responseData{ODataType: e.responseType(), Actions: []action{{
		ODataType: e.actionPrefix() + "showBlockPage", Title: title, Message: message,
	}}}}
}

func continueAnswer(e event) response {
	return response{Data: responseData{ODataType: e.responseType(), Actions: []action{{
		ODataType: e.actionPrefix() + "continueWithDefaultBehavior",
	}}}}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only fixed shapes of strings: cannot fail
	}
	return b
}

// Precomputed continue answers.
var (
	startContinue  = mustJSON(continueAnswer(eventStart))
	submitContinue = mustJSON(continueAnswer(eventSubmit))
)

// ServeHTTP implements http.Handler.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev event
	switch strings.TrimSuffix(r.URL.Path, "/") {
	case StartPath:
		ev = eventStart
	case SubmitPath:
		ev = eventSubmit
	default:
		writeJSON(w, http.StatusNotFound, []byte(`{"error":{"code":"not_found","message":"no such extension endpoint"}}`))
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		writeJSON(w, http.StatusMethodNotAllowed, []byte(`{"error":{"code":"method_not_allowed","message":"use POST"}}`))
		return
	}
	ctx, cancel := context.WithTimeout(r.Context(), h.budget)
	_, err := h.tokens.Verify(ctx, BearerToken(r.Header.Get("Authorization")))
	cancel()
	if err != nil {
		h.unauthorized(w, r, ev, err)
		return
	}
	defer func() {
		if p := recover(); p != nil {
			h.log.LogAttrs(r.Context(), slog.LevelError, "external ID: panic while serving a call",
				slog.String("event", ev.String()), slog.String("panic", fmt.Sprint(p)))
			h.write(w, r, ev, outcome{name: "unavailable", key: signupmsg.MsgTryLater}, Payload{})
		}
	}()
	p, o := h.read(w, r)
	if o.name == "" {
		if ev == eventStart {
			o = h.start(r.Context(), p)
		} else {
			o = h.submit(r.Context(), p)
		}
	}
	h.write(w, r, ev, o, p)
}

// outcome is how a call ends.
type outcome struct {
	name   string
	cont   bool
	key    signupmsg.Key     // the block page's message
	errs   map[string]string // attribute -> message key: showValidationError
	st     approvals.Standing
	known  bool
	reason string
	err    error
}

// read checks the content type and size and decodes the payload. A bad
// body is a block page: the person cannot fix it.
func (h *Handler) read(w http.ResponseWriter, r *http.Request) (Payload, outcome) {
	refused := func(reason string) (Payload, outcome) {
		return Payload{}, outcome{name: "refused", key: signupmsg.MsgBadRequest, reason: reason}
	}
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		return refused("content type is not application/json")
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return Payload{}, outcome{name: "refused", key: signupmsg.MsgTooLarge, reason: "body too large"}
		}
		return refused("body unreadable")
	}
	p, err := Decode(body)
	if err != nil {
		var de *DecodeError
		errors.As(err, &de)
		return refused(de.Reason)
	}
	return p, outcome{}
}

// start is the check step: a pending or denied person is stopped before
// the attribute page; anyone else continues to it. A payload without an
// email continues too: the submit step, which always needs one, is the
// gate, and it blocks whoever the start step could not look up.
func (h *Handler) start(ctx context.Context, p Payload) outcome {
	if p.SignUp.Email == "" {
		return outcome{name: "continue", cont: true, reason: errNoEmail.Error()}
	}
	st, err := h.svc.CheckStatusIn(ctx, approvals.SourceExternalID, p.SignUp.Email, p.SignUp.Identity)
	switch {
	case approvals.Code(err) == approvals.ENotFound:
		return outcome{name: "continue", cont: true}
	case err != nil:
		return outcome{name: "unavailable", key: signupmsg.MsgTryLater, err: err}
	}
	o := decided(st, signupmsg.MsgAlreadyProcessing)
	if !o.cont && h.blocked.First(st.ID+"\x00"+string(o.key), h.tokens.clock.Now()) {
		if err := h.svc.NoteBlockedCheck(ctx, st, string(o.key)); err != nil {
			h.log.LogAttrs(ctx, slog.LevelError, "external ID: cannot record a blocked sign-up in the audit trail",
				slog.String("request_id", st.ID), slog.String("error", err.Error()))
		}
	}
	return o
}

// submit is the request step: attribute problems keep the person on the
// page; otherwise the request is recorded (idempotently: Entra retries
// once) and the answer follows its state.
func (h *Handler) submit(ctx context.Context, p Payload) outcome {
	if len(p.AttributeErrors) > 0 {
		return outcome{name: "invalid_attributes", errs: p.AttributeErrors, reason: "attribute too long"}
	}
	if p.SignUp.Email == "" {
		return outcome{name: "refused", key: signupmsg.MsgBadRequest, reason: errNoEmail.Error()}
	}
	if err := approvals.ValidateEmail(p.SignUp.Email); err != nil {
		if p.EmailAttribute != "" {
			return outcome{name: "invalid_attributes", errs: map[string]string{p.EmailAttribute: string(signupmsg.MsgInvalidEmail)}, reason: "email invalid"}
		}
		return outcome{name: "refused", key: signupmsg.MsgInvalidEmail, reason: "email invalid"}
	}
	req, created, err := h.svc.RequestApproval(ctx, p.SignUp)
	if err != nil {
		if approvals.Code(err) == approvals.EInvalid {
			return outcome{name: "refused", key: signupmsg.MsgInvalidEmail, reason: "email refused by the service"}
		}
		return outcome{name: "unavailable", key: signupmsg.MsgTryLater, err: err}
	}
	o := decided(req.Standing(), signupmsg.MsgPending)
	if created {
		o.name += "_created"
	}
	return o
}

// decided maps a request's standing onto an answer: continue only when
// Entra may create the account, which for an external tenant is once the
// request is approved (by a reviewer or a rule: provisioning by_entra).
func decided(st approvals.Standing, pending signupmsg.Key) outcome {
	o := outcome{st: st, known: true}
	switch {
	case st.Status == approvals.StatusPending:
		o.name, o.key = string(pending), pending
	case st.Status == approvals.StatusDenied:
		o.name, o.key = "denied", signupmsg.MsgDenied
	case st.Status == approvals.StatusApproved && (st.Provisioning == approvals.ProvisioningByEntra || st.Provisioning == approvals.ProvisioningSucceeded):
		o.name, o.cont = "continue", true
	case st.Status == approvals.StatusApproved:
		o.name, o.key = "provisioning", signupmsg.MsgProvisioning
	default:
		o.name, o.key, o.err = "unavailable", signupmsg.MsgTryLater, fmt.Errorf("request %s has unknown status %q", st.ID, st.Status)
	}
	return o
}

// language returns the catalogue language for a locale.
func (h *Handler) language(locale string) answers {
	lang := signupmsg.Language(locale, func(l string) bool { _, ok := h.answers[l]; return ok })
	if lang == "" {
		lang = signupmsg.Fallback
	}
	return h.answers[lang]
}

// write sends the one answer of o: HTTP 200, application/json, one action.
func (h *Handler) write(w http.ResponseWriter, r *http.Request, ev event, o outcome, p Payload) {
	a := h.language(p.SignUp.Locale)
	var body []byte
	switch {
	case o.cont && ev == eventStart:
		body = startContinue
	case o.cont:
		body = submitContinue
	case len(o.errs) > 0 && ev == eventSubmit:
		errs := make(map[string]string, len(o.errs))
		for name, key := range o.errs {
			errs[name] = a.texts[signupmsg.Key(key)]
		}
		body = mustJSON(response{Data: responseData{ODataType: ev.responseType(), Actions: []action{{
			ODataType: ev.actionPrefix() + "showValidationError", Message: a.texts[signupmsg.MsgFixErrors], AttributeErrors: errs,
		}}}})
	case ev == eventStart:
		body = a.startBlock[o.key]
	default:
		body = a.submitBlock[o.key]
	}
	if body == nil { // a key without text: never an empty answer
		body = a.submitBlock[signupmsg.MsgTryLater]
		if ev == eventStart {
			body = a.startBlock[signupmsg.MsgTryLater]
		}
	}
	writeJSON(w, http.StatusOK, body)
	h.logCall(r, ev, o, p)
}

func writeJSON(w http.ResponseWriter, status int, body []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(body)
}

// unauthorized answers a call without a valid token: 401. Entra records it
// as 1003005 in the sign-in log and shows its own error page.
func (h *Handler) unauthorized(w http.ResponseWriter, r *http.Request, ev event, err error) {
	w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token"`)
	writeJSON(w, http.StatusUnauthorized, []byte(`{"error":{"code":"unauthorized","message":"the bearer token was not accepted"}}`))
	reason := err.Error()
	var te *TokenError
	if errors.As(err, &te) {
		reason = te.Reason
	}
	attrs := []slog.Attr{slog.String("event", ev.String()), slog.String("outcome", "unauthorized"), slog.String("reason", truncate(reason, 512))}
	if httplog.Annotate(r.Context(), slog.LevelWarn, attrs...) {
		return
	}
	h.log.LogAttrs(r.Context(), slog.LevelWarn, "external ID call refused", attrs...)
}

// logCall writes the call's one log line (joined to the server's request
// line through httplog when there is one). It never logs attributes or
// the full email.
func (h *Handler) logCall(r *http.Request, ev event, o outcome, p Payload) {
	level := slog.LevelInfo
	switch {
	case o.err != nil:
		level = slog.LevelError
	case o.reason != "":
		level = slog.LevelWarn
	}
	attrs := []slog.Attr{slog.String("event", ev.String()), slog.String("outcome", o.name)}
	if o.known {
		attrs = append(attrs, slog.String("request_id", o.st.ID), slog.String("request_status", string(o.st.Status)))
	}
	if p.CorrelationID != "" {
		attrs = append(attrs, slog.String("correlation_id", p.CorrelationID))
	}
	if at := strings.LastIndexByte(p.SignUp.Email, '@'); at >= 0 {
		attrs = append(attrs, slog.String("email_domain", truncate(strings.ToLower(p.SignUp.Email[at+1:]), 253)))
	}
	if o.reason != "" {
		attrs = append(attrs, slog.String("reason", o.reason))
	}
	if o.err != nil {
		msg := o.err.Error()
		if e := p.SignUp.Email; e != "" {
			msg = strings.ReplaceAll(msg, e, "<email>")
		}
		attrs = append(attrs, slog.String("error", msg))
	}
	if httplog.Annotate(r.Context(), level, attrs...) || !h.log.Enabled(r.Context(), level) {
		return
	}
	h.log.LogAttrs(r.Context(), level, "external ID call", attrs...)
}
