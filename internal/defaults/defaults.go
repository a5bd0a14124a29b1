// Package defaults gives the settings left unset their defaults: a
// setting that is zero or less (a duration, a count) takes the default its
// owner names, a missing clock is the system clock, and a missing logger
// discards, and an adapter given a Service takes the Service's store and
// clock (StoreAndClock). The defaults of each setting stay with the
// package it belongs to.
package defaults

import (
	"cmp"
	"log/slog"

	"github.com/approvals-dev/approvals/approvals"
)

// Positive returns v when it is more than zero, else def.
func Positive[T cmp.Ordered](v, def T) T {
	var zero T
	if v > zero {
		return v
	}
	return def
}

// Clock returns c, or approvals.SystemClock when c is nil.
func Clock(c approvals.Clock) approvals.Clock {
	if c == nil {
		return approvals.SystemClock
	}
	return c
}

// Logger returns l, or a logger that discards everything when l is nil.
func Logger(l *slog.Logger) *slog.Logger {
	if l == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l
}
