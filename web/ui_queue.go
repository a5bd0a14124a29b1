package web

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// queueQuery is the queue's state, as its URL carries it.
type queueQuery struct {
	Status approvals.Status // empty: every status
	Order  approvals.Order
	Search string
	Cursor string
	Limit  int
}

// queuePageSize is the default number of rows per page.
const queuePageSize = 50

// defaultOrder works the pending queue first come, first served, and
// shows history newest first.
func defaultOrder(s approvals.Status) approvals.Order {
	if s == approvals.StatusPending {
		return approvals.OldestFirst
	}
	return approvals.NewestFirst
}

func parseQueueQuery(c echo.Context) (queueQuery, error) {
	q := queueQuery{Status: approvals.StatusPending, Search: strings.TrimSpace(c.QueryParam("q")), Cursor: c.QueryParam("cursor"), Limit: queuePageSize}
	switch s := c.QueryParam("status"); s {
	case "":
	case "all":
		q.Status = ""
	default:
		q.Status = approvals.Status(s)
		if !q.Status.Valid() {
			return q, approvals.Errorf(approvals.EInvalid, "unknown status %q; use pending, approved, denied or all", s)
		}
	}
	switch o := approvals.Order(c.QueryParam("order")); o {
	case "":
		q.Order = defaultOrder(q.Status)
	case approvals.NewestFirst, approvals.OldestFirst:
		q.Order = o
	default:
		return q, approvals.Errorf(approvals.EInvalid, "unknown order %q; use newest or oldest", o)
	}
	if n, err := strconv.Atoi(c.QueryParam("limit")); err == nil {
		q.Limit = min(max(n, 10), 200)
	}
	if len(q.Search) > 200 {
		// Cut between characters and trim again, so that the term still
		// matches and the page's links (href) read back as this query.
		n := 200
		for n > 0 && !utf8.RuneStart(q.Search[n]) {
			n--
		}
		q.Search = strings.TrimSpace(q.Search[:n])
	}
	return q, nil
}

// href returns the queue URL for q.
func (q queueQuery) href() string {
	v := url.Values{}
	switch q.Status {
	case approvals.StatusPending:
	case "":
		v.Set("status", "all")
	default:
		v.Set("status", string(q.Status))
	}
	if q.Order != defaultOrder(q.Status) {
		v.Set("order", string(q.Order))
	}
	if q.Search != "" {
		v.Set("q", q.Search)
	}
	if q.Limit != queuePageSize {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	if len(v) == 0 {
		return "/"
	}
	return "/?" + v.Encode()
}

type queueTab struct {
	Label  string
	Status string // the status parameter
	Count  int
	Href   string
	Active bool
}

type queueRow struct {
	*approvals.Request
	Href       string
	Selectable bool
	// Group, when set, starts a group of rows under this heading.
	Group string
}

type queueView struct {
	Q         queueQuery
	StatusArg string // the status parameter of the current tab
	Tabs      []queueTab
	Rows      []queueRow
	Self      string // this page's URL, where actions return to
	NextHref  string
	FirstHref string // set when not on the first page
	ClearHref string // the tab without the search
	// ShowOutcome adds the decision column on tabs with decided requests;
	// Columns counts the table columns.
	ShowOutcome bool
	Columns     int
	Selectable  bool // some row can be selected for a bulk decision
	// Search results.
	Searching   bool
	Scanned     int
	SearchLimit int
	SearchDone  bool // the whole listing was searched
}

func (u *UI) queue(c echo.Context) error {
	ctx := c.Request().Context()
	q, err := parseQueueQuery(c)
	if err != nil {
		return err
	}
	pos, err := decodeScanPos(q.Cursor)
	if err != nil {
		return err
	}
	counts, err := u.store.Count(ctx)
	if err != nil {
		return err
	}
	v := &queueView{Q: q, Self: q.href(), SearchLimit: u.cfg.SearchScanLimit, Searching: q.Search != ""}
	v.StatusArg = statusArg(q.Status)
	v.ClearHref = queueQuery{Status: q.Status, Order: q.Order, Limit: q.Limit}.href()
	v.ShowOutcome = q.Status != approvals.StatusPending
	total := 0
	for _, st := range approvals.Statuses {
		total += counts[st]
	}
	for _, st := range slices.Concat(approvals.Statuses, []approvals.Status{""}) {
		n := total
		if st != "" {
			n = counts[st]
		}
		tq := queueQuery{Status: st, Order: defaultOrder(st), Search: q.Search, Limit: q.Limit}
		v.Tabs = append(v.Tabs, queueTab{Label: statusLabel(st), Status: statusArg(st), Count: n, Href: tq.href(), Active: st == q.Status})
	}
	var rows []*approvals.Request
	var next *scanPos
	switch {
	case v.Searching:
		rows, next, err = u.searchQueue(ctx, q, pos, v)
	case q.Status == "":
		rows, next, err = u.pendingFirst(ctx, q, pos)
	default:
		var res scanResult
		res, err = scan(ctx, u.store, approvals.ListQuery{Status: q.Status, Order: q.Order}, pos, q.Limit, q.Limit, q.Limit, nil)
		rows = res.Kept
		if !res.End {
			next = &res.Next
		}
	}
	if err != nil {
		return err
	}
	for _, r := range rows {
		v.Rows = append(v.Rows, queueRow{Request: r, Href: requestHref(r.ID, v.Self), Selectable: r.Status == approvals.StatusPending})
		v.Selectable = v.Selectable || r.Status == approvals.StatusPending
	}
	v.Columns = 4
	if v.ShowOutcome {
		v.Columns++
	}
	if v.Selectable {
		v.Columns++
	}
	if q.Status == "" && !v.Searching {
		// Pending rows come first; a heading starts each group.
		for i := range v.Rows {
			pending := v.Rows[i].Status == approvals.StatusPending
			if i > 0 && pending == (v.Rows[i-1].Status == approvals.StatusPending) {
				continue
			}
			v.Rows[i].Group = "Decided"
			if pending {
				v.Rows[i].Group = "Pending"
			}
		}
	}
	if next != nil {
		nq := q
		nq.Cursor = next.encode()
		v.NextHref = nq.href()
	}
	if q.Cursor != "" {
		fq := q
		fq.Cursor = ""
		v.FirstHref = fq.href()
	}
	p := u.newPage(c, "Queue", "queue")
	p.Data = v
	return u.render(c, http.StatusOK, "queue", p)
}

func statusArg(s approvals.Status) string {
	if s == "" {
		return "all"
	}
	return string(s)
}

func requestHref(id, back string) string {
	h := "/requests/" + url.PathEscape(id)
	if back != "" && back != "/" {
		h += "?back=" + url.QueryEscape(back)
	}
	return h
}

// pendingFirst lists every request with the pending ones first: phase "p"
// pages through the pending listing, phase "d" through the full listing
// skipping pending rows.
func (u *UI) pendingFirst(ctx context.Context, q queueQuery, pos scanPos) ([]*approvals.Request, *scanPos, error) {
	var rows []*approvals.Request
	if pos.Phase != "d" {
		pos.Phase = "p"
		res, err := scan(ctx, u.store, approvals.ListQuery{Status: approvals.StatusPending, Order: q.Order}, pos, q.Limit, q.Limit, q.Limit, nil)
		if err != nil {
			return nil, nil, err
		}
		if !res.End {
			return res.Kept, &res.Next, nil
		}
		rows, pos = res.Kept, scanPos{Phase: "d"}
		if len(rows) == q.Limit {
			return rows, &pos, nil
		}
	}
	want := q.Limit - len(rows)
	notPending := func(r *approvals.Request) bool { return r.Status != approvals.StatusPending }
	// Pending rows are skipped here; the budget keeps a page cheap even
	// when many are interleaved, at the cost of a short page.
	res, err := scan(ctx, u.store, approvals.ListQuery{Order: q.Order}, pos, want, want, 10*q.Limit, notPending)
	if err != nil {
		return nil, nil, err
	}
	rows = append(rows, res.Kept...)
	if res.End {
		return rows, nil, nil
	}
	return rows, &res.Next, nil
}

var requestIDPattern = regexp.MustCompile(`^[0-9a-f]{24}$`)

// searchQueue finds requests whose email or name contains the search term,
// reading at most SearchScanLimit requests of the tab's listing per page.
// An exact email or request id is also looked up directly.
func (u *UI) searchQueue(ctx context.Context, q queueQuery, pos scanPos, v *queueView) ([]*approvals.Request, *scanPos, error) {
	term := strings.ToLower(q.Search)
	var direct []*approvals.Request
	if q.Cursor == "" {
		var r *approvals.Request
		var err error
		switch {
		case requestIDPattern.MatchString(term):
			r, err = u.store.Get(ctx, term)
		case approvals.ValidateEmail(q.Search) == nil:
			if p, perr := u.svc.Person(q.Search, nil); perr == nil {
				r, err = u.store.FindByPerson(ctx, p.Key)
			}
		}
		if err != nil && approvals.Code(err) != approvals.ENotFound {
			return nil, nil, err
		}
		if r != nil && (q.Status == "" || r.Status == q.Status) {
			direct = append(direct, r)
		}
	}
	keep := func(r *approvals.Request) bool {
		if len(direct) > 0 && r.ID == direct[0].ID {
			return false
		}
		return r.ID == term || matchesSearch(r, term)
	}
	res, err := scan(ctx, u.store, approvals.ListQuery{Status: q.Status, Order: q.Order}, pos, approvals.MaxPageSize, q.Limit, u.cfg.SearchScanLimit, keep)
	if err != nil {
		return nil, nil, err
	}
	v.Scanned, v.SearchDone = res.Read, res.End
	rows := append(direct, res.Kept...)
	if res.End {
		return rows, nil, nil
	}
	return rows, &res.Next, nil
}
