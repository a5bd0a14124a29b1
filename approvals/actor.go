package approvals

// ActorKind says what kind of party acted on a request.
type ActorKind string

// The kinds of actors.
const (
	// ActorReviewer is a person signed in to the reviewer UI.
	ActorReviewer ActorKind = "reviewer"
	// ActorAPIKey is a script or application using an admin API key.
	ActorAPIKey ActorKind = "api_key"
	// ActorPolicy is a configured rule, such as auto-approval by domain.
	ActorPolicy ActorKind = "policy"
	// ActorConnector is Entra calling the API connector on behalf of the
	// person signing up.
	ActorConnector ActorKind = "connector"
	// ActorSystem is the server itself, for example the provisioner.
	ActorSystem ActorKind = "system"
)

// Actor is whoever causes a change: it is recorded on decisions and audit
// events.
type Actor struct {
	Kind ActorKind `json:"kind"`
	// ID is stable: a reviewer's object id, an API key's name, a rule name.
	ID string `json:"id"`
	// Name is for people to read: a reviewer's display name.
	Name string `json:"name,omitempty"`
	// Admin is true when the actor holds the admin role.
	Admin bool `json:"-"`
}

// String returns the actor's display form: the name when there is one,
// otherwise kind:id.
func (a Actor) String() string {
	if a.Name != "" {
		return a.Name
	}
	if a.ID == "" {
		return string(a.Kind)
	}
	return string(a.Kind) + ":" + a.ID
}

// Common actors.
var (
	// ConnectorActor is Entra's API connector.
	ConnectorActor = Actor{Kind: ActorConnector, ID: "entra"}
	// ProvisionerActor is the provisioning worker.
	ProvisionerActor = Actor{Kind: ActorSystem, ID: "provisioner"}
	// NotifierActor is the outbox's worker (package notify).
	NotifierActor = Actor{Kind: ActorSystem, ID: "notifier"}
)
