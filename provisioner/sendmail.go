package provisioner

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/microsoftgraph/msgraph-sdk-go/models"
	"github.com/microsoftgraph/msgraph-sdk-go/users"

	"github.com/approvals-dev/approvals/approvals"
)

// MailMessage is an email sent with Graph's sendMail (CONTRACT section 7).
type MailMessage struct {
	// From is the mailbox that sends: its user id or principal name
	// (APPROVALS_MAIL_FROM's address).
	From string
	To   string
	// Subject and HTML are the message; Graph sends one body, HTML.
	Subject string
	HTML    string
	// InternetMessageID is the Message-ID without angle brackets.
	InternetMessageID string
	// Headers are custom internet message headers; Graph takes only
	// names starting with X-.
	Headers map[string]string
}

// SendMail sends m with POST /users/{from}/sendMail (application
// permission Mail.Send), not saved to Sent Items. Graph answers 202. The
// error is an *approvals.DeliveryError wrapping the *GraphError: temporary
// (with Graph's Retry-After) for throttling, timeouts and 5xx, permanent
// otherwise (404 no such mailbox, 403 Mail.Send missing or refused by an
// application access policy, 400 a bad header).
func (d *Directory) SendMail(ctx context.Context, m MailMessage) error {
	for name := range m.Headers {
		if len(name) < 2 || !strings.EqualFold(name[:2], "x-") {
			return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("send mail from %s: header %q: Graph only takes custom headers starting with X-", m.From, name)}
		}
	}
	err := d.sendMail(ctx, m)
	if err == nil {
		return nil
	}
	var ge *GraphError
	if !errors.As(err, &ge) {
		return &approvals.DeliveryError{Permanent: true, Err: err}
	}
	c := classify(ge)
	return &approvals.DeliveryError{Permanent: c != transient, RetryAfter: ge.RetryAfter, Err: ge}
}

func (d *Directory) sendMail(ctx context.Context, m MailMessage) (err error) {
	ctx, info, cancel := d.call(ctx)
	defer cancel()
	defer d.wrap(&err, info, "POST /users/{id}/sendMail", "send mail from %s", m.From)
	msg := models.NewMessage()
	msg.SetSubject(&m.Subject)
	body := models.NewItemBody()
	ct := models.HTML_BODYTYPE
	body.SetContentType(&ct)
	body.SetContent(&m.HTML)
	msg.SetBody(body)
	to := models.NewRecipient()
	addr := models.NewEmailAddress()
	addr.SetAddress(&m.To)
	to.SetEmailAddress(addr)
	msg.SetToRecipients([]models.Recipientable{to})
	if m.InternetMessageID != "" {
		id := "<" + m.InternetMessageID + ">"
		msg.SetInternetMessageId(&id)
	}
	var headers []models.InternetMessageHeaderable
	for _, name := range slices.Sorted(maps.Keys(m.Headers)) {
		h := models.NewInternetMessageHeader()
		n, v := name, m.Headers[name]
		h.SetName(&n)
		h.SetValue(&v)
		headers = append(headers, h)
	}
	if len(headers) > 0 {
		msg.SetInternetMessageHeaders(headers)
	}
	req := users.NewItemSendMailPostRequestBody()
	req.SetMessage(msg)
	save := false
	req.SetSaveToSentItems(&save)
	return d.client.Users().ByUserId(m.From).SendMail().Post(ctx, req, nil)
}
