package notify

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/promreg"
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
	var channels []string
	for _, c := range approvals.Channels {
		channels = append(channels, string(c))
	}
	return promreg.Build(reg, func(r *promreg.Registry) *metrics {
		return &metrics{
			gauge: r.GaugeVec(metricDeliveries,
				"Deliveries in the outbox by channel and state (due, leased, scheduled, sent, failed), counted in the store.",
				[]string{"channel", "state"}),
			outcomes: r.CounterVec(metricDeliveriesTotal,
				"Deliveries by channel and outcome: queued (fanned out), sent, retried (a temporary failure), failed (for good).",
				[]string{"channel", "outcome"}, channels, []string{"queued", "sent", "retried", "failed"}),
		}
	})
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
