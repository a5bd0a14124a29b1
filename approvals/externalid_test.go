package approvals

import (
	"testing"
	"time"
)

// TestExternalIDRequests: an external tenant's request is keyed by its
// email alone, apart from workforce requests, and its approval hands the
// account's creation to Entra (by_entra) instead of queueing a Graph job.
func TestExternalIDRequests(t *testing.T) {
	google := &Identity{Issuer: "google.com", IssuerAssignedID: "110169484474386276334"}
	keys := map[string]string{
		"workforce, no identity":  PersonKeyIn(SourceSignUp, "Ana@Gmail.com", nil),
		"workforce, google":       PersonKeyIn(SourceSignUp, "ana@gmail.com", google),
		"external, google":        PersonKeyIn(SourceExternalID, "ana@gmail.com", google),
		"invitation, no identity": PersonKeyIn(SourceInvitation, "ana@gmail.com", nil),
	}
	if keys["workforce, no identity"] != keys["invitation, no identity"] {
		t.Error("workforce and invitation keys differ: they must stay as they were")
	}
	if keys["external, google"] == keys["workforce, google"] || keys["external, google"] == keys["workforce, no identity"] {
		t.Error("an external request shares a workforce person key")
	}
	if PersonKeyIn(SourceExternalID, " ANA@gmail.com ", nil) != keys["external, google"] {
		t.Error("the external key depends on the identity or the email's case")
	}
	r := &Request{ID: "r1", Source: SourceExternalID, Email: "ana@gmail.com", Identity: google, Status: StatusPending}
	if r.Key() != ExternalIDPersonKey("ana@gmail.com") {
		t.Errorf("Key() = %q", r.Key())
	}
	now := time.Date(2026, 12, 2, 9, 0, 0, 0, time.UTC)
	ev, err := r.Approve(Actor{Kind: ActorReviewer, ID: "oid"}, "", now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if r.Provisioning.State != ProvisioningByEntra || r.Provisioning.Pending() || ev.Type != EventApproved {
		t.Fatalf("approved external request: %+v, event %s", r.Provisioning, ev.Type)
	}
	if _, err := r.RetryProvisioning(Actor{Kind: ActorReviewer, ID: "oid"}, now, time.Hour); Code(err) != EConflict {
		t.Errorf("RetryProvisioning of a by_entra request: %v", err)
	}
}
