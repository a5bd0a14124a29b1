package approvals

import (
	"context"
	"strings"
)

// RecordAdminAction appends the audit event of an administrative action
// that changes no request, such as an export or a backup download: who
// (by), when (the service's clock), what (t, one of the types IsAdminEvent
// accepts) and how (details: the surface, the filters, the size). Details
// whose value is empty, such as a filter that was not given, are left out.
// Every surface records through it, so that the audit trail has one writer.
//
// The action has usually happened when it is recorded, so the caller's
// cancellation does not stop the write. Errors: EInvalid for a type that is
// not an admin action's or an actor without a kind; the store's error
// otherwise.
func (s *Service) RecordAdminAction(ctx context.Context, by Actor, t EventType, details map[string]string) (err error) {
	defer wrap(&err, "RecordAdminAction(%s)", t)
	if !IsAdminEvent(t) {
		return Errorf(EInvalid, "%q is not the event type of an administrative action", t)
	}
	if by.Kind == "" {
		return Errorf(EInvalid, "the actor of %s is not named", t)
	}
	var d map[string]string
	for k, v := range details {
		if strings.TrimSpace(v) == "" {
			continue
		}
		if d == nil {
			d = make(map[string]string, len(details))
		}
		d[k] = v
	}
	return s.Store.AppendEvents(context.WithoutCancel(ctx), []Event{{At: s.now(), Type: t, Actor: by, Details: d}})
}
