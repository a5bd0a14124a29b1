package web

import (
	"bytes"
	"fmt"
	"html/template"
	"io/fs"
	"path"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// page is what every template gets: the layout's data and the page's own
// in Data.
type page struct {
	Title   string
	Nav     string // the active navigation item
	User    *account
	CSRF    string
	Flashes []flash
	Data    any
}

// newPage returns the layout data for the request, taking the session's
// flash messages.
func (u *UI) newPage(c echo.Context, title, nav string) *page {
	p := &page{Title: title, Nav: nav}
	if s, ok := sessionOf(c); ok {
		user := s.user
		p.User, p.CSRF = &user, s.csrf
		p.Flashes = u.takeFlashes(c, s)
	}
	return p
}

// flash queues a message for the next page the session sees.
func (u *UI) flash(c echo.Context, kind, text string) {
	u.flashLink(c, flash{Kind: kind, Text: text})
}

func (u *UI) flashLink(c echo.Context, f flash) {
	u.addFlash(c, f)
}

// parseTemplates parses the layout and partials once, then each page on a
// clone of them.
func (u *UI) parseTemplates() error {
	base, err := template.New("").Funcs(u.funcs()).ParseFS(assets, "templates/layout.html", "templates/partials/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	files, err := fs.Glob(assets, "templates/pages/*.html")
	if err != nil {
		return fmt.Errorf("web: templates: %w", err)
	}
	u.pages = map[string]*template.Template{}
	for _, f := range files {
		t, err := base.Clone()
		if err == nil {
			t, err = t.ParseFS(assets, f)
		}
		if err != nil {
			return fmt.Errorf("web: template %s: %w", f, err)
		}
		u.pages[strings.TrimSuffix(path.Base(f), ".html")] = t
	}
	return nil
}

// render executes a page into memory first, so that a template error
// becomes an error page instead of half a page.
func (u *UI) render(c echo.Context, status int, name string, p *page) error {
	t, ok := u.pages[name]
	if !ok {
		return fmt.Errorf("web: no template %q", name)
	}
	var buf bytes.Buffer
	if err := t.ExecuteTemplate(&buf, "layout", p); err != nil {
		return fmt.Errorf("web: render %s: %w", name, err)
	}
	c.Response().Header().Set("Cache-Control", "no-store")
	return c.HTMLBlob(status, buf.Bytes())
}

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"asset":       u.assetURL,
		"when":        formatTime,
		"iso":         func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":         func(t time.Time) string { return ago(t, u.clock.Now()) },
		"duration":    humanDuration,
		"idp":         identityLabel,
		"eventLabel":  eventLabel,
		"actor":       actorLabel,
		"decidedBy":   decidedBy,
		"statusLabel": statusLabel,
		"provLabel":   provisioningLabel,
		"number":      formatInt,
		"plural":      plural,
		"initials":    initials,
		"maxReason":   func() int { return approvals.MaxReasonLength },
		"short":       func(s string) string { return approvals.Truncate(s, shortReason) },
	}
}

// shortReason is how many characters of a reason a list shows.
const shortReason = 140

// formatTime writes t in UTC for the page; app.js shows it in the
// browser's time zone and keeps this text as the hover title.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2 Jan 2006 15:04 UTC")
}

// ago says how long before now t was, in the largest fitting unit.
func ago(t, now time.Time) string {
	if t.IsZero() {
		return "—"
	}
	d := now.Sub(t)
	if d < 0 {
		return "in " + humanDuration(-d)
	}
	if d < time.Minute {
		return "just now"
	}
	return humanDuration(d) + " ago"
}

// humanDuration rounds d to one unit: "45 s", "12 min", "5 h", "3 days".
func humanDuration(d time.Duration) string {
	switch {
	case d < time.Minute:
		return strconv.Itoa(int(d/time.Second)) + " s"
	case d < time.Hour:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	case d < 48*time.Hour:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	}
	return strconv.Itoa(int(d/(24*time.Hour))) + " days"
}

// identityLabel names the identity provider a person signed up with.
func identityLabel(id *approvals.Identity) string {
	if id == nil || id.Issuer == "" {
		return "Microsoft Entra ID / Microsoft account"
	}
	switch approvals.NormalizeIssuer(id.Issuer) {
	case approvals.IssuerGoogle:
		return "Google"
	case approvals.IssuerFacebook:
		return "Facebook"
	case approvals.IssuerMail:
		return "Email one-time passcode"
	}
	return id.Issuer
}

// eventLabels names every audit event type for people. Event types that
// other packages add (the admin API's) are named by value, so that web
// needs no import of them; a test checks that every EventType constant in
// the module has a label here.
var eventLabels = map[approvals.EventType]string{
	approvals.EventReceived:              "Request received",
	approvals.EventResubmitted:           "Request resubmitted",
	approvals.EventAutoApproved:          "Approved automatically",
	approvals.EventAutoDenied:            "Denied automatically",
	approvals.EventApproved:              "Approved",
	approvals.EventDenied:                "Denied",
	approvals.EventReopened:              "Reopened",
	approvals.EventProvisioningStep:      "Provisioning step done",
	approvals.EventProvisioningRetry:     "Provisioning will retry",
	approvals.EventProvisioningSucceeded: "Account provisioned",
	approvals.EventProvisioningFailed:    "Provisioning failed",
	approvals.EventProvisioningRequeued:  "Provisioning retried",
	approvals.EventInvitationCreated:     "Invitation created",
	approvals.EventBlockedAtCheck:        "Sign-up blocked at status check",
	approvals.EventDeliveryFailed:        "Notification failed",
	approvals.EventDeliveryResent:        "Notification resent",
	approvals.EventInvitationFailed:      "Invitation failed",
	approvals.EventInvitationLinked:      "Existing directory user linked",
	approvals.EventDecisionsExported:     "Decisions exported",
	approvals.EventDecisionsExportFailed: "Decision export cut off",
	approvals.EventBackupDownloaded:      "Backup downloaded",
	approvals.EventBackupFailed:          "Backup cut off",
}

func eventLabel(t approvals.EventType) string {
	if l, ok := eventLabels[t]; ok {
		return l
	}
	return string(t)
}

// actorLabel names who acted, for people.
func actorLabel(a approvals.Actor) string {
	switch a.Kind {
	case approvals.ActorReviewer:
		if a.Name != "" {
			return a.Name
		}
		return "Reviewer " + a.ID
	case approvals.ActorAPIKey:
		return "API key " + a.ID
	case approvals.ActorPolicy:
		return ruleLabel(a.ID)
	case approvals.ActorConnector:
		return "Entra sign-up"
	case approvals.ActorSystem:
		if a.ID == approvals.ProvisionerActor.ID {
			return "Provisioner"
		}
	}
	return a.String()
}

// ruleLabel names a policy rule for people: "auto-deny-domain:spam.example"
// is "Auto-deny domain spam.example".
func ruleLabel(rule string) string {
	name, arg, _ := strings.Cut(rule, ":")
	switch name {
	case "auto-approve-domain":
		name = "Auto-approve domain"
	case "auto-deny-domain":
		name = "Auto-deny domain"
	default:
		return "Rule " + rule
	}
	return strings.TrimSpace(name + " " + arg)
}

// decidedBy names who made a decision: the reviewer, API key or rule.
func decidedBy(d *approvals.Decision) string {
	if d.ActorKind == approvals.ActorPolicy && d.ByID != "" {
		return ruleLabel(d.ByID)
	}
	return d.By
}

func statusLabel(s approvals.Status) string {
	switch s {
	case approvals.StatusPending:
		return "Pending"
	case approvals.StatusApproved:
		return "Approved"
	case approvals.StatusDenied:
		return "Denied"
	case "":
		return "All"
	}
	return string(s)
}

func provisioningLabel(s approvals.ProvisioningState) string {
	switch s {
	case approvals.ProvisioningNotStarted, "":
		return "Not started"
	case approvals.ProvisioningInProgress:
		return "In progress"
	case approvals.ProvisioningSucceeded:
		return "Provisioned"
	case approvals.ProvisioningFailed:
		return "Failed"
	case approvals.ProvisioningByEntra:
		return "Created by Entra"
	}
	return string(s)
}

// formatInt writes n with thousands separators: 1,234,567.
func formatInt(n int) string {
	s := strconv.Itoa(n)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, r := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(r)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// plural writes a count and an English noun: "1 match", "2 matches",
// "0 requests".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	suffix := "s"
	for _, end := range []string{"s", "x", "z", "ch", "sh"} {
		if strings.HasSuffix(word, end) {
			suffix = "es"
			break
		}
	}
	return formatInt(n) + " " + word + suffix
}

// sentence starts a message with a capital letter: domain messages are
// written to follow a prefix ("Not approved: ..."), pages show some alone.
func sentence(s string) string {
	r, size := utf8.DecodeRuneInString(s)
	if size == 0 || !unicode.IsLower(r) {
		return s
	}
	return string(unicode.ToUpper(r)) + s[size:]
}

// initials returns up to two initials of a name, for the avatar.
func initials(name string) string {
	var out []rune
	for _, w := range strings.Fields(name) {
		for _, r := range w {
			if unicode.IsLetter(r) {
				out = append(out, unicode.ToUpper(r))
			}
			break
		}
		if len(out) == 2 {
			break
		}
	}
	if len(out) == 0 {
		return "?"
	}
	return string(out)
}
