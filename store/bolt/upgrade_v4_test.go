package bolt

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/unitext"
)

// unicodePeople are the addresses of testdata/v3-unicode.db, written by
// schema version 3, whose person key lower-cased the whole address with
// Unicode rules and did no NFC or IDNA. Each pair below was two people
// then; the version 4 key (approvals.NewPerson) makes some of them one.
var unicodePeople = []struct {
	id, email string
	deny      bool
}{
	{"000000000000000000000011", "jose\u0301@example.com", false}, // NFD
	{"000000000000000000000012", "jos\u00e9@example.com", false},  // NFC: one person with ...11 now
	{"000000000000000000000013", "anna@B\u00dcCHER.de", true},     // denied; its domain becomes xn--bcher-kva.de
	{"000000000000000000000014", "anna@xn--bcher-kva.de", false},  // one person with ...13 now
	{"000000000000000000000015", "\u212aelvin@gmail.com", false},  // Kelvin sign: was kelvin@gmail.com's key
	{"000000000000000000000016", "Plain@Example.com", false},      // only its domain is lower-cased
}

// writeV3Unicode fills a file with unicodePeople, through the store's API
// (which versions 3 and 4 share). The version 3 code ran it to write
// testdata/v3-unicode.db (the current code would write version 4).
func writeV3Unicode(t *testing.T, s *Store) {
	ctx := context.Background()
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1", Name: "Ada Reviewer"}
	for i, p := range unicodePeople {
		r, created, err := s.Create(ctx, &approvals.Request{
			ID: p.id, Source: approvals.SourceSignUp, Email: p.email, Status: approvals.StatusPending, CreatedAt: v1At(i),
			Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
		}, []approvals.Event{{At: v1At(i), Type: approvals.EventReceived, Actor: approvals.ConnectorActor}})
		if err != nil || !created {
			t.Fatalf("Create(%q) = %v, %v", p.email, created, err)
		}
		if p.deny {
			if _, err := s.Update(ctx, r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
				ev, err := r.Deny(reviewer, "spam", v1At(i+1))
				return []approvals.Event{ev}, err
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestUpgradeMakesCanonicalPersonKeys upgrades testdata/v3-unicode.db to
// version 4: every address is put in canonical form, the person index is
// rebuilt with the new keys, two requests that are now one person are both
// kept (the older answers for the person, a warning names both), and the
// Kelvin sign is no longer the same person as K.
func TestUpgradeMakesCanonicalPersonKeys(t *testing.T) {
	ctx := context.Background()
	var logs bytes.Buffer
	s := open(t, copyGolden(t, "v3-unicode"), Options{Unicode: unitext.Rules, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer s.Close()
	if err := s.Check(); err != nil {
		t.Fatalf("Check after the upgrade: %v", err)
	}
	find := func(email string) *approvals.Request {
		t.Helper()
		p, err := approvals.NewPerson(email, nil, unitext.Rules)
		if err != nil {
			t.Fatal(err)
		}
		r, err := s.FindByPerson(ctx, p.Key)
		if approvals.Code(err) == approvals.ENotFound {
			return nil
		} else if err != nil {
			t.Fatalf("FindByPerson(%q): %v", email, err)
		}
		return r
	}
	tests := []struct {
		lookup, wantID, wantEmail string
	}{
		{"jos\u00e9@example.com", "000000000000000000000011", "jos\u00e9@example.com"},
		{"jose\u0301@EXAMPLE.com", "000000000000000000000011", "jos\u00e9@example.com"},
		{"anna@b\u00fccher.de", "000000000000000000000013", "anna@xn--bcher-kva.de"},
		{"anna@xn--bcher-kva.de", "000000000000000000000013", "anna@xn--bcher-kva.de"},
		{"\u212aelvin@gmail.com", "000000000000000000000015", "\u212aelvin@gmail.com"},
		{"kelvin@gmail.com", "", ""},
		{"plain@example.com", "000000000000000000000016", "Plain@example.com"},
	}
	for _, tt := range tests {
		r := find(tt.lookup)
		switch {
		case tt.wantID == "" && r != nil:
			t.Errorf("FindByPerson(%q) = %s; want none", tt.lookup, r.ID)
		case tt.wantID != "" && (r == nil || r.ID != tt.wantID || r.Email != tt.wantEmail):
			t.Errorf("FindByPerson(%q) = %+v; want %s with email %q", tt.lookup, r, tt.wantID, tt.wantEmail)
		}
	}
	// Every request of the file is kept.
	for _, p := range unicodePeople {
		if _, err := s.Get(ctx, p.id); err != nil {
			t.Errorf("Get(%s) after the upgrade: %v", p.id, err)
		}
	}
	// Both of a collapsed pair are kept, the newer one in its canonical form.
	for id, email := range map[string]string{"000000000000000000000012": "jos\u00e9@example.com", "000000000000000000000014": "anna@xn--bcher-kva.de"} {
		if r, err := s.Get(ctx, id); err != nil || r.Email != email {
			t.Errorf("Get(%s) = %+v, %v; want it kept with email %q", id, r, err, email)
		}
	}
	for _, want := range []string{`kept=000000000000000000000011 also=000000000000000000000012`, `kept=000000000000000000000013 also=000000000000000000000014`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("log lacks the warning %q:\n%s", want, logs.String())
		}
	}
	// A change to the newer of a pair does not take the person index from
	// the older one.
	if _, err := s.Update(ctx, "000000000000000000000014", func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.Deny(approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1"}, "duplicate", v1At(50))
		return []approvals.Event{ev}, err
	}); err != nil {
		t.Fatal(err)
	}
	if r := find("anna@xn--bcher-kva.de"); r == nil || r.ID != "000000000000000000000013" {
		t.Errorf("after updating the newer request the person is %+v; want the older one", r)
	}
	if err := s.Check(); err != nil {
		t.Errorf("Check after updating the newer of a pair: %v", err)
	}
	// A new sign-up of one of them finds the older request.
	p, _ := approvals.NewPerson("JOSE\u0301@example.com", nil, unitext.Rules)
	if p.Email != "JOS\u00c9@example.com" {
		t.Fatalf("canonical = %q", p.Email)
	}
	p, _ = approvals.NewPerson("jose\u0301@example.com", nil, unitext.Rules)
	if r, created, err := s.Create(ctx, &approvals.Request{Email: p.Email, Status: approvals.StatusPending, CreatedAt: v1At(60)}, nil); err != nil || created || r.ID != "000000000000000000000011" {
		t.Errorf("Create(%q) = %+v, %v, %v; want the existing ...11", p.Email, r, created, err)
	}
}

var _ = writeV3Unicode // run by the version 3 code only (above)
