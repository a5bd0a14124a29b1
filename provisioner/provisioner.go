// Package provisioner turns approved requests into Microsoft Entra
// accounts through Microsoft Graph (msgraph-sdk-go, with azidentity
// credentials), exactly once, through throttling, replication lag, crashes
// and restarts.
//
// The job queue is the store itself: approving a request marks its
// provisioning in progress and due, in the same transaction
// (approvals.Request.Approve), and the store indexes due jobs. A
// Provisioner runs a bounded pool of workers over that index. Each job
// looks the person up before creating anything, records every Graph step
// in the store as soon as it is done (the object id first of all), and
// resumes after the last recorded step when it runs again. Transient
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
	"runtime/debug"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
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
)

// scanLimit bounds how many jobs one look at the queue reads.
const scanLimit = 1000

// gaugeInterval is how often the dispatcher reads the whole queue (up to
// scanLimit jobs) to refresh the queued and scheduled gauges. In between it
// reads only the soonest jobs it needs, so that a large backlog does not
// cost a full read every time a job finishes.
const gaugeInterval = 10 * time.Second

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
	Store approvals.Store
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
	// Logger receives structured logs; discarded when nil.
	Logger *slog.Logger
	// Metrics registers the provisioning and Graph metrics; none when nil.
	Metrics prometheus.Registerer
}

func (c *Config) setDefaults() {
	if c.Clock == nil {
		c.Clock = approvals.SystemClock
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.Retry.Base <= 0 {
		c.Retry.Base = DefaultRetryBase
	}
	if c.Retry.Max <= 0 {
		c.Retry.Max = DefaultRetryMax
	}
	if c.Retry.Max < c.Retry.Base {
		c.Retry.Max = c.Retry.Base
	}
	if c.Retry.LagWindow <= 0 {
		c.Retry.LagWindow = DefaultLagWindow
	}
	if c.PollInterval <= 0 {
		c.PollInterval = DefaultPollInterval
	}
	if c.ShutdownGrace <= 0 {
		c.ShutdownGrace = DefaultShutdownGrace
	}
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
	wake    chan struct{}
	freed   chan struct{}

	mu       sync.Mutex
	started  bool
	running  map[string]bool
	held     map[string]time.Time // jobs not to start before a time (after a store failure)
	lagSince map[string]time.Time

	// lastFullScan is when dispatch last read the whole queue; only the
	// Run goroutine touches it.
	lastFullScan time.Time
}

var _ approvals.Provisioner = (*Provisioner)(nil)

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
	return &Provisioner{
		cfg: cfg, dir: dir, log: cfg.Logger, metrics: m,
		wake: make(chan struct{}, 1), freed: make(chan struct{}, 1),
		running: map[string]bool{}, held: map[string]time.Time{}, lagSince: map[string]time.Time{},
	}, nil
}

// Directory returns the Graph operations the provisioner uses, for the
// admin API's invitation flow.
func (p *Provisioner) Directory() *Directory { return p.dir }

// Wake tells the provisioner that a job may be due now. It never blocks.
func (p *Provisioner) Wake() { signal(p.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run runs jobs until ctx ends, then lets the Graph calls in flight finish
// (for at most ShutdownGrace), records their results, and returns. A job
// interrupted between steps resumes from its last recorded step when Run
// runs again. Run may be called once.
func (p *Provisioner) Run(ctx context.Context) error {
	p.mu.Lock()
	if p.started {
		p.mu.Unlock()
		return errors.New("provisioner: Run called twice")
	}
	p.started = true
	p.mu.Unlock()

	jobCtx, cancelJobs := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelJobs()
	var wg sync.WaitGroup
	timer := time.NewTimer(0)
	defer timer.Stop()
	p.log.Info("provisioner started", "workers", p.cfg.Workers, "groups", len(p.cfg.GroupIDs))
	for {
		wait := p.dispatch(ctx, jobCtx, &wg)
		timer.Reset(wait)
		select {
		case <-ctx.Done():
			p.log.Info("provisioner stopping: waiting for the Graph calls in flight", "grace", p.cfg.ShutdownGrace)
			stop := time.AfterFunc(p.cfg.ShutdownGrace, cancelJobs)
			wg.Wait()
			stop.Stop()
			p.log.Info("provisioner stopped")
			return nil
		case <-p.wake:
		case <-p.freed:
		case <-timer.C:
		}
	}
}

// dispatch starts the due jobs there are free workers for, and returns how
// long to wait before looking again (a worker finishing or Wake may end
// the wait sooner).
func (p *Provisioner) dispatch(ctx, jobCtx context.Context, wg *sync.WaitGroup) time.Duration {
	now := p.cfg.Clock.Now()
	// The jobs in progress, soonest first: the ones running or held are
	// skipped, and the first one not due yet tells when to look again.
	// Running jobs are due already, so the soonest held + workers + 1 jobs
	// are enough to fill every free worker and to see the next due time;
	// the whole queue is read only now and then, for the gauges.
	p.mu.Lock()
	limit := min(len(p.held)+p.cfg.Workers+1, scanLimit)
	p.mu.Unlock()
	full := now.Sub(p.lastFullScan) >= gaugeInterval
	if full {
		limit = scanLimit
	}
	jobs, err := p.cfg.Store.DueJobs(ctx, now.AddDate(100, 0, 0), limit)
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("provisioner: cannot read the job queue", "error", err)
		}
		return min(p.cfg.PollInterval, 5*time.Second)
	}
	wait := p.cfg.PollInterval
	p.mu.Lock()
	defer p.mu.Unlock()
	queued, scheduled := 0, 0
	for _, r := range jobs {
		if p.running[r.ID] {
			continue
		}
		due := r.Provisioning.NextAttemptAt
		if h, ok := p.held[r.ID]; ok {
			if h.After(now) {
				wait = min(wait, h.Sub(now))
				scheduled++
				continue
			}
			delete(p.held, r.ID)
		}
		if due.After(now) {
			wait = min(wait, due.Sub(now))
			scheduled++
			continue
		}
		if len(p.running) >= p.cfg.Workers {
			queued++
			continue
		}
		p.running[r.ID] = true
		wg.Add(1)
		go p.work(ctx, jobCtx, wg, r.ID)
	}
	if full {
		p.lastFullScan = now
		p.metrics.jobs.WithLabelValues("queued").Set(float64(queued))
		p.metrics.jobs.WithLabelValues("scheduled").Set(float64(scheduled))
	}
	p.metrics.jobs.WithLabelValues("in_progress").Set(float64(len(p.running)))
	return max(wait, 0)
}

// work runs one job on a worker goroutine.
func (p *Provisioner) work(runCtx, jobCtx context.Context, wg *sync.WaitGroup, id string) {
	defer wg.Done()
	defer func() {
		p.mu.Lock()
		delete(p.running, id)
		p.metrics.jobs.WithLabelValues("in_progress").Set(float64(len(p.running)))
		p.mu.Unlock()
		signal(p.freed)
	}()
	log := p.log.With("request_id", id)
	defer func() {
		if v := recover(); v != nil {
			// The SDK is generated code; a panic in it must not take the
			// server down or leave the job spinning.
			log.Error("provisioning job panicked", "panic", v, "stack", string(debug.Stack()))
			p.finish(jobCtx, log, id, nil, fmt.Sprintf("internal error: %v", v))
		}
	}()
	p.process(runCtx, jobCtx, log, id)
}

// errStopped ends a job early because Run is stopping; the job stays due.
var errStopped = errors.New("provisioner stopping")

// errGone ends a job whose provisioning is no longer in progress in the
// store (an admin changed it meanwhile).
var errGone = errors.New("provisioning no longer in progress")

// process claims a job, runs its remaining steps and records the outcome.
func (p *Provisioner) process(runCtx, jobCtx context.Context, log *slog.Logger, id string) {
	now := p.cfg.Clock.Now()
	r, err := p.cfg.Store.Update(jobCtx, id, func(r *approvals.Request) ([]approvals.Event, error) {
		if !r.Provisioning.Pending() || r.Provisioning.NextAttemptAt.After(now) {
			return nil, approvals.ErrUnchanged // taken care of since it was read
		}
		return nil, r.StartAttempt()
	})
	switch {
	case errors.Is(err, approvals.ErrUnchanged) || approvals.Code(err) == approvals.EConflict:
		return
	case err != nil:
		p.hold(log, id, err)
		return
	}
	p.metrics.attempts.Inc()
	j := &job{p: p, r: r, log: log.With("attempt", r.Provisioning.Attempts), runCtx: runCtx, ctx: jobCtx}
	err = j.run()
	var ge *GraphError
	var se *storeError
	switch {
	case err == nil:
		p.succeed(jobCtx, j)
	case errors.Is(err, errGone):
		j.log.Info("provisioning job dropped: no longer in progress in the store")
	case errors.Is(err, errStopped) || (errors.As(err, &ge) && isCanceled(jobCtx, ge.Err)):
		j.log.Info("provisioning interrupted by shutdown; it resumes from the last recorded step", "step", j.r.Provisioning.Step)
	case errors.As(err, &se):
		p.hold(j.log, id, se.err)
	case errors.As(err, &ge):
		p.graphFailure(j, ge)
	default:
		// Not a Graph answer: bad configuration or data (an email that
		// makes no UPN). Retrying will not help.
		p.finish(jobCtx, j.log, id, nil, err.Error())
	}
}

// hold keeps a job whose store write failed from being retried at once.
func (p *Provisioner) hold(log *slog.Logger, id string, err error) {
	log.Error("provisioning job: store write failed; trying again later", "error", err)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.held[id] = p.cfg.Clock.Now().Add(p.cfg.Retry.Base)
}

func (p *Provisioner) succeed(ctx context.Context, j *job) {
	r, err := p.cfg.Store.Update(ctx, j.r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.SucceedProvisioning(p.cfg.Clock.Now())
		return []approvals.Event{ev}, err
	})
	if err != nil {
		p.hold(j.log, j.r.ID, err)
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
			p.finish(j.ctx, j.log, j.r.ID, ge, strings.TrimSpace(fmt.Sprintf("%s; still failing after %s, so it is not replication lag. %s", ge.Error(), p.cfg.Retry.LagWindow, hint(ge))))
			return
		}
	}
	if c == permanent {
		cause := ge.Error()
		if h := hint(ge); h != "" {
			cause += " " + h
		}
		p.finish(j.ctx, j.log, j.r.ID, ge, cause)
		return
	}
	delay := p.backoff(j.r.Provisioning.Attempts, ge.RetryAfter)
	at := now.Add(delay)
	deadline := j.r.Provisioning.Deadline
	if deadline.IsZero() && j.r.Decision != nil {
		deadline = j.r.Decision.At.Add(approvals.DefaultProvisioningDeadline)
	}
	if !deadline.IsZero() && at.After(deadline) {
		p.finish(j.ctx, j.log, j.r.ID, ge, fmt.Sprintf("%s; gave up retrying at the deadline %s", ge.Error(), deadline.UTC().Format(time.RFC3339)))
		return
	}
	_, err := p.cfg.Store.Update(j.ctx, j.r.ID, func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.ScheduleRetry(at, failure(ge, ge.Error()), now)
		return []approvals.Event{ev}, err
	})
	if err != nil {
		p.hold(j.log, j.r.ID, err)
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
func (p *Provisioner) finish(ctx context.Context, log *slog.Logger, id string, ge *GraphError, cause string) {
	f := failure(ge, cause)
	_, err := p.cfg.Store.Update(ctx, id, func(r *approvals.Request) ([]approvals.Event, error) {
		ev, err := r.FailProvisioning(f, p.cfg.Clock.Now())
		return []approvals.Event{ev}, err
	})
	if err != nil {
		if approvals.Code(err) != approvals.EConflict {
			p.hold(log, id, err)
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
