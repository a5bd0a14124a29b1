package bolt

import (
	"math"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// utcRow is what an export row reads as once stored: its times in UTC.
func utcRow(rec approvals.DecisionRecord) approvals.DecisionRecord {
	rec.DecidedAt, rec.CreatedAt = rec.DecidedAt.UTC(), rec.CreatedAt.UTC()
	return rec
}

func TestRowRoundTrip(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 123456789, time.UTC)
	paris := time.FixedZone("CET", 3600)
	full := approvals.DecisionRecord{
		ID: "0000000000000000000000aa", Email: "ada@example.com", DisplayName: "Ada Lovelace", Issuer: "google.com",
		Status: approvals.StatusApproved, Automatic: true, DecidedBy: "policy:auto-approve-domain:example.com",
		DecidedAt: at, Reason: "known supplier", CreatedAt: at.Add(-time.Hour),
		ProvisioningState: approvals.ProvisioningSucceeded, UserID: "5f0c-user", DecidedByID: "auto-approve-domain:example.com",
	}
	tests := []struct {
		name string
		rec  approvals.DecisionRecord
	}{
		{"Full", full},
		{"Empty", approvals.DecisionRecord{}},
		{"Denied", approvals.DecisionRecord{ID: "x", Status: approvals.StatusDenied, DecidedBy: "Ada (oid-1)", DecidedAt: at, Reason: "spam", CreatedAt: at}},
		{"LocalTimes", func() approvals.DecisionRecord {
			r := full
			r.DecidedAt, r.CreatedAt = at.In(paris), time.Now() // a monotonic reading too
			return r
		}()},
		{"ZeroTimeElsewhere", func() approvals.DecisionRecord {
			r := full
			r.DecidedAt = time.Time{}.In(paris)
			return r
		}()},
		{"FarTimes", func() approvals.DecisionRecord {
			r := full
			r.DecidedAt = time.Date(1, 1, 1, 0, 0, 0, 1, time.UTC)
			r.CreatedAt = time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC)
			return r
		}()},
		{"EdgeOfNanoseconds", func() approvals.DecisionRecord {
			r := full
			r.DecidedAt, r.CreatedAt = time.Unix(0, math.MinInt64).UTC(), time.Unix(0, math.MaxInt64).UTC()
			return r
		}()},
		{"UnknownEnums", func() approvals.DecisionRecord {
			r := full
			r.Status, r.ProvisioningState = "maybe", "half_done"
			return r
		}()},
		{"LongAndUnicode", func() approvals.DecisionRecord {
			r := full
			r.Reason = strings.Repeat("déjà vu, ", 300)
			r.DisplayName = "Zoë \x00 \xff"
			return r
		}()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := encodeRow(tt.rec)
			got, err := decodeRow(v)
			if err != nil {
				t.Fatalf("decodeRow(%x): %v", v, err)
			}
			if want := utcRow(tt.rec); got != want {
				t.Errorf("decodeRow(encodeRow(rec)) = %+v\nwant %+v", got, want)
			}
			// Every shorter value is refused, never misread.
			for n := range len(v) {
				if _, err := decodeRow(v[:n]); err == nil {
					t.Fatalf("decodeRow of the first %d of %d bytes succeeded", n, len(v))
				}
			}
			if _, err := decodeRow(append(v, 0)); err == nil {
				t.Error("decodeRow with a trailing byte succeeded")
			}
		})
	}
}

func TestStandingRoundTrip(t *testing.T) {
	for _, r := range []*approvals.Request{
		{ID: "000000000000000000000001", Status: approvals.StatusPending, Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted}},
		{ID: "x", Status: approvals.StatusApproved, Provisioning: approvals.Provisioning{State: approvals.ProvisioningByEntra}},
		{ID: "y", Status: approvals.StatusDenied},
		{ID: "\xff\xff", Status: approvals.StatusApproved, Provisioning: approvals.Provisioning{State: "half_done"}},
	} {
		v := standingValue(r)
		st, err := decodeStanding(v)
		if err != nil || st != r.Standing() {
			t.Errorf("decodeStanding(standingValue(%+v)) = %+v, %v; want %+v", r.Standing(), st, err, r.Standing())
		}
		if id, err := standingID(v); err != nil || string(id) != r.ID {
			t.Errorf("standingID = %q, %v; want %q", id, err, r.ID)
		}
		if _, err := decodeStanding(v[:2]); err == nil {
			t.Errorf("decodeStanding without an id succeeded")
		}
	}
	// A version 1 value, the bare id, is refused rather than misread.
	if st, err := decodeStanding([]byte("000000000000000000000001")); err == nil {
		t.Errorf("decodeStanding of a version 1 value = %+v", st)
	}
}

// Rows of format 1 (schema 2), which have no DecidedByID, and of format 2
// (schemas 3 and 4), which have no Source, still read: as sign-ups.
func TestRowFormat1(t *testing.T) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	rec := approvals.DecisionRecord{ID: "x", Email: "a@example.com", Status: approvals.StatusApproved, DecidedBy: "Ada", DecidedAt: at, CreatedAt: at,
		Source: approvals.SourceSignUp}
	v := formatV1Row(rec)
	got, err := decodeRow(v)
	if err != nil || got != rec {
		t.Fatalf("decodeRow(format 1) = %+v, %v; want %+v", got, err, rec)
	}
	rec.DecidedByID = "oid-1"
	if got, err := decodeRow(formatV2Row(rec)); err != nil || got != rec {
		t.Fatalf("decodeRow(format 2) = %+v, %v; want %+v", got, err, rec)
	}
	rec.Source = approvals.SourceExternalID
	if got, err := decodeRow(encodeRow(rec)); err != nil || got != rec || encodeRow(rec)[0] != rowFormat {
		t.Fatalf("format 3 row: %+v, %v", got, err)
	}
}

// formatV2Row is rec as schemas 3 and 4 wrote it: format byte 2, no Source.
func formatV2Row(rec approvals.DecisionRecord) []byte {
	rec.Source = ""
	return withoutLastField(encodeRow(rec), rowFormatV2)
}

// formatV1Row is rec as schema 2 wrote it: format byte 1, no DecidedByID.
func formatV1Row(rec approvals.DecisionRecord) []byte {
	rec.DecidedByID = ""
	return withoutLastField(formatV2Row(rec), rowFormatV1)
}

// withoutLastField is row v as the format before it wrote it: v's last
// field, an empty string (one length byte), was not there yet, and the
// format byte is format.
func withoutLastField(v []byte, format byte) []byte {
	v = v[:len(v)-1]
	v[0] = format
	return v
}

// FuzzDecodeRow feeds arbitrary bytes to the export row decoder: it either
// refuses them or returns a row that encodes and decodes to itself.
func FuzzDecodeRow(f *testing.F) {
	at := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	f.Add(encodeRow(approvals.DecisionRecord{ID: "a", Email: "a@example.com", Status: approvals.StatusApproved, DecidedAt: at, CreatedAt: at,
		ProvisioningState: approvals.ProvisioningSucceeded, UserID: "u"}))
	f.Add(encodeRow(approvals.DecisionRecord{Status: "other", DecidedAt: time.Date(3000, 1, 1, 0, 0, 0, 0, time.UTC)}))
	f.Add([]byte{1})
	f.Add(formatV1Row(approvals.DecisionRecord{ID: "a", DecidedBy: "Ada", DecidedAt: at, CreatedAt: at}))
	f.Add(formatV2Row(approvals.DecisionRecord{ID: "a", DecidedBy: "Ada", DecidedAt: at, CreatedAt: at, DecidedByID: "oid"}))
	f.Add([]byte{2})
	f.Add([]byte{3})
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, v []byte) {
		rec, err := decodeRow(v)
		if err != nil {
			return
		}
		again, err := decodeRow(encodeRow(rec))
		if err != nil || again != rec {
			t.Fatalf("decodeRow(encodeRow(%+v)) = %+v, %v", rec, again, err)
		}
	})
}

// FuzzDecodeStanding does the same for by_person values.
func FuzzDecodeStanding(f *testing.F) {
	f.Add(standingValue(&approvals.Request{ID: "000000000000000000000001", Status: approvals.StatusPending}))
	f.Add([]byte{2, 0xff, 3, 'a', 'b', 'c', 'x'})
	f.Fuzz(func(t *testing.T, v []byte) {
		st, err := decodeStanding(v)
		if err != nil {
			return
		}
		r := &approvals.Request{ID: st.ID, Status: st.Status, Provisioning: approvals.Provisioning{State: st.Provisioning}}
		if again, err := decodeStanding(standingValue(r)); err != nil || again != st {
			t.Fatalf("decodeStanding(standingValue(%+v)) = %+v, %v", st, again, err)
		}
	})
}
