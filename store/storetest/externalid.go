package storetest

import (
	"context"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// testExternalIDPersonKeys: a store keys requests by Request.Key, which for
// an External ID request (Source external_id) is the email alone in a
// namespace of its own: the same email from the workforce connector and
// from an external tenant is two requests, and two External ID calls with
// different identities are one.
func testExternalIDPersonKeys(t *testing.T, s approvals.Store, _ *Clock) {
	ctx := context.Background()
	workforce := create(t, s, person(0, base))
	ext := person(0, base.Add(time.Minute))
	ext.Source = approvals.SourceExternalID
	ext.Application = &approvals.Application{ID: "9e8f7a6b-5c4d-4e3f-a0b1-c2d3e4f5a6b7", DisplayName: "Woodgrove"}
	external := create(t, s, ext)
	if external.ID == workforce.ID {
		t.Fatal("the External ID request took the workforce request's place")
	}
	again := person(0, base.Add(2*time.Minute))
	again.Source, again.Identity = approvals.SourceExternalID, nil
	got, created, err := s.Create(ctx, again, received(again.CreatedAt))
	if err != nil || created || got.ID != external.ID {
		t.Fatalf("a second External ID call without an identity: %v, created %v, id %s; want the first (%s)", err, created, got.ID, external.ID)
	}
	for key, want := range map[string]string{
		approvals.ExternalIDPersonKey(" PERSON00000@example.com"): external.ID,
		approvals.PersonKey(workforce.Email, workforce.Identity):  workforce.ID,
	} {
		r, err := s.FindByPerson(ctx, key)
		if err != nil || r.ID != want {
			t.Fatalf("FindByPerson(%q) = %v, %v; want %s", key, r, err, want)
		}
		if st, err := s.FindStanding(ctx, key); err != nil || st.ID != want {
			t.Fatalf("FindStanding(%q) = %+v, %v; want %s", key, st, err, want)
		}
	}
	if r, err := s.Get(ctx, external.ID); err != nil || r.Source != approvals.SourceExternalID || r.Application == nil || r.Application.DisplayName != "Woodgrove" {
		t.Fatalf("Get(%s) = %+v, %v: source or application lost", external.ID, r, err)
	}
	// The export read model carries the source: external_id for this one,
	// signup for the workforce request.
	for _, id := range []string{external.ID, workforce.ID} {
		if _, err := s.Update(ctx, id, approve(base.Add(3*time.Minute))); err != nil {
			t.Fatalf("approve %s: %v", id, err)
		}
	}
	sources := map[string]approvals.Source{}
	if err := s.Decisions(ctx, approvals.DecisionQuery{}, func(rec approvals.DecisionRecord) error {
		sources[rec.ID] = rec.Source
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if sources[external.ID] != approvals.SourceExternalID || sources[workforce.ID] != approvals.SourceSignUp {
		t.Fatalf("decision rows' sources %v; want %s external_id, %s signup", sources, external.ID, workforce.ID)
	}
}
