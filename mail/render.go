// Package mail renders the emails the server sends to reviewers and to the
// people who signed up (SPEC "Notifications"), in their language, as plain
// text and HTML, and sends them over SMTP. Courier implements
// approvals.Courier for approvals.ChannelEmail on top of any Transport:
// this package's SMTP one, or Microsoft Graph's sendMail (in provisioner).
package mail

import (
	"bytes"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	texttemplate "text/template"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/locale"
)

//go:embed templates/*
var builtinTemplates embed.FS

// Kinds lists every kind of email, in the order the documentation shows
// them.
var Kinds = []string{
	approvals.MailReviewerPending, approvals.MailReviewerDigest, approvals.MailReviewerReminder,
	approvals.MailApplicantReceived, approvals.MailApplicantApproved, approvals.MailApplicantDenied,
}

// builtinSubjects are the subject templates of each kind; an operator
// overrides one with a <kind>.subject.txt file.
var builtinSubjects = map[string]string{
	approvals.MailReviewerPending:   `{{.T.pending_subject}}: {{.Request.Name}}`,
	approvals.MailReviewerDigest:    `{{.T.digest_subject}} ({{len .Requests}})`,
	approvals.MailReviewerReminder:  `{{.T.reminder_subject}}: {{.Request.Name}}`,
	approvals.MailApplicantReceived: `{{.T.received_subject}}`,
	approvals.MailApplicantApproved: `{{.T.approved_subject}}`,
	approvals.MailApplicantDenied:   `{{.T.denied_subject}}`,
}

// SourceExternalID marks requests recorded by the External ID custom
// authentication extension; like by_entra, the person finishes by signing
// up again. It is spelled here until the domain defines it.
const SourceExternalID approvals.Source = "external_id"

// Settings configure the rendering.
type Settings struct {
	// PublicURL is the server's public base URL (APPROVALS_PUBLIC_URL);
	// request links and the Message-ID's domain come from it.
	PublicURL string
	// SignInURL is where an approved person whose account was created
	// directly signs in (APPROVALS_SIGN_IN_URL).
	SignInURL string
	// TemplatesDir, when set, holds files overriding the built-in
	// templates (docs/NOTIFICATIONS.md, "Templates").
	TemplatesDir string
}

// Message is one rendered email.
type Message struct {
	// MessageID is the Message-ID without its angle brackets; the same on
	// every retry of one delivery.
	MessageID string
	To        string
	Subject   string
	Lang      string
	Text      string
	HTML      string
}

// Renderer turns deliveries into messages. It is safe for concurrent use.
type Renderer struct {
	public  *url.URL
	signIn  string
	texts   map[string]map[string]string
	html    map[string]*htmltemplate.Template
	text    map[string]*texttemplate.Template
	subject map[string]*texttemplate.Template
}

// NewRenderer parses the built-in templates and the overrides in
// s.TemplatesDir and checks that each renders in every language, so a
// broken override stops the server at start, naming the file and line.
func NewRenderer(s Settings) (*Renderer, error) {
	u, err := url.Parse(s.PublicURL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return nil, fmt.Errorf("mail: public URL %q is not an absolute http(s) URL", s.PublicURL)
	}
	r := &Renderer{
		public: u, signIn: s.SignInURL, texts: builtinTexts(),
		html: map[string]*htmltemplate.Template{}, text: map[string]*texttemplate.Template{},
		subject: map[string]*texttemplate.Template{},
	}
	files, err := templateFiles(s.TemplatesDir)
	if err != nil {
		return nil, err
	}
	for _, kind := range Kinds {
		// The layout is the root; the kind's file, parsed into the same
		// set, defines "content". (New with the root's name would start a
		// set without the functions.)
		h := htmltemplate.New("layout.html").Funcs(htmlFuncs)
		if _, err := h.Parse(files["layout.html"].src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", files["layout.html"].path, err)
		}
		if _, err := h.New(kind + ".html").Parse(files[kind+".html"].src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", files[kind+".html"].path, err)
		}
		t := texttemplate.New("layout.txt").Funcs(textFuncs)
		if _, err := t.Parse(files["layout.txt"].src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", files["layout.txt"].path, err)
		}
		if _, err := t.New(kind + ".txt").Parse(files[kind+".txt"].src); err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", files[kind+".txt"].path, err)
		}
		subj := builtinSubjects[kind]
		path := "built-in subject of " + kind
		if f, ok := files[kind+".subject.txt"]; ok {
			subj, path = f.src, f.path
		}
		st, err := texttemplate.New(kind + ".subject.txt").Funcs(textFuncs).Parse(subj)
		if err != nil {
			return nil, fmt.Errorf("mail: template %s: %w", path, err)
		}
		r.html[kind], r.text[kind], r.subject[kind] = h, t, st
	}
	if err := r.check(files); err != nil {
		return nil, err
	}
	return r, nil
}

// templateFile is one template's source and where it came from.
type templateFile struct{ path, src string }

// templateFiles returns the built-in template files with the overrides of
// dir over them. A file in dir that overrides nothing is an error: it is
// most likely misnamed.
func templateFiles(dir string) (map[string]templateFile, error) {
	files := map[string]templateFile{}
	entries, err := fs.ReadDir(builtinTemplates, "templates")
	if err != nil {
		return nil, fmt.Errorf("mail: built-in templates: %w", err)
	}
	for _, e := range entries {
		b, err := fs.ReadFile(builtinTemplates, "templates/"+e.Name())
		if err != nil {
			return nil, fmt.Errorf("mail: built-in templates: %w", err)
		}
		files[e.Name()] = templateFile{path: "built-in " + e.Name(), src: string(b)}
	}
	if dir == "" {
		return files, nil
	}
	entries, err = os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("mail: templates directory: %w", err)
	}
	for _, e := range entries {
		name := e.Name()
		if e.IsDir() || strings.HasPrefix(name, ".") {
			continue
		}
		_, builtin := files[name]
		subject := strings.HasSuffix(name, ".subject.txt") && slices.Contains(Kinds, strings.TrimSuffix(name, ".subject.txt"))
		if !builtin && !subject {
			return nil, fmt.Errorf("mail: template %s: not a known template name (layout.html, layout.txt, <kind>.html, <kind>.txt, <kind>.subject.txt with kind one of %s)",
				filepath.Join(dir, name), strings.Join(Kinds, ", "))
		}
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			return nil, fmt.Errorf("mail: template: %w", err)
		}
		if !utf8.Valid(b) {
			return nil, fmt.Errorf("mail: template %s: not UTF-8 text", filepath.Join(dir, name))
		}
		files[name] = templateFile{path: filepath.Join(dir, name), src: string(b)}
	}
	return files, nil
}

// check renders every kind in every language with sample data.
func (r *Renderer) check(files map[string]templateFile) error {
	for lang, texts := range r.texts {
		for _, k := range textKeys {
			if texts[k] == "" {
				return fmt.Errorf("mail: built-in text %q missing in %q", k, lang)
			}
		}
	}
	at := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	sample := &approvals.Request{
		ID: "sample", Email: "ada@example.com", DisplayName: "Ada Lovelace",
		Identity:  &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "1"},
		Claims:    map[string]any{"city": "London"},
		CreatedAt: at, Status: approvals.StatusPending,
		Decision: &approvals.Decision{By: "r", At: at, Reason: "sample", ShareReason: true},
	}
	for lang := range r.texts {
		for _, kind := range Kinds {
			req := sample.Clone()
			req.Locale = lang
			d := &approvals.Delivery{ID: "check", Channel: approvals.ChannelEmail, Kind: kind, Recipient: "x@example.com", Request: req}
			var reqs []*approvals.Request
			if kind == approvals.MailReviewerDigest {
				d.Request, d.Data = nil, json.RawMessage(`{"since":"2026-01-02T03:00:00Z","until":"2026-01-02T04:00:00Z"}`)
				reqs = []*approvals.Request{req}
			}
			if _, err := r.Render(d, reqs); err != nil {
				return fmt.Errorf("%w (rendering %s in %q; files %s, %s)", err, kind, lang, files[kind+".html"].path, files[kind+".txt"].path)
			}
		}
	}
	return nil
}

// view is what the templates see.
type view struct {
	Lang      string
	T         map[string]string
	Kind      string
	Subject   string
	Request   *requestView
	Requests  []*requestView
	Since     string
	Until     string
	Link      string
	LinkLabel string
	// SignUpAgain: the person finishes by signing up again (by_entra,
	// External ID).
	SignUpAgain bool
	Reason      string
}

// requestView is a request as the templates show it; every value is
// cleaned of control characters.
type requestView struct {
	ID, Name, Email, Provider, Domain, When string
	Claims                                  []claimView
	URL, ApproveURL, DenyURL                string
}

// claimView is one claim a reviewer decides on.
type claimView struct{ Name, Value string }

// requestData is the argument of the "request" template.
type requestData struct {
	T map[string]string
	R *requestView
}

// button is the argument of the "button" template.
type button struct{ URL, Label, Color string }

var htmlFuncs = htmltemplate.FuncMap{
	"withRequest": func(v *view, r *requestView) requestData { return requestData{T: v.T, R: r} },
	"button": func(u, label string, color string) button {
		return button{URL: u, Label: label, Color: color}
	},
}

var textFuncs = texttemplate.FuncMap{
	"withRequest": func(v *view, r *requestView) requestData { return requestData{T: v.T, R: r} },
}

// errRender marks a delivery that cannot be rendered; retrying will not
// help.
var errRender = errors.New("mail: cannot render")

// Render renders the email d stands for. For a digest, requests are the
// requests it lists; otherwise d.Request is used.
func (r *Renderer) Render(d *approvals.Delivery, requests []*approvals.Request) (*Message, error) {
	if _, ok := r.html[d.Kind]; !ok {
		return nil, fmt.Errorf("%w: unknown email kind %q", errRender, d.Kind)
	}
	if err := checkAddress(d.Recipient); err != nil {
		return nil, fmt.Errorf("%w: %w", errRender, err)
	}
	v := &view{Kind: d.Kind}
	when := time.Time{}
	if d.Event != nil {
		when = d.Event.At
	}
	if d.Kind == approvals.MailReviewerDigest {
		var period struct {
			Since time.Time `json:"since"`
			Until time.Time `json:"until"`
		}
		if err := json.Unmarshal(d.Data, &period); err != nil {
			return nil, fmt.Errorf("%w: digest %s: period: %w", errRender, d.ID, err)
		}
		v.Lang = fallbackLanguage
		v.Since, v.Until = formatTime(period.Since), formatTime(period.Until)
		for _, q := range requests {
			v.Requests = append(v.Requests, r.requestView(q, time.Time{}, r.texts[v.Lang]))
		}
	} else {
		q := d.Request
		if q == nil {
			return nil, fmt.Errorf("%w: delivery %s has no request", errRender, d.ID)
		}
		v.Lang = locale.Match(q.Locale, func(l string) bool { _, ok := r.texts[l]; return ok })
		if v.Lang == "" {
			v.Lang = fallbackLanguage
		}
		v.Request = r.requestView(q, when, r.texts[v.Lang])
		r.personal(v, q)
	}
	v.T = r.texts[v.Lang]
	var b bytes.Buffer
	if err := r.subject[d.Kind].Execute(&b, v); err != nil {
		return nil, fmt.Errorf("%w: %w", errRender, err)
	}
	v.Subject = headerText(b.String())
	m := &Message{MessageID: MessageID(d.ID, r.public.Hostname()), To: d.Recipient, Subject: v.Subject, Lang: v.Lang}
	b.Reset()
	if err := r.text[d.Kind].ExecuteTemplate(&b, "layout", v); err != nil {
		return nil, fmt.Errorf("%w: %w", errRender, err)
	}
	m.Text = b.String()
	b.Reset()
	if err := r.html[d.Kind].ExecuteTemplate(&b, "layout", v); err != nil {
		return nil, fmt.Errorf("%w: %w", errRender, err)
	}
	m.HTML = b.String()
	return m, nil
}

// personal fills in what the applicant's emails say: the link that works
// for them, and the reason when the reviewer chose to share it.
func (r *Renderer) personal(v *view, q *approvals.Request) {
	t := r.texts[v.Lang]
	switch {
	case q.Provisioning.State == approvals.ProvisioningByEntra || q.Source == SourceExternalID:
		v.SignUpAgain = true
		v.Link, v.LinkLabel = r.signIn, t["approved_sign_in"]
	case q.Provisioning.Method == approvals.MethodInvitation && q.Provisioning.RedeemURL != "":
		v.Link, v.LinkLabel = q.Provisioning.RedeemURL, t["approved_redeem"]
	default:
		v.Link, v.LinkLabel = r.signIn, t["approved_sign_in"]
	}
	if q.Decision != nil && q.Decision.ShareReason {
		v.Reason = clean(q.Decision.Reason)
	}
}

func (r *Renderer) requestView(q *approvals.Request, when time.Time, t map[string]string) *requestView {
	if when.IsZero() {
		when = q.CreatedAt
	}
	name := clean(q.DisplayName)
	if name == "" {
		if s, ok := q.Claims["displayName"].(string); ok {
			name = clean(s)
		}
	}
	if name == "" {
		name = clean(q.Email)
	}
	provider := t["provider_entra"]
	if q.Identity != nil && q.Identity.Issuer != "" {
		provider = clean(approvals.NormalizeIssuer(q.Identity.Issuer))
	}
	_, domain, _ := strings.Cut(q.Email, "@")
	page := r.public.JoinPath("requests", q.ID)
	rv := &requestView{
		ID: clean(q.ID), Name: name, Email: clean(q.Email), Provider: provider, Domain: clean(domain),
		When: formatTime(when), URL: page.String(),
		ApproveURL: page.String() + "?decision=approve", DenyURL: page.String() + "?decision=deny",
	}
	keys := make([]string, 0, len(q.Claims))
	for k := range q.Claims {
		if k != "displayName" {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		rv.Claims = append(rv.Claims, claimView{Name: clean(claimLabel(k)), Value: clean(fmt.Sprint(q.Claims[k]))})
	}
	return rv
}

// claimLabel shows a custom attribute extension_<appId>_<Name> as <Name>.
func claimLabel(k string) string {
	if rest, ok := strings.CutPrefix(k, "extension_"); ok {
		if _, name, ok := strings.Cut(rest, "_"); ok && name != "" {
			return name
		}
	}
	return k
}

func formatTime(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// clean replaces control characters (CR and LF among them) with spaces, so
// that no value a person typed can start a line of its own.
func clean(s string) string {
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return ' '
		}
		return r
	}, s)
}

// maxSubjectRunes bounds a subject: a long display name must not make an
// unreadable header.
const maxSubjectRunes = 200

// headerText makes s safe as a header value: one line, no control
// characters, blanks collapsed, at most maxSubjectRunes.
func headerText(s string) string {
	s = strings.Join(strings.Fields(clean(s)), " ")
	if utf8.RuneCountInString(s) > maxSubjectRunes {
		s = string([]rune(s)[:maxSubjectRunes-1]) + "…"
	}
	return s
}

// MessageID returns the Message-ID (without angle brackets) of the email of
// delivery id sent by a server at host: the delivery ID with every
// character that may not appear in a msg-id's left part written as =XX,
// "@" and the host.
func MessageID(id, host string) string {
	var b strings.Builder
	for i := 0; i < len(id); i++ {
		c := id[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-/?^_`{|}~.", c) >= 0 && c != '.' || c == '.' && i > 0 && i < len(id)-1 && id[i-1] != '.' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "=%02X", c)
	}
	if host == "" {
		host = "localhost"
	}
	return b.String() + "@" + host
}

// checkAddress accepts a bare address (no display name, no line breaks):
// what the fan-out puts in a delivery's Recipient.
func checkAddress(s string) error {
	if s == "" || strings.ContainsAny(s, "\r\n<>,; \t\"") || strings.Count(s, "@") != 1 {
		return fmt.Errorf("recipient %q is not a bare email address", s)
	}
	local, domain, _ := strings.Cut(s, "@")
	if local == "" || domain == "" || strings.IndexFunc(s, unicode.IsControl) >= 0 {
		return fmt.Errorf("recipient %q is not a bare email address", s)
	}
	return nil
}
