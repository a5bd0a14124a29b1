package defaults

import "github.com/approvals-dev/approvals/approvals"

// StoreAndClock returns store and clock, each defaulting when nil to the
// Service's own (svc may be nil), and the clock then to
// approvals.SystemClock.
func StoreAndClock(svc *approvals.Service, store approvals.Store, clock approvals.Clock) (approvals.Store, approvals.Clock) {
	if svc != nil {
		if store == nil {
			store = svc.Store
		}
		if clock == nil {
			clock = svc.Clock
		}
	}
	if clock == nil {
		clock = approvals.SystemClock
	}
	return store, clock
}
