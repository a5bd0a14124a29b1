package approvals

import "time"

// DecisionRecord is one decided request as the export read model holds
// it (Store.Decisions): one row of a decision export. Package export
// encodes it; its JSON names are the export's column names.
type DecisionRecord struct {
	ID                string            `json:"id"`
	Email             string            `json:"email"`
	DisplayName       string            `json:"display_name"`
	Issuer            string            `json:"issuer"`
	Status            Status            `json:"status"`
	Automatic         bool              `json:"automatic"`
	DecidedBy         string            `json:"decided_by"`
	DecidedAt         time.Time         `json:"decided_at"`
	Reason            string            `json:"reason"`
	CreatedAt         time.Time         `json:"created_at"`
	ProvisioningState ProvisioningState `json:"provisioning_state"`
	UserID            string            `json:"user_id"`
	// DecidedByID is the decider's stable id (Decision.ByID): a reviewer's
	// object id, an API key's name, a rule's name. DecidedBy is for people.
	DecidedByID string `json:"decided_by_id"`
	// Source is how the request entered (signup, invitation, external_id);
	// requests stored before sources existed are sign-ups.
	Source Source `json:"source"`
}

// NewDecisionRecord flattens a decided request into an export row.
func NewDecisionRecord(r *Request) DecisionRecord {
	rec := DecisionRecord{
		ID: r.ID, Email: r.Email, DisplayName: r.DisplayName, Status: r.Status,
		CreatedAt: r.CreatedAt, ProvisioningState: r.Provisioning.State, UserID: r.Provisioning.UserID,
		Source: r.Source,
	}
	if rec.Source == "" {
		rec.Source = SourceSignUp
	}
	if r.Identity != nil {
		rec.Issuer = r.Identity.Issuer
	}
	if d := r.Decision; d != nil {
		rec.Automatic, rec.DecidedBy, rec.DecidedAt, rec.Reason = d.Automatic, d.By, d.At, d.Reason
		rec.DecidedByID = d.ByID
	}
	return rec
}
