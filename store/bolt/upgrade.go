package bolt

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The upgrade from schema version 1 to 2 fills in the by_person and
// decisions values from the requests. A file of a million requests cannot
// be rewritten in one transaction (its dirty pages would all be held in
// memory until the commit), so it is rewritten in batches of requests, in
// id order, one transaction each. Meanwhile the two buckets being
// rewritten live in the top-level bucket "upgrade", beside the id of the
// last request done:
//
//	upgrade
//	  "after"                  -> id       last request rewritten
//	  "done"                   -> u64      number of requests rewritten
//	  by_person                             the bucket, half rewritten
//	  decisions                             the bucket, half rewritten
//
// So a version 1 server refuses the half-upgraded file (it finds no
// by_person bucket) instead of misreading it, and an upgrade stopped by a
// crash resumes after that id: every batch commits its entries and its
// place together. The last transaction moves the buckets back and writes
// version 2; until then the file says version 1.

var (
	bucketUpgrade   = []byte("upgrade")
	keyUpgradeAfter = []byte("after")
	keyUpgradeDone  = []byte("done")
)

const (
	// upgradeBatchSize is how many requests an upgrade rewrites per
	// transaction: a few megabytes of pages per commit.
	upgradeBatchSize = 5000
	// upgradeLogEvery is how many requests pass between two progress
	// lines of an upgrade.
	upgradeLogEvery = 100_000
)

// upgradeToV2 upgrades a version 1 file to version 2, or finishes an
// upgrade a crash stopped.
func upgradeToV2(db *bbolt.DB, opts Options) error {
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
			if up.Bucket(bucketByPerson) == nil || up.Bucket(bucketDecisions) == nil {
				return errors.New("damaged data file: the upgrade in progress lacks a bucket")
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
		for _, name := range [][]byte{bucketByPerson, bucketDecisions} {
			if err := tx.MoveBucket(name, nil, up); err != nil {
				return fmt.Errorf("move bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	if done == 0 {
		log.Info("upgrading the data file before serving: this can take minutes for millions of requests", "from_version", 1, "to_version", 2, "requests", total)
	} else {
		log.Info("resuming the upgrade of the data file", "from_version", 1, "to_version", 2, "requests", total, "done", done)
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
			n, more, err = upgradeBatchToV2(tx, batch)
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
		for _, name := range [][]byte{bucketByPerson, bucketDecisions} {
			if err := tx.MoveBucket(name, up, nil); err != nil {
				return fmt.Errorf("move bucket %s: %w", name, err)
			}
		}
		if err := tx.DeleteBucket(bucketUpgrade); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchemaVersion, u64(2))
	})
	if err != nil {
		return err
	}
	log.Info("upgraded the data file", "to_version", 2, "requests", done, "elapsed", elapsed(started))
	return nil
}

// upgradeBatchToV2 rewrites the by_person and decisions entries of up to
// n requests after the last one done, and records how far it got. It
// reports how many it rewrote and whether any are left.
func upgradeBatchToV2(tx *bbolt.Tx, n int) (rewritten int, more bool, err error) {
	up := tx.Bucket(bucketUpgrade)
	byPerson := up.Bucket(bucketByPerson)
	decisions := up.Bucket(bucketDecisions)
	decisions.FillPercent = appendFill

	c := tx.Bucket(bucketRequests).Cursor()
	var k, v []byte
	after := up.Get(keyUpgradeAfter)
	if after == nil {
		k, v = c.First()
	} else if k, v = c.Seek(after); bytes.Equal(k, after) {
		k, v = c.Next()
	}
	var last []byte
	for ; k != nil && rewritten < n; k, v = c.Next() {
		r, err := decodeRequest(v)
		if err != nil {
			return 0, false, fmt.Errorf("request %q: %w", k, err)
		}
		for _, e := range indexEntries(r) {
			var b *bbolt.Bucket
			switch {
			case bytes.Equal(e.bucket, bucketByPerson):
				b = byPerson
			case bytes.Equal(e.bucket, bucketDecisions):
				b = decisions
			default:
				continue // unchanged since version 1
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
