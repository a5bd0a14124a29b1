package web_test

import (
	"context"
	"net/http"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
)

// TestRequestPageExternalIDSource: a request from an External ID external
// tenant says so on its page, and the API shows its source.
func TestRequestPageExternalIDSource(t *testing.T) {
	e := newEnv(t)
	r, _, err := e.svc.RequestApproval(context.Background(), approvals.SignUp{
		Email: "larissa@contoso.com", DisplayName: "Larissa", Locale: "en-us", Source: approvals.SourceExternalID,
		Identity: &approvals.Identity{Issuer: "contoso.onmicrosoft.com", IssuerAssignedID: "larissa@contoso.com"},
	})
	if err != nil {
		t.Fatal(err)
	}
	b, _ := e.login("rob")
	p := b.get("/requests/" + r.ID)
	if p.resp.StatusCode != http.StatusOK {
		t.Fatalf("status %d", p.resp.StatusCode)
	}
	props := map[string]string{}
	for _, d := range queryAll(t, p.doc, "dl.props > div") {
		props[textOf(queryOne(t, d, "dt"))] = textOf(queryOne(t, d, "dd"))
	}
	if got := props["Source"]; got != "Self-service sign-up (External ID)" {
		t.Errorf("Source = %q", got)
	}
}
