package promreg

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

type testMetrics struct {
	outcomes *prometheus.CounterVec
	started  prometheus.Counter
}

func buildTest(reg prometheus.Registerer) (*testMetrics, error) {
	return Build(reg, func(r *Registry) *testMetrics {
		return &testMetrics{
			outcomes: r.CounterVec("test_outcomes_total", "Outcomes.", []string{"channel", "outcome"},
				[]string{"email", "webhook"}, []string{"sent", "failed"}),
			started: r.Counter("test_started_total", "Started."),
		}
	})
}

// Two components on one registry share their collectors, and every
// combination of the known label values is there at zero before any event.
func TestBuildSharesAndCreatesLabelValues(t *testing.T) {
	reg := prometheus.NewRegistry()
	a, err := buildTest(reg)
	if err != nil {
		t.Fatal(err)
	}
	b, err := buildTest(reg)
	if err != nil {
		t.Fatal(err)
	}
	if n := testutil.CollectAndCount(a.outcomes); n != 4 {
		t.Errorf("%d series before any event, want 4 (2 channels × 2 outcomes)", n)
	}
	b.outcomes.WithLabelValues("email", "sent").Inc()
	b.started.Inc()
	if v := testutil.ToFloat64(a.outcomes.WithLabelValues("email", "sent")); v != 1 {
		t.Errorf("a sees %v sent by b, want 1", v)
	}
	if v := testutil.ToFloat64(a.started); v != 1 {
		t.Errorf("a sees %v started by b, want 1", v)
	}
	if _, err := buildTest(nil); err != nil {
		t.Errorf("no registry: %v", err)
	}
}

// A name registered already as another kind of metric is an error, and
// Build returns no metrics with it.
func TestBuildReportsAConflict(t *testing.T) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(prometheus.NewGauge(prometheus.GaugeOpts{Name: "test_outcomes_total", Help: "Other."}))
	m, err := buildTest(reg)
	if err == nil || m != nil {
		t.Fatalf("Build = %v, %v; want nil and an error", m, err)
	}
}
