package main

// The replica torture test: three `approvals serve` child processes on one
// PostgreSQL database and one fake Graph. Sign-ups are posted twice each,
// at once, to two replicas; approvals go to one replica while a denial of
// some of the same requests goes to another; a replica is SIGKILLed while
// it provisions; the database is stopped and started under the survivors.
// Every answered sign-up must be stored once, every approved person
// provisioned exactly once by a survivor, and no Continue answered while
// the database was down. docs/RELIABILITY.md has the numbers.

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/store/postgres"
)

func TestReplicasOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("replica torture test: not in -short")
	}
	start := time.Now()
	cl := pgtest.StartClusterFor(t)
	g, groups, graphEnv := provisioningGraph(t, t.TempDir())
	env := crashEnv("")
	delete(env, "APPROVALS_DB")
	dbURL := cl.URL("postgres") + "&connect_timeout=1&statement_timeout=3s"
	env["APPROVALS_DATABASE_URL"] = dbURL
	maps.Copy(env, graphEnv)
	// Started together: the migrations run once, under the advisory lock.
	children := make([]*childServer, 3)
	bases := make([]string, 3)
	for i := range children {
		children[i] = startChild(t, env)
	}
	for i, c := range children {
		addr, err := c.waitReady(60 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		bases[i] = "http://" + addr
	}
	var alive [3]atomic.Bool
	for i := range alive {
		alive[i].Store(true)
	}
	client := &http.Client{Timeout: 15 * time.Second}
	ctx := context.Background()

	// post sends a sign-up to replica i, then to the next live ones when a
	// replica is gone, until one answers as the person expects.
	post := func(i int, p person) error {
		for try := 0; try < 30; try++ {
			r := (i + try) % 3
			if !alive[r].Load() {
				continue
			}
			status, a, err := postSignUp(ctx, client, bases[r]+"/connector/request-approval", crashUser, crashPassword, p.body)
			if err == nil {
				ok, later := p.expected(status, a)
				if ok || (status == 200 && (a.Action == "Continue" || strings.Contains(a.UserMessage, "approved"))) {
					return nil
				}
				if !later {
					return fmt.Errorf("sign-up of %s on replica %d: %d %+v", p.email, r, status, a)
				}
			}
			time.Sleep(100 * time.Millisecond)
		}
		return fmt.Errorf("sign-up of %s: no replica answered", p.email)
	}

	// 1. Duplicate sign-ups at once on two replicas.
	const n = 60
	persons := make([]person, n)
	for i := range persons {
		persons[i] = newPerson("rep", i, false)
	}
	var wg sync.WaitGroup
	var failures atomic.Int64
	for i, p := range persons {
		for dup := range 2 {
			wg.Go(func() {
				if err := post(i+dup, p); err != nil {
					failures.Add(1)
					t.Error(err)
				}
			})
		}
	}
	wg.Wait()
	if failures.Load() > 0 {
		t.FailNow()
	}
	pending, err := listRequests(ctx, client, bases[1], "pending")
	if err != nil || len(pending) != n {
		t.Fatalf("pending after %d people signed up twice each: %d, %v", n, len(pending), err)
	}

	// 2. Approvals spread over the replicas; every fifth request is also
	// denied at the same moment on another replica. Replica 0 is killed
	// while the jobs run.
	var approvedIDs, deniedIDs sync.Map
	decide := func(r apiRequest, i int) {
		call := func(replica int, verb string) {
			for try := 0; try < 30; try++ {
				rr := (replica + try) % 3
				if !alive[rr].Load() {
					continue
				}
				code, err := apiCall(ctx, client, http.MethodPost, bases[rr]+"/api/v1/requests/"+r.ID+"/"+verb, `{"reason":"replica test"}`, nil)
				switch {
				case err != nil || code == http.StatusServiceUnavailable:
					time.Sleep(100 * time.Millisecond)
					continue
				case code == http.StatusOK && verb == "approve":
					approvedIDs.Store(r.ID, true)
				case code == http.StatusOK:
					deniedIDs.Store(r.ID, true)
				case code != http.StatusConflict:
					t.Errorf("%s %s on replica %d: %d", verb, r.ID, rr, code)
				}
				return
			}
			t.Errorf("%s %s: no replica answered", verb, r.ID)
		}
		var race sync.WaitGroup
		race.Go(func() { call(i, "approve") })
		if i%5 == 0 {
			race.Go(func() { call(i+1, "deny") })
		}
		race.Wait()
	}
	for i, r := range pending {
		wg.Go(func() { decide(r, i) })
	}
	time.Sleep(300 * time.Millisecond) // jobs are being claimed and run
	children[0].kill()
	alive[0].Store(false)
	killedAt := time.Now()
	wg.Wait()
	checkProblems(t, children[0])
	nApproved, nDenied := 0, 0
	approvedIDs.Range(func(any, any) bool { nApproved++; return true })
	deniedIDs.Range(func(id, _ any) bool {
		nDenied++
		if _, both := approvedIDs.Load(id); both {
			t.Errorf("request %s was both approved and denied", id)
		}
		return true
	})
	if nApproved+nDenied != n {
		t.Fatalf("%d approved + %d denied of %d requests", nApproved, nDenied, n)
	}

	// Every approved job is finished by a survivor; the dead replica's
	// leases expire after a minute (provisioner.DefaultLease).
	waitProvisioned := func(want int, within time.Duration) {
		deadline := time.Now().Add(within)
		for {
			rs, err := listRequests(ctx, client, bases[1], "approved")
			done := 0
			for _, r := range rs {
				if r.Provisioning.State == "succeeded" {
					done++
				}
			}
			if err == nil && done == want {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d of %d approvals provisioned (%v)", done, want, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitProvisioned(nApproved, 3*time.Minute)
	takeover := time.Since(killedAt)

	// 3. The database stops under the survivors: every answer while it
	// is down is the try-later block page, never Continue.
	fresh := []person{newPerson("down", 13, true), newPerson("down", 33, true), newPerson("down", 1, true)}
	if err := post(1, fresh[0]); err != nil { // auto-approved: Continue while the database is up
		t.Fatal(err)
	}
	// Load through the outage: clients keep asking both survivors about
	// auto-approved people (Continue when the database is up) while it
	// stops and starts; every answer sent after the stop and received
	// before the start must be the try-later page.
	type answer struct {
		sent, got time.Time
		action    string
		msg       string
		err       error
	}
	var (
		loadMu  sync.Mutex
		answers []answer
	)
	loadCtx, stopLoad := context.WithCancel(ctx)
	var load sync.WaitGroup
	for w := range 4 {
		load.Go(func() {
			for k := 0; loadCtx.Err() == nil; k++ {
				p := newPerson(fmt.Sprintf("load%d-", w), 20*k+13, true) // auto-approved
				ep := []string{"/connector/check-approval-status", "/connector/request-approval"}[k%2]
				sent := time.Now()
				status, a, err := postSignUp(loadCtx, client, bases[1+w%2]+ep, crashUser, crashPassword, p.body)
				if loadCtx.Err() != nil {
					return
				}
				if err == nil && status != 200 {
					err = fmt.Errorf("status %d", status)
				}
				loadMu.Lock()
				answers = append(answers, answer{sent, time.Now(), a.Action, a.UserMessage, err})
				loadMu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	time.Sleep(300 * time.Millisecond)
	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	stoppedAt := time.Now()
	downAnswers := 0
	for _, base := range bases[1:] {
		if code, _ := get(t, base+"/readyz"); code != http.StatusServiceUnavailable {
			t.Errorf("%s/readyz = %d with the database down; want 503", base, code)
		}
		for _, p := range fresh {
			for _, ep := range []string{"check-approval-status", "request-approval"} {
				status, a, err := postSignUp(ctx, client, base+"/connector/"+ep, crashUser, crashPassword, p.body)
				if err != nil || status != 200 || a.Action == "Continue" || !strings.Contains(a.UserMessage, "try again later") {
					t.Errorf("%s %s with the database down: %d %+v %v; want the try-later block page", ep, p.email, status, a, err)
				}
				downAnswers++
			}
		}
	}
	time.Sleep(500 * time.Millisecond) // the load runs on against the stopped database
	startingAt := time.Now()
	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for _, base := range bases[1:] {
		for {
			if code, _ := get(t, base+"/readyz"); code == 200 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s not ready again after the database came back", base)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	time.Sleep(300 * time.Millisecond)
	stopLoad()
	load.Wait()
	var during, continued int
	for _, a := range answers {
		if a.err != nil {
			t.Errorf("a call under load failed: %v", a.err)
			continue
		}
		if a.sent.After(stoppedAt) && a.got.Before(startingAt) {
			during++
			if a.action == "Continue" || !strings.Contains(a.msg, "try again later") {
				t.Errorf("answered %s %q while the database was down", a.action, a.msg)
			}
		}
		if a.got.After(startingAt) && a.action == "Continue" {
			continued++
		}
	}
	if during == 0 || continued == 0 {
		t.Errorf("the load got %d answers while the database was down and %d Continue after; want some of each", during, continued)
	}
	downAnswers += during
	for i, p := range fresh[1:] {
		if err := post(i+1, p); err != nil {
			t.Error(err)
		}
	}
	for _, c := range children[1:] {
		if err := c.stop(30 * time.Second); err != nil {
			t.Errorf("graceful stop: %v", err)
		}
		for _, p := range c.problems() {
			// While the database was down, the server was right to log
			// the failed calls (the try-later answers, /readyz's 503,
			// the dispatcher's failed claims); nothing else may appear.
			if !strings.Contains(p, "the database is unavailable") && !strings.Contains(p, `"route":"/readyz","status":503`) {
				t.Errorf("server log: %s", p)
			}
		}
	}

	// 4. What the database holds.
	s, err := postgres.Open(ctx, dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	users := usersByMail(g)
	for _, p := range persons {
		r, err := s.FindByPerson(ctx, p.key())
		if err != nil {
			t.Errorf("%s: %v", p.email, err)
			continue
		}
		evs, _, err := s.Audit(ctx, approvals.AuditQuery{RequestID: r.ID, Limit: approvals.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		received, decisions := 0, 0
		for _, ev := range evs {
			switch ev.Type {
			case approvals.EventReceived:
				received++
			case approvals.EventApproved, approvals.EventDenied:
				decisions++
			}
		}
		if received != 1 || decisions != 1 {
			t.Errorf("%s: %d received and %d decision events; want one each", p.email, received, decisions)
		}
		switch r.Status {
		case approvals.StatusApproved:
			if _, ok := approvedIDs.Load(r.ID); !ok {
				t.Errorf("%s approved, but no approval was answered", p.email)
			}
			us := users[strings.ToLower(p.email)]
			if r.Provisioning.State != approvals.ProvisioningSucceeded || len(us) != 1 || us[0].ID != r.Provisioning.UserID {
				t.Errorf("%s: provisioning %s, %d directory accounts", p.email, r.Provisioning.State, len(us))
			} else if got := g.GroupsOf(us[0].ID); len(got) != len(groups) {
				t.Errorf("%s: member of %v", p.email, got)
			}
		case approvals.StatusDenied:
			if _, ok := deniedIDs.Load(r.ID); !ok {
				t.Errorf("%s denied, but no denial was answered", p.email)
			}
			if len(users[strings.ToLower(p.email)]) != 0 {
				t.Errorf("%s denied but has a directory account", p.email)
			}
		default:
			t.Errorf("%s is %s", p.email, r.Status)
		}
	}
	invitations := map[string]int{}
	for _, inv := range g.Invitations() {
		invitations[strings.ToLower(inv.Email)]++
	}
	for mail, k := range invitations {
		if k > 1 {
			t.Errorf("%s invited %d times", mail, k)
		}
	}
	counts, _ := s.Count(ctx)
	if total := counts[approvals.StatusPending] + counts[approvals.StatusApproved] + counts[approvals.StatusDenied]; total < n+len(fresh) {
		t.Errorf("the database holds %d requests; want at least %d (and the load's)", total, n+len(fresh))
	}
	t.Logf("RESULT replicas/postgres: 3 replicas, %d people signed up twice each at once (%d requests stored), %d approved and %d denied with %d approve/deny races, replica killed while provisioning: all %d jobs finished by survivors %s after the kill, %d directory accounts (duplicates 0); database stopped under load: %d answers while down, all try-later, recovered without restarts; %s",
		n, n, nApproved, nDenied, (n+4)/5, nApproved, takeover.Round(time.Second), len(g.Users()), downAnswers, time.Since(start).Round(time.Second))
}
