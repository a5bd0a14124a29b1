package notify

import (
	"encoding/json"
	"fmt"
	"net/mail"
	"strconv"
	"strings"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The applicant emails APPROVALS_NOTIFY_APPLICANT may name.
const (
	ApplicantReceived = "received"
	ApplicantApproved = "approved"
	ApplicantDenied   = "denied"
)

// Fanout says who hears of each announced event. A channel takes part
// only when the Notifier has a Courier for it.
type Fanout struct {
	// ReviewerEmails are told about new pending requests
	// (APPROVALS_REVIEWER_EMAILS).
	ReviewerEmails []string
	// ReviewerDigest, when positive, sends reviewers at most one email
	// per period listing the requests that became pending in it
	// (APPROVALS_REVIEWER_DIGEST); zero sends one per request.
	ReviewerDigest time.Duration
	// Applicant is which emails the person gets: a subset of
	// ApplicantReceived, ApplicantApproved, ApplicantDenied
	// (APPROVALS_NOTIFY_APPLICANT).
	Applicant []string
	// WebhookURLs receive every announced event (APPROVALS_WEBHOOK_URLS).
	WebhookURLs []string
	// Teams and Slack post each new pending request to the channel's
	// courier, which holds the URL (APPROVALS_TEAMS_WEBHOOK_URL,
	// APPROVALS_SLACK_WEBHOOK_URL).
	Teams, Slack bool
}

func (f Fanout) validate() error {
	for _, a := range f.ReviewerEmails {
		if _, err := mail.ParseAddress(a); err != nil {
			return fmt.Errorf("APPROVALS_REVIEWER_EMAILS: %q is not an email address", a)
		}
	}
	for _, a := range f.Applicant {
		switch a {
		case ApplicantReceived, ApplicantApproved, ApplicantDenied:
		default:
			return fmt.Errorf("APPROVALS_NOTIFY_APPLICANT: %q is not one of received, approved, denied", a)
		}
	}
	if f.ReviewerDigest < 0 {
		return fmt.Errorf("APPROVALS_REVIEWER_DIGEST must be 0 or a positive duration, not %s", f.ReviewerDigest)
	}
	return nil
}

func (f Fanout) applicant(kind string) bool {
	for _, a := range f.Applicant {
		if a == kind {
			return true
		}
	}
	return false
}

// newPending reports whether the announced event ev made r a new pending
// request: the ones reviewers, Teams and Slack hear of.
func newPending(ev *approvals.Event, r *approvals.Request) bool {
	switch ev.Type {
	case approvals.EventReceived, approvals.EventResubmitted, approvals.EventReopened:
		return r != nil && r.Status == approvals.StatusPending
	}
	return false
}

// applicantKind returns the applicant email the event calls for, or "".
func applicantKind(ev *approvals.Event, r *approvals.Request) string {
	if r == nil {
		return ""
	}
	switch ev.Type {
	case approvals.EventReceived, approvals.EventResubmitted:
		if r.Status == approvals.StatusPending {
			return ApplicantReceived
		}
	case approvals.EventApproved, approvals.EventAutoApproved:
		// Provisioned by Entra itself: ready at once; otherwise only once
		// provisioning succeeded.
		if r.Provisioning.State == approvals.ProvisioningByEntra {
			return ApplicantApproved
		}
	case approvals.EventProvisioningSucceeded:
		return ApplicantApproved
	case approvals.EventDenied, approvals.EventAutoDenied:
		return ApplicantDenied
	}
	return ""
}

// mailKinds maps the applicant email names to their delivery kinds.
var mailKinds = map[string]string{
	ApplicantReceived: approvals.MailApplicantReceived,
	ApplicantApproved: approvals.MailApplicantApproved,
	ApplicantDenied:   approvals.MailApplicantDenied,
}

// DigestPeriod returns the digest period of length period holding t: the
// periods are aligned on the Unix epoch.
func DigestPeriod(t time.Time, period time.Duration) (start, end time.Time) {
	start = time.Unix(0, t.UnixNano()-t.UnixNano()%int64(period)).UTC()
	return start, start.Add(period)
}

// deliveries returns the deliveries announcement a fans out into, with
// IDs that are the same on every fan-out of it.
func (f Fanout) deliveries(a *approvals.Delivery, couriers map[approvals.Channel]approvals.Courier) []approvals.Delivery {
	ev, r := a.Event, a.Request
	if ev == nil {
		return nil
	}
	child := func(c approvals.Channel, key, kind, recipient string) approvals.Delivery {
		return approvals.Delivery{
			ID: approvals.ChildDeliveryID(a.ID, c, key), Channel: c, Kind: kind,
			RequestID: a.RequestID, Recipient: recipient, Event: ev, Request: r,
			State: approvals.DeliveryPending, CreatedAt: ev.At, NextAttemptAt: ev.At,
		}
	}
	var out []approvals.Delivery
	if couriers[approvals.ChannelWebhook] != nil {
		for i, u := range f.WebhookURLs {
			out = append(out, child(approvals.ChannelWebhook, strconv.Itoa(i), string(ev.Type), u))
		}
	}
	pending := newPending(ev, r)
	if pending && f.Teams && couriers[approvals.ChannelTeams] != nil {
		out = append(out, child(approvals.ChannelTeams, "0", string(ev.Type), ""))
	}
	if pending && f.Slack && couriers[approvals.ChannelSlack] != nil {
		out = append(out, child(approvals.ChannelSlack, "0", string(ev.Type), ""))
	}
	if couriers[approvals.ChannelEmail] == nil {
		return out
	}
	if pending {
		for _, addr := range f.ReviewerEmails {
			addr = strings.ToLower(strings.TrimSpace(addr))
			if f.ReviewerDigest <= 0 {
				out = append(out, child(approvals.ChannelEmail, addr, approvals.MailReviewerPending, addr))
				continue
			}
			start, end := DigestPeriod(ev.At, f.ReviewerDigest)
			data, _ := json.Marshal(map[string]string{
				"since": start.Format(time.RFC3339), "until": end.Format(time.RFC3339)})
			out = append(out, approvals.Delivery{
				ID:      approvals.ChildDeliveryID("digest-"+strconv.FormatInt(start.Unix(), 10), approvals.ChannelEmail, addr),
				Channel: approvals.ChannelEmail, Kind: approvals.MailReviewerDigest, Recipient: addr, Data: data,
				State: approvals.DeliveryPending, CreatedAt: ev.At, NextAttemptAt: end,
			})
		}
	}
	if kind := applicantKind(ev, r); kind != "" && f.applicant(kind) && r.Email != "" {
		out = append(out, child(approvals.ChannelEmail, "applicant", mailKinds[kind], r.Email))
	}
	return out
}
