//go:build !linux

package bolt

import bbolt "go.etcd.io/bbolt"

// releaseMapping does nothing where madvise is not wired up: the scan's
// resident set then grows with the pages it reads.
func releaseMapping(*bbolt.DB, *bbolt.Tx) {}
