package provisioner

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

var _ approvals.Directory = (*Directory)(nil)

// Backoff of LookupPerson's retries: someone waits for its answer, so it
// retries transient failures (throttling, Graph unavailable) only until the
// caller's deadline, unlike the provisioning queue.
const (
	lookupRetryBase = 500 * time.Millisecond
	lookupRetryMax  = 8 * time.Second
)

// LookupPerson implements approvals.Directory: the users whose mail or
// otherMails is email, retrying transient failures with backoff and jitter,
// honouring Retry-After, while ctx's deadline leaves time for another try.
func (d *Directory) LookupPerson(ctx context.Context, email string) ([]approvals.DirectoryUser, error) {
	var users []DirectoryUser
	delay := lookupRetryBase
	for {
		var err error
		users, err = d.FindPerson(ctx, email, nil)
		if err == nil {
			break
		}
		if !Transient(err) {
			return nil, directoryError(err)
		}
		wait := delay/2 + rand.N(delay/2+1)
		var ge *GraphError
		if errors.As(err, &ge) && ge.RetryAfter > 0 {
			wait = ge.RetryAfter
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
			return nil, directoryError(err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, directoryError(err)
		case <-t.C:
		}
		delay = min(delay*2, lookupRetryMax)
	}
	out := make([]approvals.DirectoryUser, 0, len(users))
	for _, u := range users {
		out = append(out, approvals.DirectoryUser{ID: u.ID, DisplayName: u.DisplayName, Mail: u.Mail, UserPrincipalName: u.UserPrincipalName, UserType: u.UserType})
	}
	return out, nil
}

// directoryError reports a failed look-up to the domain with Graph's
// answer.
func directoryError(err error) error {
	de := &approvals.DirectoryError{Failure: approvals.Failure{Cause: err.Error()}, Transient: Transient(err), Err: err}
	var ge *GraphError
	if errors.As(err, &ge) {
		de.Failure = failure(ge, ge.Message)
		if ge.Message == "" {
			de.Cause = err.Error()
		}
		de.RetryAfter = ge.RetryAfter
	}
	return de
}
