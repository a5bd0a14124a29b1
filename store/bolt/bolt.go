// Package bolt is the approvals.Store kept in one bbolt file: the server's
// durable state. Every write is fsynced before its method returns;
// concurrent writes share one transaction and one fsync (group commit);
// and secondary indexes, changed in the same transaction as the data they
// index, answer every query without scanning the file.
package bolt

// The schema, version 3. Every bucket is at the top level and is created
// by Open. Keys are fixed-width big-endian so that they sort in numeric
// order: u64 is an unsigned integer, t8 a time as Unix nanoseconds with the
// sign bit flipped (so that times before 1970 sort first too), s1 a status
// (1 pending, 2 approved, 3 denied). A request id comes last in every key
// that holds one, so its length never disturbs the order; ids the store
// makes are approvals.NewID's 24 hex digits, which sort by creation time.
// Requests and events are JSON; the by_person and decisions values are
// binary (values.go).
//
//	meta
//	  "schema_version"         -> u64      layout of this file (schemaVersion)
//	  "count/" status          -> u64      number of requests with the status
//	  "events_max_at"          -> t8       largest Event.At appended so far
//	requests
//	  id                       -> approvals.Request
//	by_person                               the check step's answer
//	  sha256(PersonKey)        -> enum(Status) enum(Provisioning.State) id
//	by_created                              every request, for listings of all
//	  t8(CreatedAt) id         -> ""
//	by_status                               every request, for listings by status
//	  s1 t8(CreatedAt) id      -> ""
//	jobs                                    approved, provisioning in_progress
//	  t8(NextAttemptAt) id     -> "" or t8(Lease.Until) while a worker holds it
//	decisions                               approved or denied, with a Decision
//	  s1 t8(Decision.At) id    -> u8(2) approvals.DecisionRecord   the export row
//	events                                  the audit trail; the bucket's
//	  u64(Seq)                 -> approvals.Event   sequence is the last Seq
//	events_by_request
//	  u8(len id) id u64(Seq)   -> ""
//	events_by_time                          one entry per event whose At is
//	  t8(At)                   -> u64(Seq)  later than every earlier event's
//	sessions                                the web UI's sessions; the bucket's
//	  IDHash                   -> approvals.Session   sequence is their number
//	sessions_by_expiry
//	  t8(ExpiresAt) IDHash     -> ""
//	cookie_keys                             the newest and the one before
//	  u64(ID)                  -> t8(CreatedAt) secret
//
// The three session buckets were added within version 2: Open creates
// them in a file that lacks them (sessions.go). So are the outbox's
// buckets (outbox.go):
//
//	deliveries
//	  id                       -> u64(seq) approvals.Delivery
//	deliveries_by_seq
//	  u64(seq)                 -> id
//	deliveries_by_request
//	  u8(len rid) rid u64(seq) -> id
//	deliveries_pending                      pending deliveries only
//	  t8(NextAttemptAt) id     -> u8(len ch) channel [t8(Lease.Until)]
//	deliveries_sent
//	  t8(SentAt) id            -> ""
//	meta "outbox/" ch "/" state -> u64      count of sent and failed ones
//
// Index entries change in the same transaction as the request they index,
// values included: a provisioning step rewrites the standing and export
// row though their keys stay. The buckets whose keys mostly grow at the end
// (all but by_person and jobs) are written with appendFill.
//
// events_by_time makes Audit's Since filter exact without a scan although
// event times need not follow Seq order: the first entry at or after Since
// gives the first Seq that can match, and only the few late-stamped events
// after it are skipped.
//
// The jobs value lets ClaimJobs, DueJobs and CountJobs skip leased jobs
// without decoding them; files written before leases existed have only
// empty values, which mean the same (no lease), so it needed no new
// schema version.
//
// Version 1 differed only in the by_person value (the bare id) and the
// decisions value (empty), version 2 in the decisions value (row format 1,
// without decided_by_id); upgrade.go rebuilds them, after copying the file
// aside.

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
	berrors "go.etcd.io/bbolt/errors"
)

// schemaVersion is the layout this code reads and writes.
const schemaVersion = 5

// Bucket names.
var (
	bucketMeta            = []byte("meta")
	bucketRequests        = []byte("requests")
	bucketByPerson        = []byte("by_person")
	bucketByCreated       = []byte("by_created")
	bucketByStatus        = []byte("by_status")
	bucketJobs            = []byte("jobs")
	bucketDecisions       = []byte("decisions")
	bucketEvents          = []byte("events")
	bucketEventsByRequest = []byte("events_by_request")
	bucketEventsByTime    = []byte("events_by_time")
)

// allBuckets lists every bucket of the schema.
func allBuckets() [][]byte {
	return [][]byte{bucketMeta, bucketRequests, bucketByPerson, bucketByCreated, bucketByStatus,
		bucketJobs, bucketDecisions, bucketEvents, bucketEventsByRequest, bucketEventsByTime}
}

// Keys of the meta bucket.
var (
	keySchemaVersion = []byte("schema_version")
	keyEventsMaxAt   = []byte("events_max_at")
)

// ErrLocked is returned by Open when another process holds the data file:
// a running server keeps it locked for as long as it runs.
var ErrLocked = errors.New("the data file is in use by a running approvals server")

// ErrNewerSchema is returned by Open when the data file was written by a
// newer version of approvals than this one.
var ErrNewerSchema = errors.New("the data file was written by a newer version of approvals")

// DefaultTimeout is how long Open waits for the file lock by default.
const DefaultTimeout = 2 * time.Second

// Options configures Open.
type Options struct {
	// Clock stamps UpdatedAt; approvals.SystemClock when nil.
	Clock approvals.Clock
	// Timeout bounds the wait for the file lock another process holds;
	// DefaultTimeout when zero. A negative Timeout gives up at once.
	Timeout time.Duration
	// ReadOnly opens the file for reading only, sharing it with other
	// readers; every write fails. The file must exist.
	ReadOnly bool
	// Logger, when set, hears of a schema upgrade's start, progress and
	// end: Open upgrades a file written by an older version, which takes
	// minutes for millions of requests.
	Logger *slog.Logger
	// Unicode is the person rule's Unicode half, which the upgrade to
	// version 4 applies to stored addresses; approvals.ASCIIOnly when nil
	// (a non-ASCII domain is then left as stored).
	Unicode approvals.Unicode

	// upgradeBatch is how many requests an upgrade rewrites per
	// transaction; upgradeBatchSize when zero.
	upgradeBatch int
	// afterUpgradeBatch, when set, runs after each committed transaction
	// of an upgrade; an error stops the upgrade there, as a crash would.
	afterUpgradeBatch func() error
}

// Store is an approvals.Store kept in a bbolt file. It is safe for
// concurrent use by many goroutines; one process at a time may open the
// file for writing.
type Store struct {
	db       *bbolt.DB
	clock    approvals.Clock
	readOnly bool
	// commits shares transactions among concurrent writes.
	commits *groupCommit
	// decisionChunk is how many rows Decisions reads per transaction.
	decisionChunk int
}

var _ approvals.Store = (*Store)(nil)

// Open opens the data file at path, creating it when it does not exist,
// and upgrades its schema when it was written by an older version.
func Open(path string, opts Options) (s *Store, err error) {
	defer wrap(&err, "open data file %s", path)
	timeout := opts.Timeout
	switch {
	case timeout == 0:
		timeout = DefaultTimeout
	case timeout < 0:
		timeout = time.Nanosecond
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{
		Timeout:  timeout,
		ReadOnly: opts.ReadOnly,
		// The hashmap freelist keeps commits fast in large, fragmented files.
		FreelistType: bbolt.FreelistMapType,
	})
	if errors.Is(err, berrors.ErrTimeout) {
		return nil, fmt.Errorf("%w (its lock is held by another process; stop that server first, or use its HTTP API)", ErrLocked)
	}
	if err != nil {
		return nil, err
	}
	s = &Store{db: db, clock: opts.Clock, readOnly: opts.ReadOnly, commits: &groupCommit{db: db}, decisionChunk: 1024}
	if s.clock == nil {
		s.clock = approvals.SystemClock
	}
	if opts.ReadOnly {
		err = db.View(checkSchema)
	} else {
		err = initSchema(db, opts)
	}
	if err != nil {
		_ = db.Close()
		return nil, err
	}
	return s, nil
}

// initSchema creates the buckets of a new file, or checks the version of
// an existing one and upgrades it.
func initSchema(db *bbolt.DB, opts Options) error {
	var v uint64
	err := db.Update(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil {
			var foreign []byte
			_ = tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				foreign = name
				return errors.New("stop")
			})
			if foreign != nil {
				return fmt.Errorf("not an approvals data file: it holds bucket %q but no schema version", foreign)
			}
			for _, name := range append(append(allBuckets(), sessionBuckets()...), outboxBuckets()...) {
				if _, err := tx.CreateBucket(name); err != nil {
					return fmt.Errorf("create bucket %s: %w", name, err)
				}
			}
			v = schemaVersion
			return tx.Bucket(bucketMeta).Put(keySchemaVersion, u64(schemaVersion))
		}
		var err error
		if v, err = version(meta); err != nil {
			return err
		}
		if v > schemaVersion {
			return newerSchema(v)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// The upgrade writes the version when it is done, in as many
	// transactions as it needs; the copy aside comes first. Each version
	// extends rebuiltSince (upgrade.go) and adds a file written by the
	// version before it to testdata/.
	if v < schemaVersion {
		if err := copyAside(db, v, opts); err != nil {
			return err
		}
		if err := upgrade(db, v, opts); err != nil {
			return fmt.Errorf("upgrade schema from version %d to %d: %w", v, schemaVersion, err)
		}
	}
	// The session buckets came later than version 2 (sessions.go); they
	// are added after the copy aside, so that the copy is the file as it
	// was.
	err = db.Update(func(tx *bbolt.Tx) error {
		for _, name := range append(sessionBuckets(), outboxBuckets()...) {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	})
	if err != nil {
		return err
	}
	return db.View(checkSchema)
}

// checkSchema checks, without writing, that the file has this code's
// layout: a read-only store cannot upgrade it.
func checkSchema(tx *bbolt.Tx) error {
	meta := tx.Bucket(bucketMeta)
	if meta == nil {
		return errors.New("not an approvals data file: it has no schema version")
	}
	v, err := version(meta)
	if err != nil {
		return err
	}
	if v > schemaVersion {
		return newerSchema(v)
	}
	if v < schemaVersion {
		return fmt.Errorf("the data file has schema version %d and needs an upgrade to %d: start the server on it once, then retry", v, schemaVersion)
	}
	for _, name := range allBuckets() {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("damaged data file: bucket %s is missing", name)
		}
	}
	return nil
}

func version(meta *bbolt.Bucket) (uint64, error) {
	b := meta.Get(keySchemaVersion)
	if len(b) != 8 {
		return 0, errors.New("not an approvals data file: its schema version is unreadable")
	}
	return getU64(b), nil
}

func newerSchema(v uint64) error {
	return fmt.Errorf("%w (schema version %d; this version of approvals knows up to %d): upgrade approvals", ErrNewerSchema, v, schemaVersion)
}

// Close releases the file and its lock.
func (s *Store) Close() (err error) {
	defer wrap(&err, "Close")
	return s.db.Close()
}

// Backup writes a consistent snapshot of the whole data file to w while
// the store stays in use, and returns the number of bytes written. The
// copy is itself a data file that Open accepts.
func (s *Store) Backup(w io.Writer) (n int64, err error) {
	defer wrap(&err, "Backup")
	err = s.db.View(func(tx *bbolt.Tx) error {
		n, err = tx.WriteTo(w)
		return err
	})
	return n, err
}

// Check verifies the file: bbolt's page-level consistency check, then the
// schema's own invariants (every index entry and counter matches the
// requests and events it indexes). It reads the whole file and holds off
// writes meanwhile: it is for tests and repair tools, not request paths.
func (s *Store) Check() (err error) {
	defer wrap(&err, "Check")
	// bbolt's check reads the freelist, which only a writable transaction
	// keeps still; this one writes nothing and rolls back.
	tx, err := s.db.Begin(!s.readOnly)
	if err != nil {
		return err
	}
	defer func() { _ = tx.Rollback() }()
	var errs []error
	for err := range tx.Check() {
		errs = append(errs, err)
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return checkIndexes(tx)
}

// write runs fn in a read-write transaction and fsyncs it, sharing the
// transaction with concurrent writes (see groupCommit). fn may therefore
// run more than once, and in the same transaction as other writes: it must
// reset whatever it reports at its start, and return an error only for a
// failure that must roll the transaction back, never for a refused change
// that wrote nothing.
func (s *Store) write(fn func(tx *bbolt.Tx) error) error {
	if s.readOnly {
		return approvals.Errorf(approvals.EUnavailable, "the data file is open read-only")
	}
	return s.commits.do(fn)
}

// wrap adds the operation to a non-nil error, keeping the chain for
// errors.Is and errors.As.
func wrap(err *error, format string, args ...any) {
	if *err != nil {
		*err = fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), *err)
	}
}
