// Package promreg registers the Prometheus collectors of a component (the
// provisioner's jobs and Graph calls, the notifier's deliveries): each is
// registered once per registry, so that two components of one kind on a
// registry share their metrics, and the label values a component knows of
// are created at zero, so that a scrape shows them before the first event.
package promreg

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Registry registers collectors on a prometheus.Registerer and keeps the
// first error, for Build to return. A nil Registerer registers nothing.
type Registry struct {
	reg prometheus.Registerer
	err error
}

// Build returns the metrics build creates on a Registry over reg, which
// may be nil, or the first registration that failed.
func Build[M any](reg prometheus.Registerer, build func(r *Registry) M) (M, error) {
	r := &Registry{reg: reg}
	m := build(r)
	if r.err != nil {
		var zero M
		return zero, r.err
	}
	return m, nil
}

// CounterVec registers the counter vector name, with its help text and
// labels, created at zero for every combination of the values (one list
// per label, in order).
func (r *Registry) CounterVec(name, help string, labels []string, values ...[]string) *prometheus.CounterVec {
	c := add(r, prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, labels))
	each(values, func(v []string) { c.WithLabelValues(v...) })
	return c
}

// GaugeVec registers the gauge vector name, with its help text and
// labels, created at zero for every combination of the values (one list
// per label, in order).
func (r *Registry) GaugeVec(name, help string, labels []string, values ...[]string) *prometheus.GaugeVec {
	g := add(r, prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: name, Help: help}, labels))
	each(values, func(v []string) { g.WithLabelValues(v...) })
	return g
}

// HistogramVec registers the histogram vector name, with its help text,
// buckets and labels.
func (r *Registry) HistogramVec(name, help string, buckets []float64, labels []string) *prometheus.HistogramVec {
	return add(r, prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: name, Help: help, Buckets: buckets}, labels))
}

// Counter registers the counter name, with its help text.
func (r *Registry) Counter(name, help string) prometheus.Counter {
	return add(r, prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help}))
}

// add registers c, or returns the collector registered already under the
// same description. After a failure it registers nothing more.
func add[C prometheus.Collector](r *Registry, c C) C {
	if r.reg == nil || r.err != nil {
		return c
	}
	err := r.reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing
		}
	}
	r.err = err
	return c
}

// each calls f with every combination of values, one from each list in
// order; not at all when there are no lists.
func each(values [][]string, f func([]string)) {
	if len(values) == 0 {
		return
	}
	var walk func(prefix []string, rest [][]string)
	walk = func(prefix []string, rest [][]string) {
		if len(rest) == 0 {
			f(prefix)
			return
		}
		for _, v := range rest[0] {
			walk(append(prefix[:len(prefix):len(prefix)], v), rest[1:])
		}
	}
	walk(nil, values)
}
