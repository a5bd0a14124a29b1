package web

import (
	"context"
	"encoding/base64"
	"strconv"
	"strings"

	"github.com/approvals-dev/approvals/approvals"
)

// The Store lists requests by creation time, one status or all, and has no
// search. Views that need another filter (a search, "everything but
// pending") read pages and keep what matches, with a bound on the rows read
// per HTTP request, so that no page costs a full scan of a large store.

// scanPos is a position in a listing: the store cursor of a page and how
// many rows of that page were already consumed. Views that mix listings tag
// it with a phase.
type scanPos struct {
	Phase  string
	Cursor string
	Skip   int
}

// encode returns the position as an opaque URL-safe cursor.
func (p scanPos) encode() string {
	return base64.RawURLEncoding.EncodeToString([]byte(p.Phase + "\x00" + strconv.Itoa(p.Skip) + "\x00" + p.Cursor))
}

func decodeScanPos(s string) (scanPos, error) {
	if s == "" {
		return scanPos{}, nil
	}
	b, err := base64.RawURLEncoding.DecodeString(s)
	parts := strings.SplitN(string(b), "\x00", 3)
	if err != nil || len(parts) != 3 {
		return scanPos{}, errBadCursor
	}
	skip, err := strconv.Atoi(parts[1])
	if err != nil || skip < 0 {
		return scanPos{}, errBadCursor
	}
	return scanPos{Phase: parts[0], Skip: skip, Cursor: parts[2]}, nil
}

var errBadCursor = approvals.Errorf(approvals.EInvalid, "this page link is out of date; start again from the first page")

// scanResult is what one bounded scan found.
type scanResult struct {
	Kept []*approvals.Request
	Next scanPos // where to continue; meaningless when End
	Read int     // rows examined
	End  bool    // the listing has no more rows
}

// scan reads the listing q from pos in pages of pageSize rows, keeping the
// rows keep accepts (all when keep is nil), until it has want rows, the
// listing ends, or it has examined budget rows.
func scan(ctx context.Context, st approvals.Store, q approvals.ListQuery, pos scanPos, pageSize, want, budget int, keep func(*approvals.Request) bool) (scanResult, error) {
	res := scanResult{Next: pos}
	q.Limit = pageSize
	cur, skip := pos.Cursor, pos.Skip
	for {
		q.Cursor = cur
		page, err := st.List(ctx, q)
		if err != nil {
			return res, err
		}
		rows := page.Requests
		if skip >= len(rows) {
			if page.NextCursor == "" {
				res.End = true
				return res, nil
			}
			skip -= len(rows)
			cur = page.NextCursor
			continue
		}
		for i := skip; i < len(rows); i++ {
			res.Read++
			if keep == nil || keep(rows[i]) {
				res.Kept = append(res.Kept, rows[i])
			}
			if len(res.Kept) >= want || res.Read >= budget {
				if i+1 < len(rows) {
					res.Next = scanPos{Phase: pos.Phase, Cursor: cur, Skip: i + 1}
				} else {
					res.Next = scanPos{Phase: pos.Phase, Cursor: page.NextCursor}
					res.End = page.NextCursor == ""
				}
				return res, nil
			}
		}
		if page.NextCursor == "" {
			res.End = true
			return res, nil
		}
		cur, skip = page.NextCursor, 0
	}
}

// matchesSearch reports whether r's email, display name, given name or
// surname contains term (lower-case).
func matchesSearch(r *approvals.Request, term string) bool {
	if strings.Contains(strings.ToLower(r.Email), term) || strings.Contains(strings.ToLower(r.DisplayName), term) {
		return true
	}
	for _, k := range []string{"givenName", "surname", "lastName"} {
		if s, ok := r.Claims[k].(string); ok && strings.Contains(strings.ToLower(s), term) {
			return true
		}
	}
	return false
}
