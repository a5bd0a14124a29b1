// Package mailtest is an SMTP server on loopback (emersion/go-smtp) that
// keeps what it receives in memory: the tests' receiving end and the
// demo's mailbox. It enforces what a real submission server does: AUTH
// only after TLS unless told otherwise, the credentials it was given, and
// the answers a test asks it to fail with.
package mailtest

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"mime/quotedprintable"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strings"
	"sync"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Message is one message the server accepted.
type Message struct {
	From       string
	To         []string
	Data       []byte
	ReceivedAt time.Time
}

// Header parses the message's header.
func (m Message) Header() (netmail.Header, error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return nil, err
	}
	return msg.Header, nil
}

// Options configure a Server.
type Options struct {
	// TLS, when set, offers STARTTLS with this configuration (or, with
	// Implicit, speaks TLS from the first byte).
	TLS      *tls.Config
	Implicit bool
	// Username and Password, when set, are required (AUTH PLAIN)
	// before MAIL.
	Username, Password string
	// InsecureAuth allows AUTH without TLS.
	InsecureAuth bool
	// Fail, when set, is asked at each step ("MAIL", "RCPT", "DATA") and
	// the error it returns is the server's answer.
	Fail func(step string) *smtp.SMTPError
	// Now is the clock of ReceivedAt; time.Now when nil.
	Now func() time.Time
}

// Server is a running SMTP server.
type Server struct {
	opts Options
	srv  *smtp.Server
	ln   net.Listener
	mu   sync.Mutex
	msgs []Message
	done chan struct{}
}

// Start listens on 127.0.0.1 on a free port and serves until Close.
func Start(opts Options) (*Server, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("mailtest: listen: %w", err)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	s := &Server{opts: opts, ln: ln, done: make(chan struct{})}
	s.srv = smtp.NewServer(s)
	s.srv.Domain = "mailtest.localhost"
	s.srv.AllowInsecureAuth = opts.InsecureAuth
	s.srv.ReadTimeout, s.srv.WriteTimeout = 10*time.Second, 10*time.Second
	if opts.TLS != nil {
		if opts.Implicit {
			ln = tls.NewListener(ln, opts.TLS)
		} else {
			s.srv.TLSConfig = opts.TLS
		}
	}
	go func() {
		defer close(s.done)
		_ = s.srv.Serve(ln)
	}()
	return s, nil
}

// Addr returns host:port.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops the server.
func (s *Server) Close() error {
	err := s.srv.Close()
	<-s.done
	if errors.Is(err, smtp.ErrServerClosed) {
		return nil
	}
	return err
}

// Messages returns a copy of what was received, oldest first.
func (s *Server) Messages() []Message {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Message(nil), s.msgs...)
}

// Add stores m as if it had been received (the demo's page is tested so).
func (s *Server) Add(m Message) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.msgs = append(s.msgs, m)
}

// NewSession implements smtp.Backend.
func (s *Server) NewSession(*smtp.Conn) (smtp.Session, error) {
	return &session{s: s}, nil
}

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

var errAuthRequired = &smtp.SMTPError{Code: 530, EnhancedCode: smtp.EnhancedCode{5, 7, 0}, Message: "Authentication required"}

func (se *session) fail(step string) error {
	if se.s.opts.Fail != nil {
		if e := se.s.opts.Fail(step); e != nil {
			return e
		}
	}
	return nil
}

func (se *session) AuthMechanisms() []string {
	if se.s.opts.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (se *session) Auth(mech string) (sasl.Server, error) {
	check := func(user, pass string) error {
		if user != se.s.opts.Username || pass != se.s.opts.Password {
			return &smtp.SMTPError{Code: 535, EnhancedCode: smtp.EnhancedCode{5, 7, 8}, Message: "Authentication credentials invalid"}
		}
		se.authed = true
		return nil
	}
	switch mech {
	case sasl.Plain:
		return sasl.NewPlainServer(func(_, user, pass string) error { return check(user, pass) }), nil
	}
	return nil, smtp.ErrAuthUnknownMechanism
}

func (se *session) Mail(from string, _ *smtp.MailOptions) error {
	if se.s.opts.Username != "" && !se.authed {
		return errAuthRequired
	}
	if err := se.fail("MAIL"); err != nil {
		return err
	}
	se.from = from
	return nil
}

func (se *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	if err := se.fail("RCPT"); err != nil {
		return err
	}
	se.to = append(se.to, to)
	return nil
}

func (se *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	if err := se.fail("DATA"); err != nil {
		return err
	}
	se.s.Add(Message{From: se.from, To: se.to, Data: b, ReceivedAt: se.s.opts.Now()})
	return nil
}

func (se *session) Reset()        { se.from, se.to = "", nil }
func (se *session) Logout() error { return nil }

// Parts decodes the message: its subject, and its text/plain and
// text/html parts (a single-part message gives one of them).
func (m Message) Parts() (subject, text, html string, err error) {
	msg, err := netmail.ReadMessage(bytes.NewReader(m.Data))
	if err != nil {
		return "", "", "", fmt.Errorf("mailtest: %w", err)
	}
	subject, err = new(mime.WordDecoder).DecodeHeader(msg.Header.Get("Subject"))
	if err != nil {
		subject = msg.Header.Get("Subject")
	}
	parts := map[string]string{}
	if err := readParts(textproto.MIMEHeader(msg.Header), msg.Body, parts); err != nil {
		return subject, "", "", err
	}
	return subject, parts["text/plain"], parts["text/html"], nil
}

// readParts collects the text parts of a MIME body by content type,
// decoding quoted-printable and base64.
func readParts(h textproto.MIMEHeader, body io.Reader, out map[string]string) error {
	mt, params, err := mime.ParseMediaType(h.Get("Content-Type"))
	if err != nil {
		mt = "text/plain"
	}
	if strings.HasPrefix(mt, "multipart/") {
		mr := multipart.NewReader(body, params["boundary"])
		for {
			p, err := mr.NextRawPart()
			if err == io.EOF {
				return nil
			}
			if err != nil {
				return fmt.Errorf("mailtest: %w", err)
			}
			if err := readParts(p.Header, p, out); err != nil {
				return err
			}
		}
	}
	var r io.Reader = body
	switch strings.ToLower(h.Get("Content-Transfer-Encoding")) {
	case "quoted-printable":
		r = quotedprintable.NewReader(body)
	case "base64":
		r = base64.NewDecoder(base64.StdEncoding, body)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		return fmt.Errorf("mailtest: %w", err)
	}
	if _, ok := out[mt]; !ok {
		out[mt] = string(b)
	}
	return nil
}
