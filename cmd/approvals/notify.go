package main

import (
	"context"
	"errors"
	"fmt"
	"net/mail"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/notify"
)

// NotifyConfig is the configuration of the notifications: SPEC "Events
// out" and the reviewer and applicant settings of "Notifications".
type NotifyConfig struct {
	WebhookURLs []string
	// WebhookSecret is APPROVALS_WEBHOOK_SECRET (or the file
	// APPROVALS_WEBHOOK_SECRET_FILE names): whsec_ and base64.
	WebhookSecret  string
	TeamsURL       string
	SlackURL       string
	ReviewerEmails []string
	// ReviewerDigest is APPROVALS_REVIEWER_DIGEST as given: "0" or a
	// duration.
	ReviewerDigest string
	Applicant      []string
}

// notifySettings are the settings of NotifyConfig, added to settings.
var notifySettings = []setting{
	{flag: "webhook-urls", env: "APPROVALS_WEBHOOK_URLS", usage: "comma-separated URLs that receive every event as a signed POST", set: list(func(c *Config) *[]string { return &c.Notify.WebhookURLs })},
	{flag: "webhook-secret", env: "APPROVALS_WEBHOOK_SECRET", usage: "whsec_ and base64 of at least 24 random bytes: the webhooks' signing secret", secret: true, set: func(c *Config, v string) error { c.Notify.WebhookSecret = v; return nil }},
	{flag: "teams-webhook-url", env: "APPROVALS_TEAMS_WEBHOOK_URL", usage: "Microsoft Teams Workflows webhook: a card per new pending request", secret: true, set: func(c *Config, v string) error { c.Notify.TeamsURL = strings.TrimSpace(v); return nil }},
	{flag: "slack-webhook-url", env: "APPROVALS_SLACK_WEBHOOK_URL", usage: "Slack incoming webhook: a message per new pending request", secret: true, set: func(c *Config, v string) error { c.Notify.SlackURL = strings.TrimSpace(v); return nil }},
	{flag: "reviewer-emails", env: "APPROVALS_REVIEWER_EMAILS", usage: "comma-separated addresses told about new pending requests", set: list(func(c *Config) *[]string { return &c.Notify.ReviewerEmails })},
	{flag: "reviewer-digest", env: "APPROVALS_REVIEWER_DIGEST", def: "0", usage: "0: one email per new pending request; a duration (15m, 1h): one email per period", set: str(func(c *Config) *string { return &c.Notify.ReviewerDigest })},
	{flag: "notify-applicant", env: "APPROVALS_NOTIFY_APPLICANT", def: "approved", usage: "which emails the applicant gets: comma-separated subset of received, approved, denied", set: list(func(c *Config) *[]string { return &c.Notify.Applicant })},
}

func init() { settings = append(settings, notifySettings...) }

// digest returns APPROVALS_REVIEWER_DIGEST as a duration.
func (n *NotifyConfig) digest() (time.Duration, error) {
	v := strings.TrimSpace(n.ReviewerDigest)
	if v == "" || v == "0" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Minute || d > 7*24*time.Hour {
		return 0, fmt.Errorf("APPROVALS_REVIEWER_DIGEST %q must be 0 or a duration between 1m and 168h, such as 15m or 1h", v)
	}
	return d, nil
}

// notifyChecks are NotifyConfig's checks, one message per problem; no
// message holds a secret or a Teams or Slack URL (they hold tokens).
func (c *Config) notifyChecks() []check {
	n := &c.Notify
	var checks []check
	for _, u := range n.WebhookURLs {
		checks = append(checks, check{!validGraphURL(u), fmt.Sprintf("APPROVALS_WEBHOOK_URLS: %q must be an https URL (http only on loopback)", u)})
	}
	if n.WebhookSecret != "" {
		if _, err := notify.ParseSecret(n.WebhookSecret); err != nil {
			checks = append(checks, check{true, "APPROVALS_WEBHOOK_SECRET: " + err.Error()})
		}
	}
	checks = append(checks,
		check{len(n.WebhookURLs) > 0 && n.WebhookSecret == "", "APPROVALS_WEBHOOK_SECRET (or APPROVALS_WEBHOOK_SECRET_FILE) is required with APPROVALS_WEBHOOK_URLS: whsec_ and base64 of at least 24 random bytes"},
		check{n.TeamsURL != "" && !validGraphURL(n.TeamsURL), "APPROVALS_TEAMS_WEBHOOK_URL must be an https URL (http only on loopback)"},
		check{n.SlackURL != "" && !validGraphURL(n.SlackURL), "APPROVALS_SLACK_WEBHOOK_URL must be an https URL (http only on loopback)"},
	)
	for _, a := range n.ReviewerEmails {
		if _, err := mail.ParseAddress(a); err != nil || strings.ContainsAny(a, "<>") {
			checks = append(checks, check{true, fmt.Sprintf("APPROVALS_REVIEWER_EMAILS: %q is not an email address", a)})
		}
	}
	if _, err := n.digest(); err != nil {
		checks = append(checks, check{true, err.Error()})
	}
	for _, a := range n.Applicant {
		switch a {
		case notify.ApplicantReceived, notify.ApplicantApproved, notify.ApplicantDenied, "none":
		default:
			checks = append(checks, check{true, fmt.Sprintf("APPROVALS_NOTIFY_APPLICANT: %q is not one of received, approved, denied", a)})
		}
	}
	return checks
}

// courierHooks add couriers to the notifier's registry: the email
// courier's wiring (cmd/approvals/mail.go) appends one with
//
//	func init() { courierHooks = append(courierHooks, mailCourier) }
//
// A hook that adds no courier for its channel leaves the channel out of
// the fan-out.
var courierHooks []func(m *Main, c *Config, couriers map[approvals.Channel]approvals.Courier) error

// newNotifier builds the couriers the configuration asks for and the
// Notifier that sends through them.
func (m *Main) newNotifier(c *Config, clock approvals.Clock, reg prometheus.Registerer) (*notify.Notifier, error) {
	n := &c.Notify
	couriers := map[approvals.Channel]approvals.Courier{}
	if len(n.WebhookURLs) > 0 {
		key, err := notify.ParseSecret(n.WebhookSecret)
		if err != nil {
			return nil, fmt.Errorf("APPROVALS_WEBHOOK_SECRET: %w", err)
		}
		couriers[approvals.ChannelWebhook] = &notify.Webhook{Key: key, Clock: clock}
	}
	if n.TeamsURL != "" {
		couriers[approvals.ChannelTeams] = &notify.Teams{URL: n.TeamsURL, PublicURL: c.PublicURL}
	}
	if n.SlackURL != "" {
		couriers[approvals.ChannelSlack] = &notify.Slack{URL: n.SlackURL, PublicURL: c.PublicURL}
	}
	for _, hook := range courierHooks {
		if err := hook(m, c, couriers); err != nil {
			return nil, err
		}
	}
	digest, _ := n.digest() // checked by Validate
	var applicant []string
	for _, a := range n.Applicant {
		if a != "none" {
			applicant = append(applicant, a)
		}
	}
	return notify.New(notify.Config{
		Store:    m.store,
		Couriers: couriers,
		Fanout: notify.Fanout{
			ReviewerEmails: n.ReviewerEmails, ReviewerDigest: digest, Applicant: applicant,
			WebhookURLs: n.WebhookURLs, Teams: n.TeamsURL != "", Slack: n.SlackURL != "",
		},
		Clock:   clock,
		Logger:  m.logger.With("component", "notifier"),
		Metrics: reg,
	})
}

// startNotifier runs the notifier until ctx ends; Close waits for it with
// the provisioner (m.wg).
func (m *Main) startNotifier(ctx context.Context, n *notify.Notifier) {
	m.wg.Add(1)
	go func() {
		defer m.wg.Done()
		if err := n.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
			m.logger.Error("notifier stopped", "error", err)
		}
	}()
}
