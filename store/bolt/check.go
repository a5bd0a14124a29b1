package bolt

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

// maxCheckErrors bounds the problems checkIndexes reports.
const maxCheckErrors = 20

// checkIndexes verifies the schema's invariants in tx by rebuilding every
// index and counter from the requests and events and comparing. It reads
// the whole file.
func checkIndexes(tx *bbolt.Tx) error {
	var errs []error
	bad := func(format string, args ...any) {
		if len(errs) < maxCheckErrors {
			errs = append(errs, fmt.Errorf(format, args...))
		}
	}
	for _, name := range allBuckets() {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %s is missing", name)
		}
	}

	// What the requests say the indexes and counters must hold.
	want := map[string]map[string]string{} // bucket -> key -> value
	for _, name := range [][]byte{bucketByPerson, bucketByCreated, bucketByStatus, bucketJobs, bucketDecisions, bucketEventsByRequest, bucketEventsByTime} {
		want[string(name)] = map[string]string{}
	}
	counts := map[approvals.Status]uint64{}
	err := tx.Bucket(bucketRequests).ForEach(func(k, v []byte) error {
		r, err := decodeRequest(v)
		if err != nil {
			bad("request %q: %v", k, err)
			return nil
		}
		if r.ID != string(k) {
			bad("request %q holds id %q", k, r.ID)
		}
		if _, ok := statusCode(r.Status); !ok {
			bad("request %q has unknown status %q", k, r.Status)
			return nil
		}
		counts[r.Status]++
		for _, e := range indexEntries(r) {
			if _, held := want[string(e.bucket)][string(e.key)]; held && bytes.Equal(e.bucket, bucketByPerson) {
				continue // two requests of one person (upgradeBatch): the older answers
			}
			want[string(e.bucket)][string(e.key)] = string(e.value)
		}
		return nil
	})
	if err != nil {
		return err
	}

	events := tx.Bucket(bucketEvents)
	var maxAt []byte
	err = events.ForEach(func(k, v []byte) error {
		var ev approvals.Event
		if err := json.Unmarshal(v, &ev); err != nil {
			bad("event %x: %v", k, err)
			return nil
		}
		if len(k) != 8 || getU64(k) != ev.Seq || ev.Seq > events.Sequence() {
			bad("event %x holds seq %d (the bucket's sequence is %d)", k, ev.Seq, events.Sequence())
		}
		if ev.RequestID != "" {
			want[string(bucketEventsByRequest)][string(cat(eventsByRequestPrefix(ev.RequestID), k))] = ""
		}
		if at := t8(ev.At); maxAt == nil || bytes.Compare(at, maxAt) > 0 {
			want[string(bucketEventsByTime)][string(at)] = string(k)
			maxAt = at
		}
		return nil
	})
	if err != nil {
		return err
	}

	// What the indexes hold.
	for name, keys := range want {
		if err := checkIndex(tx, name, keys, bad); err != nil {
			return err
		}
	}

	meta := tx.Bucket(bucketMeta)
	for _, st := range approvals.Statuses {
		var got uint64
		if v := meta.Get(countKey(st)); v != nil {
			got = getU64(v)
		}
		if got != counts[st] {
			bad("count of %s requests is %d; there are %d", st, got, counts[st])
		}
	}
	if got := meta.Get(keyEventsMaxAt); !bytes.Equal(got, maxAt) {
		bad("events_max_at is %x; the latest event time is %x", got, maxAt)
	}
	if v, err := version(meta); err != nil || v != schemaVersion {
		bad("schema version is %d (%v); want %d", v, err, schemaVersion)
	}
	if tx.Bucket(bucketUpgrade) != nil {
		bad("bucket %s of an unfinished upgrade is left", bucketUpgrade)
	}
	if err := checkSessions(tx, bad); err != nil {
		return err
	}
	if err := checkOutbox(tx, bad); err != nil {
		return err
	}
	return errors.Join(errs...)
}

// checkSessions verifies the session buckets: every session decodes under
// its own IDHash with one expiry entry, the count is right, the cookie
// keys are well formed. A read-only file from before them has none.
func checkSessions(tx *bbolt.Tx, bad func(format string, args ...any)) error {
	sessions := tx.Bucket(bucketSessions)
	if sessions == nil {
		return nil
	}
	for _, name := range sessionBuckets() {
		if tx.Bucket(name) == nil {
			return fmt.Errorf("bucket %s is missing", name)
		}
	}
	want := map[string]string{} // sessions_by_expiry key -> its empty value
	var n uint64
	err := sessions.ForEach(func(k, v []byte) error {
		n++
		var s approvals.Session
		if err := json.Unmarshal(v, &s); err != nil {
			bad("session %x: %v", k, err)
			return nil
		}
		if s.IDHash != string(k) {
			bad("session %x holds id hash %q", k, s.IDHash)
		}
		want[string(expiryKey(&s))] = ""
		return nil
	})
	if err != nil {
		return err
	}
	if sessions.Sequence() != n {
		bad("bucket %s counts %d sessions; it holds %d", bucketSessions, sessions.Sequence(), n)
	}
	if err := checkIndex(tx, string(bucketSessionsByExpiry), want, bad); err != nil {
		return err
	}
	if keys, err := readCookieKeys(tx); err != nil {
		bad("%v", err)
	} else if len(keys) > maxCookieKeys {
		bad("bucket %s holds %d keys; at most %d are kept", bucketCookieKeys, len(keys), maxCookieKeys)
	}
	return nil
}

// checkIndex reports the keys the index name holds beyond want (key ->
// value), the values other than want's, and the keys of want it lacks. It
// empties want.
func checkIndex(tx *bbolt.Tx, name string, want map[string]string, bad func(format string, args ...any)) error {
	err := tx.Bucket([]byte(name)).ForEach(func(k, v []byte) error {
		w, ok := want[string(k)]
		switch {
		case !ok:
			bad("index %s holds stray key %x", name, k)
		case w != string(v):
			bad("index %s key %x holds %s; want %s", name, k, describeValue(name, v), describeValue(name, []byte(w)))
		}
		delete(want, string(k))
		return nil
	})
	if err != nil {
		return err
	}
	for k := range want {
		bad("index %s lacks key %x", name, k)
	}
	return nil
}

// describeValue shows an index value in a Check report: the standing or
// export row it holds, or its bytes.
func describeValue(bucket string, v []byte) string {
	switch bucket {
	case string(bucketByPerson):
		if st, err := decodeStanding(v); err == nil {
			return fmt.Sprintf("%+v", st)
		}
	case string(bucketDecisions):
		if rec, err := decodeRow(v); err == nil {
			return fmt.Sprintf("%+v", rec)
		}
	}
	return fmt.Sprintf("%x", v)
}
