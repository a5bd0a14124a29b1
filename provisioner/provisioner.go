// Package provisioner turns approved requests into Microsoft Entra
// accounts through Microsoft Graph (msgraph-sdk-go, with azidentity
// credentials), exactly once, through throttling, replication lag, crashes
// and restarts.
//
// The job queue is the store itself: approving a request marks its
// provisioning in progress and due, in the same transaction
// (approvals.Request.Approve), and the store indexes due jobs. A
// Provisioner runs a bounded pool of workers over that index: it claims
// due jobs from the store under a lease (approvals.JobQueue.ClaimJobs), so
// that several processes sharing a store never run one job at once, renews
// the lease while a job runs, and checks it in every write. Each job looks
// the person up before creating anything, records every Graph step in the
// store as soon as it is done (the object id first of all), and resumes
// after the last recorded step when it runs again, here or, once the lease
// of a process that died has expired, in another. Transient
// failures are retried with exponential backoff and jitter, honouring
// Retry-After, until the job's deadline; permanent ones mark the request
// failed with Graph's code, message and request-id, for an admin to fix and
// retry. See docs/PROVISIONER.md.
//
// Directory exposes the same Graph operations (look-up, invitation,
// attributes, groups) to the admin API without exposing the SDK.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/defaults"
	"github.com/approvals-dev/approvals/internal/leasework"
)

// Defaults of Config.
const (
	DefaultWorkers       = 4
	MaxWorkers           = 64
	DefaultRetryBase     = 2 * time.Second
	DefaultRetryMax      = 5 * time.Minute
	DefaultLagWindow     = 15 * time.Minute
	DefaultPollInterval  = time.Minute
	DefaultShutdownGrace = 10 * time.Second
	DefaultLease         = time.Minute
)

// releaseTimeout bounds the store write that gives a job's lease back when
// Run stops, after the job context has ended.
const releaseTimeout = 5 * time.Second

// JobStore is what the provisioner needs of the store: the job queue, and
// Update to record each step and to check, renew and release its leases.
// An approvals.Store is one.
type JobStore interface {
	approvals.JobQueue
	// Update is approvals.RequestStore's Update.
	Update(ctx context.Context, id string, m approvals.Mutation) (*approvals.Request, error)
}

// RetryPolicy shapes the retries of transient failures. Zero fields take
// the defaults.
type RetryPolicy struct {
	// Base is the first backoff; each attempt doubles it, up to Max. The
	// delay is drawn uniformly from [d/2, d) (jitter). A Retry-After from
	// Graph replaces it, plus up to a tenth more.
	Base time.Duration
	Max  time.Duration
	// LagWindow bounds how long the answers of a just-created user that
	// the directory has not replicated yet (404 on PATCH, "referenced
	// object does not exist" or 403 on a group add) are retried before
	// they count as permanent. It is measured from the first such answer
	// this process saw for the job.
	LagWindow time.Duration
}

// Config configures a Provisioner.
type Config struct {
	// Store holds the requests and their provisioning jobs. Required.
	Store JobStore
	// Clock tells the time; the system clock when nil.
	Clock approvals.Clock
	// Graph says where Graph is and which credential to use; ignored when
	// Directory is set. Its Logger, Metrics and Clock default to this
	// Config's.
	Graph GraphConfig
	// Directory, when set, is used instead of one built from Graph, so
	// that the admin API and the provisioner share one client.
	Directory *Directory
	// TenantDomain is the tenant's initial domain, such as
	// contoso.onmicrosoft.com (APPROVALS_TENANT_DOMAIN): guest user
	// principal names end with it. Required.
	TenantDomain string
	// InviteRedirectURL is where invited guests land after redeeming
	// (APPROVALS_INVITE_REDIRECT_URL), for sign-ups; a line-of-business
	// invitation carries its own. cmd checks it.
	InviteRedirectURL string
	// SendInvitationMessage lets Microsoft email invitations
	// (APPROVALS_SEND_INVITATION_MESSAGE, default true in cmd).
	SendInvitationMessage bool
	// GroupIDs are the groups every provisioned user is added to
	// (APPROVALS_GROUP_IDS).
	GroupIDs []string
	// Workers is how many jobs run at once: 1 to MaxWorkers;
	// DefaultWorkers when zero.
	Workers int
	// Retry shapes retries of transient failures.
	Retry RetryPolicy
	// PollInterval is the longest the queue goes unread when nothing
	// wakes the provisioner: a safety net for jobs enqueued without Wake.
	// DefaultPollInterval when zero.
	PollInterval time.Duration
	// ShutdownGrace is how long, after Run's context ends, a Graph call in
	// flight may finish so that its result is recorded.
	// DefaultShutdownGrace when zero.
	ShutdownGrace time.Duration
	// Lease is how long a claim holds a job for this process
	// (JobQueue.ClaimJobs); DefaultLease when zero. A running job's lease
	// is renewed every third of it, and with every step recorded; a job
	// that a process held when it died is claimed again, by any process
	// sharing the store, once its lease expires. A job interrupted by a
	// clean stop gives its lease back at once.
	Lease time.Duration
	// Logger receives structured logs; discarded when nil.
	Logger *slog.Logger
	// Metrics registers the provisioning and Graph metrics; none when nil.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	c.Clock = defaults.Clock(c.Clock)
	c.Logger = defaults.Logger(c.Logger)
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	c.Retry.Base = defaults.Positive(c.Retry.Base, DefaultRetryBase)
	c.Retry.Max = defaults.Positive(c.Retry.Max, DefaultRetryMax)
	if c.Retry.Max < c.Retry.Base {
		c.Retry.Max = c.Retry.Base
	}
	c.Retry.LagWindow = defaults.Positive(c.Retry.LagWindow, DefaultLagWindow)
	c.PollInterval = defaults.Positive(c.PollInterval, DefaultPollInterval)
	c.ShutdownGrace = defaults.Positive(c.ShutdownGrace, DefaultShutdownGrace)
	c.Lease = defaults.Positive(c.Lease, DefaultLease)
	c.TenantDomain = strings.ToLower(strings.TrimSpace(c.TenantDomain))
	var groups []string
	for _, g := range c.GroupIDs {
		if g = strings.TrimSpace(g); g != "" && !slices.Contains(groups, g) {
			groups = append(groups, g)
		}
	}
	c.GroupIDs = groups
}

// Validate reports the first setting that is missing or malformed, naming
// it as the environment does.
func (c Config) Validate() error {
	checks := []struct {
		bad bool
		msg string
	}{
		{c.Store == nil, "a store is required"},
		{c.Directory == nil && c.Graph.Credential == nil, "a Graph credential is required"},
		{!validDomain(strings.ToLower(strings.TrimSpace(c.TenantDomain))), fmt.Sprintf("APPROVALS_TENANT_DOMAIN %q is not a domain such as contoso.onmicrosoft.com", c.TenantDomain)},
		{c.Workers < 0 || c.Workers > MaxWorkers, fmt.Sprintf("provisioning workers must be between 1 and %d, not %d", MaxWorkers, c.Workers)},
		{c.Lease < 0, fmt.Sprintf("the provisioning job lease must be positive, not %s", c.Lease)},
		{slices.ContainsFunc(c.GroupIDs, func(g string) bool { return strings.ContainsAny(g, "/?#% ") }), "APPROVALS_GROUP_IDS must be group object ids"},
	}
	for _, ch := range checks {
		if ch.bad {
			return errors.New(ch.msg)
		}
	}
	return nil
}

// Provisioner runs the provisioning jobs of a store. It implements
// approvals.Provisioner.
type Provisioner struct {
	cfg     Config
	dir     *Directory
	log     *slog.Logger
	metrics *jobMetrics
	pool    *leasework.Pool[*approvals.Request]

	mu       sync.Mutex
	lagSince map[string]time.Time
}

var _ approvals.Provisioner = (*Provisioner)(nil)

// lease is a running job's claim on it (approvals.JobQueue); every write
// of the job checks it, so that a worker that lost the job writes nothing.
type lease = leasework.Lease[*approvals.Request]

// New checks cfg and returns a Provisioner; call Run to start it.
func New(cfg Config) (*Provisioner, error) {
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("new provisioner: %w", err)
	}
	cfg.setDefaults()
	dir := cfg.Directory
	if dir == nil {
		g := cfg.Graph
		if g.Logger == nil {
			g.Logger = cfg.Logger
		}
		if g.Metrics == nil {
			g.Metrics = cfg.Metrics
		}
		if g.Clock == nil {
			g.Clock = cfg.Clock
		}
		var err error
		if dir, err = NewDirectory(g); err != nil {
			return nil, fmt.Errorf("new provisioner: %w", err)
		}
	}
	m, err := newJobMetrics(cfg.Metrics)
	if err != nil {
		return nil, fmt.Errorf("new provisioner: %w", err)
	}
	p := &Provisioner{cfg: cfg, dir: dir, log: cfg.Logger, metrics: m, lagSince: map[string]time.Time{}}
	st := cfg.Store
	p.pool = leasework.New(leasework.Config[*approvals.Request]{
		Queue: leasework.Queue[*approvals.Request]{
			Next:  st.NextJobAt,
			Claim: st.ClaimJobs,
			Update: func(ctx context.Context, id string, m leasework.Mutation[*approvals.Request]) error {
				_, err := st.Update(ctx, id, m)
				return err
			},
			ID:    func(r *approvals.Request) string { return r.ID },
			Lease: func(r *approvals.Request) *approvals.Lease { return r.Provisioning.Lease },
		},
		Name: "provisioner", Noun: "provisioning job", Source: "the job queue",
		StartAttrs: []any{"groups", len(cfg.GroupIDs)},
		Stopping:   "waiting for the Graph calls in flight",
		Workers:    cfg.Workers, Lease: cfg.Lease, PollInterval: cfg.PollInterval, ShutdownGrace: cfg.ShutdownGrace,
		LeaseLost: errLeaseLost, Clock: cfg.Clock, Logger: cfg.Logger,
		LogAttrs: func(r *approvals.Request) []any { return []any{"request_id", r.ID} },
		Work:     p.process,
		Fail: func(ctx context.Context, log *slog.Logger, l *lease, _ *approvals.Request, err error) {
			p.finish(ctx, log, l, nil, err.Error())
		},
		Count: p.countJobs,
		Running: func(n int) {
			m.jobs.WithLabelValues("in_progress").Set(float64(n))
		},
	})
	return p, nil
}

// Directory returns the Graph operations the provisioner uses, for the
// admin API's invitation flow.
func (p *Provisioner) Directory() *Directory { return p.dir }

// Wake tells the provisioner that a job may be due now. It never blocks.
func (p *Provisioner) Wake() { p.pool.Wake() }

// Run runs jobs until ctx ends, then lets the Graph calls in flight finish
// (for at most ShutdownGrace), records their results, and returns. A job
// interrupted between steps resumes from its last recorded step when Run
// runs again. Run may be called once.
func (p *Provisioner) Run(ctx context.Context) error { return p.pool.Run(ctx) }

// countJobs refreshes the queued and scheduled gauges.
func (p *Provisioner) countJobs(ctx context.Context, now time.Time) error {
	n, err := p.cfg.Store.CountJobs(ctx, now)
	if err != nil {
		return err
	}
	p.metrics.jobs.WithLabelValues("queued").Set(float64(n.Due))
	p.metrics.jobs.WithLabelValues("scheduled").Set(float64(n.Scheduled))
	return nil
}

// errStopped ends a job early because Run is stopping; the job stays due.
var errStopped = errors.New("provisioner stopping")

// errGone ends a job whose provisioning is no longer in progress in the
// store (an admin changed it meanwhile), or whose lease was lost.
var errGone = errors.New("provisioning no longer in progress")

// errLeaseLost refuses a write of a worker whose lease on the job expired
// and was taken by another claim.
var errLeaseLost = &approvals.Error{Code: approvals.EConflict, Message: "the provisioning job's lease was lost: another worker holds it now"}

// process runs a claimed job's remaining steps and records the outcome.
func (p *Provisioner) process(runCtx context.Context, log *slog.Logger, l *lease, claimed *approvals.Request) {
	r, err := p.cfg.Store.Update(l.Context(), claimed.ID, l.Renewing(func(r *approvals.Request) ([]approvals.Event, error) {
		return nil, r.StartAttempt()
	}))
	switch {
	case approvals.Code(err) == approvals.EConflict:
		return // no longer in progress, or the lease was lost already
	case err != nil:
		p.hold(log, l, err)
		return
	}
	p.metrics.attempts.Inc()
	j := &job{p: p, r: r, lease: l, log: log.With("attempt", r.Provisioning.Attempts), runCtx: runCtx, ctx: l.Context()}
	err = j.run()
	l.Stop()
	var ge *GraphError
	var se *storeError
	switch {
	case l.Lost():
		// Its writes are refused: the other worker's record stands.
		j.log.Warn("provisioning job abandoned: its lease was lost to another worker, which resumes it from the last recorded step", "step", j.r.Provisioning.Step)
	case err == nil:
		p.succeed(l.Parent(), j)
	case errors.Is(err, errGone):
		j.log.Info("provisioning job dropped: no longer in progress in the store")
	case errors.Is(err, errStopped) || (err != nil && l.Parent().Err() != nil):
		// Stopped between steps, or a Graph call or store write cut off
		// at the end of the grace.
		j.log.Info("provisioning interrupted by shutdown; it resumes from the last recorded step", "step", j.r.Provisioning.Step)
		p.release(j.log, l)
	case errors.As(err, &se):
		p.hold(j.log, l, se.err)
	case errors.As(err, &ge):
		p.graphFailure(j, ge)
	default:
		// Not a Graph answer: bad configuration or data (an email that
		// makes no UPN). Retrying will not help.
		p.finish(l.Parent(), j.log, l, nil, err.Error())
	}
}

// hold keeps a job whose store write failed from being retried at once:
// its lease is cut to Retry.Base from now, after which any worker may claim
// it again. If that write fails too, the lease runs out by itself.
func (p *Provisioner) hold(log *slog.Logger, l *lease, err error) {
	log.Error("provisioning job: store write failed; trying again later", "error", err)
	_ = l.Hold(context.WithoutCancel(l.Parent()), p.cfg.Clock.Now().Add(p.cfg.Retry.Base))
}

func (p *Provisioner) succeed(ctx context.Context, j *job) {
	r, err := p.cfg.Store.Update(ctx, j.r.ID, j.lease.Renewing(func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.SucceedProvisioning(p.cfg.Clock.Now())
		return []approvals.Event{ev}, err
	}))
	if err != nil {
		if approvals.Code(err) != approvals.EConflict {
			p.hold(j.log, j.lease, err)
		}
		return
	}
	p.clearLag(r.ID)
	p.metrics.finished.WithLabelValues("succeeded").Inc()
	j.log.Info("provisioning succeeded", "user_id", r.Provisioning.UserID, "method", r.Provisioning.Method, "groups", len(r.Provisioning.GroupsDone))
}

// graphFailure retries or fails a job after a Graph call failed.
func (p *Provisioner) graphFailure(j *job, ge *GraphError) {
	now := p.cfg.Clock.Now()
	c := classify(ge)
	if c == lagging {
		p.mu.Lock()
		since, ok := p.lagSince[j.r.ID]
		if !ok {
			since = now
			p.lagSince[j.r.ID] = now
		}
		p.mu.Unlock()
		if now.Sub(since) >= p.cfg.Retry.LagWindow {
			p.finish(j.lease.Parent(), j.log, j.lease, ge, strings.TrimSpace(fmt.Sprintf("%s; still failing after %s, so it is not replication lag. %s", ge.Error(), p.cfg.Retry.LagWindow, hint(ge))))
			return
		}
	}
	if c == permanent {
		cause := ge.Error()
		if h := hint(ge); h != "" {
			cause += " " + h
		}
		p.finish(j.lease.Parent(), j.log, j.lease, ge, cause)
		return
	}
	delay := p.backoff(j.r.Provisioning.Attempts, ge.RetryAfter)
	at := now.Add(delay)
	deadline := j.r.Provisioning.Deadline
	if deadline.IsZero() && j.r.Decision != nil {
		deadline = j.r.Decision.At.Add(approvals.DefaultProvisioningDeadline)
	}
	if !deadline.IsZero() && at.After(deadline) {
		p.finish(j.lease.Parent(), j.log, j.lease, ge, fmt.Sprintf("%s; gave up retrying at the deadline %s", ge.Error(), deadline.UTC().Format(time.RFC3339)))
		return
	}
	_, err := p.cfg.Store.Update(j.lease.Parent(), j.r.ID, j.lease.Renewing(func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.ScheduleRetry(at, failure(ge, ge.Error()), now)
		return []approvals.Event{ev}, err
	}))
	if err != nil {
		if approvals.Code(err) != approvals.EConflict {
			p.hold(j.log, j.lease, err)
		}
		return
	}
	reason := "error"
	if ge.Status != 0 {
		reason = fmt.Sprint(ge.Status)
	}
	p.metrics.retries.WithLabelValues(reason).Inc()
	j.log.Warn("provisioning step failed; retry scheduled", "class", c.String(), "error", ge.Error(),
		"graph_request_id", ge.RequestID, "retry_in", delay, "retry_after", ge.RetryAfter)
}

// finish marks a job failed; ge may be nil when the cause is not Graph's.
func (p *Provisioner) finish(ctx context.Context, log *slog.Logger, l *lease, ge *GraphError, cause string) {
	f := failure(ge, cause)
	id := l.ID()
	_, err := p.cfg.Store.Update(ctx, id, l.Renewing(func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.FailProvisioning(f, p.cfg.Clock.Now())
		return []approvals.Event{ev}, err
	}))
	if err != nil {
		if approvals.Code(err) != approvals.EConflict {
			p.hold(log, l, err)
		}
		return
	}
	p.clearLag(id)
	p.metrics.finished.WithLabelValues("failed").Inc()
	log.Error("provisioning failed; an admin can retry it", "error", cause, "graph_request_id", f.GraphRequestID)
}

// failure describes a failed step for the request's record; ge may be nil
// when the cause is not Graph's.
func failure(ge *GraphError, cause string) approvals.Failure {
	f := approvals.Failure{Cause: cause}
	if ge != nil {
		f.GraphStatus, f.GraphCode, f.GraphRequestID, f.GroupID = ge.Status, ge.Code, ge.RequestID, ge.GroupID
	}
	return f
}

func (p *Provisioner) clearLag(id string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.lagSince, id)
}

// backoff returns the delay before the next attempt: Retry-After when
// Graph sent one (plus up to a tenth more, so that throttled jobs do not
// return together), else an exponential delay with jitter.
func (p *Provisioner) backoff(attempt int, retryAfter time.Duration) time.Duration {
	if retryAfter > 0 {
		return retryAfter + time.Duration(mrand.Int64N(int64(retryAfter/10)+1))
	}
	d := p.cfg.Retry.Base
	for i := 1; i < attempt && d < p.cfg.Retry.Max; i++ {
		d *= 2
	}
	d = min(d, p.cfg.Retry.Max)
	return d/2 + time.Duration(mrand.Int64N(int64(d/2)+1))
}

// storeError is a failed store write inside a job.
type storeError struct{ err error }

func (e *storeError) Error() string { return e.err.Error() }
func (e *storeError) Unwrap() error { return e.err }

// release gives the lease back, so that the job is claimable at once: for
// a job interrupted by a clean stop, which the next process resumes.
func (p *Provisioner) release(log *slog.Logger, l *lease) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(l.Parent()), releaseTimeout)
	defer cancel()
	_, err := p.cfg.Store.Update(ctx, l.ID(), l.Owned(func(r *approvals.Request) ([]approvals.Event, error) {
		r.Provisioning.Lease = nil
		return nil, nil
	}))
	if err != nil && !errors.Is(err, errLeaseLost) {
		log.Warn("provisioning job: cannot give its lease back; another process may resume it once the lease expires", "error", err, "lease", p.cfg.Lease)
	}
}
