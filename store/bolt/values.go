package bolt

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"github.com/approvals-dev/approvals/approvals"
)

// The binary values of the by_person and decisions indexes (schema
// version 3). They hold what the check step and the export need, so that
// neither decodes a stored request. The pieces:
//
//	str   uvarint(len) bytes
//	enum  u8 code, or 0xff then str for a value the table lacks
//	time  u8 0: the zero time
//	      u8 1, int64 Unix nanoseconds
//	      u8 2, int64 Unix seconds, u32 nanoseconds: outside the years 1678-2261
//
// Integers are big-endian. Times decode in UTC.

// enumOther marks an enum value spelled out as a string.
const enumOther = 0xff

// statusNames are the enum codes of statuses: the same as s1.
var statusNames = []approvals.Status{"", approvals.StatusPending, approvals.StatusApproved, approvals.StatusDenied}

// provisioningNames are the enum codes of provisioning states. The store
// does not restrict a request's provisioning state, hence the escape.
var provisioningNames = []approvals.ProvisioningState{"", approvals.ProvisioningNotStarted, approvals.ProvisioningInProgress,
	approvals.ProvisioningSucceeded, approvals.ProvisioningFailed, approvals.ProvisioningByEntra}

// rowFormat is the first byte of a decisions value: the layout of the row
// that follows. Format 2 (schema 3) added DecidedByID at the end, format 3
// (schema 5) Source after it; rows of formats 1 and 2 are still read, with
// the fields they lack empty (Source: a sign-up, the only source there
// was), and the upgrade rewrites them.
const (
	rowFormat   = 3
	rowFormatV2 = 2
	rowFormatV1 = 1
)

// standingValue is the by_person value of r:
//
//	enum(Status) enum(Provisioning.State) id
//
// The id takes the rest of the value.
func standingValue(r *approvals.Request) []byte {
	b := make([]byte, 0, 2+len(r.ID))
	b = appendEnum(b, statusNames, r.Status)
	b = appendEnum(b, provisioningNames, r.Provisioning.State)
	return append(b, r.ID...)
}

// decodeStanding decodes a by_person value.
func decodeStanding(v []byte) (approvals.Standing, error) {
	d := valueDecoder{b: v}
	st := approvals.Standing{
		Status:       readEnum(&d, statusNames),
		Provisioning: readEnum(&d, provisioningNames),
	}
	if d.err == nil && d.off >= len(v) {
		d.err = errors.New("no request id")
	}
	if d.err != nil {
		return approvals.Standing{}, fmt.Errorf("damaged data file: by_person value %x: %w", v, d.err)
	}
	st.ID = string(v[d.off:])
	return st, nil
}

// standingID returns the request id of a by_person value.
func standingID(v []byte) ([]byte, error) {
	d := valueDecoder{b: v}
	readEnum(&d, statusNames)
	readEnum(&d, provisioningNames)
	if d.err == nil && d.off >= len(v) {
		d.err = errors.New("no request id")
	}
	if d.err != nil {
		return nil, fmt.Errorf("damaged data file: by_person value %x: %w", v, d.err)
	}
	return v[d.off:], nil
}

// encodeRow encodes an export row as a decisions value:
//
//	u8(rowFormat) str(ID) str(Email) str(DisplayName) str(Issuer)
//	enum(Status) u8(Automatic) str(DecidedBy) time(DecidedAt) str(Reason)
//	time(CreatedAt) enum(ProvisioningState) str(UserID) str(DecidedByID)
//	str(Source)
func encodeRow(rec approvals.DecisionRecord) []byte {
	n := 1 + 9*binary.MaxVarintLen16 + 2*13 + 3 + len(rec.ID) + len(rec.Email) + len(rec.DisplayName) +
		len(rec.Issuer) + len(rec.DecidedBy) + len(rec.Reason) + len(rec.UserID) + len(rec.DecidedByID) + len(rec.Source)
	b := make([]byte, 0, n)
	b = append(b, rowFormat)
	b = appendString(b, rec.ID)
	b = appendString(b, rec.Email)
	b = appendString(b, rec.DisplayName)
	b = appendString(b, rec.Issuer)
	b = appendEnum(b, statusNames, rec.Status)
	automatic := byte(0)
	if rec.Automatic {
		automatic = 1
	}
	b = append(b, automatic)
	b = appendString(b, rec.DecidedBy)
	b = appendTime(b, rec.DecidedAt)
	b = appendString(b, rec.Reason)
	b = appendTime(b, rec.CreatedAt)
	b = appendEnum(b, provisioningNames, rec.ProvisioningState)
	b = appendString(b, rec.UserID)
	b = appendString(b, rec.DecidedByID)
	return appendString(b, string(rec.Source))
}

// decodeRow decodes a decisions value. Its strings share one allocation.
// decodeRow(encodeRow(rec)) is rec with its times in UTC.
func decodeRow(v []byte) (approvals.DecisionRecord, error) {
	var rec approvals.DecisionRecord
	if len(v) == 0 || (v[0] != rowFormat && v[0] != rowFormatV2 && v[0] != rowFormatV1) {
		if len(v) == 0 {
			return rec, errors.New("damaged data file: empty export row")
		}
		return rec, fmt.Errorf("damaged data file: export row of unknown format %d", v[0])
	}
	d := valueDecoder{b: v, s: string(v), off: 1}
	rec.ID = d.string()
	rec.Email = d.string()
	rec.DisplayName = d.string()
	rec.Issuer = d.string()
	rec.Status = readEnum(&d, statusNames)
	switch a := d.byte(); a {
	case 0:
	case 1:
		rec.Automatic = true
	default:
		d.fail("automatic flag %d", a)
	}
	rec.DecidedBy = d.string()
	rec.DecidedAt = d.time()
	rec.Reason = d.string()
	rec.CreatedAt = d.time()
	rec.ProvisioningState = readEnum(&d, provisioningNames)
	rec.UserID = d.string()
	if v[0] >= rowFormatV2 {
		rec.DecidedByID = d.string()
	}
	rec.Source = approvals.SourceSignUp
	if v[0] >= rowFormat {
		rec.Source = approvals.Source(d.string())
	}
	if d.err == nil && d.off != len(v) {
		d.fail("%d bytes after the row", len(v)-d.off)
	}
	if d.err != nil {
		return approvals.DecisionRecord{}, fmt.Errorf("damaged data file: export row: %w", d.err)
	}
	return rec, nil
}

// rowValue is the decisions value of a decided request.
func rowValue(r *approvals.Request) []byte {
	return encodeRow(approvals.NewDecisionRecord(r))
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendEnum[T ~string](b []byte, names []T, v T) []byte {
	for i, n := range names {
		if n == v {
			return append(b, byte(i))
		}
	}
	return appendString(append(b, enumOther), string(v))
}

func appendTime(b []byte, t time.Time) []byte {
	switch {
	case t.IsZero():
		return append(b, 0)
	case t.Before(minNanoTime) || t.After(maxNanoTime):
		b = binary.BigEndian.AppendUint64(append(b, 2), uint64(t.Unix()))
		return binary.BigEndian.AppendUint32(b, uint32(t.Nanosecond()))
	}
	return binary.BigEndian.AppendUint64(append(b, 1), uint64(t.UnixNano()))
}

// valueDecoder reads the pieces of a value in order. After the first
// error it reads nothing and returns zero values.
type valueDecoder struct {
	b   []byte
	s   string // b as a string, when strings are read: they are cut from it
	off int
	err error
}

func (d *valueDecoder) fail(format string, args ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("at byte %d: "+format, append([]any{d.off}, args...)...)
	}
}

func (d *valueDecoder) take(n int) []byte {
	if d.err != nil {
		return nil
	}
	if n < 0 || n > len(d.b)-d.off {
		d.fail("value ends early")
		return nil
	}
	d.off += n
	return d.b[d.off-n : d.off]
}

func (d *valueDecoder) byte() byte {
	if b := d.take(1); b != nil {
		return b[0]
	}
	return 0
}

// length reads the uvarint length of a string.
func (d *valueDecoder) length() int {
	if d.err != nil {
		return 0
	}
	n, size := binary.Uvarint(d.b[d.off:])
	if size <= 0 || n > uint64(len(d.b)-d.off-size) {
		d.fail("bad string length")
		return 0
	}
	d.off += size
	return int(n)
}

func (d *valueDecoder) string() string {
	n := d.length()
	if d.take(n) == nil {
		return ""
	}
	if d.s == "" {
		return string(d.b[d.off-n : d.off])
	}
	return d.s[d.off-n : d.off]
}

func (d *valueDecoder) time() time.Time {
	switch kind := d.byte(); kind {
	case 0:
	case 1:
		if b := d.take(8); b != nil {
			return time.Unix(0, int64(binary.BigEndian.Uint64(b))).UTC()
		}
	case 2:
		b := d.take(12)
		if b == nil {
			break
		}
		sec, nsec := int64(binary.BigEndian.Uint64(b)), binary.BigEndian.Uint32(b[8:])
		if nsec >= 1e9 {
			d.fail("%d nanoseconds", nsec)
			break
		}
		return time.Unix(sec, int64(nsec)).UTC()
	default:
		d.fail("time of kind %d", kind)
	}
	return time.Time{}
}

func readEnum[T ~string](d *valueDecoder, names []T) T {
	switch code := d.byte(); {
	case d.err != nil:
	case code == enumOther:
		return T(d.string())
	case int(code) < len(names):
		return names[code]
	default:
		d.fail("unknown code %d", code)
	}
	return ""
}
