package web

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// FuzzDecodeScanPos checks the listing cursor: every position a view can
// make (a phase without NUL, a skip >= 0, any store cursor) comes back from
// its URL-safe encoding unchanged; anything else is refused with EInvalid,
// never a panic; and what is accepted encodes to a cursor that reads back
// the same.
func FuzzDecodeScanPos(f *testing.F) {
	for _, p := range []scanPos{{}, {Phase: "p", Cursor: "abc", Skip: 3}, {Phase: "d"}, {Cursor: "\x00\xff", Skip: 1 << 40}} {
		f.Add(p.encode(), p.Phase, p.Skip, p.Cursor)
	}
	for _, s := range []string{"!!", "cA", "cAAxAA", "cAAtMQB4", "cAA5OTk5OTk5OTk5OTk5OTk5OTk5OTk5AA", "cAArNwB4", "cAAwNwB4", "cAA3\nAHg"} {
		f.Add(s, "", -1, "")
	}
	urlSafe := regexp.MustCompile(`^[A-Za-z0-9_-]*$`)
	f.Fuzz(func(t *testing.T, s, phase string, skip int, cursor string) {
		got, err := decodeScanPos(s)
		switch {
		case err != nil:
			if approvals.Code(err) != approvals.EInvalid || got != (scanPos{}) {
				t.Fatalf("decodeScanPos(%q) = %+v, %v (code %s)", s, got, err, approvals.Code(err))
			}
		case s == "" && got != (scanPos{}):
			t.Fatalf("empty cursor read as %+v", got)
		case got.Skip < 0:
			t.Fatalf("decodeScanPos(%q): negative skip %d", s, got.Skip)
		default:
			if again, err := decodeScanPos(got.encode()); err != nil || again != got {
				t.Fatalf("decodeScanPos(%q) = %+v, which encodes to %q, read back as %+v, %v", s, got, got.encode(), again, err)
			}
		}

		p := scanPos{Phase: phase, Skip: skip, Cursor: cursor}
		enc := p.encode()
		if !urlSafe.MatchString(enc) {
			t.Fatalf("%+v encodes to %q, not URL-safe", p, enc)
		}
		if strings.Contains(phase, "\x00") {
			return // not a phase any view uses
		}
		back, err := decodeScanPos(enc)
		switch {
		case skip < 0:
			if err == nil {
				t.Fatalf("negative skip accepted: %+v read back as %+v", p, back)
			}
		case err != nil || back != p:
			t.Fatalf("%+v encodes to %q, read back as %+v, %v", p, enc, back, err)
		}
	})
}

var dayPattern = regexp.MustCompile(`^[0-9]{4}-[0-9]{2}-[0-9]{2}$`)

// FuzzParseDay checks the export and audit date reader: it accepts exactly
// the yyyy-mm-dd dates that exist, as midnight UTC, and the day it reads
// formats back to the text typed.
func FuzzParseDay(f *testing.F) {
	for _, s := range []string{"", "2026-01-02", "2024-02-29", "2025-02-29", "2026-13-01", "2026-1-2", "26-01-02", " 2026-01-02", "2026-01-02T00:00:00Z", "0000-01-01", "9999-12-31", "２０２６-01-02"} {
		f.Add(s, 2026, 1, 2)
	}
	f.Add("", 2025, 2, 29)
	f.Fuzz(func(t *testing.T, s string, y, m, d int) {
		got, err := parseDay(s)
		if s == "" {
			if err != nil || !got.IsZero() {
				t.Fatalf("empty: %v, %v", got, err)
			}
		} else if err == nil {
			if !dayPattern.MatchString(s) {
				t.Fatalf("parseDay(%q) accepted something else than yyyy-mm-dd: %v", s, got)
			}
			if got.Location() != time.UTC || got.Hour() != 0 || got.Minute() != 0 || got.Second() != 0 || got.Nanosecond() != 0 {
				t.Fatalf("parseDay(%q) = %v, not midnight UTC", s, got)
			}
			if back := got.Format(dateLayout); back != s {
				t.Fatalf("parseDay(%q) = %v, which formats as %q", s, got, back)
			}
		} else if dayPattern.MatchString(s) {
			yy, _ := strconv.Atoi(s[:4])
			mm, _ := strconv.Atoi(s[5:7])
			dd, _ := strconv.Atoi(s[8:])
			if time.Date(yy, time.Month(mm), dd, 0, 0, 0, 0, time.UTC).Format(dateLayout) == s {
				t.Fatalf("parseDay(%q) refused a date that exists: %v", s, err)
			}
		}

		// Every day of years 0 to 9999 reads back as itself; a day that
		// does not exist (February 30) is refused.
		y, m, d = nonNegative(y)%10000, 1+nonNegative(m)%12, 1+nonNegative(d)%31
		day := fmt.Sprintf("%04d-%02d-%02d", y, m, d)
		want := time.Date(y, time.Month(m), d, 0, 0, 0, 0, time.UTC)
		got, err = parseDay(day)
		if exists := want.Day() == d; exists != (err == nil) || exists && !got.Equal(want) {
			t.Fatalf("parseDay(%q) = %v, %v; want %v", day, got, err, want)
		}
	})
}

func nonNegative(n int) int {
	if n < 0 {
		return -(n + 1) // no overflow at the minimum
	}
	return n
}

// FuzzParseQueueQuery checks the queue's URL reader on any query string:
// a status or order outside the allowed set is refused with EInvalid, and
// only then; an accepted query has a status, order and page size from the
// allowed sets, a search of at most 200 bytes cut from the one typed (and
// still valid UTF-8 when that was), the cursor as given; and the URL the
// page writes for it (href) reads back as the same query.
func FuzzParseQueueQuery(f *testing.F) {
	for _, s := range []string{
		"", "status=all", "status=pending", "status=approved&order=oldest", "status=denied&order=newest&limit=20",
		"q=jane&cursor=cAAxAA", "q=%20%20jane%20doe%20&limit=200", "limit=5", "limit=1000", "limit=-3", "limit=abc",
		"limit=99999999999999999999", "order=newest", "cursor=%20x%20", "status=bogus", "status=ALL", "order=sideways", "status=all&status=denied",
		"q=" + strings.Repeat("a", 250), "q=" + url.QueryEscape(strings.Repeat("山田 花子 ", 20)), "q=%ff%fe", "a=1;b=2", "%zz", "cursor=" + strings.Repeat("x", 100),
	} {
		f.Add(s)
	}
	e := echo.New()
	statuses := []string{"", "all", string(approvals.StatusPending), string(approvals.StatusApproved), string(approvals.StatusDenied)}
	orders := []string{"", string(approvals.NewestFirst), string(approvals.OldestFirst)}
	read := func(rawQuery string) (queueQuery, url.Values, error) {
		req := httptest.NewRequest(http.MethodGet, "/", nil)
		req.URL.RawQuery = rawQuery
		return parseQueueQueryOf(e, req)
	}
	f.Fuzz(func(t *testing.T, rawQuery string) {
		q, params, err := read(rawQuery)
		allowed := slices.Contains(statuses, params.Get("status")) && slices.Contains(orders, params.Get("order"))
		if err != nil {
			if approvals.Code(err) != approvals.EInvalid || allowed {
				t.Fatalf("?%s refused: %v (code %s)", rawQuery, err, approvals.Code(err))
			}
			return
		}
		if !allowed {
			t.Fatalf("?%s accepted as %+v", rawQuery, q)
		}
		if q.Status != "" && !q.Status.Valid() {
			t.Fatalf("?%s: status %q", rawQuery, q.Status)
		}
		if q.Order != approvals.NewestFirst && q.Order != approvals.OldestFirst {
			t.Fatalf("?%s: order %q", rawQuery, q.Order)
		}
		if _, err := strconv.Atoi(params.Get("limit")); q.Limit < 10 || q.Limit > 200 || err != nil && q.Limit != queuePageSize {
			t.Fatalf("?%s: limit %d", rawQuery, q.Limit)
		}
		typed := strings.TrimSpace(params.Get("q"))
		if len(q.Search) > 200 || !strings.HasPrefix(typed, q.Search) || len(typed) <= 200 && q.Search != typed {
			t.Fatalf("?%s: search %q", rawQuery, q.Search)
		}
		if utf8.ValidString(typed) && !utf8.ValidString(q.Search) {
			t.Fatalf("?%s: search %q cut inside a character", rawQuery, q.Search)
		}
		if q.Cursor != params.Get("cursor") {
			t.Fatalf("?%s: cursor %q", rawQuery, q.Cursor)
		}
		href := q.href()
		path, query, _ := strings.Cut(href, "?")
		if path != "/" {
			t.Fatalf("href %q", href)
		}
		if again, _, err := read(query); err != nil || again != q {
			t.Fatalf("?%s read as %+v, whose href %q reads as %+v, %v", rawQuery, q, href, again, err)
		}
	})
}

// parseQueueQueryOf runs parseQueueQuery on req, and returns the query
// parameters echo saw.
func parseQueueQueryOf(e *echo.Echo, req *http.Request) (queueQuery, url.Values, error) {
	c := e.NewContext(req, httptest.NewRecorder())
	q, err := parseQueueQuery(c)
	return q, c.QueryParams(), err
}

// FuzzInviteFormParse checks the invite form: every field error it reports
// is true of the input, and what it accepts is an invitation the form's
// rules allow: one valid email Microsoft invitations take, an absolute
// https redirect URL, a display name and message within their sizes in
// characters, lower-case group object ids and name=value attributes, at
// most 100 of each.
func FuzzInviteFormParse(f *testing.F) {
	for _, in := range []inviteForm{
		{Email: "jane@fabrikam.com", RedirectURL: "https://myapps.microsoft.com", SendMessage: true},
		{Email: " Jane Doe <jane@fabrikam.com> ", DisplayName: "Jane Doe", RedirectURL: "https://myapps.microsoft.com/?x=1"},
		{Email: "jo+tag@example.com", RedirectURL: "http://example.com", Message: "Welcome"},
		{Email: "pat@example.com", DisplayName: "Pat", RedirectURL: "https://portal.example.com/start", Message: "Welcome aboard", SendMessage: true,
			Groups:     "0F8FAD5B-D9CB-469F-A165-70867728950E, 3f2504e0-4f89-41d3-9a0c-0305e82c3301;\n7c9e6679-7425-40de-944b-e07fc1f90ae7",
			Attributes: "jobTitle = Supplier\n\nextension_0123456789abcdef0123456789abcdef_Role=supplier\r\ncity=Oslo=Norway\ncity = Bergen"},
		{Email: "a@b", RedirectURL: "https://x", Groups: "not-a-guid", Attributes: "=x"},
		{Email: "a@b", RedirectURL: "https://user@x", Attributes: "1city=Oslo"},
		{Email: "o'brien@example.com", RedirectURL: "https://x"}, {Email: "a*b@example.com"}, {Email: "a!b@example.com"}, {Email: "jo@example.com, al@example.com"},
		{Email: "", DisplayName: strings.Repeat("n", 257), Message: strings.Repeat("m", 4001), SendMessage: true},
		{Email: "hanako@example.jp", DisplayName: strings.Repeat("山田花子", 25), RedirectURL: "https://myapps.microsoft.com", Message: strings.Repeat("ようこそ", 500), SendMessage: true},
		{Email: "\"a b\"@example.com", RedirectURL: "https://x#frag", Groups: strings.Repeat("0f8fad5b-d9cb-469f-a165-70867728950e ", 101)},
	} {
		f.Add(in.Email, in.DisplayName, in.RedirectURL, in.Groups, in.Attributes, in.Message, in.SendMessage)
	}
	fields := []string{"email", "display_name", "redirect_url", "message", "groups", "attributes"}
	svc := &approvals.Service{InviteRedirectURL: "https://myapps.microsoft.com"}
	// check is what the invite handler does before any directory call.
	check := func(form inviteForm) (approvals.Invitation, map[string]string) {
		in, errs := form.parse()
		for field, msg := range approvals.FieldErrors(svc.CheckInvitation(&in)) {
			if k := formFields[field]; k != "" && errs[k] == "" {
				errs[k] = msg
			}
		}
		return in, errs
	}
	f.Fuzz(func(t *testing.T, email, displayName, redirectURL, groups, attributes, message string, send bool) {
		form := inviteForm{Email: email, DisplayName: displayName, RedirectURL: redirectURL, Groups: groups, Attributes: attributes, Message: message, SendMessage: send}
		in, errs := check(form)
		if in2, errs2 := check(form); !reflect.DeepEqual(in, in2) || !reflect.DeepEqual(errs, errs2) {
			t.Fatal("not deterministic")
		}
		for k, v := range errs {
			if !slices.Contains(fields, k) || v == "" {
				t.Fatalf("error %q: %q", k, v)
			}
		}
		canonical, canonErr := approvals.CanonicalEmail(strings.TrimSpace(email), nil)
		if in.Email != strings.TrimSpace(email) && in.Email != canonical || in.DisplayName != strings.TrimSpace(displayName) ||
			in.Message != strings.TrimSpace(message) || *in.SendInvitationMessage != send {
			t.Fatalf("fields not carried trimmed: %+v", in)
		}
		if strings.TrimSpace(redirectURL) == "" && in.RedirectURL != svc.InviteRedirectURL {
			t.Fatalf("no redirect URL became %q", in.RedirectURL)
		}

		emailOK := approvals.ValidateEmail(in.Email) == nil && approvals.InvitationProblem(in.Email) == "" && utf8.RuneCountInString(in.Email) <= approvals.MaxEmailLength && canonErr == nil
		if _, bad := errs["email"]; bad == emailOK {
			t.Fatalf("email %q: error %q", in.Email, errs["email"])
		}
		if emailOK {
			local, domain, ok := strings.Cut(in.Email, "@")
			if !ok || local == "" || domain == "" || strings.ContainsFunc(in.Email, func(r rune) bool { return r < ' ' || r == 0x7f }) {
				t.Fatalf("email %q accepted", in.Email)
			}
		}
		if _, bad := errs["display_name"]; bad != (utf8.RuneCountInString(in.DisplayName) > approvals.MaxDisplayNameLength || approvals.CheckText("display_name", in.DisplayName) != nil) {
			t.Fatalf("display name of %d characters: error %q", utf8.RuneCountInString(in.DisplayName), errs["display_name"])
		}
		if _, bad := errs["message"]; bad != (utf8.RuneCountInString(in.Message) > approvals.MaxMessageLength || in.Message != "" && !send) {
			t.Fatalf("message of %d characters, send %v: error %q", utf8.RuneCountInString(in.Message), send, errs["message"])
		}
		if _, bad := errs["redirect_url"]; !bad {
			u, err := url.Parse(in.RedirectURL)
			if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil {
				t.Fatalf("redirect URL %q accepted", in.RedirectURL)
			}
		}
		if _, bad := errs["groups"]; !bad {
			if len(in.GroupIDs) > approvals.MaxInviteItems {
				t.Fatalf("%d groups accepted", len(in.GroupIDs))
			}
			for _, g := range in.GroupIDs {
				if !approvals.IsObjectID(g) || g != strings.ToLower(g) {
					t.Fatalf("group id %q accepted", g)
				}
			}
		}
		if _, bad := errs["attributes"]; !bad {
			for k, v := range in.Attributes {
				if approvals.CheckAttribute(k) != nil || v != strings.TrimSpace(v.(string)) {
					t.Fatalf("attribute %q=%q accepted", k, v)
				}
			}
			if len(in.Attributes) > approvals.MaxInviteItems {
				t.Fatalf("%d attributes accepted", len(in.Attributes))
			}
		}
	})
}
