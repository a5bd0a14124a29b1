package provisioner

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"strings"
	"testing"
	"time"

	kauth "github.com/microsoft/kiota-authentication-azure-go"
	khttp "github.com/microsoft/kiota-http-go"
	"github.com/microsoftgraph/msgraph-sdk-go/models"

	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// The trap of kiota-http-go issue 183, caught by the fake: with the SDK's
// retry handler outside its compression handler (the default middleware
// comes from a map, so this is one of the orders it picks at random), a
// retried request resends the plain body still labelled gzip, and Graph
// answers 400. The Directory leaves both handlers out.
func TestSDKRetryOverCompressionTrap(t *testing.T) {
	srv := graphtest.Start(t, graphtest.Options{})
	cred, err := NewCredential(CredentialConfig{TenantID: srv.TenantID(), ClientID: srv.ClientID(),
		ClientSecret: srv.ClientSecret(), AuthorityHost: srv.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: srv.Client()})
	if err != nil {
		t.Fatal(err)
	}
	graphURL, _ := url.Parse(srv.URL())
	auth, err := kauth.NewAzureIdentityAuthenticationProviderWithScopesAndValidHosts(cred, []string{"https://" + graphURL.Host + "/.default"}, []string{graphURL.Hostname()})
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: khttp.NewCustomTransportWithParentTransport(srv.Transport(), khttp.NewRetryHandler(), khttp.NewCompressionHandler())}
	sdk, err := newGraphClient(auth, client, srv.URL())
	if err != nil {
		t.Fatal(err)
	}

	id := srv.AddUser(graphtest.User{Mail: "trap@example.com"})
	srv.Fault("PATCH /users/{id}", graphtest.FaultSpec{Status: 503, RetryAfter: time.Second, Count: 1})
	u := models.NewUser()
	city := "Oslo"
	u.SetCity(&city)
	if _, err := sdk.Users().ByUserId(id).Patch(context.Background(), u, nil); err == nil {
		t.Fatal("the mislabelled retry was accepted")
	}
	calls := srv.CallsTo("PATCH /users/{id}")
	if len(calls) != 2 || calls[1].ContentEncoding != "gzip" || calls[1].Status != 400 {
		t.Errorf("calls: %+v", calls)
	}
}

// The telemetry header names the msgraph-sdk-go version go.mod pins, as
// GraphServiceClient's did: bump graphSDKVersion with the module.
func TestGraphSDKVersionMatchesGoMod(t *testing.T) {
	mod, err := os.ReadFile("../go.mod")
	if err != nil {
		t.Fatal(err)
	}
	want := "github.com/microsoftgraph/msgraph-sdk-go v" + graphSDKVersion + "\n"
	if !strings.Contains(string(mod), want) {
		t.Errorf("go.mod does not require %q: update graphSDKVersion", strings.TrimSpace(want))
	}
}
