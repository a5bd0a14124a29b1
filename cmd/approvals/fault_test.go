package main

// The fault test: many approvals provisioned through the real provisioner,
// the real Graph SDK and azidentity against a fake Graph that throttles
// (429 and 503 with Retry-After), fails (503 without it, after the call
// took effect), resets connections (before and after the effect), stalls
// (latency spikes, some past the call timeout) and lags (404 and
// "references do not exist" for just-created users). docs/RELIABILITY.md
// has the commands and the numbers.

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/store/bolt"
)

var faultApprovals = flag.Int("fault.approvals", 200, "fault test: approvals to provision (long run: 1000)")

// faultPlan is the fake Graph's misbehaviour in the fault test, per route,
// first match wins. Every Retry-After is one second.
func faultPlan(g *graphtest.Server) {
	const ra = time.Second
	plan := []struct {
		route string
		spec  graphtest.FaultSpec
	}{
		{"GET /users", graphtest.FaultSpec{Status: 429, RetryAfter: ra, Probability: 0.03}},
		{"GET /users", graphtest.FaultSpec{Reset: true, Probability: 0.02}},
		{"POST /users", graphtest.FaultSpec{Status: 503, RetryAfter: ra, Probability: 0.05}},
		{"POST /users", graphtest.FaultSpec{Reset: true, AfterEffect: true, Probability: 0.05}},
		{"POST /invitations", graphtest.FaultSpec{Status: 429, RetryAfter: ra, Probability: 0.05}},
		{"POST /invitations", graphtest.FaultSpec{Status: 503, AfterEffect: true, Probability: 0.05}},
		{"PATCH /users/{id}", graphtest.FaultSpec{Status: 503, RetryAfter: ra, Probability: 0.05}},
		{"PATCH /users/{id}", graphtest.FaultSpec{Reset: true, Probability: 0.03}},
		{"POST /groups/{id}/members/$ref", graphtest.FaultSpec{Status: 429, RetryAfter: ra, Probability: 0.04}},
		{"POST /groups/{id}/members/$ref", graphtest.FaultSpec{Reset: true, AfterEffect: true, Probability: 0.03}},
		{"*", graphtest.FaultSpec{Status: 504, Probability: 0.01}},
		{"*", graphtest.FaultSpec{Latency: 2500 * time.Millisecond, Probability: 0.003}}, // past the 2 s call timeout
		{"*", graphtest.FaultSpec{Latency: 300 * time.Millisecond, Probability: 0.03}},
	}
	for _, f := range plan {
		g.Fault(f.route, f.spec)
	}
	g.ReplicationLag(300 * time.Millisecond)
}

// callOwner tells whose job a recorded Graph call belongs to: the person's
// number from the mail or identity in the filter or body, or from the user
// id in the path or body.
type callOwner struct {
	byUser map[string]int
}

var (
	faultMailRE = regexp.MustCompile(`flt(\d{6})@|g-flt-(\d+)'`)
	objectIDRE  = regexp.MustCompile(`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`)
)

func (o callOwner) of(c graphtest.Call) (int, bool) {
	q, _ := url.QueryUnescape(c.Query)
	text := q + " " + string(c.Body)
	if m := faultMailRE.FindStringSubmatch(text); m != nil {
		n, _ := strconv.Atoi(m[1] + m[2])
		return n, true
	}
	p, _ := url.PathUnescape(c.Path)
	for _, id := range objectIDRE.FindAllString(p+" "+string(c.Body), -1) {
		if n, ok := o.byUser[id]; ok {
			return n, true
		}
	}
	return 0, false
}

// retryAfterOf returns the Retry-After a faulty answer carried.
func retryAfterOf(c graphtest.Call) time.Duration {
	for _, part := range strings.Fields(c.Fault) {
		if v, ok := strings.CutPrefix(part, "retry-after="); ok {
			d, _ := time.ParseDuration(v)
			return d
		}
	}
	return 0
}

// TestFaultProvisioning provisions -fault.approvals approvals (a third
// POST /users for Google, a third for email one-time passcode, a third
// invitations, two groups each) through faultPlan. Every job must
// succeed, with one directory account per person, and no call of a job
// may come sooner after a Retry-After answer than the answer allowed.
func TestFaultProvisioning(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test: not in -short")
	}
	start := time.Now()
	n := *faultApprovals
	g := graphtest.New(graphtest.Options{})
	defer g.Close()
	groups := []string{g.AddGroup(""), g.AddGroup("")}
	faultPlan(g)

	store, err := bolt.Open(filepath.Join(t.TempDir(), "approvals.db"), bolt.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	cred, err := provisioner.NewCredential(provisioner.CredentialConfig{
		TenantID: g.TenantID(), ClientID: g.ClientID(), ClientSecret: g.ClientSecret(),
		AuthorityHost: g.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: g.Client(),
	})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := provisioner.NewDirectory(provisioner.GraphConfig{
		URL: g.URL(), Credential: cred, Transport: g.Transport(), Timeout: 2 * time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	errLog := &countingHandler{}
	prov, err := provisioner.New(provisioner.Config{
		Store:             store,
		Directory:         dir,
		TenantDomain:      g.TenantDomain(),
		InviteRedirectURL: "https://myapps.microsoft.com",
		GroupIDs:          groups,
		Workers:           16,
		Retry:             provisioner.RetryPolicy{Base: 50 * time.Millisecond, Max: 2 * time.Second, LagWindow: time.Minute},
		PollInterval:      time.Second,
		Logger:            slog.New(errLog),
	})
	if err != nil {
		t.Fatal(err)
	}
	svc := &approvals.Service{Store: store, Provisioner: prov}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	persons := make([]person, n)
	for i := range persons {
		persons[i] = newPerson("flt", i, false)
	}
	// Sign up and approve from 16 goroutines: the store commits them in
	// groups.
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for w := range 16 {
		wg.Go(func() {
			for i := w; i < n; i += 16 {
				p := persons[i]
				r, _, err := svc.RequestApproval(ctx, approvals.SignUp{
					Email: p.email, DisplayName: fmt.Sprintf("Person %d", i), Identity: p.identity,
					Claims: map[string]any{"givenName": "Pat", "surname": fmt.Sprintf("N%d", i), "city": "Leeds"}, Locale: "en-US",
				})
				if err == nil {
					_, err = svc.Approve(ctx, r.ID, approvals.Actor{Kind: approvals.ActorAPIKey, ID: "fault-test"}, "fault test")
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	provStart := time.Now()
	done := make(chan error, 1)
	go func() { done <- prov.Run(ctx) }()
	for {
		jobs, err := store.DueJobs(ctx, time.Now().AddDate(1, 0, 0), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(jobs) == 0 {
			break
		}
		if time.Since(provStart) > 5*time.Minute {
			t.Fatal("provisioning did not finish in 5 minutes")
		}
		time.Sleep(50 * time.Millisecond)
	}
	elapsed := time.Since(provStart)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := store.Check(); err != nil {
		t.Fatal(err)
	}

	// Every job succeeded with the person's one account.
	users := usersByMail(g)
	owner := callOwner{byUser: map[string]int{}}
	for _, p := range persons {
		us := users[strings.ToLower(p.email)]
		if len(us) != 1 {
			t.Errorf("%s: %d directory accounts", p.email, len(us))
			continue
		}
		owner.byUser[us[0].ID] = p.n
		if got := g.GroupsOf(us[0].ID); len(got) != len(groups) {
			t.Errorf("%s: member of %v", p.email, got)
		}
		if us[0].Properties["city"] != "Leeds" {
			t.Errorf("%s: attributes not written", p.email)
		}
	}
	attempts := 0
	var doneAt []time.Duration
	for _, r := range listAll(t, store) {
		doneAt = append(doneAt, r.UpdatedAt.Sub(provStart))
		attempts += r.Provisioning.Attempts
		us := users[strings.ToLower(r.Email)]
		if r.Provisioning.State != approvals.ProvisioningSucceeded || len(us) != 1 || r.Provisioning.UserID != us[0].ID {
			t.Errorf("%s: provisioning %s, user %q: %s", r.Email, r.Provisioning.State, r.Provisioning.UserID, r.Provisioning.LastError)
		}
	}

	// No call of a job sooner than a Retry-After allowed.
	calls := g.Calls()
	byPerson := map[int][]graphtest.Call{}
	faults := map[string]int{}
	unowned := 0
	for _, c := range calls {
		if c.Fault != "" {
			faults[c.Route+" "+c.Fault]++
		}
		n, ok := owner.of(c)
		if !ok {
			unowned++
			continue
		}
		byPerson[n] = append(byPerson[n], c)
	}
	if unowned > 0 {
		t.Errorf("%d Graph calls could not be attributed to a job", unowned)
	}
	retryAfters, violations := 0, 0
	minGap := time.Duration(-1)
	for n, cs := range byPerson {
		slices.SortStableFunc(cs, func(a, b graphtest.Call) int { return a.Start.Compare(b.Start) })
		for i, c := range cs {
			ra := retryAfterOf(c)
			if ra == 0 || c.Status == 0 {
				continue
			}
			retryAfters++
			if i+1 == len(cs) {
				t.Errorf("%s: nothing after a Retry-After answer", persons[n].email)
				continue
			}
			gap := cs[i+1].Start.Sub(c.End)
			if minGap < 0 || gap < minGap {
				minGap = gap
			}
			if gap < ra {
				violations++
				t.Errorf("%s: %s %s answered %d with Retry-After %s; the next call, %s %s, came %s later",
					persons[n].email, c.Method, c.Path, c.Status, ra, cs[i+1].Method, cs[i+1].Path, gap)
			}
		}
	}
	if retryAfters == 0 {
		t.Error("no Retry-After answer was injected")
	}
	slices.Sort(doneAt)
	var kinds []string
	for k, v := range faults {
		kinds = append(kinds, fmt.Sprintf("%s: %d", k, v))
	}
	slices.Sort(kinds)
	t.Logf("faults injected:\n  %s", strings.Join(kinds, "\n  "))
	t.Logf("RESULT fault: %d approvals, %d succeeded with one account each (%d directory users), %d Graph calls, %d attempts, %d Retry-After answers, %d violations (shortest wait after one: %s), %d error log lines; jobs done after %s (median), %s (last); the test took %s",
		n, len(owner.byUser), len(g.Users()), len(calls), attempts, retryAfters, violations, minGap.Round(time.Millisecond),
		errLog.n(), doneAt[len(doneAt)/2].Round(time.Millisecond), elapsed.Round(time.Millisecond), time.Since(start).Round(time.Millisecond))
}

// countingHandler is a slog.Handler that counts error records and drops
// everything.
type countingHandler struct{ errs atomic.Int64 }

func (h *countingHandler) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *countingHandler) Handle(context.Context, slog.Record) error {
	h.errs.Add(1)
	return nil
}
func (h *countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *countingHandler) WithGroup(string) slog.Handler      { return h }
func (h *countingHandler) n() int64                           { return h.errs.Load() }
