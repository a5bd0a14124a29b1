package storetest

import (
	"context"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/unitext"
)

// testPersonKeys holds the store to the person key of approvals.NewPerson:
// addresses that differ in more than ASCII case are different people (the
// Kelvin sign is not K, İ is not i, É is not é), while one address in
// another case, normal form or domain spelling is one person.
func testPersonKeys(t *testing.T, s approvals.Store, c *Clock) {
	ctx := context.Background()
	tests := []struct {
		name string
		a, b string
		same bool
	}{
		{"ASCIICase", "Ann@Example.com", "ann@EXAMPLE.com", true},
		{"KelvinSign", "kelvin@gmail.com", "\u212aelvin@gmail.com", false},
		{"DottedCapitalI", "inan@example.com", "\u0130nan@example.com", false},
		{"NonASCIICase", "jos\u00e9@example.com", "JOS\u00c9@example.com", false},
		{"NormalForms", "zo\u00eb@example.com", "zoe\u0308@example.com", true},
		{"IDNDomain", "anna@b\u00fccher.de", "anna@xn--bcher-kva.de", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var reqs [2]*approvals.Request
			for i, email := range []string{tt.a, tt.b} {
				p, err := approvals.NewPerson(email, nil, unitext.Rules)
				if err != nil {
					t.Fatalf("NewPerson(%q): %v", email, err)
				}
				r := &approvals.Request{Source: approvals.SourceSignUp, Email: p.Email, Status: approvals.StatusPending,
					CreatedAt: c.Advance(1), Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}}
				got, created, err := s.Create(ctx, r, nil)
				if err != nil {
					t.Fatalf("Create(%q): %v", p.Email, err)
				}
				if want := i == 0 || !tt.same; created != want {
					t.Fatalf("Create(%q) created=%v; want %v", p.Email, created, want)
				}
				reqs[i] = got
				if found, err := s.FindByPerson(ctx, p.Key); err != nil || found.ID != got.ID {
					t.Fatalf("FindByPerson(%q) = %+v, %v; want %s", p.Key, found, err, got.ID)
				}
			}
			if same := reqs[0].ID == reqs[1].ID; same != tt.same {
				t.Errorf("%q and %q: one request=%v; want %v", tt.a, tt.b, same, tt.same)
			}
		})
	}
}
