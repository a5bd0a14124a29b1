// Package provisionertest runs the real provisioner and Graph client
// against a fake Microsoft Graph (provisioner/graphtest), for tests of the
// packages that drive provisioning (the reviewer UI, the admin API).
package provisionertest

import (
	"context"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

// Start runs a provisioner on store against graph, with short retries,
// until the test ends, and wires it and its directory into svc, with
// redirectURL as the invitations' default.
func Start(t testing.TB, svc *approvals.Service, store approvals.Store, graph *graphtest.Server, redirectURL string) *provisioner.Provisioner {
	t.Helper()
	cred, err := provisioner.NewCredential(provisioner.CredentialConfig{
		TenantID: graph.TenantID(), ClientID: graph.ClientID(), ClientSecret: graph.ClientSecret(),
		AuthorityHost: graph.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: graph.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := provisioner.NewDirectory(provisioner.GraphConfig{URL: graph.URL(), Credential: cred, Transport: graph.Transport()})
	if err != nil {
		t.Fatal(err)
	}
	prov, err := provisioner.New(provisioner.Config{
		Store: store, Directory: dir, TenantDomain: graph.TenantDomain(), InviteRedirectURL: redirectURL,
		Retry: provisioner.RetryPolicy{Base: 20 * time.Millisecond, Max: 100 * time.Millisecond, LagWindow: time.Second},
	})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = prov.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	svc.Provisioner, svc.Directory = prov, dir
	return prov
}
