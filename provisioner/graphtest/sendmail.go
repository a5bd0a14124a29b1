package graphtest

import (
	"net/http"
	"strings"
)

// PermMailSend is the application permission POST /users/{id}/sendMail
// needs.
const PermMailSend = "Mail.Send"

// SentMail is a message POST /users/{id}/sendMail accepted.
type SentMail struct {
	// From is the mailbox's user principal name.
	From            string
	To              []string
	Subject         string
	ContentType     string // "HTML" or "Text"
	Content         string
	InternetID      string            // internetMessageId, when given
	Headers         map[string]string // internetMessageHeaders
	SaveToSentItems bool
}

// SentMails returns the messages sent, oldest first.
func (s *Server) SentMails() []SentMail {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]SentMail(nil), s.sent...)
}

// sendMail is POST /users/{id}/sendMail; s.mu held. As Graph: 202 with no
// body; 404 ErrorInvalidUser for a user without a mailbox (the fake: one
// with no mail property); 403 ErrorAccessDenied without Mail.Send; 400
// ErrorInvalidInternetMessageHeader for a custom header not starting with
// X-, and 400 for a message without recipients or subject body.
func (s *Server) sendMail(req *request) response {
	if !s.granted(PermMailSend) {
		return graphError(http.StatusForbidden, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
	}
	u := s.findUser(req.segs[1])
	if u == nil {
		for _, c := range s.users {
			if m, _ := c.props["mail"].(string); strings.EqualFold(m, req.segs[1]) {
				u = c
				break
			}
		}
	}
	if u == nil || u.props["mail"] == nil {
		return graphError(http.StatusNotFound, "ErrorInvalidUser", "The requested user '"+req.segs[1]+"' is invalid.")
	}
	// The SDK writes the action's parameters as "Message" and
	// "SaveToSentItems"; Graph takes them in any case.
	msg, _ := field(req.body, "message").(map[string]any)
	if msg == nil {
		return graphError(http.StatusBadRequest, "ErrorInvalidRequest", "The message is missing.")
	}
	sent := SentMail{Headers: map[string]string{}}
	sent.From, _ = u.props["userPrincipalName"].(string)
	sent.Subject, _ = msg["subject"].(string)
	sent.InternetID, _ = msg["internetMessageId"].(string)
	if body, ok := msg["body"].(map[string]any); ok {
		sent.ContentType, _ = body["contentType"].(string)
		sent.Content, _ = body["content"].(string)
	}
	if !strings.EqualFold(sent.ContentType, "html") && !strings.EqualFold(sent.ContentType, "text") {
		return graphError(http.StatusBadRequest, "ErrorInvalidRequest", "The body contentType must be Text or HTML.")
	}
	for _, r := range asSlice(msg["toRecipients"]) {
		ea, _ := r.(map[string]any)["emailAddress"].(map[string]any)
		addr, _ := ea["address"].(string)
		if addr == "" || !strings.Contains(addr, "@") {
			return graphError(http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid.")
		}
		sent.To = append(sent.To, addr)
	}
	if len(sent.To) == 0 {
		return graphError(http.StatusBadRequest, "ErrorInvalidRecipients", "At least one recipient is not valid., Recipient is missing.")
	}
	for _, h := range asSlice(msg["internetMessageHeaders"]) {
		m, _ := h.(map[string]any)
		name, _ := m["name"].(string)
		value, _ := m["value"].(string)
		if len(name) < 2 || !strings.EqualFold(name[:2], "x-") {
			return graphError(http.StatusBadRequest, "ErrorInvalidInternetMessageHeader",
				"The internet message header name '"+name+"' should start with 'x-' or 'X-'.")
		}
		sent.Headers[name] = value
	}
	sent.SaveToSentItems, _ = field(req.body, "saveToSentItems").(bool)
	s.sent = append(s.sent, sent)
	return response{status: http.StatusAccepted}
}

// field returns m's value under name, matched case-insensitively.
func field(m map[string]any, name string) any {
	for k, v := range m {
		if strings.EqualFold(k, name) {
			return v
		}
	}
	return nil
}
