package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
)

// An upgrade rebuilds, from the requests, the index buckets whose values
// changed since the file's version (rebuiltSince), then writes the current
// version. Version 2 changed the by_person and decisions values (version 1
// had the bare id and an empty value), version 3 and version 5 the decisions values (the
// row gained decided_by_id, then source); keys never changed until version 4, so a rebuild overwrites
// every entry in place. A file of a million requests cannot be rewritten in
// one transaction (its dirty pages would all be held in memory until the
// commit), so it is rewritten in batches of requests, in id order, one
// transaction each. Meanwhile the buckets being rewritten live in the
// top-level bucket "upgrade", beside the id of the last request done:
//
//	upgrade
//	  "to"                     -> u64      the version being written
//	  "after"                  -> id       last request rewritten
//	  "done"                   -> u64      number of requests rewritten
//	  by_person                             the bucket, half rewritten (from version 1)
//	  decisions                             the bucket, half rewritten
//
// So an older server refuses the half-upgraded file (it finds a bucket
// missing) instead of misreading it, and an upgrade stopped by a crash
// resumes after that id: every batch commits its entries and its place
// together. An upgrade to another version (an older "to", or none: version
// 2 did not write it) starts over, since its entries are not this code's.
// The last transaction moves the buckets back and writes the version; until
// then the file says the version it had.
//
// Before the first of these transactions, Open copies the file aside
// (copyAside): the upgrade is one way, and the copy is what an older
// version of approvals can still open.

var (
	bucketUpgrade   = []byte("upgrade")
	keyUpgradeTo    = []byte("to")
	keyUpgradeAfter = []byte("after")
	keyUpgradeDone  = []byte("done")
)

// rebuiltSince lists the buckets whose values the current code writes
// differently from version v's.
func rebuiltSince(v uint64) [][]byte {
	switch {
	case v < 4:
		return [][]byte{bucketByPerson, bucketDecisions}
	default: // version 4: the decision rows gained source in version 5
		return [][]byte{bucketDecisions}
	}
}

// keysChangedSince reports whether the keys of bucket changed since
// version v, so that its rebuild starts from an empty bucket instead of
// overwriting entries in place: version 4 made the by_person keys from
// the canonical person (approvals.NewPerson: ASCII-only case folding, NFC,
// IDNA domains) instead of a Unicode lower-casing of the address.
func keysChangedSince(v uint64, bucket []byte) bool {
	return v < 4 && bytes.Equal(bucket, bucketByPerson)
}

const (
	// upgradeBatchSize is how many requests an upgrade rewrites per
	// transaction: a few megabytes of pages per commit.
	upgradeBatchSize = 5000
	// upgradeLogEvery is how many requests pass between two progress
	// lines of an upgrade.
	upgradeLogEvery = 100_000
)

// upgrade upgrades a file of version from to schemaVersion, or finishes an
// upgrade a crash stopped.
func upgrade(db *bbolt.DB, from uint64, opts Options) error {
	rebuilt := rebuiltSince(from)
	started := time.Now()
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	batch := opts.upgradeBatch
	if batch <= 0 {
		batch = upgradeBatchSize
	}
	afterBatch := func() error {
		if opts.afterUpgradeBatch == nil {
			return nil
		}
		return opts.afterUpgradeBatch()
	}

	var total, done uint64
	err := db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		total = 0
		for _, st := range statusNames[1:] {
			if v := meta.Get(countKey(st)); v != nil {
				total += getU64(v)
			}
		}
		if up := tx.Bucket(bucketUpgrade); up != nil {
			for _, name := range rebuilt {
				if up.Bucket(name) == nil {
					return fmt.Errorf("damaged data file: the upgrade in progress lacks bucket %s", name)
				}
			}
			if to := up.Get(keyUpgradeTo); to == nil || getU64(to) != schemaVersion {
				// Another version's upgrade: start over.
				if err := up.Delete(keyUpgradeAfter); err != nil {
					return err
				}
				if err := up.Delete(keyUpgradeDone); err != nil {
					return err
				}
				return up.Put(keyUpgradeTo, u64(schemaVersion))
			}
			if v := up.Get(keyUpgradeDone); v != nil {
				done = getU64(v)
			}
			return nil
		}
		for _, name := range allBuckets() {
			if tx.Bucket(name) == nil {
				return fmt.Errorf("damaged data file: bucket %s is missing", name)
			}
		}
		up, err := tx.CreateBucket(bucketUpgrade)
		if err != nil {
			return err
		}
		for _, name := range rebuilt {
			if keysChangedSince(from, name) {
				if err := tx.DeleteBucket(name); err != nil {
					return fmt.Errorf("delete bucket %s: %w", name, err)
				}
				if _, err := up.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
				continue
			}
			if err := tx.MoveBucket(name, nil, up); err != nil {
				return fmt.Errorf("move bucket %s: %w", name, err)
			}
		}
		return up.Put(keyUpgradeTo, u64(schemaVersion))
	})
	if err != nil {
		return err
	}
	if done == 0 {
		log.Info("upgrading the data file before serving: this can take minutes for millions of requests", "from_version", from, "to_version", schemaVersion, "requests", total)
	} else {
		log.Info("resuming the upgrade of the data file", "from_version", from, "to_version", schemaVersion, "requests", total, "done", done)
	}
	if err := afterBatch(); err != nil {
		return err
	}

	for more := true; more; {
		var n int
		err := db.Update(func(tx *bbolt.Tx) (err error) {
			// Drop the pages read through the mapping from the resident
			// set, as Decisions does: those the last commit read back to
			// write the changed index pages, then this batch's requests.
			releaseMapping(db, tx)
			n, more, err = upgradeBatch(tx, rebuilt, batch, opts.Unicode, log)
			releaseMapping(db, tx)
			return err
		})
		if err != nil {
			return err
		}
		if before := done; n > 0 {
			done += uint64(n)
			if done/upgradeLogEvery > before/upgradeLogEvery {
				log.Info("upgrading the data file", "done", done, "requests", total, "elapsed", elapsed(started))
			}
		}
		if err := afterBatch(); err != nil {
			return err
		}
	}

	err = db.Update(func(tx *bbolt.Tx) error {
		up := tx.Bucket(bucketUpgrade)
		for _, name := range rebuilt {
			if err := tx.MoveBucket(name, up, nil); err != nil {
				return fmt.Errorf("move bucket %s: %w", name, err)
			}
		}
		if err := tx.DeleteBucket(bucketUpgrade); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, u64(schemaVersion))
	})
	if err != nil {
		return err
	}
	log.Info("upgraded the data file", "to_version", schemaVersion, "requests", done, "elapsed", elapsed(started))
	return nil
}

// upgradeBatch rewrites the entries of the rebuilt buckets for up to n
// requests after the last one done, and records how far it got. It reports
// how many it rewrote and whether any are left.
//
// A request whose address is not in the canonical form (NFC, IDNA domain)
// is rewritten in it. Two requests whose addresses were different keys
// before and are one person now (JOSÉ@ in NFC and NFD, BÜCHER.de and
// xn--bcher-kva.de) are both kept: the older one keeps the person index
// (as Check expects), the newer one stays reachable by id, in the queue
// and among the person's other requests, and a warning names both.
func upgradeBatch(tx *bbolt.Tx, rebuilt [][]byte, n int, u approvals.Unicode, log *slog.Logger) (rewritten int, more bool, err error) {
	up := tx.Bucket(bucketUpgrade)
	targets := map[string]*bbolt.Bucket{}
	for _, name := range rebuilt {
		b := up.Bucket(name)
		if bytes.Equal(name, bucketDecisions) {
			b.FillPercent = appendFill
		}
		targets[string(name)] = b
	}

	c := tx.Bucket(bucketRequests).Cursor()
	var k, v []byte
	after := up.Get(keyUpgradeAfter)
	if after == nil {
		k, v = c.First()
	} else if k, v = c.Seek(after); bytes.Equal(k, after) {
		k, v = c.Next()
	}
	var last []byte
	type rewrite struct{ id, value []byte }
	var rewrites []rewrite
	for ; k != nil && rewritten < n; k, v = c.Next() {
		r, err := decodeRequest(v)
		if err != nil {
			return 0, false, fmt.Errorf("request %q: %w", k, err)
		}
		changed := false
		if e, err := approvals.CanonicalEmail(r.Email, u); err == nil && e != r.Email {
			r.Email = e
			value, err := json.Marshal(r)
			if err != nil {
				return 0, false, fmt.Errorf("encode request %q: %w", k, err)
			}
			rewrites = append(rewrites, rewrite{bytes.Clone(k), value})
			changed = true
		}
		for _, e := range indexEntries(r) {
			b := targets[string(e.bucket)]
			if b == nil && changed {
				b = tx.Bucket(e.bucket) // the export row holds the address
			}
			if b == nil {
				continue // unchanged since the file's version
			}
			if bytes.Equal(e.bucket, bucketByPerson) {
				if held := b.Get(e.key); held != nil {
					if id, _ := standingID(held); string(id) != r.ID {
						log.Warn("two requests are now one person: both are kept, the older one answers for the person; compare them on the request page", "kept", string(id), "also", r.ID)
						continue
					}
				}
			}
			if err := b.Put(e.key, e.value); err != nil {
				return 0, false, fmt.Errorf("index %s: %w", e.bucket, err)
			}
		}
		last = k
		rewritten++
	}
	if rewritten == 0 {
		return 0, false, nil
	}
	requests := tx.Bucket(bucketRequests)
	for _, w := range rewrites {
		if err := requests.Put(w.id, w.value); err != nil {
			return 0, false, fmt.Errorf("rewrite request %q: %w", w.id, err)
		}
	}
	var done uint64
	if v := up.Get(keyUpgradeDone); v != nil {
		done = getU64(v)
	}
	if err := up.Put(keyUpgradeDone, u64(done+uint64(rewritten))); err != nil {
		return 0, false, err
	}
	return rewritten, k != nil, up.Put(keyUpgradeAfter, bytes.Clone(last))
}

// elapsed is the time since start, rounded for a log line.
func elapsed(start time.Time) string {
	return time.Since(start).Round(100 * time.Millisecond).String()
}

// copyAside writes a consistent copy of the file, as it is before the
// upgrade from version v, next to it: <path>.v<v>.bak (approvals.db.v1.bak),
// fsynced, and its directory too, before the upgrade writes anything. An
// upgrade is one way; the copy is what the version that wrote the file can
// still open (docs/STORE.md). When that name is taken by an earlier copy,
// the copy is kept: an upgrade that a crash stopped and this Open resumes
// already has its copy of the original, and other copies get the next free
// name (<path>.v<v>.2.bak).
func copyAside(db *bbolt.DB, v uint64, opts Options) error {
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	path := db.Path()
	resuming := false
	if err := db.View(func(tx *bbolt.Tx) error { resuming = tx.Bucket(bucketUpgrade) != nil; return nil }); err != nil {
		return err
	}
	name := fmt.Sprintf("%s.v%d.bak", path, v)
	if _, err := os.Stat(name); err == nil {
		if resuming {
			log.Info("keeping the copy of the data file made before the upgrade began", "copy", name)
			return nil
		}
		for i := 2; ; i++ {
			name = fmt.Sprintf("%s.v%d.%d.bak", path, v, i)
			if _, err := os.Stat(name); errors.Is(err, fs.ErrNotExist) {
				break
			}
		}
	}
	started := time.Now()
	n, err := writeCopy(db, name)
	if err != nil {
		return fmt.Errorf("copying the data file aside to %s before upgrading it (nothing was changed; the copy needs as much free space as the file): %w", name, err)
	}
	log.Info("copied the data file aside before upgrading it: an older version of approvals can open the copy", "copy", name, "bytes", n, "from_version", v, "elapsed", elapsed(started))
	return nil
}

// writeCopy writes a snapshot of db to a temporary file beside name, syncs
// it, renames it to name and syncs the directory, so that name is either
// absent or complete after a crash.
func writeCopy(db *bbolt.DB, name string) (n int64, err error) {
	dir := filepath.Dir(name)
	f, err := os.CreateTemp(dir, "."+filepath.Base(name)+".*")
	if err != nil {
		return 0, err
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	if err = db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(f)
		return err
	}); err != nil {
		return 0, err
	}
	if err = f.Sync(); err != nil {
		return 0, err
	}
	if err = f.Close(); err != nil {
		return 0, err
	}
	if err = os.Rename(f.Name(), name); err != nil {
		return 0, err
	}
	d, err := os.Open(dir)
	if err != nil {
		return 0, err
	}
	defer d.Close()
	return n, d.Sync()
}
