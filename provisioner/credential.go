package provisioner

import (
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
)

// DefaultAuthorityHost is the Microsoft Entra authority of the global
// cloud.
const DefaultAuthorityHost = "https://login.microsoftonline.com/"

// CredentialConfig selects and configures the Graph credential. The fields
// carry the standard azidentity environment variables; see
// CredentialConfigFromEnv.
type CredentialConfig struct {
	TenantID string // AZURE_TENANT_ID
	ClientID string // AZURE_CLIENT_ID
	// ClientSecret selects a client secret credential.
	ClientSecret string // AZURE_CLIENT_SECRET
	// ClientCertificatePath selects a client certificate credential (PEM
	// or PKCS#12 file with the private key).
	ClientCertificatePath     string // AZURE_CLIENT_CERTIFICATE_PATH
	ClientCertificatePassword string // AZURE_CLIENT_CERTIFICATE_PASSWORD
	// SendCertificateChain sends the x5c header, for subject name / issuer
	// authentication.
	SendCertificateChain bool // AZURE_CLIENT_SEND_CERTIFICATE_CHAIN
	// FederatedTokenFile selects a workload identity credential.
	FederatedTokenFile string // AZURE_FEDERATED_TOKEN_FILE
	// AuthorityHost is the Entra authority of a national or private cloud
	// (https only); DefaultAuthorityHost when empty.
	AuthorityHost string // AZURE_AUTHORITY_HOST
	// DisableInstanceDiscovery skips the instance metadata request to
	// login.microsoftonline.com: needed for private clouds and local
	// authorities.
	DisableInstanceDiscovery bool // APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY
	// HTTPClient sends the token requests; azcore's default when nil.
	HTTPClient *http.Client
}

// CredentialConfigFromEnv reads the standard azidentity variables through
// getenv (os.Getenv in production).
func CredentialConfigFromEnv(getenv func(string) string) CredentialConfig {
	truthy := func(k string) bool {
		switch strings.ToLower(strings.TrimSpace(getenv(k))) {
		case "1", "true", "yes", "on":
			return true
		}
		return false
	}
	return CredentialConfig{
		TenantID:                  strings.TrimSpace(getenv("AZURE_TENANT_ID")),
		ClientID:                  strings.TrimSpace(getenv("AZURE_CLIENT_ID")),
		ClientSecret:              getenv("AZURE_CLIENT_SECRET"),
		ClientCertificatePath:     strings.TrimSpace(getenv("AZURE_CLIENT_CERTIFICATE_PATH")),
		ClientCertificatePassword: getenv("AZURE_CLIENT_CERTIFICATE_PASSWORD"),
		SendCertificateChain:      truthy("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN"),
		FederatedTokenFile:        strings.TrimSpace(getenv("AZURE_FEDERATED_TOKEN_FILE")),
		AuthorityHost:             strings.TrimSpace(getenv("AZURE_AUTHORITY_HOST")),
		DisableInstanceDiscovery:  truthy("APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY"),
	}
}

// CredentialKind names the credential NewCredential chose.
type CredentialKind string

// The credential kinds, in the order NewCredential considers them (the
// order of azidentity's EnvironmentCredential, then DefaultAzureCredential).
const (
	CredentialClientSecret      CredentialKind = "client_secret"
	CredentialClientCertificate CredentialKind = "client_certificate"
	CredentialWorkloadIdentity  CredentialKind = "workload_identity"
	CredentialManagedIdentity   CredentialKind = "managed_identity"
)

// Kind returns the credential the configuration selects: a client secret,
// else a client certificate, else workload identity (a federated token
// file), else managed identity (user-assigned when ClientID is set).
func (c CredentialConfig) Kind() CredentialKind {
	switch {
	case c.ClientSecret != "":
		return CredentialClientSecret
	case c.ClientCertificatePath != "":
		return CredentialClientCertificate
	case c.FederatedTokenFile != "":
		return CredentialWorkloadIdentity
	}
	return CredentialManagedIdentity
}

// Validate reports the first setting missing for the selected credential.
func (c CredentialConfig) Validate() error {
	k := c.Kind()
	checks := []struct {
		bad bool
		msg string
	}{
		{k != CredentialManagedIdentity && c.TenantID == "", "AZURE_TENANT_ID is required for " + string(k) + " credentials"},
		{k != CredentialManagedIdentity && c.ClientID == "", "AZURE_CLIENT_ID is required for " + string(k) + " credentials"},
		{c.AuthorityHost != "" && !strings.HasPrefix(strings.ToLower(c.AuthorityHost), "https://"), "AZURE_AUTHORITY_HOST must be an https URL"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

// NewCredential builds the Graph credential the configuration selects
// (see Kind), pointed at the configured authority.
func NewCredential(c CredentialConfig) (_ azcore.TokenCredential, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("new %s credential: %w", c.Kind(), err)
		}
	}()
	if err := c.Validate(); err != nil {
		return nil, err
	}
	authority := c.AuthorityHost
	if authority == "" {
		authority = DefaultAuthorityHost
	}
	opts := azcore.ClientOptions{Cloud: cloud.Configuration{ActiveDirectoryAuthorityHost: authority}}
	if c.HTTPClient != nil {
		opts.Transport = c.HTTPClient
	}
	switch c.Kind() {
	case CredentialClientSecret:
		return azidentity.NewClientSecretCredential(c.TenantID, c.ClientID, c.ClientSecret, &azidentity.ClientSecretCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: c.DisableInstanceDiscovery,
		})
	case CredentialClientCertificate:
		data, err := os.ReadFile(c.ClientCertificatePath)
		if err != nil {
			return nil, err
		}
		var pw []byte
		if c.ClientCertificatePassword != "" {
			pw = []byte(c.ClientCertificatePassword)
		}
		certs, key, err := azidentity.ParseCertificates(data, pw)
		if err != nil {
			return nil, err
		}
		return azidentity.NewClientCertificateCredential(c.TenantID, c.ClientID, certs, key, &azidentity.ClientCertificateCredentialOptions{
			ClientOptions: opts, DisableInstanceDiscovery: c.DisableInstanceDiscovery, SendCertificateChain: c.SendCertificateChain,
		})
	case CredentialWorkloadIdentity:
		return azidentity.NewWorkloadIdentityCredential(&azidentity.WorkloadIdentityCredentialOptions{
			ClientOptions: opts, ClientID: c.ClientID, TenantID: c.TenantID, TokenFilePath: c.FederatedTokenFile,
			DisableInstanceDiscovery: c.DisableInstanceDiscovery,
		})
	}
	mi := &azidentity.ManagedIdentityCredentialOptions{ClientOptions: opts}
	if c.ClientID != "" {
		mi.ID = azidentity.ClientID(c.ClientID)
	}
	return azidentity.NewManagedIdentityCredential(mi)
}

var _ policy.Transporter = (*http.Client)(nil)
