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
		// The list forms CONTRACT section 1 names: space-separated
		// (OpenID Connect), comma-separated, browser Accept-Language.
		"pt-BR fr-FR en":                    "fr",
		"fr-FR,en-US":                       "fr",
		"fr-FR, en-US":                      "fr",
		"pt-BR,de-DE":                       "de",
		"fr-FR,fr;q=0.9,en;q=0.8":           "fr",
		"pt-BR,pt;q=0.9,pl;q=0.8,en;q=0.7":  "pl",
		"en;q=0.5,fr":                       "fr", // the weight wins over the order
		"en;q=0.5, de;q=0.7, fr;q=0.6":      "de",
		"en;q=0.8,fr;q=0.8":                 "en", // equal weights keep the order
		"fr;q=0,en":                         "en", // q=0: not acceptable
		"fr;q=0.000":                        "",
		"fr; q=1.0":                         "fr",
		"fr;Q=0.5":                          "fr",
		"fr;q=1.5,en;q=0.1":                 "en", // malformed weights skip the tag
		"fr;q=abc,de;q=0.1":                 "de",
		"fr;q=0.12345,de;q=0.1":             "de",
		"fr;q=.5,de;q=0.1":                  "de",
		"*,fr;q=0.5":                        "fr",
		"*;q=0.1":                           "",
		",,fr,,":                            "fr",
		"fr-FR;level=1;q=0.4,en-GB;q=0.3":   "fr",
		"zh-Hant-TW,zh;q=0.9 ,es-419;q=0.1": "es",
		"PL,en;q=0.1":                       "pl",
		";q=0.9,de":                         "de",
	}
	for in, want := range tests {
		if got := Language(in, have); got != want {
			t.Errorf("Language(%q) = %q, want %q", in, got, want)
		}
	}
}
