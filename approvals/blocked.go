package approvals

import "context"

// NoteBlockedCheck records in the audit trail that the person of st tried
// to sign up again and was stopped at the connector's first step with the
// message key given (EventBlockedAtCheck, details "message"), so that
// reviewers see the person came back. The connector calls it at most once
// per request and message within its de-duplication window: a person
// retrying a dozen times in a minute is one event, not a dozen durable
// writes. The event time is the service's clock.
func (s *Service) NoteBlockedCheck(ctx context.Context, st Standing, message string) (err error) {
	defer wrap(&err, "NoteBlockedCheck(%q)", st.ID)
	if st.ID == "" {
		return Errorf(EInvalid, "a blocked check needs the request's id")
	}
	ev := Event{
		At:        s.now(),
		Type:      EventBlockedAtCheck,
		RequestID: st.ID,
		Actor:     ConnectorActor,
		Details:   map[string]string{"message": message},
	}
	return s.Store.AppendEvents(ctx, []Event{ev})
}
