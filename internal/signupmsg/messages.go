// Package signupmsg is the catalogue of texts shown to people signing up,
// shared by the two wire contracts that show them: the workforce API
// connector (package connector) and the External ID custom authentication
// extensions (package externalid). It holds the built-in texts in five
// languages, merges an operator's overrides over them, and picks the
// language of a locale value.
package signupmsg

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/internal/locale"
)

// Key names one message shown to a person signing up. The keys are
// also the names operators use to override a text (Config.Messages).
type Key string

// The messages the connector can show. The comment of each says when.
const (
	// MsgPending: the request step recorded a new request, or found one
	// still waiting for a reviewer.
	MsgPending Key = "pending"
	// MsgAlreadyProcessing: the check step found a request still waiting
	// for a reviewer.
	MsgAlreadyProcessing Key = "already_processing"
	// MsgDenied: the person's request was denied, by a reviewer or by an
	// auto-deny domain.
	MsgDenied Key = "denied"
	// MsgProvisioning: the request was approved by a reviewer and the
	// account is still being created (or its creation failed and waits
	// for an admin): letting Entra continue would create a second account.
	MsgProvisioning Key = "provisioning"
	// MsgTryLater: an internal error, such as the store being unavailable.
	MsgTryLater Key = "try_later"
	// MsgInvalidEmail: the email claim is missing or not a plain address.
	MsgInvalidEmail Key = "invalid_email"
	// MsgBadRequest: the body is not a JSON object of claims Entra would
	// send (malformed JSON, wrong content type, bad identities).
	MsgBadRequest Key = "bad_request"
	// MsgTooLarge: the body is larger than Config.MaxBodyBytes, or a claim
	// is longer than its limit.
	MsgTooLarge Key = "too_large"
	// MsgInvalidName: the display name, given name or surname has a
	// control or text-direction character (approvals.UnsafeRune).
	MsgInvalidName Key = "invalid_name"
	// MsgInvalidText: another attribute has a control or text-direction
	// character.
	MsgInvalidText Key = "invalid_text"
	// MsgTitle: the heading of an External ID block page (the workforce
	// connector's answers have no heading, so it does not use it).
	MsgTitle Key = "title"
	// MsgFixErrors: the line above the per-attribute errors of an External
	// ID validation error (showValidationError's message).
	MsgFixErrors Key = "fix_errors"
)

// Keys returns every message key, in the order the documentation
// shows them.
func Keys() []Key {
	return []Key{
		MsgPending, MsgAlreadyProcessing, MsgDenied, MsgProvisioning,
		MsgTryLater, MsgInvalidEmail, MsgBadRequest, MsgTooLarge,
		MsgInvalidName, MsgInvalidText, MsgTitle, MsgFixErrors,
	}
}

// Fallback answers people whose ui_locales matches no language
// the connector has texts for.
const Fallback = "en"

// builtinMessages are the texts shipped with the connector, by language
// then key. The English pending, already-processing and denied texts are
// the ones Microsoft's approval-workflow guide uses.
func Builtin() map[string]map[Key]string {
	return map[string]map[Key]string{
		"en": {
			MsgPending:           "Your account is now waiting for approval. You'll be notified when your request has been approved.",
			MsgAlreadyProcessing: "Your access request is already processing. You'll be notified when your request has been approved.",
			MsgDenied:            "Your sign up request has been denied. Please contact an administrator if you believe this is an error.",
			MsgProvisioning:      "Your request has been approved and your account is being set up. You'll be notified when it is ready.",
			MsgTryLater:          "We couldn't process your request right now. Please try again later.",
			MsgInvalidEmail:      "Your email address is not valid. Please use a valid email address and try again.",
			MsgBadRequest:        "We couldn't read your sign-up details. Please try again later or contact an administrator.",
			MsgTooLarge:          "The details you entered are too long. Please shorten them and try again.",
			MsgInvalidName:       "Your name contains characters that can't be used (control or text-direction characters). Please retype your name and try again.",
			MsgInvalidText:       "One of the details you entered contains characters that can't be used (control or text-direction characters). Please retype it and try again.",
			MsgTitle:             "Sign-up request",
			MsgFixErrors:         "Please fix the errors below.",
		},
		"fr": {
			MsgPending:           "Votre compte est maintenant en attente d'approbation. Vous recevrez une notification lorsque votre demande aura été approuvée.",
			MsgAlreadyProcessing: "Votre demande d'accès est déjà en cours de traitement. Vous recevrez une notification lorsqu'elle aura été approuvée.",
			MsgDenied:            "Votre demande d'inscription a été refusée. Si vous pensez qu'il s'agit d'une erreur, veuillez contacter un administrateur.",
			MsgProvisioning:      "Votre demande a été approuvée et votre compte est en cours de création. Vous recevrez une notification dès qu'il sera prêt.",
			MsgTryLater:          "Nous ne pouvons pas traiter votre demande pour le moment. Veuillez réessayer plus tard.",
			MsgInvalidEmail:      "Votre adresse e-mail n'est pas valide. Veuillez utiliser une adresse e-mail valide et réessayer.",
			MsgBadRequest:        "Nous n'avons pas pu lire les informations de votre inscription. Veuillez réessayer plus tard ou contacter un administrateur.",
			MsgTooLarge:          "Les informations saisies sont trop longues. Veuillez les raccourcir et réessayer.",
			MsgInvalidName:       "Votre nom contient des caractères qui ne peuvent pas être utilisés (caractères de contrôle ou de direction du texte). Veuillez ressaisir votre nom et réessayer.",
			MsgInvalidText:       "L'une des informations saisies contient des caractères qui ne peuvent pas être utilisés (caractères de contrôle ou de direction du texte). Veuillez la ressaisir et réessayer.",
			MsgTitle:             "Demande d'inscription",
			MsgFixErrors:         "Veuillez corriger les erreurs ci-dessous.",
		},
		"pl": {
			MsgPending:           "Twoje konto oczekuje teraz na zatwierdzenie. Otrzymasz powiadomienie, gdy Twój wniosek zostanie zatwierdzony.",
			MsgAlreadyProcessing: "Twój wniosek o dostęp jest już rozpatrywany. Otrzymasz powiadomienie, gdy zostanie zatwierdzony.",
			MsgDenied:            "Twój wniosek o rejestrację został odrzucony. Jeśli uważasz, że to błąd, skontaktuj się z administratorem.",
			MsgProvisioning:      "Twój wniosek został zatwierdzony, a Twoje konto jest właśnie tworzone. Otrzymasz powiadomienie, gdy będzie gotowe.",
			MsgTryLater:          "Nie możemy teraz przetworzyć Twojego wniosku. Spróbuj ponownie później.",
			MsgInvalidEmail:      "Twój adres e-mail jest nieprawidłowy. Użyj prawidłowego adresu e-mail i spróbuj ponownie.",
			MsgBadRequest:        "Nie udało się odczytać danych rejestracji. Spróbuj ponownie później lub skontaktuj się z administratorem.",
			MsgTooLarge:          "Wprowadzone dane są za długie. Skróć je i spróbuj ponownie.",
			MsgInvalidName:       "Twoje imię lub nazwisko zawiera niedozwolone znaki (znaki sterujące lub kierunku tekstu). Wpisz je ponownie i spróbuj jeszcze raz.",
			MsgInvalidText:       "Jedna z wprowadzonych informacji zawiera niedozwolone znaki (znaki sterujące lub kierunku tekstu). Wpisz ją ponownie i spróbuj jeszcze raz.",
			MsgTitle:             "Wniosek o rejestrację",
			MsgFixErrors:         "Popraw poniższe błędy.",
		},
		"de": {
			MsgPending:           "Ihr Konto wartet jetzt auf die Genehmigung. Sie werden benachrichtigt, sobald Ihre Anfrage genehmigt wurde.",
			MsgAlreadyProcessing: "Ihre Zugriffsanfrage wird bereits bearbeitet. Sie werden benachrichtigt, sobald sie genehmigt wurde.",
			MsgDenied:            "Ihre Registrierungsanfrage wurde abgelehnt. Wenden Sie sich bitte an einen Administrator, wenn Sie dies für einen Fehler halten.",
			MsgProvisioning:      "Ihre Anfrage wurde genehmigt und Ihr Konto wird gerade eingerichtet. Sie werden benachrichtigt, sobald es bereit ist.",
			MsgTryLater:          "Ihre Anfrage kann gerade nicht bearbeitet werden. Bitte versuchen Sie es später erneut.",
			MsgInvalidEmail:      "Ihre E-Mail-Adresse ist ungültig. Bitte verwenden Sie eine gültige E-Mail-Adresse und versuchen Sie es erneut.",
			MsgBadRequest:        "Ihre Registrierungsdaten konnten nicht gelesen werden. Bitte versuchen Sie es später erneut oder wenden Sie sich an einen Administrator.",
			MsgTooLarge:          "Ihre Angaben sind zu lang. Bitte kürzen Sie sie und versuchen Sie es erneut.",
			MsgInvalidName:       "Ihr Name enthält Zeichen, die nicht verwendet werden können (Steuer- oder Textrichtungszeichen). Bitte geben Sie Ihren Namen erneut ein und versuchen Sie es noch einmal.",
			MsgInvalidText:       "Eine Ihrer Angaben enthält Zeichen, die nicht verwendet werden können (Steuer- oder Textrichtungszeichen). Bitte geben Sie sie erneut ein und versuchen Sie es noch einmal.",
			MsgTitle:             "Registrierungsanfrage",
			MsgFixErrors:         "Bitte korrigieren Sie die folgenden Fehler.",
		},
		"es": {
			MsgPending:           "Su cuenta está pendiente de aprobación. Recibirá una notificación cuando se apruebe su solicitud.",
			MsgAlreadyProcessing: "Su solicitud de acceso ya se está procesando. Recibirá una notificación cuando se apruebe.",
			MsgDenied:            "Su solicitud de registro ha sido denegada. Si cree que se trata de un error, póngase en contacto con un administrador.",
			MsgProvisioning:      "Su solicitud ha sido aprobada y estamos configurando su cuenta. Recibirá una notificación cuando esté lista.",
			MsgTryLater:          "No podemos procesar su solicitud en este momento. Vuelva a intentarlo más tarde.",
			MsgInvalidEmail:      "Su dirección de correo electrónico no es válida. Use una dirección válida e inténtelo de nuevo.",
			MsgBadRequest:        "No hemos podido leer los datos de su registro. Vuelva a intentarlo más tarde o póngase en contacto con un administrador.",
			MsgTooLarge:          "Los datos introducidos son demasiado largos. Acórtelos e inténtelo de nuevo.",
			MsgInvalidName:       "Su nombre contiene caracteres que no se pueden usar (caracteres de control o de dirección del texto). Vuelva a escribir su nombre e inténtelo de nuevo.",
			MsgInvalidText:       "Uno de los datos introducidos contiene caracteres que no se pueden usar (caracteres de control o de dirección del texto). Vuelva a escribirlo e inténtelo de nuevo.",
			MsgTitle:             "Solicitud de registro",
			MsgFixErrors:         "Corrija los errores siguientes.",
		},
	}
}

// MaxLen bounds an operator's text: Entra shows it on a page.
const MaxLen = 1024

// catalog holds the final text of every message in every language, built
// once by newCatalog from the built-in texts and the operator's overrides.
type Catalog map[string]map[Key]string

// newCatalog merges overrides (key -> language -> text) over the built-in
// texts. A language only the operator knows starts from the final English
// texts, so it is complete even when only some keys are overridden.
func NewCatalog(overrides map[Key]map[string]string) (Catalog, error) {
	for key, byLang := range overrides {
		if !slices.Contains(Keys(), key) {
			return nil, fmt.Errorf("unknown message key %q (known: %s)", key, joinKeys())
		}
		for lang, text := range byLang {
			if !ValidLanguage(lang) {
				return nil, fmt.Errorf("message %q: language %q is not a lower-case 2 or 3 letter code such as \"en\" or \"fr\"", key, lang)
			}
			if strings.TrimSpace(text) == "" || len(text) > MaxLen || !utf8.ValidString(text) {
				return nil, fmt.Errorf("message %q in %q must be non-empty UTF-8 text of at most %d bytes", key, lang, MaxLen)
			}
		}
	}
	c := Catalog(Builtin())
	builtin := Builtin()
	for key, byLang := range overrides {
		for lang, text := range byLang {
			if _, ok := builtin[lang]; ok {
				c[lang][key] = text
			}
		}
	}
	for key, byLang := range overrides {
		for lang, text := range byLang {
			if _, ok := builtin[lang]; ok {
				continue
			}
			if c[lang] == nil {
				c[lang] = maps.Clone(c[Fallback])
			}
			c[lang][key] = text
		}
	}
	return c, nil
}

func joinKeys() string {
	keys := Keys()
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// validLanguage reports whether s is a lower-case ISO 639 code of 2 or 3
// letters.
func ValidLanguage(s string) bool {
	if len(s) < 2 || len(s) > 3 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < 'a' || s[i] > 'z' {
			return false
		}
	}
	return true
}

// Language returns the language to answer in for a ui_locales value: the
// primary language subtag of the most preferred tag that is in have, or ""
// when none is. The matching (every form CONTRACT section 1 lists: one tag,
// space- or comma-separated lists, Accept-Language weights) is
// internal/locale's, which the emails use too.
func Language(uiLocales string, have func(lang string) bool) string {
	return locale.Match(uiLocales, have)
}
