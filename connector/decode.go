package connector

import (
	"bytes"
	"errors"
	"io"
	"math"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/go-json-experiment/json/jsontext"
	"github.com/go-playground/validator/v10"

	"github.com/approvals-dev/approvals/approvals"
)

// Claim names that have a meaning of their own on the wire.
const (
	claimEmail       = "email"
	claimIdentities  = "identities"
	claimDisplayName = "displayName"
	claimUILocales   = "ui_locales"
	claimStep        = "step"      // Azure AD B2C only: not relied on
	claimClientID    = "client_id" // Azure AD B2C only: not relied on
	claimLastName    = "lastName"  // the guide's first example; Graph calls it surname
	claimSurname     = "surname"
)

// maxDepth bounds the nesting of the body. Entra sends depth 3 at most (the
// object, the identities array, an identity); anything much deeper is not
// Entra and is refused rather than walked.
const maxDepth = 16

// maxLocaleLen bounds ui_locales; longer values are ignored. A browser's
// Accept-Language list of half a dozen weighted tags is about 60 bytes.
const maxLocaleLen = 256

// Decoder turns the body of an API-connector call into an approvals.SignUp.
// Both endpoints send the same flat JSON object of claims, so one Decoder
// serves both. It is safe for concurrent use.
type Decoder struct {
	validate *validator.Validate
	// tokenizers recycles jsontext decoders, whose buffers (among them the
	// names seen, for duplicate detection) are worth keeping.
	tokenizers sync.Pool
}

// NewDecoder returns a Decoder.
func NewDecoder() *Decoder {
	return &Decoder{validate: validator.New(validator.WithRequiredStructEnabled())}
}

// DecodeError says why a body was refused and which message to show.
type DecodeError struct {
	// Key is the message to show the person.
	Key MessageKey
	// Reason is a short machine-readable cause. It never contains a claim
	// value, so it is safe to log.
	Reason string
	// Locale is the ui_locales claim when it was read before the failure,
	// so that the answer can still be localized.
	Locale string
}

// Error implements error.
func (e *DecodeError) Error() string { return "connector: refused claims: " + e.Reason }

// signUpRules are the field rules checked with the validator.
type signUpRules struct {
	Email       string `validate:"required,max=254,email"`
	DisplayName string `validate:"max=256"`
}

// identityRules are the rules for identities[0], when it is present.
type identityRules struct {
	Issuer           string `validate:"required,max=256"`
	IssuerAssignedID string `validate:"required,max=512"`
}

// Decode reads the claims of a connector call. body must be one JSON object
// in UTF-8, without duplicate names, nested at most maxDepth deep.
//
// On success the SignUp has an email that both the validator's "email" rule
// and approvals.ValidateEmail accept; the identity is identities[0] with its
// issuer normalized (approvals.NormalizeIssuer), or nil when Entra sent
// none; Locale is ui_locales; Claims holds every other member whose value
// is a string, a bool or a finite number, under the name Entra used, except
// step and client_id, with lastName stored as surname (an explicit surname
// wins). Members whose value is null, an object or an array are dropped.
//
// On failure it returns the zero SignUp and a *DecodeError.
func (d *Decoder) Decode(body []byte) (approvals.SignUp, error) {
	return d.decode(body, true)
}

// DecodeCheck is Decode for the check step, which only looks the person
// up: it accepts and refuses exactly the same bodies and returns the same
// SignUp, but leaves Claims nil, saving their allocation.
func (d *Decoder) DecodeCheck(body []byte) (approvals.SignUp, error) {
	return d.decode(body, false)
}

func (d *Decoder) decode(body []byte, keepClaims bool) (su approvals.SignUp, err error) {
	fail := func(key MessageKey, reason string) (approvals.SignUp, error) {
		return approvals.SignUp{}, &DecodeError{Key: key, Reason: reason, Locale: su.Locale}
	}
	dec, _ := d.tokenizers.Get().(*jsontext.Decoder)
	if dec == nil {
		dec = jsontext.NewDecoder(bytes.NewBuffer(body))
	} else {
		dec.Reset(bytes.NewBuffer(body))
	}
	defer d.tokenizers.Put(dec)
	tok, err := dec.ReadToken()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return fail(MsgBadRequest, "empty body")
		}
		return fail(MsgBadRequest, syntaxReason(err))
	}
	if tok.Kind() != '{' {
		return fail(MsgBadRequest, "not a JSON object")
	}
	var (
		email, lastName   string
		hasEmail, hasLast bool
		claims            map[string]any
	)
	for dec.PeekKind() != '}' {
		tok, err := dec.ReadToken()
		if err != nil {
			return fail(MsgBadRequest, syntaxReason(err))
		}
		name := tok.String()
		switch name {
		case claimEmail:
			s, ok, err := readString(dec)
			if err != nil {
				if errors.As(err, new(typeError)) {
					return fail(MsgInvalidEmail, "email: "+reasonOf(err))
				}
				return fail(MsgBadRequest, "email: "+reasonOf(err))
			}
			email, hasEmail = strings.TrimSpace(s), ok
		case claimIdentities:
			id, err := readIdentity(dec)
			if err != nil {
				return fail(MsgBadRequest, "identities: "+reasonOf(err))
			}
			su.Identity = id
		case claimUILocales:
			s, _, err := readString(dec)
			if err != nil {
				return fail(MsgBadRequest, "ui_locales: "+reasonOf(err))
			}
			su.Locale = cleanLocale(s)
		case claimStep, claimClientID:
			if err := skipValue(dec); err != nil {
				return fail(MsgBadRequest, syntaxReason(err))
			}
		default:
			v, ok, err := readScalar(dec, keepClaims || name == claimDisplayName || name == claimLastName)
			if err != nil {
				return fail(MsgBadRequest, reasonOf(err))
			}
			if !ok || v == nil {
				continue
			}
			switch name {
			case claimLastName:
				if s, isString := v.(string); isString {
					lastName, hasLast = s, true
				}
				continue
			case claimDisplayName:
				if s, isString := v.(string); isString {
					su.DisplayName = s
				}
			}
			if !keepClaims {
				continue
			}
			if claims == nil {
				claims = make(map[string]any, 16)
			}
			claims[name] = v
		}
	}
	if _, err := dec.ReadToken(); err != nil { // the closing brace
		return fail(MsgBadRequest, syntaxReason(err))
	}
	if _, err := dec.ReadToken(); !errors.Is(err, io.EOF) {
		return fail(MsgBadRequest, "data after the JSON object")
	}
	if hasLast && keepClaims {
		if _, ok := claims[claimSurname]; !ok {
			if claims == nil {
				claims = make(map[string]any, 1)
			}
			claims[claimSurname] = lastName
		}
	}
	if !hasEmail {
		return fail(MsgInvalidEmail, "email missing")
	}
	if !everyday(email, su.DisplayName) {
		if err := d.validate.Struct(signUpRules{Email: email, DisplayName: su.DisplayName}); err != nil {
			var ve validator.ValidationErrors
			if errors.As(err, &ve) && len(ve) > 0 && ve[0].Field() == "DisplayName" {
				return fail(MsgTooLarge, "displayName too long")
			}
			return fail(MsgInvalidEmail, "email invalid")
		}
		// The domain's own rule too, so that Service.RequestApproval
		// never refuses what was accepted here.
		if approvals.ValidateEmail(email) != nil {
			return fail(MsgInvalidEmail, "email invalid")
		}
	}
	if id := su.Identity; id != nil {
		// Normalize first: an issuer of blanks is no issuer.
		id.Issuer = approvals.NormalizeIssuer(id.Issuer)
		id.IssuerAssignedID = strings.TrimSpace(id.IssuerAssignedID)
		if err := d.validate.Struct(identityRules(*id)); err != nil {
			return fail(MsgBadRequest, "identities[0] lacks a valid issuer or issuerAssignedId")
		}
	}
	su.Email = email
	su.Claims = claims
	return su, nil
}

// everyday reports whether an email and display name pass signUpRules and
// approvals.ValidateEmail for certain, without the validator: the address
// is approvals.PlainAddress and both are within their lengths. Nearly every
// sign-up is; the rest take the full checks. (The validator's "email" rule
// is net/mail plus a long regular expression, 5 µs a call.)
func everyday(email, displayName string) bool {
	return len(email) <= 254 && approvals.PlainAddress(email) && utf8.RuneCountInString(displayName) <= 256
}

// typeError is a member whose value has the wrong JSON type.
type typeError struct{ want string }

func (e typeError) Error() string { return "not " + e.want }

// errTooDeep is a body nested deeper than maxDepth.
var errTooDeep = errors.New("nested too deep")

// errNumberRange is a number a float64 cannot hold.
var errNumberRange = errors.New("number out of range")

// reasonOf turns a decoding error into a Reason.
func reasonOf(err error) string {
	var te typeError
	switch {
	case errors.As(err, &te), errors.Is(err, errTooDeep), errors.Is(err, errNumberRange):
		return err.Error()
	}
	return syntaxReason(err)
}

// syntaxReason names a jsontext error without quoting the input.
func syntaxReason(err error) string {
	switch {
	case errors.Is(err, errTooDeep):
		return err.Error()
	case errors.Is(err, jsontext.ErrDuplicateName):
		return "duplicate member name"
	case errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, io.EOF):
		return "truncated JSON"
	}
	return "malformed JSON"
}

// readString reads a string member; null reads as absent.
func readString(dec *jsontext.Decoder) (s string, present bool, err error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return "", false, err
	case tok.Kind() == '"':
		return tok.String(), true, nil
	case tok.Kind() == 'n':
		return "", false, nil
	}
	return "", false, typeError{"a string"}
}

// readScalar reads a string, bool or number member. Null, objects and
// arrays read as absent (the latter two are skipped). Unless keep is set,
// v is nil: the value is only checked.
func readScalar(dec *jsontext.Decoder, keep bool) (v any, present bool, err error) {
	switch dec.PeekKind() {
	case '"':
		tok, err := dec.ReadToken()
		if err != nil || !keep {
			return nil, err == nil, err
		}
		return tok.String(), true, nil
	case 't', 'f':
		tok, err := dec.ReadToken()
		if err != nil || !keep {
			return nil, err == nil, err
		}
		return tok.Bool(), true, nil
	case '0':
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, false, err
		}
		// Like encoding/json: a number beyond float64 is an error, not
		// a silently clamped value.
		f, err := strconv.ParseFloat(tok.String(), 64)
		if err != nil || math.IsInf(f, 0) {
			return nil, false, errNumberRange
		}
		if !keep {
			return nil, true, nil
		}
		return f, true, nil
	}
	return nil, false, skipValue(dec)
}

// readIdentity reads the identities array and returns its first item, or
// nil when the array is empty or null. Other items are skipped.
func readIdentity(dec *jsontext.Decoder) (*approvals.Identity, error) {
	tok, err := dec.ReadToken()
	switch {
	case err != nil:
		return nil, err
	case tok.Kind() == 'n':
		return nil, nil
	case tok.Kind() != '[':
		return nil, typeError{"an array"}
	}
	var id *approvals.Identity
	for i := 0; dec.PeekKind() != ']'; i++ {
		if i > 0 {
			if err := skipValue(dec); err != nil {
				return nil, err
			}
			continue
		}
		tok, err := dec.ReadToken()
		if err != nil {
			return nil, err
		}
		if tok.Kind() != '{' {
			return nil, typeError{"an array of objects"}
		}
		id = &approvals.Identity{}
		for dec.PeekKind() != '}' {
			tok, err := dec.ReadToken()
			if err != nil {
				return nil, err
			}
			var field *string
			switch tok.String() {
			case "issuer":
				field = &id.Issuer
			case "issuerAssignedId":
				field = &id.IssuerAssignedID
			default:
				if err := skipValue(dec); err != nil {
					return nil, err
				}
				continue
			}
			s, _, err := readString(dec)
			if err != nil {
				return nil, err
			}
			*field = s
		}
		if _, err := dec.ReadToken(); err != nil {
			return nil, err
		}
	}
	if _, err := dec.ReadToken(); err != nil {
		return nil, err
	}
	return id, nil
}

// skipValue reads the next value whole, refusing nesting deeper than
// maxDepth.
func skipValue(dec *jsontext.Decoder) error {
	depth := dec.StackDepth()
	for {
		if _, err := dec.ReadToken(); err != nil {
			return err
		}
		if dec.StackDepth() > maxDepth {
			return errTooDeep
		}
		if dec.StackDepth() == depth {
			return nil
		}
	}
}

// cleanLocale keeps ui_locales, trimmed, when it looks like a list of
// language tags in any of the forms Language reads (blank- or
// comma-separated, with ;q= weights), so that nothing odd is stored or
// logged; otherwise it returns "". The raw list is kept, as CONTRACT
// section 1 asks: Request.Locale is what Entra sent, and Language picks
// the language from it.
func cleanLocale(s string) string {
	// The blanks the language matcher skips, and no others: a value the
	// matcher reads as "\ves" must not be stored as "es".
	s = strings.Trim(s, " \t\r\n")
	if len(s) > maxLocaleLen {
		return ""
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_ ,;=.*", c) >= 0) {
			return ""
		}
	}
	return s
}
