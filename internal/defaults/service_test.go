package defaults

import (
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

type clockAt time.Time

func (c clockAt) Now() time.Time { return time.Time(c) }

// A part given wins; a missing one comes from the Service, and the clock
// last from the system.
func TestStoreAndClock(t *testing.T) {
	own, svcStore := memory.New(approvals.SystemClock), memory.New(approvals.SystemClock)
	ownClock, svcClock := clockAt(time.Unix(1, 0)), clockAt(time.Unix(2, 0))
	svc := &approvals.Service{Store: svcStore, Clock: svcClock}
	for _, tc := range []struct {
		name      string
		svc       *approvals.Service
		store     approvals.Store
		clock     approvals.Clock
		wantStore approvals.Store
		wantNow   time.Time // zero: the system clock
	}{
		{"given", svc, own, ownClock, own, time.Unix(1, 0)},
		{"from the service", svc, nil, nil, svcStore, time.Unix(2, 0)},
		{"no service", nil, nil, nil, nil, time.Time{}},
		{"service without a clock", &approvals.Service{Store: svcStore}, nil, nil, svcStore, time.Time{}},
	} {
		store, clock := StoreAndClock(tc.svc, tc.store, tc.clock)
		if store != tc.wantStore {
			t.Errorf("%s: store %p, want %p", tc.name, store, tc.wantStore)
		}
		if clock == nil {
			t.Fatalf("%s: no clock", tc.name)
		}
		now := clock.Now()
		if tc.wantNow.IsZero() && time.Since(now).Abs() > time.Minute || !tc.wantNow.IsZero() && !now.Equal(tc.wantNow) {
			t.Errorf("%s: clock shows %v, want %v (zero: the system's)", tc.name, now, tc.wantNow)
		}
	}
}
