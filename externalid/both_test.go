package externalid

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/connector"
)

// TestOnePersonThroughBothContracts: the same email signing up in a
// workforce tenant (API connector) and in an external tenant (these
// extensions) makes two requests, decided one by one. The external
// tenant is another directory: approving a person there lets Entra create
// an account there and nowhere else, and approving the workforce request
// provisions a guest in the workforce tenant only, so neither decision may
// stand for the other (docs/EXTERNAL_ID.md, "One person, two tenants").
func TestOnePersonThroughBothContracts(t *testing.T) {
	e := newEnv(t, approvals.Policy{})
	conn, err := connector.New(connector.Config{Service: e.svc, Auth: connector.Auth{Username: "u", Password: "p"}})
	if err != nil {
		t.Fatal(err)
	}
	workforce := func(path, body string) string {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
		r.SetBasicAuth("u", "p")
		w := httptest.NewRecorder()
		conn.ServeHTTP(w, r)
		return w.Body.String()
	}
	ctx := context.Background()
	tok := e.token(nil)

	if got := workforce(connector.RequestApprovalPath, `{"email":"larissa@contoso.com","displayName":"Larissa","ui_locales":"en"}`); !strings.Contains(got, "ShowBlockPage") {
		t.Fatalf("workforce request: %s", got)
	}
	if a := e.post(SubmitPath, readTestdata(t, "submit_reference.json"), tok); a.action(t) != submitBlockType {
		t.Fatalf("external submit: %s", a.Raw)
	}
	wf, err := e.store.FindByPerson(ctx, approvals.PersonKey("larissa@contoso.com", nil))
	if err != nil {
		t.Fatal(err)
	}
	ext := find(t, e, "larissa@contoso.com")
	if wf.ID == ext.ID || wf.Source != approvals.SourceSignUp || ext.Source != approvals.SourceExternalID {
		t.Fatalf("workforce %s (%s), external %s (%s): want two requests", wf.ID, wf.Source, ext.ID, ext.Source)
	}
	// Approving the workforce request provisions through Graph and does
	// not open the external tenant.
	wf, err = e.svc.Approve(ctx, wf.ID, reviewer, "partner")
	if err != nil || wf.Provisioning.State != approvals.ProvisioningInProgress {
		t.Fatalf("approve workforce: %v %+v", err, wf.Provisioning)
	}
	if a := e.post(StartPath, readTestdata(t, "start_reference.json"), tok); a.action(t) != startBlockType {
		t.Fatalf("external start after the workforce approval: %s", a.Raw)
	}
	// And the other way round: approving the external request is by_entra
	// and leaves the workforce one as it was.
	if ext, err = e.svc.Approve(ctx, ext.ID, reviewer, "customer"); err != nil || ext.Provisioning.State != approvals.ProvisioningByEntra {
		t.Fatalf("approve external: %v %+v", err, ext.Provisioning)
	}
	if a := e.post(SubmitPath, readTestdata(t, "submit_reference.json"), tok); a.action(t) != submitContinueType {
		t.Fatalf("external submit after approval: %s", a.Raw)
	}
	// The workforce check still answers from its own request: approved and
	// being provisioned, so wait.
	if got := workforce(connector.CheckApprovalStatusPath, `{"email":"larissa@contoso.com"}`); !strings.Contains(got, "ShowBlockPage") {
		t.Fatalf("workforce check: %s", got)
	}
}
