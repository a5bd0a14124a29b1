package connector

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/internal/locale"
)

// MessageKey names one message shown to a person signing up. The keys are
// also the names operators use to override a text (Config.Messages).
type MessageKey string

// The messages the connector can show. The comment of each says when.
const (
	// MsgPending: the request step recorded a new request, or found one
	// still waiting for a reviewer.
	MsgPending MessageKey = "pending"
	// MsgAlreadyProcessing: the check step found a request still waiting
	// for a reviewer.
	MsgAlreadyProcessing MessageKey = "already_processing"
	// MsgDenied: the person's request was denied, by a reviewer or by an
	// auto-deny domain.
	MsgDenied MessageKey = "denied"
	// MsgProvisioning: the request was approved by a reviewer and the
	// account is still being created (or its creation failed and waits
	// for an admin): letting Entra continue would create a second account.
	MsgProvisioning MessageKey = "provisioning"
	// MsgTryLater: an internal error, such as the store being unavailable.
	MsgTryLater MessageKey = "try_later"
	// MsgInvalidEmail: the email claim is missing or not a plain address.
	MsgInvalidEmail MessageKey = "invalid_email"
	// MsgBadRequest: the body is not a JSON object of claims Entra would
	// send (malformed JSON, wrong content type, bad identities).
	MsgBadRequest MessageKey = "bad_request"
	// MsgTooLarge: the body is larger than Config.MaxBodyBytes, or a claim
	// is longer than its limit.
	MsgTooLarge MessageKey = "too_large"
)

// MessageKeys returns every message key, in the order the documentation
// shows them.
func MessageKeys() []MessageKey {
	return []MessageKey{
		MsgPending, MsgAlreadyProcessing, MsgDenied, MsgProvisioning,
		MsgTryLater, MsgInvalidEmail, MsgBadRequest, MsgTooLarge,
	}
}

// fallbackLanguage answers people whose ui_locales matches no language
// the connector has texts for.
const fallbackLanguage = "en"

// builtinMessages are the texts shipped with the connector, by language
// then key. The English pending, already-processing and denied texts are
// the ones Microsoft's approval-workflow guide uses.
func builtinMessages() map[string]map[MessageKey]string {
	return map[string]map[MessageKey]string{
		"en": {
			MsgPending:           "Your account is now waiting for approval. You'll be notified when your request has been approved.",
			MsgAlreadyProcessing: "Your access request is already processing. You'll be notified when your request has been approved.",
			MsgDenied:            "Your sign up request has been denied. Please contact an administrator if you believe this is an error.",
			MsgProvisioning:      "Your request has been approved and your account is being set up. You'll be notified when it is ready.",
			MsgTryLater:          "We couldn't process your request right now. Please try again later.",
			MsgInvalidEmail:      "Your email address is not valid. Please use a valid email address and try again.",
			MsgBadRequest:        "We couldn't read your sign-up details. Please try again later or contact an administrator.",
			MsgTooLarge:          "The details you entered are too long. Please shorten them and try again.",
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
		},
	}
}

// maxMessageLen bounds an operator's text: Entra shows it on a page.
const maxMessageLen = 1024

// catalog holds the final text of every message in every language, built
// once by newCatalog from the built-in texts and the operator's overrides.
type catalog map[string]map[MessageKey]string

// newCatalog merges overrides (key -> language -> text) over the built-in
// texts. A language only the operator knows starts from the final English
// texts, so it is complete even when only some keys are overridden.
func newCatalog(overrides map[MessageKey]map[string]string) (catalog, error) {
	for key, byLang := range overrides {
		if !slices.Contains(MessageKeys(), key) {
			return nil, fmt.Errorf("connector: unknown message key %q (known: %s)", key, joinKeys())
		}
		for lang, text := range byLang {
			if !validLanguage(lang) {
				return nil, fmt.Errorf("connector: message %q: language %q is not a lower-case 2 or 3 letter code such as \"en\" or \"fr\"", key, lang)
			}
			if strings.TrimSpace(text) == "" || len(text) > maxMessageLen || !utf8.ValidString(text) {
				return nil, fmt.Errorf("connector: message %q in %q must be non-empty UTF-8 text of at most %d bytes", key, lang, maxMessageLen)
			}
		}
	}
	c := catalog(builtinMessages())
	builtin := builtinMessages()
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
				c[lang] = maps.Clone(c[fallbackLanguage])
			}
			c[lang][key] = text
		}
	}
	return c, nil
}

func joinKeys() string {
	keys := MessageKeys()
	s := make([]string, len(keys))
	for i, k := range keys {
		s[i] = string(k)
	}
	return strings.Join(s, ", ")
}

// validLanguage reports whether s is a lower-case ISO 639 code of 2 or 3
// letters.
func validLanguage(s string) bool {
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
// when none is. See locale.Match for the forms it reads; the emails use
// the same matching.
func Language(uiLocales string, have func(lang string) bool) string {
	return locale.Match(uiLocales, have)
}
