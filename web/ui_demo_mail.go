package web

import (
	"net/http"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"
)

// DemoMail is one email the demo's in-process SMTP server received.
type DemoMail struct {
	To      []string
	Subject string
	At      time.Time
	HTML    string
	Text    string
}

// demoMailView is the Mail page's data.
type demoMailView struct {
	Mails    []DemoMail
	Selected int // index in Mails, -1 for none
	Mail     *DemoMail
}

// demoMail is GET /demo/mail: what the demo sent, newest first, and one
// message (?n=) with its HTML in a sandboxed frame and its text.
func (u *UI) demoMail(c echo.Context) error {
	mails := u.cfg.DemoMail()
	v := &demoMailView{Selected: -1}
	for i := len(mails) - 1; i >= 0; i-- {
		v.Mails = append(v.Mails, mails[i])
	}
	if q := c.QueryParam("n"); q != "" {
		n, err := strconv.Atoi(q)
		if err != nil || n < 0 || n >= len(v.Mails) {
			return errPage(http.StatusNotFound, "Email not found", "There is no email "+strconv.Quote(q)+" in the demo's mailbox. Pick one from the list.")
		}
		v.Selected, v.Mail = n, &v.Mails[n]
	}
	p := u.newPage(c, "Mail", "mail")
	p.Data = v
	return u.render(c, http.StatusOK, "demo-mail", p)
}

// demoMailHTML is GET /demo/mail/{n}/html: one message's HTML part, for the
// Mail page's frame only. It is sandboxed (no script, no form, its own
// origin) and may load nothing from anywhere, as in a mail client.
func (u *UI) demoMailHTML(c echo.Context) error {
	mails := u.cfg.DemoMail()
	n, err := strconv.Atoi(c.Param("n"))
	if err != nil || n < 0 || n >= len(mails) {
		return errPage(http.StatusNotFound, "Email not found", "There is no such email in the demo's mailbox.")
	}
	m := mails[len(mails)-1-n]
	h := c.Response().Header()
	h.Set("Content-Security-Policy", "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'")
	h.Set("X-Frame-Options", "SAMEORIGIN")
	h.Set("Cache-Control", "no-store")
	return c.HTMLBlob(http.StatusOK, []byte(m.HTML))
}
