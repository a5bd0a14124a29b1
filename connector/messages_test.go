package connector

import (
	"slices"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestBuiltinMessagesComplete(t *testing.T) {
	b := builtinMessages()
	for _, lang := range []string{"en", "fr", "pl", "de", "es"} {
		texts, ok := b[lang]
		if !ok {
			t.Errorf("no %s messages", lang)
			continue
		}
		seen := map[string]MessageKey{}
		for _, k := range MessageKeys() {
			s := texts[k]
			if strings.TrimSpace(s) == "" || !utf8.ValidString(s) || len(s) > maxMessageLen {
				t.Errorf("%s %s: %q", lang, k, s)
			}
			if lang != "en" && s == b["en"][k] {
				t.Errorf("%s %s is the English text", lang, k)
			}
			if other, dup := seen[s]; dup {
				t.Errorf("%s: %s and %s share a text", lang, k, other)
			}
			seen[s] = k
		}
		if len(texts) != len(MessageKeys()) {
			t.Errorf("%s has %d texts for %d keys", lang, len(texts), len(MessageKeys()))
		}
	}
	for lang := range b {
		if !validLanguage(lang) {
			t.Errorf("built-in language %q is not a valid code", lang)
		}
	}
}

func TestLanguage(t *testing.T) {
	have := func(l string) bool { return slices.Contains([]string{"en", "fr", "pl", "de", "es"}, l) }
	tests := map[string]string{
		"en-US": "en", "fr-FR": "fr", "pl": "pl", "de": "de", "es-ES": "es",
		"FR-ca": "fr", "es_419": "es", "pt-BR": "", "": "", "   ": "",
		"zh-Hant-TW de-CH": "de", "x-klingon": "", "-fr": "", "fra": "", "f": "",
		"english": "",
	}
	for in, want := range tests {
		if got := Language(in, have); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}
