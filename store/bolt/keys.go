package bolt

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"math"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

func u64(v uint64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], v)
	return b[:]
}

func getU64(b []byte) uint64 { return binary.BigEndian.Uint64(b) }

// The instants Unix nanoseconds can express; t8 clamps times outside them.
var (
	minNanoTime = time.Unix(0, math.MinInt64)
	maxNanoTime = time.Unix(0, math.MaxInt64)
)

// t8 encodes t so that byte order is time order: Unix nanoseconds with the
// sign bit flipped. The zero time and others outside the years 1678-2261
// clamp to the ends of the range.
func t8(t time.Time) []byte {
	var n int64
	switch {
	case t.Before(minNanoTime):
		n = math.MinInt64
	case t.After(maxNanoTime):
		n = math.MaxInt64
	default:
		n = t.UnixNano()
	}
	return u64(uint64(n) ^ 1<<63)
}

// statusCode is s1: the one-byte form of a status in index keys.
func statusCode(s approvals.Status) (byte, bool) {
	switch s {
	case approvals.StatusPending:
		return 1, true
	case approvals.StatusApproved:
		return 2, true
	case approvals.StatusDenied:
		return 3, true
	}
	return 0, false
}

func countKey(s approvals.Status) []byte { return []byte("count/" + string(s)) }

func personKey(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

func cat(parts ...[]byte) []byte {
	return bytes.Join(parts, nil)
}

// eventsByRequestPrefix is the part of an events_by_request key before the
// Seq. The length byte keeps one id from being a prefix of another.
func eventsByRequestPrefix(id string) []byte {
	return cat([]byte{byte(len(id))}, []byte(id))
}

// maxIDLen is the longest request id the store accepts: the length of an
// id must fit the byte before it in events_by_request keys.
const maxIDLen = 255

// indexEntry is one entry a request holds in an index bucket.
type indexEntry struct {
	bucket []byte
	key    []byte
	value  []byte
}

// indexEntries returns the entries r must have in the by_person,
// by_created, by_status, jobs and decisions buckets.
func indexEntries(r *approvals.Request) []indexEntry {
	id := []byte(r.ID)
	code, _ := statusCode(r.Status)
	created := t8(r.CreatedAt)
	out := []indexEntry{
		{bucketByPerson, personKey(r.Key()), standingValue(r)},
		{bucketByCreated, cat(created, id), []byte{}},
		{bucketByStatus, cat([]byte{code}, created, id), []byte{}},
	}
	if isJob(r) {
		out = append(out, indexEntry{bucketJobs, cat(t8(r.Provisioning.NextAttemptAt), id), jobValue(r)})
	}
	if isDecided(r) {
		out = append(out, indexEntry{bucketDecisions, cat([]byte{code}, t8(r.Decision.At), id), rowValue(r)})
	}
	return out
}

// isJob reports whether r belongs in the jobs index.
func isJob(r *approvals.Request) bool {
	return r.Status == approvals.StatusApproved && r.Provisioning.State == approvals.ProvisioningInProgress
}

// jobValue is the value of r's jobs entry: empty when no worker holds the
// job, else t8 of its lease's expiry, so that claims and counts skip the
// leased jobs without decoding them.
func jobValue(r *approvals.Request) []byte {
	if l := r.Provisioning.Lease; l != nil {
		return t8(l.Until)
	}
	return []byte{}
}

// jobLeaseEnd returns the end of the lease (t8) a jobs entry value v
// records, or nil when no worker holds the job.
func jobLeaseEnd(v []byte) ([]byte, error) {
	if len(v) == 8 {
		return v, nil
	}
	return nil, nil
}

// isDecided reports whether r belongs in the decisions index.
func isDecided(r *approvals.Request) bool {
	return r.Decision != nil && (r.Status == approvals.StatusApproved || r.Status == approvals.StatusDenied)
}

// cursorVersion is the first byte of every list cursor, so that a cursor
// from another store or an older layout is refused rather than misread.
const cursorVersion = 1

// encodeCursor makes the opaque NextCursor of a listing from the index key
// of the page's last request, without its status byte.
func encodeCursor(key []byte) string {
	return base64.RawURLEncoding.EncodeToString(cat([]byte{cursorVersion}, key))
}

// decodeCursor returns the t8(CreatedAt) id key a cursor holds.
func decodeCursor(c string) ([]byte, error) {
	b, err := base64.RawURLEncoding.DecodeString(c)
	if err != nil || len(b) < 1+8+1 || b[0] != cursorVersion {
		return nil, approvals.Errorf(approvals.EInvalid, "cursor %q is not valid: pass the next_cursor of the previous page", c)
	}
	return b[1:], nil
}
