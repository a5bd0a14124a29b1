package externalid

import (
	"errors"
	"math"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"

	"github.com/approvals-dev/approvals/approvals"
)

// Limits on what a payload may carry. Entra's are a few kilobytes.
const (
	maxAttributes     = 200
	maxAttributeName  = 256
	maxAttributeValue = 1024
	maxDisplayName    = 256
	maxLocaleLen      = 256
	maxIdentities     = 16
)

// Payload is what the decoder reads from an extension call: the sign-up,
// and where it came from.
type Payload struct {
	// SignUp is the person: email, display name, identity, every other
	// attribute by name, and the locale.
	SignUp approvals.SignUp
	// TenantID is data.tenantId.
	TenantID string
	// EventType is the top-level type, e.g.
	// "microsoft.graph.authenticationEvent.attributeCollectionSubmit".
	EventType string
	// CorrelationID is Entra's id of the sign-up attempt, for the log.
	CorrelationID string
	// ClientAppID and ClientAppName are the application the person is
	// signing up for (authenticationContext.clientServicePrincipal).
	ClientAppID, ClientAppName string
	// EmailAttribute is the attribute name the email was read from, or ""
	// when it came from an identity: a validation error points at it.
	EmailAttribute string
	// AttributeErrors are problems of single attributes the person can
	// fix (too long): name as sent, then the message key.
	AttributeErrors map[string]string
}

// DecodeError says why a payload was refused. Reason never contains a
// value, so it is safe to log.
type DecodeError struct{ Reason string }

// Error implements error.
func (e *DecodeError) Error() string { return "external ID: refused payload: " + e.Reason }

// wire is the payload's shape, read with go-json-experiment/json (the
// JSON library the connector's decoder uses too) in one pass: member names
// match case-insensitively, which CONTRACT asks of attribute names and
// which covers "@odata.type" and "@odata.Type" alike. Attributes and
// identities read themselves tolerantly (wireAttr, wireIdentities): one
// odd attribute or identity must not lose the rest.
type wire struct {
	Type string `json:"type"`
	Data struct {
		TenantID              string `json:"tenantId"`
		AuthenticationContext struct {
			CorrelationID string `json:"correlationId"`
			Client        struct {
				Locale string `json:"locale"`
			} `json:"client"`
			ClientServicePrincipal struct {
				AppID          string `json:"appId"`
				AppDisplayName string `json:"appDisplayName"`
			} `json:"clientServicePrincipal"`
		} `json:"authenticationContext"`
		UserSignUpInfo struct {
			Attributes map[string]wireAttr `json:"attributes"`
			Identities wireIdentities      `json:"identities"`
		} `json:"userSignUpInfo"`
	} `json:"data"`
}

// decodeOptions are the options of every payload decode.
var decodeOptions = json.JoinOptions(json.MatchCaseInsensitiveNames(true), jsontext.AllowDuplicateNames(true))

// wireAttr is one attribute: {"value": ..., ...} with "value" found
// case-insensitively, or a bare value. Its value is kept by JSON kind
// (attributeValue); ok is false when there is none to keep.
type wireAttr struct {
	value any
	ok    bool
}

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (a *wireAttr) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '{' {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		a.value, a.ok = attributeValue(v)
		return nil
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != '}' {
		name, err := dec.ReadToken()
		if err != nil {
			return err
		}
		if !a.ok && strings.EqualFold(name.String(), "value") {
			v, err := dec.ReadValue()
			if err != nil {
				return err
			}
			a.value, a.ok = attributeValue(v)
			continue
		}
		if err := dec.SkipValue(); err != nil {
			return err
		}
	}
	_, err := dec.ReadToken()
	return err
}

// wireIdentities is the identities array; anything else is no identities,
// and items that are not identity objects are skipped.
type wireIdentities []wireIdentity

// UnmarshalJSONFrom implements json.UnmarshalerFrom.
func (ids *wireIdentities) UnmarshalJSONFrom(dec *jsontext.Decoder) error {
	if dec.PeekKind() != '[' {
		return dec.SkipValue()
	}
	if _, err := dec.ReadToken(); err != nil {
		return err
	}
	for dec.PeekKind() != ']' {
		v, err := dec.ReadValue()
		if err != nil {
			return err
		}
		var id wireIdentity
		if len(*ids) < maxIdentities && v.Kind() == '{' && json.Unmarshal(v, &id, decodeOptions) == nil {
			*ids = append(*ids, id)
		}
	}
	_, err := dec.ReadToken()
	return err
}

type wireIdentity struct {
	SignInType       string `json:"signInType"`
	Issuer           string `json:"issuer"`
	IssuerAssignedID string `json:"issuerAssignedId"`
}

// canonical maps the lower-cased names of the Graph user properties an
// attribute page collects onto their spelling, so that a claim is stored
// under one name however the payload cased it. Other names (extension_*)
// are kept as sent.
var canonical = map[string]string{
	"givenname": "givenName", "surname": "surname", "lastname": "surname",
	"jobtitle": "jobTitle", "streetaddress": "streetAddress", "city": "city",
	"postalcode": "postalCode", "state": "state", "country": "country",
}

// emailAttributes are the attribute names, lower-cased, that carry the
// email in Microsoft's payloads.
var emailAttributes = []string{"email", "emailaddress", "mail"}

// Decode reads an OnAttributeCollectionStart or OnAttributeCollectionSubmit
// payload. It finds the email in every place CONTRACT section 2 lists (an
// identity with signInType email or emailAddress, a federated identity with
// issuer mail, or the email / EmailAddress attribute), takes the first
// identity as the person's, and every other attribute by the JSON kind of
// its value: strings, finite numbers and booleans as they are, arrays of
// them joined with commas, anything else dropped. A payload with no email
// decodes with SignUp.Email "": the caller decides.
func Decode(body []byte) (Payload, error) {
	var w wire
	if len(body) == 0 || json.Unmarshal(body, &w, decodeOptions) != nil {
		return Payload{}, &DecodeError{Reason: "not a JSON object of the extension payload's shape"}
	}
	d := w.Data
	ctx := d.AuthenticationContext
	p := Payload{
		TenantID:      truncate(d.TenantID, 64),
		EventType:     truncate(w.Type, 128),
		CorrelationID: truncate(ctx.CorrelationID, 64),
		ClientAppID:   truncate(ctx.ClientServicePrincipal.AppID, 64),
		ClientAppName: truncate(ctx.ClientServicePrincipal.AppDisplayName, 256),
	}
	if l := ctx.Client.Locale; len(l) <= maxLocaleLen {
		p.SignUp.Locale = l
	}
	if len(d.UserSignUpInfo.Attributes) > maxAttributes {
		return Payload{}, &DecodeError{Reason: "too many attributes"}
	}

	ids := d.UserSignUpInfo.Identities
	email := ""
	for _, id := range ids {
		st := strings.ToLower(id.SignInType)
		if st == "email" || st == "emailaddress" || (st == "federated" && approvals.NormalizeIssuer(id.Issuer) == approvals.IssuerMail) {
			email = id.IssuerAssignedID
			break
		}
	}
	for _, id := range ids {
		if id.Issuer != "" && id.IssuerAssignedID != "" && len(id.Issuer) <= 256 && len(id.IssuerAssignedID) <= 512 {
			p.SignUp.Identity = &approvals.Identity{Issuer: approvals.NormalizeIssuer(id.Issuer), IssuerAssignedID: strings.TrimSpace(id.IssuerAssignedID)}
			break
		}
	}

	claims := make(map[string]any, len(d.UserSignUpInfo.Attributes))
	for name, attr := range d.UserSignUpInfo.Attributes {
		if name == "" || len(name) > maxAttributeName || !utf8.ValidString(name) || !attr.ok {
			continue
		}
		v := attr.value
		lower := strings.ToLower(name)
		if isEmailAttribute(lower) {
			if s, isStr := v.(string); isStr && email == "" && p.EmailAttribute == "" {
				email, p.EmailAttribute = s, name
			}
			continue
		}
		if s, isStr := v.(string); isStr && len(s) > maxAttributeValue {
			p.addError(name, "too_large")
			continue
		}
		if lower == "displayname" {
			if s, isStr := v.(string); isStr {
				if len(s) > maxDisplayName {
					p.addError(name, "too_large")
				} else {
					p.SignUp.DisplayName = s
				}
			}
			continue
		}
		if c, known := canonical[lower]; known {
			name = c
		}
		claims[name] = v
	}
	if len(claims) > 0 {
		p.SignUp.Claims = claims
	}
	p.SignUp.Email = strings.TrimSpace(email)
	p.SignUp.Source = approvals.SourceExternalID
	if p.ClientAppID != "" {
		p.SignUp.Application = &approvals.Application{ID: p.ClientAppID, DisplayName: p.ClientAppName}
	}
	return p, nil
}

func (p *Payload) addError(name, key string) {
	if p.AttributeErrors == nil {
		p.AttributeErrors = make(map[string]string)
	}
	p.AttributeErrors[name] = key
}

func isEmailAttribute(lower string) bool {
	for _, n := range emailAttributes {
		if lower == n {
			return true
		}
	}
	return false
}

// attributeValue returns an attribute's value by its JSON kind, never by
// its odata type, which the docs spell two ways: strings, finite numbers
// and booleans as they are, arrays of them joined with commas (older docs
// show multi-valued attributes as arrays, newer ones as such strings);
// null and objects are not kept.
func attributeValue(v jsontext.Value) (any, bool) {
	switch v.Kind() {
	case '"':
		b, err := jsontext.AppendUnquote(nil, v)
		if err != nil || !utf8.Valid(b) {
			return nil, false
		}
		return string(b), true
	case 't':
		return true, true
	case 'f':
		return false, true
	case '0':
		f, err := strconv.ParseFloat(string(v), 64)
		if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, false
		}
		return f, true
	case '[':
		var items []jsontext.Value
		if json.Unmarshal(v, &items) != nil {
			return nil, false
		}
		parts := make([]string, 0, len(items))
		for _, it := range items {
			x, ok := attributeValue(it)
			if !ok {
				continue
			}
			switch x := x.(type) {
			case string:
				parts = append(parts, x)
			case bool:
				parts = append(parts, strconv.FormatBool(x))
			case float64:
				parts = append(parts, strconv.FormatFloat(x, 'f', -1, 64))
			}
		}
		return strings.Join(parts, ","), true
	}
	return nil, false
}

// errNoEmail marks a payload without any email.
var errNoEmail = errors.New("no email in the payload")
