package connector

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"math"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// addSeeds adds every payload of testdata/connector, and a few edge cases,
// to the seed corpus.
func addSeeds(f *testing.F) {
	for _, pattern := range []string{"*.json", "malformed/*.json"} {
		for _, name := range testdataFiles(f, pattern) {
			f.Add(readTestdata(f, name))
		}
	}
	for _, s := range []string{
		`{"email":"a@example.com","lastName":"L","surname":"S"}`,
		`{"email":"a@example.com","identities":[{"issuer":"mail","issuerAssignedId":"a@example.com"}],"n":-0.0e-3,"b":false}`,
		`{"email":"a@example.com","identities":null,"x":{"y":{"z":[1,{"w":null}]}}}`,
		`{"email":"A@Example.COM ","ui_locales":"pl-PL fr"}`,
		`{"email":"a@example.com","ui_locales":"fr-FR,fr;q=0.9,en;q=0.8"}`,
		`{"email":"a@example.com","ui_locales":"de;q=0.5, pl"}`,
		`{"email":"\u0061@example.com","\u0065mail":"b@example.com"}`,
		`{}`, `null`, `[]`, `{"email":"a@b"}`,
	} {
		f.Add([]byte(s))
	}
}

// droppedClaims never reach Claims.
var droppedClaims = []string{claimEmail, claimIdentities, claimUILocales, claimStep, claimClientID, claimLastName}

// FuzzDecode checks the decoder against encoding/json as an oracle: what it
// accepts is valid JSON with a valid email, and every scalar member (but
// the ones it consumes) is kept under its exact name with its value.
func FuzzDecode(f *testing.F) {
	addSeeds(f)
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		su, err := d.Decode(body)
		again, err2 := d.Decode(body)
		if (err == nil) != (err2 == nil) || !equalSignUps(su, again) {
			t.Fatalf("Decode is not deterministic: %+v %v / %+v %v", su, err, again, err2)
		}
		if err != nil {
			var de *DecodeError
			if !errors.As(err, &de) || !slices.Contains(MessageKeys(), de.Key) || de.Reason == "" {
				t.Fatalf("refusal %#v is not a DecodeError with a known key", err)
			}
			if !equalSignUps(su, approvals.SignUp{}) {
				t.Fatalf("refusal returned %+v", su)
			}
			if de.Locale != cleanLocale(de.Locale) {
				t.Fatalf("refusal carries an unclean locale %q", de.Locale)
			}
			return
		}
		if approvals.ValidateEmail(su.Email) != nil || d.validate.Var(su.Email, "required,max=254,email") != nil {
			t.Fatalf("accepted invalid email %q", su.Email)
		}
		if id := su.Identity; id != nil {
			if id.Issuer == "" || id.IssuerAssignedID == "" || approvals.NormalizeIssuer(id.Issuer) != id.Issuer || strings.TrimSpace(id.IssuerAssignedID) != id.IssuerAssignedID {
				t.Fatalf("identity not normalized: %+v", id)
			}
		}
		if su.Locale != cleanLocale(su.Locale) {
			t.Fatalf("unclean locale %q", su.Locale)
		}
		for k, v := range su.Claims {
			switch v := v.(type) {
			case string, bool:
			case float64:
				if math.IsInf(v, 0) || math.IsNaN(v) {
					t.Fatalf("claim %q = %v", k, v)
				}
			default:
				t.Fatalf("claim %q has type %T", k, v)
			}
		}
		if _, err := json.Marshal(su.Claims); err != nil {
			t.Fatalf("claims cannot be stored: %v", err)
		}
		for _, k := range droppedClaims {
			if _, ok := su.Claims[k]; ok {
				t.Fatalf("claim %q kept", k)
			}
		}

		// The oracle.
		var m map[string]any
		if err := json.Unmarshal(body, &m); err != nil {
			t.Fatalf("accepted a body encoding/json refuses (%v): %q", err, body)
		}
		if s, _ := m[claimEmail].(string); strings.TrimSpace(s) != su.Email {
			t.Fatalf("email %q, oracle %q", su.Email, s)
		}
		if s, _ := m[claimUILocales].(string); cleanLocale(s) != su.Locale {
			t.Fatalf("locale %q, oracle %q", su.Locale, s)
		}
		want := map[string]any{}
		for k, v := range m {
			switch v.(type) {
			case string, bool, float64:
				if !slices.Contains(droppedClaims, k) {
					want[k] = v
				}
			}
		}
		if last, ok := m[claimLastName].(string); ok {
			if _, has := want[claimSurname]; !has {
				want[claimSurname] = last
			}
		}
		if len(want) != len(su.Claims) {
			t.Fatalf("claims %v, oracle %v", su.Claims, want)
		}
		for k, v := range want {
			if su.Claims[k] != v {
				t.Fatalf("claim %q = %#v, oracle %#v", k, su.Claims[k], v)
			}
		}
		if dn, ok := m[claimDisplayName].(string); ok && dn != su.DisplayName {
			t.Fatalf("displayName %q, oracle %q", su.DisplayName, dn)
		}
	})
}

// FuzzDecodeCheck checks that the check step's decoder accepts and refuses
// exactly what Decode does, with the same result but for Claims.
func FuzzDecodeCheck(f *testing.F) {
	addSeeds(f)
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		full, errFull := d.Decode(body)
		check, errCheck := d.DecodeCheck(body)
		if (errFull == nil) != (errCheck == nil) {
			t.Fatalf("Decode: %v, DecodeCheck: %v", errFull, errCheck)
		}
		if errFull != nil {
			var a, b *DecodeError
			errors.As(errFull, &a)
			errors.As(errCheck, &b)
			if *a != *b {
				t.Fatalf("refusals differ: %+v / %+v", a, b)
			}
			return
		}
		if check.Claims != nil {
			t.Fatalf("DecodeCheck kept claims %v", check.Claims)
		}
		full.Claims = nil
		if !equalSignUps(full, check) {
			t.Fatalf("Decode %+v, DecodeCheck %+v", full, check)
		}
	})
}

func equalSignUps(a, b approvals.SignUp) bool {
	if a.Email != b.Email || a.DisplayName != b.DisplayName || a.Locale != b.Locale || len(a.Claims) != len(b.Claims) {
		return false
	}
	if (a.Identity == nil) != (b.Identity == nil) || (a.Identity != nil && *a.Identity != *b.Identity) {
		return false
	}
	for k, v := range a.Claims {
		if w, ok := b.Claims[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// fuzzHandler posts arbitrary bodies to one endpoint of a connector whose
// policy auto-approves example.com and auto-denies example.net, and checks
// the answer against the decoder and the store.
func fuzzHandler(f *testing.F, path string) {
	addSeeds(f)
	e := newEnv(f, approvals.Policy{AutoApproveDomains: []string{"example.com"}, AutoDenyDomains: []string{"example.net"}},
		func(c *Config) { c.Logger = slog.New(slog.DiscardHandler) }) // keeps memory flat over millions of calls
	d := NewDecoder()
	f.Fuzz(func(t *testing.T, body []byte) {
		e.t = t // inputs run one after the other within a process
		before := e.count()
		w := e.post(path, body)
		rep := readReply(t, w, path)
		su, err := d.Decode(body)
		if err != nil {
			if rep.Action == "Continue" {
				t.Fatalf("refused body answered Continue: %q", body)
			}
			if e.count() != before {
				t.Fatalf("refused body stored a request: %q", body)
			}
			return
		}
		if path == RequestApprovalPath && approvals.CheckSignUpText(su) != nil {
			if rep.Action != "ValidationError" || e.count() != before {
				t.Fatalf("a sign-up with a control character answered %+v and stored %d: %q", rep, e.count()-before, body)
			}
			return
		}
		if _, err := e.svc.Person(su.Email, su.Identity); err != nil {
			// An address the decoder reads but that has no canonical form
			// (a domain IDNA refuses): no request can have it, so it is
			// refused at the request step and unknown at the check step.
			if rep.Action == "Continue" && path == RequestApprovalPath || e.count() != before {
				t.Fatalf("an address without a canonical form answered %+v and stored %d: %q", rep, e.count()-before, body)
			}
			return
		}
		r, lookupErr := e.svc.CheckStatus(context.Background(), su.Email, su.Identity)
		if path == CheckApprovalStatusPath {
			if e.count() != before {
				t.Fatal("the check step stored a request")
			}
			if approvals.Code(lookupErr) == approvals.ENotFound {
				if rep.Action != "Continue" {
					t.Fatalf("no request, but %+v", rep)
				}
				return
			}
		}
		if lookupErr != nil {
			t.Fatalf("after %s, CheckStatus: %v", path, lookupErr)
		}
		wantContinue := r.Status == approvals.StatusApproved &&
			(r.Provisioning == approvals.ProvisioningByEntra || r.Provisioning == approvals.ProvisioningSucceeded)
		if (rep.Action == "Continue") != wantContinue {
			t.Fatalf("request %s/%s answered %+v", r.Status, r.Provisioning, rep)
		}
		if w.Code != http.StatusOK {
			t.Fatalf("valid body answered %d", w.Code)
		}
	})
}

// FuzzCheckApprovalStatus fuzzes the first step through the handler.
func FuzzCheckApprovalStatus(f *testing.F) { fuzzHandler(f, CheckApprovalStatusPath) }

// FuzzRequestApproval fuzzes the second step through the handler.
func FuzzRequestApproval(f *testing.F) { fuzzHandler(f, RequestApprovalPath) }

// FuzzLanguage checks the ui_locales matcher against a plain reference
// (split, weigh, stable sort) on every form CONTRACT section 1 lists, and
// the cleaning of the stored value.
func FuzzLanguage(f *testing.F) {
	for _, s := range []string{"en-US", "fr-FR", "pl", "de", "es-ES", "zh-Hant-TW de-CH", "", "x-", "-", "FR_ca",
		"fr-FR,en-US", "fr-FR, en-US", "fr-FR,fr;q=0.9,en;q=0.8", "en;q=0.5,fr", "fr;q=0,en", "fr;q=1.,de;q=0.",
		"*;q=0.1,pl", "fr-FR;level=1;q=0.4,en-GB;q=0.3", "de;q=0.123 ,es;q=0.124", "pl;q=1.0001", ";;,,;q=1"} {
		f.Add(s)
	}
	have := func(l string) bool { return slices.Contains([]string{"en", "fr", "pl", "de", "es"}, l) }
	f.Fuzz(func(t *testing.T, s string) {
		got := Language(s, have)
		if got != "" && !have(got) {
			t.Fatalf("Language(%q) = %q", s, got)
		}
		if got != "" && !strings.Contains(strings.ToLower(s), got) {
			t.Fatalf("Language(%q) = %q, not from the input", s, got)
		}
		if want := referenceLanguage(s, have); got != want {
			t.Fatalf("Language(%q) = %q, the reference says %q", s, got, want)
		}
		c := cleanLocale(s)
		if c != "" && c != strings.TrimSpace(s) || cleanLocale(c) != c {
			t.Fatalf("cleanLocale(%q) = %q: not the trimmed value, or not stable", s, c)
		}
		if c != "" && Language(c, have) != got {
			t.Fatalf("the stored %q picks %q, the value sent %q", c, Language(c, have), got)
		}
	})
}

// qvalueRE is RFC 9110's qvalue.
var qvalueRE = regexp.MustCompile(`^(0(\.[0-9]{0,3})?|1(\.0{0,3})?)$`)

// referenceLanguage is Language written plainly, for FuzzLanguage.
func referenceLanguage(s string, have func(string) bool) string {
	type candidate struct {
		lang string
		q    int
	}
	var cands []candidate
	for _, elem := range strings.Split(s, ",") {
		parts := strings.Split(elem, ";")
		q, ok := 1000, true
		for _, p := range parts[1:] {
			name, value, found := strings.Cut(strings.TrimSpace(p), "=")
			if name = strings.TrimSpace(name); !found || (name != "q" && name != "Q") {
				continue
			}
			value = strings.TrimSpace(value)
			if !qvalueRE.MatchString(value) {
				ok = false
				break
			}
			v, err := strconv.ParseFloat(strings.TrimSuffix(value, "."), 64)
			if err != nil {
				panic(err)
			}
			q = int(math.Round(v * 1000))
		}
		if !ok || q == 0 {
			continue
		}
		for _, tag := range strings.FieldsFunc(parts[0], func(r rune) bool { return strings.ContainsRune(" \t\r\n", r) }) {
			lang, _, _ := strings.Cut(tag, "-")
			lang, _, _ = strings.Cut(lang, "_")
			if len(lang) < 2 || len(lang) > 3 || strings.IndexFunc(lang, func(r rune) bool { return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z') }) >= 0 {
				continue
			}
			cands = append(cands, candidate{strings.ToLower(lang), q})
		}
	}
	slices.SortStableFunc(cands, func(a, b candidate) int { return b.q - a.q })
	for _, c := range cands {
		if have(c.lang) {
			return c.lang
		}
	}
	return ""
}

// FuzzParseThumbprint checks the thumbprint parser.
func FuzzParseThumbprint(f *testing.F) {
	for _, s := range []string{strings.Repeat("ab", 20), strings.Repeat("AB:", 32), "", "zz", strings.Repeat("0", 63)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		b, err := parseThumbprint(s)
		if err != nil {
			return
		}
		if len(b) != 20 && len(b) != 32 {
			t.Fatalf("%q parsed to %d bytes", s, len(b))
		}
		again, err := parseThumbprint(strings.ToUpper(hex.EncodeToString(b)))
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("round trip of %q: %x %v", s, again, err)
		}
	})
}

// FuzzEveryday holds the decoder's fast path to the checks it skips: an
// email and display name that everyday accepts must pass the validator's
// rules and approvals.ValidateEmail, so the fast path never lets through
// what the full checks refuse.
func FuzzEveryday(f *testing.F) {
	for _, s := range []string{
		"john.smith@fabrikam.com", "a@b.co", "x+tag@sub.example.org", "o'brien@example.ie", "a..b@example.com",
		".a@example.com", "a.@example.com", "a@-example.com", "a@example-.com", "a@example.c0m", "a@example",
		"a@example.com.", "\"quoted\"@example.com", "a@[127.0.0.1]", "a b@example.com", "a@exam_ple.com",
		"{|}~@example.com", "a@1.2.3.com", "jöhn@example.com", "a@x.y", strings.Repeat("a", 250) + "@b.co",
	} {
		f.Add(s, "John Smith")
	}
	v := NewDecoder().validate
	f.Fuzz(func(t *testing.T, email, displayName string) {
		if !everyday(email, displayName) {
			return
		}
		if err := v.Struct(signUpRules{Email: email, DisplayName: displayName}); err != nil {
			t.Fatalf("everyday(%q, %q), but the validator refuses: %v", email, displayName, err)
		}
		if err := approvals.ValidateEmail(email); err != nil {
			t.Fatalf("everyday(%q), but ValidateEmail refuses: %v", email, err)
		}
	})
}

// The fast path is the common path: the addresses of the contract's
// examples and of everyday sign-ups take it.
func TestEverydayAddresses(t *testing.T) {
	for _, s := range []string{"john.smith@fabrikam.onmicrosoft.com", "maria.garcia+test@contoso.com", "a@b.co", "first_last-1@mail.example.org"} {
		if !everyday(s, "John Smith") {
			t.Errorf("everyday(%q) = false", s)
		}
	}
	for _, s := range []string{"a..b@example.com", "a@example", "a@-x.com", "a@x.c0m", "\"q\"@example.com", "jöhn@example.com", "a@example.com."} {
		if everyday(s, "") {
			t.Errorf("everyday(%q) = true", s)
		}
	}
	if everyday("a@example.com", strings.Repeat("é", 257)) {
		t.Error("a 257-character display name took the fast path")
	}
}
