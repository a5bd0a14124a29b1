package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"slices"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
)

// The dashboard reads bounded slices of the store: requests and decisions
// of the last dashboardDays days, and the oldest pending requests. Past the
// bounds it says its figures are partial rather than scanning on.
const (
	dashboardDays          = 30
	dashboardRequestLimit  = 20000
	dashboardDecisionLimit = 50000
	dashboardPendingLimit  = 5000
)

type dashboardView struct {
	Days                      int
	Pending, Approved, Denied int
	OldestPending             time.Duration
	Decided, DecidedApproved  int
	DecidedDenied, Automatic  int
	ApprovalRate              int // percent of decisions
	Median                    time.Duration
	HasMedian                 bool
	Received                  int
	Total                     int // requests stored, every status
	Charts                    []*chart
	Notes                     []string
}

var errStopScan = errors.New("stop")

// pendingAgeBuckets are the upper bounds of the pending-age bars.
var pendingAgeBuckets = []struct {
	Label string
	Upto  time.Duration
}{
	{"< 1 hour", time.Hour},
	{"1–24 hours", 24 * time.Hour},
	{"1–3 days", 3 * 24 * time.Hour},
	{"3–7 days", 7 * 24 * time.Hour},
	{"1–4 weeks", 28 * 24 * time.Hour},
	{"> 4 weeks", math.MaxInt64},
}

func (u *UI) dashboard(c echo.Context) error {
	v, err := u.dashboardData(c.Request().Context())
	if err != nil {
		return err
	}
	p := u.newPage(c, "Dashboard", "dashboard")
	p.Data = v
	return u.render(c, http.StatusOK, "dashboard", p)
}

func median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	if n := len(s); n%2 == 0 {
		return (s[n/2-1] + s[n/2]) / 2
	}
	return s[len(s)/2]
}

func (u *UI) dashboardData(ctx context.Context) (*dashboardView, error) {
	now := u.clock.Now().UTC()
	today := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	since := today.AddDate(0, 0, -(dashboardDays - 1))
	day := func(t time.Time) int { return int(t.UTC().Sub(since) / (24 * time.Hour)) }
	labels := make([]string, dashboardDays)
	for i := range labels {
		labels[i] = since.AddDate(0, 0, i).Format("2 Jan")
	}

	counts, err := u.store.Count(ctx)
	if err != nil {
		return nil, err
	}
	v := &dashboardView{Days: dashboardDays, Pending: counts[approvals.StatusPending],
		Approved: counts[approvals.StatusApproved], Denied: counts[approvals.StatusDenied]}
	v.Total = v.Pending + v.Approved + v.Denied

	// Requests received per day, newest first until the window ends.
	received := make([]float64, dashboardDays)
	pos, read := scanPos{}, 0
	for read < dashboardRequestLimit {
		page, err := u.store.List(ctx, approvals.ListQuery{Order: approvals.NewestFirst, Limit: approvals.MaxPageSize, Cursor: pos.Cursor})
		if err != nil {
			return nil, err
		}
		old := false
		for _, r := range page.Requests {
			read++
			if r.CreatedAt.Before(since) {
				old = true
				break
			}
			if d := day(r.CreatedAt); d < dashboardDays {
				received[d]++
				v.Received++
			}
		}
		if old || page.NextCursor == "" {
			break
		}
		pos.Cursor = page.NextCursor
	}
	if read >= dashboardRequestLimit {
		v.Notes = append(v.Notes, "Requests per day count only the "+formatInt(dashboardRequestLimit)+" most recent requests.")
	}

	// Decisions per day and the time reviewers took.
	approved, denied := make([]float64, dashboardDays), make([]float64, dashboardDays)
	perDay := make([][]time.Duration, dashboardDays)
	var all []time.Duration
	n := 0
	err = u.store.Decisions(ctx, approvals.DecisionQuery{Since: since}, func(r approvals.DecisionRecord) error {
		if n++; n > dashboardDecisionLimit {
			return errStopScan
		}
		d := day(r.DecidedAt)
		if d < 0 || d >= dashboardDays {
			return nil
		}
		v.Decided++
		if r.Status == approvals.StatusApproved {
			approved[d]++
			v.DecidedApproved++
		} else {
			denied[d]++
			v.DecidedDenied++
		}
		if r.Automatic {
			v.Automatic++
			return nil
		}
		took := r.DecidedAt.Sub(r.CreatedAt)
		perDay[d] = append(perDay[d], took)
		all = append(all, took)
		return nil
	})
	if errors.Is(err, errStopScan) {
		v.Notes = append(v.Notes, "Decision figures cover the first "+formatInt(dashboardDecisionLimit)+" decisions of the period.")
	} else if err != nil {
		return nil, err
	}
	if v.Decided > 0 {
		v.ApprovalRate = int(math.Round(float64(v.DecidedApproved) * 100 / float64(v.Decided)))
	}
	v.Median, v.HasMedian = median(all), len(all) > 0
	medians := make([]float64, dashboardDays)
	for i, ds := range perDay {
		medians[i] = math.NaN()
		if len(ds) > 0 {
			medians[i] = median(ds).Seconds()
		}
	}

	// Ages of the pending requests, oldest first.
	ages := make([]float64, len(pendingAgeBuckets))
	res, err := scan(ctx, u.store, approvals.ListQuery{Status: approvals.StatusPending, Order: approvals.OldestFirst}, scanPos{},
		approvals.MaxPageSize, dashboardPendingLimit, dashboardPendingLimit, nil)
	if err != nil {
		return nil, err
	}
	for i, r := range res.Kept {
		age := now.Sub(r.CreatedAt)
		if i == 0 {
			v.OldestPending = age
		}
		for b, bucket := range pendingAgeBuckets {
			if age < bucket.Upto {
				ages[b]++
				break
			}
		}
	}
	if !res.End {
		v.Notes = append(v.Notes, "Pending ages cover the "+formatInt(dashboardPendingLimit)+" oldest pending requests.")
	}
	ageLabels := make([]string, len(pendingAgeBuckets))
	for i, b := range pendingAgeBuckets {
		ageLabels[i] = b.Label
	}

	v.Charts = []*chart{
		barChart("chart-received", "Requests received per day",
			"Sign-up and invitation requests received on each of the last 30 days.",
			labels, []series{{Name: "Requests", Class: "s-received", Values: received}}, 7),
		barChart("chart-decisions", "Decisions per day",
			"Approvals and denials on each of the last 30 days, by reviewers and by rules.",
			labels, []series{{Name: "Approved", Class: "s-approved", Values: approved}, {Name: "Denied", Class: "s-denied", Values: denied}}, 7),
		hbarChart("chart-pending-age", "Pending requests by age",
			"How long the requests still waiting for a reviewer have waited.",
			ageLabels, series{Name: "Requests", Class: "s-pending", Values: ages}),
		durationChart("chart-median", "Median time to decision",
			"Median time from request to a reviewer's decision, per day of decision; days without reviewer decisions are gaps.",
			labels, series{Name: "Median", Class: "s-median", Values: medians}, 7),
	}
	return v, nil
}
