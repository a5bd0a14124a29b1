package mail

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	netmail "net/mail"
	"net/textproto"
	"strconv"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/approvals-dev/approvals/approvals"
)

// The SMTP connection security modes (APPROVALS_SMTP_TLS).
const (
	TLSStartTLS = "starttls" // STARTTLS required (submission, port 587)
	TLSImplicit = "tls"      // implicit TLS (port 465)
	TLSNone     = "none"     // plain text; credentials only to a loopback address
)

// DefaultSMTPTimeout bounds one SMTP conversation when SMTPConfig.Timeout
// is zero.
const DefaultSMTPTimeout = 30 * time.Second

// SMTPConfig configures the SMTP transport.
type SMTPConfig struct {
	Addr     string // host:port
	Username string // no AUTH when empty
	Password string
	TLS      string // TLSStartTLS (when empty), TLSImplicit or TLSNone
	// TLSConfig, when set, is used for the TLS handshake (its ServerName
	// defaults to Addr's host); tests set RootCAs.
	TLSConfig *tls.Config
	Timeout   time.Duration
	// From is the sender, "addr" or "Display Name <addr>".
	From string
}

// SMTP sends messages over SMTP with one connection per message.
type SMTP struct {
	cfg      SMTPConfig
	host     string
	port     int
	fromName string
	fromAddr string
}

// NewSMTP checks cfg and returns the transport.
func NewSMTP(cfg SMTPConfig) (*SMTP, error) {
	host, portStr, err := net.SplitHostPort(cfg.Addr)
	if err != nil || host == "" {
		return nil, fmt.Errorf("mail: SMTP address %q is not host:port", cfg.Addr)
	}
	port, err := strconv.Atoi(portStr)
	if err != nil || port < 1 || port > 65535 {
		return nil, fmt.Errorf("mail: SMTP address %q: bad port", cfg.Addr)
	}
	switch cfg.TLS {
	case "":
		cfg.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		return nil, fmt.Errorf("mail: SMTP TLS mode %q is not starttls, tls or none", cfg.TLS)
	}
	if cfg.TLS == TLSNone && (cfg.Username != "" || cfg.Password != "") && !isLoopback(host) {
		return nil, fmt.Errorf("mail: SMTP TLS none sends credentials in clear text: only allowed to a loopback address, not %q", host)
	}
	if (cfg.Username == "") != (cfg.Password == "") {
		return nil, errors.New("mail: SMTP username and password go together")
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultSMTPTimeout
	}
	name, addr, err := ParseFrom(cfg.From)
	if err != nil {
		return nil, err
	}
	return &SMTP{cfg: cfg, host: host, port: port, fromName: name, fromAddr: addr}, nil
}

// ParseFrom reads a sender, "addr" or "Display Name <addr>".
func ParseFrom(s string) (name, addr string, err error) {
	a, err := netmail.ParseAddress(s)
	if err != nil {
		return "", "", fmt.Errorf("mail: sender %q is not \"addr\" or \"Name <addr>\": %w", s, err)
	}
	if a.Name != headerText(a.Name) {
		return "", "", fmt.Errorf("mail: sender %q: the display name has control characters", s)
	}
	return a.Name, a.Address, nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// newMsg builds the go-mail message of m.
func (s *SMTP) newMsg(m *Message) (*gomail.Msg, error) {
	if err := checkAddress(m.To); err != nil {
		return nil, err
	}
	msg := gomail.NewMsg()
	var err error
	if s.fromName != "" {
		err = msg.FromFormat(s.fromName, s.fromAddr)
	} else {
		err = msg.From(s.fromAddr)
	}
	if err != nil {
		return nil, fmt.Errorf("from: %w", err)
	}
	if err := msg.To(m.To); err != nil {
		return nil, fmt.Errorf("to: %w", err)
	}
	msg.Subject(headerText(m.Subject))
	msg.SetMessageIDWithValue(m.MessageID)
	msg.SetDate()
	msg.SetGenHeader("Auto-Submitted", "auto-generated")
	msg.SetGenHeader(gomail.HeaderXAutoResponseSuppress, "All")
	if m.Lang != "" {
		msg.SetGenHeader(gomail.HeaderContentLang, m.Lang)
	}
	msg.SetBodyString(gomail.TypeTextPlain, m.Text)
	msg.AddAlternativeString(gomail.TypeTextHTML, m.HTML)
	return msg, nil
}

// Send sends m in one SMTP conversation bounded by the configured timeout
// and ctx. 5xx answers are permanent failures, anything else temporary.
func (s *SMTP) Send(ctx context.Context, m *Message) error {
	msg, err := s.newMsg(m)
	if err != nil {
		return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("smtp: %w", err)}
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if s.cfg.TLSConfig != nil {
		tc = s.cfg.TLSConfig.Clone()
	}
	if tc.ServerName == "" {
		tc.ServerName = s.host
	}
	// go-mail bounds each read and write by its timeout: no longer than
	// what is left of ctx.
	timeout := s.cfg.Timeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	opts := []gomail.Option{
		gomail.WithPort(s.port), gomail.WithTimeout(timeout), gomail.WithTLSConfig(tc),
		gomail.WithHELO(heloName(s.fromAddr)),
	}
	if s.cfg.TLS != TLSImplicit {
		// go-mail only knows a connection it dialled itself is implicit
		// TLS; for the others, ours closes on ctx's end.
		opts = append(opts, gomail.WithDialContextFunc(dialer(ctx)))
	}
	switch s.cfg.TLS {
	case TLSStartTLS:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL(), gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	}
	if s.cfg.Username != "" {
		auth := gomail.SMTPAuthAutoDiscover
		if s.cfg.TLS == TLSNone {
			auth = gomail.SMTPAuthPlainNoEnc // loopback only, checked by NewSMTP
		}
		opts = append(opts, gomail.WithSMTPAuth(auth), gomail.WithUsername(s.cfg.Username), gomail.WithPassword(s.cfg.Password))
	}
	c, err := gomail.NewClient(s.host, opts...)
	if err != nil {
		return &approvals.DeliveryError{Permanent: true, Err: fmt.Errorf("smtp %s: %w", s.cfg.Addr, err)}
	}
	if err := c.DialAndSendWithContext(ctx, msg); err != nil {
		return classify(s.cfg.Addr, err)
	}
	return nil
}

// dialer dials with ctx and closes the connection when ctx ends, so that a
// server that accepts and never answers cannot hold a send past ctx (a
// cancellation without deadline included).
func dialer(ctx context.Context) gomail.DialContextFunc {
	return func(dctx context.Context, network, address string) (net.Conn, error) {
		var d net.Dialer
		conn, err := d.DialContext(dctx, network, address)
		if err != nil {
			return nil, err
		}
		// Send's ctx ends when it returns, so the connection is closed
		// then at the latest. It is returned unwrapped: go-mail tells a
		// TLS connection by its type.
		context.AfterFunc(ctx, func() { _ = conn.Close() })
		return conn, nil
	}
}

// heloName is the name the client greets with: the sender's domain.
func heloName(addr string) string {
	if _, domain, ok := splitAt(addr); ok {
		return domain
	}
	return "localhost"
}

func splitAt(addr string) (string, string, bool) {
	for i := len(addr) - 1; i >= 0; i-- {
		if addr[i] == '@' {
			return addr[:i], addr[i+1:], i > 0 && i < len(addr)-1
		}
	}
	return "", "", false
}

// classify turns a go-mail error into a DeliveryError: permanent for a 5xx
// answer, temporary otherwise (4xx, connection and TLS failures,
// timeouts).
func classify(addr string, err error) error {
	code := 0
	var se *gomail.SendError
	if errors.As(err, &se) {
		code = se.ErrorCode()
	}
	var te *textproto.Error
	if code == 0 && errors.As(err, &te) {
		code = te.Code
	}
	return &approvals.DeliveryError{Permanent: code >= 500 && code < 600, Err: fmt.Errorf("smtp %s: %w", addr, err)}
}
