package bolt

import (
	bbolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
)

// releaseMapping tells the kernel this process no longer needs the pages of
// the memory-mapped data file it has touched (madvise MADV_DONTNEED). The
// mapping is shared and read-only, so nothing is lost: the page cache keeps
// the pages and the next access maps them back in. A long scan, such as the
// export of a million decisions, then keeps a small resident set instead of
// growing it to the size of the file. It must run inside a transaction, so
// that bbolt cannot remap the file meanwhile.
func releaseMapping(db *bbolt.DB, tx *bbolt.Tx) {
	info := db.Info()
	if info == nil || info.Data == 0 || tx.Size() <= 0 {
		return
	}
	// A raw syscall keeps the mapping's address a uintptr: it is bbolt's
	// memory, never a Go pointer.
	_, _, _ = unix.Syscall(unix.SYS_MADVISE, info.Data, uintptr(tx.Size()), unix.MADV_DONTNEED)
}
