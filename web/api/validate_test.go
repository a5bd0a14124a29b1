package api

import (
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// validationError never shows the validator's own words: rule names,
// Go values, or its errors about broken rules.
func TestValidationErrorsSpeakJSON(t *testing.T) {
	v, err := newValidator()
	if err != nil {
		t.Fatal(err)
	}
	type body struct {
		Tags  []string `json:"tags" validate:"min=2"`
		Color string   `json:"color" validate:"oneof=red green"`
	}
	for _, tt := range []struct {
		in   body
		want string
	}{
		{body{Tags: []string{"a"}, Color: "red"}, "tags is not an accepted value"},
		{body{Tags: []string{"a", "b"}, Color: "blue"}, `color "blue" is not an accepted value`},
	} {
		err := validationError(v.Struct(tt.in))
		msg := approvals.Message(err)
		if approvals.Code(err) != approvals.EInvalid || !strings.Contains(msg, tt.want) {
			t.Errorf("%+v: %v, want an invalid error saying %q", tt.in, err, tt.want)
		}
		for _, leak := range []string{"min", "oneof", "[a]", "Key: '"} {
			if strings.Contains(msg, leak) {
				t.Errorf("%+v: message %q shows the validator's %q", tt.in, msg, leak)
			}
		}
	}
	// Rules that cannot run are our bug: an internal error, logged, not
	// shown.
	if err := validationError(v.Struct(42)); approvals.Code(err) != approvals.EInternal {
		t.Errorf("a broken rule: %v, want an internal error", err)
	}
}
