package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/externalid"
	"github.com/approvals-dev/approvals/externalid/externalidtest"
)

// The demo's External ID tenant: a fake external-tenant issuer in process
// (discovery document and JWKS on loopback, an RSA key made at start).
const (
	demoExternalTenant = "7c3f1a2b-9d4e-4f5a-8b6c-0d1e2f3a4b5c"
	demoExternalApp    = "e1d2c3b4-a5f6-4e7d-8c9b-0a1b2c3d4e5f"
	// demoTokenTTL keeps the printed token usable for a working day.
	demoTokenTTL = 12 * time.Hour
)

// startExternalID starts the fake issuer, mints the token the demo prints
// and adds the External ID settings to env.
func (d *Demo) startExternalID(env map[string]string) error {
	iss, err := externalidtest.NewIssuer(demoExternalTenant)
	if err != nil {
		return fmt.Errorf("the External ID issuer: %w", err)
	}
	d.extIssuer = iss
	d.ExternalIDToken, err = iss.Token(iss.Claims(demoExternalApp, time.Now(), demoTokenTTL))
	if err != nil {
		return err
	}
	env["APPROVALS_EXTERNAL_ID_TENANT_ID"] = demoExternalTenant
	env["APPROVALS_EXTERNAL_ID_APP_ID"] = demoExternalApp
	env["APPROVALS_EXTERNAL_ID_ISSUERS"] = iss.URL()
	return nil
}

// externalIDPayload is an extension payload as Entra sends it.
func externalIDPayload(event, email, givenName, surname, locale string) string {
	data := "onAttributeCollectionStartCalloutData"
	if event == "attributeCollectionSubmit" {
		data = "onAttributeCollectionSubmitCalloutData"
	}
	return `{"type":"microsoft.graph.authenticationEvent.` + event + `","source":"/tenants/` + demoExternalTenant + `/applications/` + demoExternalApp + `",
"data":{"@odata.type":"microsoft.graph.` + data + `","tenantId":"` + demoExternalTenant + `",
"authenticationContext":{"correlationId":"0f1e2d3c-4b5a-4968-8776-a5b4c3d2e1f0","client":{"ip":"203.0.113.10","locale":"` + locale + `","market":"` + locale + `"},"protocol":"OAUTH2.0",
"clientServicePrincipal":{"appId":"9e8f7a6b-5c4d-4e3f-a0b1-c2d3e4f5a6b7","appDisplayName":"Woodgrove Groceries"}},
"userSignUpInfo":{"attributes":{"givenName":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"` + givenName + `","attributeType":"builtIn"},
"surname":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"` + surname + `","attributeType":"builtIn"},
"displayName":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"` + givenName + ` ` + surname + `","attributeType":"builtIn"},
"city":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"Seattle","attributeType":"builtIn"}},
"identities":[{"signInType":"email","issuer":"woodgrove.onmicrosoft.com","issuerAssignedId":"` + email + `"}]}}}`
}

// sendExternalIDSamples runs two people through both extensions with a
// real token: one waits for a reviewer, one is auto-approved.
func (d *Demo) sendExternalIDSamples(ctx context.Context) error {
	for _, p := range []struct{ email, given, surname, locale string }{
		{"larissa@woodgrove.example", "Larissa", "Price", "en-us"},
		{"otto@" + demoAutoApprove, "Otto", "Meyer", "de-de"},
	} {
		for _, ev := range []struct{ event, path string }{
			{"attributeCollectionStart", externalid.StartPath},
			{"attributeCollectionSubmit", externalid.SubmitPath},
		} {
			body, err := d.postExternalID(ctx, ev.path, externalIDPayload(ev.event, p.email, p.given, p.surname, p.locale))
			if err != nil {
				return err
			}
			if !strings.Contains(body, `"actions":[{`) {
				return fmt.Errorf("%s answered %s", ev.path, body)
			}
		}
	}
	return nil
}

func (d *Demo) postExternalID(ctx context.Context, path, body string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.PublicURL+path, bytes.NewBufferString(body))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+d.ExternalIDToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("%s answered %s: %s", path, resp.Status, b)
	}
	return string(b), nil
}

// printExternalIDBanner prints the External ID part of the banner.
func (d *Demo) printExternalIDBanner() {
	u := d.PublicURL
	fmt.Fprintf(d.Stdout, `
Entra External ID (an external tenant's custom authentication extensions), with a fake issuer at
%s. Larissa Price is pending (source external_id); Otto Meyer was auto-approved.

  Extensions         %s%s
                     %s%s
  Bearer token       valid until %s (tenant %s, audience %s):

%s

Try a sign-up as Entra would send it (then approve it in the UI and send it again: continue):

  curl -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    -d '%s' \
    %s%s
`, d.extIssuer.URL(), u, externalid.StartPath, u, externalid.SubmitPath,
		time.Now().Add(demoTokenTTL).UTC().Format(time.RFC3339), demoExternalTenant, demoExternalApp,
		"  TOKEN='"+d.ExternalIDToken+"'",
		strings.ReplaceAll(externalIDPayload("attributeCollectionSubmit", "new.customer@example.com", "Nia", "Okafor", "fr-fr"), "\n", ""),
		u, externalid.SubmitPath)
}

// closeExternalID stops the fake issuer.
func (d *Demo) closeExternalID() {
	if d.extIssuer != nil {
		d.extIssuer.Close()
	}
}

// demoExternalIDSamples is how many requests sendExternalIDSamples makes.
const demoExternalIDSamples = 2
