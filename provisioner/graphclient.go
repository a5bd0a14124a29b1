package provisioner

import (
	"net/http"
	"sync"

	abs "github.com/microsoft/kiota-abstractions-go"
	absauth "github.com/microsoft/kiota-abstractions-go/authentication"
	absser "github.com/microsoft/kiota-abstractions-go/serialization"
	absstore "github.com/microsoft/kiota-abstractions-go/store"
	formser "github.com/microsoft/kiota-serialization-form-go"
	jsonser "github.com/microsoft/kiota-serialization-json-go"
	multipartser "github.com/microsoft/kiota-serialization-multipart-go"
	textser "github.com/microsoft/kiota-serialization-text-go"
	msgraphcore "github.com/microsoftgraph/msgraph-sdk-go-core"
	"github.com/microsoftgraph/msgraph-sdk-go/groups"
	"github.com/microsoftgraph/msgraph-sdk-go/invitations"
	"github.com/microsoftgraph/msgraph-sdk-go/users"
)

// graphClient reaches the three collections the Directory uses, /users,
// /invitations and /groups, through their request builders.
//
// It replaces msgraph-sdk-go's GraphServiceClient, whose package imports
// the request builders of all of Graph (87 packages, 14,700 files): built
// from the three builder packages, the models and the core package, the
// server compiles 40 % of the SDK, which roughly halves a fresh build and
// CI (docs/PROVISIONER.md). The adapter is set up as GraphServiceClient sets
// it up: the same client options, the same serializers, the backing store.
type graphClient struct {
	adapter abs.RequestAdapter
	// path holds the base URL; each builder copies it.
	path map[string]string
}

// graphSDKVersion is the msgraph-sdk-go version sent in the SDK's
// telemetry header (SdkVersion), as GraphServiceClient would send it.
const graphSDKVersion = "1.89.0"

// graphClientOptions are GraphServiceClient's default client options.
func graphClientOptions() msgraphcore.GraphClientOptions {
	return msgraphcore.GraphClientOptions{GraphServiceLibraryVersion: graphSDKVersion}
}

// registerSerializers registers, once per process, the serializers and
// parse nodes GraphServiceClient registers: kiota keeps them in a
// process-wide registry.
var registerSerializers = sync.OnceFunc(func() {
	abs.RegisterDefaultSerializer(func() absser.SerializationWriterFactory { return jsonser.NewJsonSerializationWriterFactory() })
	abs.RegisterDefaultSerializer(func() absser.SerializationWriterFactory { return textser.NewTextSerializationWriterFactory() })
	abs.RegisterDefaultSerializer(func() absser.SerializationWriterFactory { return formser.NewFormSerializationWriterFactory() })
	abs.RegisterDefaultSerializer(func() absser.SerializationWriterFactory {
		return multipartser.NewMultipartSerializationWriterFactory()
	})
	abs.RegisterDefaultDeserializer(func() absser.ParseNodeFactory { return jsonser.NewJsonParseNodeFactory() })
	abs.RegisterDefaultDeserializer(func() absser.ParseNodeFactory { return textser.NewTextParseNodeFactory() })
	abs.RegisterDefaultDeserializer(func() absser.ParseNodeFactory { return formser.NewFormParseNodeFactory() })
})

// newGraphClient returns a client for the Graph at base (".../v1.0"),
// sending its requests through httpClient with auth's tokens.
func newGraphClient(auth absauth.AuthenticationProvider, httpClient *http.Client, base string) (*graphClient, error) {
	registerSerializers()
	adapter, err := msgraphcore.NewGraphRequestAdapterBaseWithParseNodeFactoryAndSerializationWriterFactoryAndHttpClient(
		auth, graphClientOptions(), nil, nil, httpClient)
	if err != nil {
		return nil, err
	}
	adapter.SetBaseUrl(base)
	adapter.EnableBackingStore(absstore.BackingStoreFactoryInstance)
	return &graphClient{adapter: adapter, path: map[string]string{"baseurl": base}}, nil
}

// Users is /users.
func (c *graphClient) Users() *users.UsersRequestBuilder {
	return users.NewUsersRequestBuilderInternal(c.path, c.adapter)
}

// Invitations is /invitations.
func (c *graphClient) Invitations() *invitations.InvitationsRequestBuilder {
	return invitations.NewInvitationsRequestBuilderInternal(c.path, c.adapter)
}

// Groups is /groups.
func (c *graphClient) Groups() *groups.GroupsRequestBuilder {
	return groups.NewGroupsRequestBuilderInternal(c.path, c.adapter)
}
