package notify

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
)

// Metric names, documented in docs/NOTIFICATIONS.md.
const (
	metricDeliveries      = "approvals_notify_deliveries"
	metricDeliveriesTotal = "approvals_notify_deliveries_total"
)

type metrics struct {
	gauge    *prometheus.GaugeVec
	outcomes *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: metricDeliveries,
			Help: "Deliveries in the outbox by channel and state (due, leased, scheduled, sent, failed), counted in the store.",
		}, []string{"channel", "state"}),
		outcomes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: metricDeliveriesTotal,
			Help: "Deliveries by channel and outcome: queued (fanned out), sent, retried (a temporary failure), failed (for good).",
		}, []string{"channel", "outcome"}),
	}
	var err error
	if m.gauge, err = register(reg, m.gauge); err != nil {
		return nil, err
	}
	if m.outcomes, err = register(reg, m.outcomes); err != nil {
		return nil, err
	}
	for _, c := range approvals.Channels {
		for _, o := range []string{"queued", "sent", "retried", "failed"} {
			m.outcomes.WithLabelValues(string(c), o)
		}
	}
	return m, nil
}

func (m *metrics) outcome(c approvals.Channel, outcome string) {
	m.outcomes.WithLabelValues(string(c), outcome).Inc()
}

func (m *metrics) setCounts(n map[approvals.Channel]approvals.DeliveryCounts) {
	for _, c := range approvals.Channels {
		dc := n[c]
		for state, v := range map[string]int{"due": dc.Due, "leased": dc.Leased, "scheduled": dc.Scheduled, "sent": dc.Sent, "failed": dc.Failed} {
			m.gauge.WithLabelValues(string(c), state).Set(float64(v))
		}
	}
}

func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if existing, ok := are.ExistingCollector.(C); ok {
			return existing, nil
		}
	}
	return c, err
}
