package provisioner

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/promreg"
)

// Metric names, documented in docs/PROVISIONER.md.
const (
	metricJobs          = "approvals_provisioning_jobs"
	metricJobsFinished  = "approvals_provisioning_jobs_finished_total"
	metricAttempts      = "approvals_provisioning_attempts_total"
	metricRetries       = "approvals_provisioning_retries_total"
	metricGraphRequests = "approvals_graph_requests_total"
	metricGraphDuration = "approvals_graph_request_duration_seconds"
)

// graphMetrics count Graph calls.
type graphMetrics struct {
	requests *prometheus.CounterVec
	duration *prometheus.HistogramVec
}

// newGraphMetrics registers the Graph call metrics, or shares those
// registered already, so that two Directories on one registry share them.
func newGraphMetrics(reg prometheus.Registerer) (*graphMetrics, error) {
	return promreg.Build(reg, func(r *promreg.Registry) *graphMetrics {
		return &graphMetrics{
			requests: r.CounterVec(metricGraphRequests,
				"Microsoft Graph calls by route and HTTP status (\"error\" when no answer came).",
				[]string{"route", "status"}),
			duration: r.HistogramVec(metricGraphDuration, "Latency of Microsoft Graph calls by route.",
				[]float64{.025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}, []string{"route"}),
		}
	})
}

// jobMetrics count provisioning jobs.
type jobMetrics struct {
	jobs     *prometheus.GaugeVec
	finished *prometheus.CounterVec
	attempts prometheus.Counter
	retries  *prometheus.CounterVec
}

func newJobMetrics(reg prometheus.Registerer) (*jobMetrics, error) {
	return promreg.Build(reg, func(r *promreg.Registry) *jobMetrics {
		return &jobMetrics{
			jobs: r.GaugeVec(metricJobs,
				"Provisioning jobs by state: queued (claimable now, waiting for a worker) and scheduled (waiting for a retry time), counted in the store; in_progress (running in this process).",
				[]string{"state"}, []string{"queued", "scheduled", "in_progress"}),
			finished: r.CounterVec(metricJobsFinished, "Provisioning jobs finished, by state: succeeded or failed.",
				[]string{"state"}, []string{"succeeded", "failed"}),
			attempts: r.Counter(metricAttempts, "Provisioning attempts started."),
			retries: r.CounterVec(metricRetries,
				"Provisioning retries scheduled, by reason: the HTTP status, or error when no answer came.",
				[]string{"reason"}),
		}
	})
}

// callInfoKey keys the *callInfo of a Graph call in its context.
type callInfoKey struct{}

// callInfo is what the transport learns of a call's answer, for errors and
// logs.
type callInfo struct {
	status          int
	requestID       string
	clientRequestID string
	retryAfter      time.Duration
}

// instrumented is the HTTP transport under the SDK's middleware: it counts
// and times every call, logs it with Graph's request-id, and hands the
// answer's request-id and Retry-After to the caller.
type instrumented struct {
	base     http.RoundTripper
	basePath string
	metrics  *graphMetrics
	log      *slog.Logger
	clock    approvals.Clock
}

// RoundTrip implements http.RoundTripper.
func (t *instrumented) RoundTrip(req *http.Request) (*http.Response, error) {
	route := graphRoute(req.Method, strings.TrimPrefix(req.URL.EscapedPath(), t.basePath))
	start := t.clock.Now()
	resp, err := t.base.RoundTrip(req)
	elapsed := t.clock.Now().Sub(start)
	status, requestID := "error", ""
	var retryAfter time.Duration
	if err == nil {
		status = strconv.Itoa(resp.StatusCode)
		requestID = resp.Header.Get("request-id")
		retryAfter = parseRetryAfter(resp.Header.Get("Retry-After"), t.clock.Now())
	}
	t.metrics.requests.WithLabelValues(route, status).Inc()
	t.metrics.duration.WithLabelValues(route).Observe(elapsed.Seconds())
	if info, ok := req.Context().Value(callInfoKey{}).(*callInfo); ok {
		info.clientRequestID = req.Header.Get("client-request-id")
		info.requestID, info.retryAfter = requestID, retryAfter
		if err == nil {
			info.status = resp.StatusCode
		}
	}
	attrs := []any{"method", req.Method, "route", route, "status", status, "duration", elapsed,
		"request_id", requestID, "client_request_id", req.Header.Get("client-request-id")}
	if err != nil {
		attrs = append(attrs, "error", err.Error())
	}
	t.log.LogAttrs(req.Context(), slog.LevelDebug, "graph call", slog.Group("graph", attrs...))
	return resp, err
}

// maxRetryAfter caps a Retry-After: far beyond any provisioning deadline,
// and small enough that the backoff's added tenth cannot overflow.
const maxRetryAfter = 100 * 365 * 24 * time.Hour

// parseRetryAfter reads a Retry-After header: delay-seconds or an HTTP
// date. Zero when absent or unreadable; at most maxRetryAfter (a huge
// number of seconds would otherwise overflow to a negative duration).
func parseRetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.ParseFloat(h, 64); err == nil {
		if !(secs > 0) { // NaN too
			return 0
		}
		return time.Duration(min(secs, maxRetryAfter.Seconds()) * float64(time.Second))
	}
	if t, err := http.ParseTime(h); err == nil && t.After(now) {
		return min(t.Sub(now), maxRetryAfter)
	}
	return 0
}

// graphRoute names the route template of a call, keeping the metric
// labels few: user and group ids are replaced by {id}.
func graphRoute(method, path string) string {
	segs := strings.Split(strings.Trim(path, "/"), "/")
	switch {
	case len(segs) == 1 && segs[0] == "users":
		return method + " /users"
	case len(segs) == 2 && segs[0] == "users":
		return method + " /users/{id}"
	case len(segs) == 1 && segs[0] == "invitations":
		return method + " /invitations"
	case len(segs) == 4 && segs[0] == "groups" && segs[2] == "members" && (segs[3] == "$ref" || segs[3] == "%24ref"):
		return method + " /groups/{id}/members/$ref"
	}
	return method + " other"
}
