package api

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// maxBody bounds request bodies; the largest legitimate one, an
// invitation with attributes, is a few kilobytes.
const maxBody = 64 << 10

// decodeBody reads the JSON request body of c into v, a pointer to the
// route's body struct. It is the one decoder of every JSON body of the
// API; every handler that takes a body calls it.
//
// An empty body is allowed when optional. The body must be one JSON
// object, at most maxBody bytes (invalid UTF-8 in a string is read as
// U+FFFD), and is refused with a 400 (413
// when too large) when it gives a member twice ({"email":"a","email":"b"}
// would otherwise be taken as the second), names a member v does not have
// (so that a misspelt field is not silently ignored; names are matched
// exactly), has a value of the wrong JSON type, or is followed by more
// data. Every message says what was wrong in the caller's terms: the
// member, as a path such as group_ids[0], and the JSON type expected.
func decodeBody(c echo.Context, v any, optional bool) error {
	data, err := io.ReadAll(http.MaxBytesReader(c.Response(), c.Request().Body, maxBody))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return &apiError{status: http.StatusRequestEntityTooLarge, code: codeTooLarge, message: fmt.Sprintf("the request body is larger than %d KiB", maxBody>>10)}
	case err != nil:
		return &apiError{status: http.StatusBadRequest, code: string(approvals.EInvalid), message: "the request body could not be read to its end; send it again", cause: err}
	}
	if strings.Trim(string(data), " \t\r\n") == "" {
		if optional {
			return nil
		}
		return invalid("a JSON request body is required")
	}
	return decodeJSON(data, v)
}

// decodeJSON is decodeBody's decoding of a body read in full.
func decodeJSON(data []byte, v any) error {
	// Invalid UTF-8 in a string becomes U+FFFD, as encoding/json has
	// always done here: stored text is always valid UTF-8.
	err := json.Unmarshal(data, v, json.RejectUnknownMembers(true), jsontext.AllowInvalidUTF8(true))
	if err == nil {
		return nil
	}
	return invalid("%s", bodyErrorMessage(err, reflect.TypeOf(v)))
}

// bodyErrorMessage words a decoding error of a body decoded into a value
// of type t, naming members by their JSON path and types by their JSON
// names, never Go's.
func bodyErrorMessage(err error, t reflect.Type) string {
	var syn *jsontext.SyntacticError
	var sem *json.SemanticError
	switch {
	case errors.As(err, &syn):
		reason := "a syntax error"
		if syn.Err != nil {
			reason = syn.Err.Error()
		}
		switch {
		case errors.Is(syn.Err, jsontext.ErrDuplicateName):
			return fmt.Sprintf("the request body gives %s more than once; send each member once", quotePath(memberPath(t, syn.JSONPointer)))
		case syn.JSONPointer == "" && strings.Contains(reason, "after top-level value"):
			return "unexpected data after the JSON object: send one JSON object"
		case errors.Is(syn.Err, io.ErrUnexpectedEOF):
			return "the request body is not valid JSON: it ends before the JSON object is complete"
		}
		where := ""
		if p := memberPath(t, syn.JSONPointer); p != "" {
			where = " in " + quotePath(p)
		}
		return fmt.Sprintf("the request body is not valid JSON (at byte %d%s): %s", syn.ByteOffset, where, reason)
	case errors.As(err, &sem):
		if sem.JSONPointer == "" {
			return "the request body must be a JSON object, not " + jsonKindName(sem.JSONKind)
		}
		path := memberPath(t, sem.JSONPointer)
		if errors.Is(sem.Err, json.ErrUnknownName) {
			msg := fmt.Sprintf("unknown field %s in the request body", quotePath(path))
			if names := memberNames(t, sem.JSONPointer.Parent()); len(names) > 0 {
				msg += "; the fields here are " + strings.Join(names, ", ")
			}
			return msg
		}
		if sem.JSONKind == '0' && sem.Err != nil {
			return fmt.Sprintf("field %s is a number out of range", quotePath(path))
		}
		if want := expectedJSON(sem.GoType); want != "" && sem.Err == nil {
			return fmt.Sprintf("field %s must be %s, not %s", quotePath(path), want, jsonKindName(sem.JSONKind))
		}
		return fmt.Sprintf("field %s has a value that cannot be used here (%s)", quotePath(path), jsonKindName(sem.JSONKind))
	}
	return "the request body is not valid JSON"
}

// quotePath quotes a member path for a message.
func quotePath(p string) string { return strconv.Quote(p) }

// memberPath turns a JSON pointer into the path a caller writes:
// attributes.city, group_ids[0]. It walks t to tell array indices from
// member names.
func memberPath(t reflect.Type, ptr jsontext.Pointer) string {
	var b strings.Builder
	for tok := range ptr.Tokens() {
		t = deref(t)
		switch {
		case t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array):
			b.WriteString("[" + tok + "]")
			t = t.Elem()
			continue
		case t != nil && t.Kind() == reflect.Map:
			t = t.Elem()
		case t != nil && t.Kind() == reflect.Struct:
			t = fieldType(t, tok)
		default:
			t = nil
		}
		if b.Len() > 0 {
			b.WriteByte('.')
		}
		b.WriteString(tok)
	}
	return b.String()
}

// memberNames lists the JSON member names of the struct at ptr in t, for
// a message about an unknown one; nil when it is not a struct.
func memberNames(t reflect.Type, ptr jsontext.Pointer) []string {
	for tok := range ptr.Tokens() {
		t = deref(t)
		switch {
		case t == nil:
			return nil
		case t.Kind() == reflect.Struct:
			t = fieldType(t, tok)
		case t.Kind() == reflect.Map || t.Kind() == reflect.Slice || t.Kind() == reflect.Array:
			t = t.Elem()
		default:
			return nil
		}
	}
	t = deref(t)
	if t == nil || t.Kind() != reflect.Struct {
		return nil
	}
	var names []string
	for i := range t.NumField() {
		if name := jsonName(t.Field(i)); name != "" {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

// fieldType is the type of the member called name of struct t; nil when
// there is none.
func fieldType(t reflect.Type, name string) reflect.Type {
	for i := range t.NumField() {
		if f := t.Field(i); jsonName(f) == name {
			return f.Type
		}
	}
	return nil
}

// jsonName is the member name of an exported struct field; "" for fields
// JSON skips.
func jsonName(f reflect.StructField) string {
	if !f.IsExported() {
		return ""
	}
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	switch name {
	case "-":
		return ""
	case "":
		return f.Name
	}
	return name
}

func deref(t reflect.Type) reflect.Type {
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}

// expectedJSON names the JSON type a Go type is read from; "" when any
// will do or it cannot be said.
func expectedJSON(t reflect.Type) string {
	t = deref(t)
	if t == nil {
		return ""
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Map, reflect.Struct:
		return "an object"
	}
	return ""
}

// jsonKindName names a JSON kind as the JSON specification does.
func jsonKindName(k jsontext.Kind) string {
	switch k {
	case '"':
		return "a string"
	case '0':
		return "a number"
	case 't', 'f':
		return "a boolean"
	case 'n':
		return "null"
	case '{':
		return "an object"
	case '[':
		return "an array"
	}
	return "a value of another type"
}
