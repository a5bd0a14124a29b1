package connector

import (
	"fmt"

	"github.com/approvals-dev/approvals/internal/signupmsg"
)

// MessageKey names one message shown to a person signing up. The keys are
// also the names operators use to override a text (Config.Messages). The
// catalogue lives in internal/signupmsg, shared with package externalid.
type MessageKey = signupmsg.Key

// The messages the connector can show. The comment of each (in
// internal/signupmsg) says when.
const (
	MsgPending           = signupmsg.MsgPending
	MsgAlreadyProcessing = signupmsg.MsgAlreadyProcessing
	MsgDenied            = signupmsg.MsgDenied
	MsgProvisioning      = signupmsg.MsgProvisioning
	MsgTryLater          = signupmsg.MsgTryLater
	MsgInvalidEmail      = signupmsg.MsgInvalidEmail
	MsgBadRequest        = signupmsg.MsgBadRequest
	MsgTooLarge          = signupmsg.MsgTooLarge
	MsgInvalidName       = signupmsg.MsgInvalidName
	MsgInvalidText       = signupmsg.MsgInvalidText
)

// MessageKeys returns every message key, in the order the documentation
// shows them. The External ID headings (signupmsg.MsgTitle,
// signupmsg.MsgFixErrors) are among them: one override map serves both
// wire contracts.
func MessageKeys() []MessageKey { return signupmsg.Keys() }

// Language returns the language to answer in for a ui_locales value; see
// signupmsg.Language.
func Language(uiLocales string, have func(lang string) bool) string {
	return signupmsg.Language(uiLocales, have)
}

const (
	fallbackLanguage = signupmsg.Fallback
	maxMessageLen    = signupmsg.MaxLen
)

type catalog = signupmsg.Catalog

func builtinMessages() map[string]map[MessageKey]string { return signupmsg.Builtin() }

func validLanguage(s string) bool { return signupmsg.ValidLanguage(s) }

func newCatalog(overrides map[MessageKey]map[string]string) (catalog, error) {
	c, err := signupmsg.NewCatalog(overrides)
	if err != nil {
		return nil, fmt.Errorf("connector: %w", err)
	}
	return c, nil
}
