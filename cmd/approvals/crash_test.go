package main

// Crash tests: `approvals serve` runs in a child process (the test binary
// itself, see child_test.go) that is SIGKILLed at random moments while
// clients post sign-ups, or while it provisions approvals against the fake
// Graph. After every kill the data file must pass Store.Check, every sign-up
// that was answered must be there exactly once, and no account may be
// created twice. docs/RELIABILITY.md has the commands and the numbers.

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	mrand "math/rand/v2"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/store/bolt"
)

var (
	crashRounds    = flag.Int("crash.rounds", 3, "crash tests: how many times the server is SIGKILLed (long run: 50)")
	crashClients   = flag.Int("crash.clients", 32, "crash test: concurrent clients posting sign-ups")
	crashApprovals = flag.Int("crash.approvals", 0, "provisioning crash test: approvals to provision (default 20 per round)")
)

// Settings of the child server in the crash tests.
const (
	crashUser       = "entra-connector"
	crashPassword   = "crash-test-password-0123456789"
	crashAPIKey     = "crash-test-api-key-0123456789abcdef"
	crashApprove    = "partner.example"
	crashDeny       = "spam.example"
	crashPendingDom = "crash.example"
)

// crashEnv is the configuration of `approvals serve` in the crash tests.
// The Graph settings point nowhere; the provisioning test replaces them.
func crashEnv(db string) map[string]string {
	return map[string]string{
		"APPROVALS_LISTEN":                           "127.0.0.1:0",
		"APPROVALS_METRICS_LISTEN":                   "127.0.0.1:0",
		"APPROVALS_DB":                               db,
		"APPROVALS_PUBLIC_URL":                       "http://127.0.0.1:8080",
		"APPROVALS_CONNECTOR_USERNAME":               crashUser,
		"APPROVALS_CONNECTOR_PASSWORD":               crashPassword,
		"APPROVALS_TENANT_DOMAIN":                    graphtest.DefaultTenantDomain,
		"APPROVALS_GRAPH_URL":                        "https://127.0.0.1:9/v1.0",
		"AZURE_TENANT_ID":                            graphtest.DefaultTenantID,
		"AZURE_CLIENT_ID":                            graphtest.DefaultClientID,
		"AZURE_CLIENT_SECRET":                        graphtest.DefaultClientSecret,
		"AZURE_AUTHORITY_HOST":                       "https://127.0.0.1:9/",
		"APPROVALS_AZURE_DISABLE_INSTANCE_DISCOVERY": "true",
		"APPROVALS_AUTO_APPROVE_DOMAINS":             crashApprove,
		"APPROVALS_AUTO_DENY_DOMAINS":                crashDeny,
		"APPROVALS_API_KEYS":                         "crash=" + crashAPIKey,
		// Reviewer sign-in is not used; the issuer is only contacted at
		// the first sign-in.
		"APPROVALS_OIDC_ISSUER":        "http://127.0.0.1:9/oidc",
		"APPROVALS_OIDC_CLIENT_ID":     "crash-test-client",
		"APPROVALS_OIDC_CLIENT_SECRET": "crash-test-client-secret",
		"APPROVALS_LOG_LEVEL":          "info",
	}
}

// person is one test sign-up.
type person struct {
	n        int
	email    string
	identity *approvals.Identity
	want     approvals.Status // what the policy decides
	body     []byte
}

// newPerson makes person n. With policy, every 20th is auto-denied and
// every 20th auto-approved; the rest wait for a reviewer. A third sign in
// with Google, a third with an email one-time passcode, a third with a
// Microsoft account (no identity).
func newPerson(prefix string, n int, policy bool) person {
	p := person{n: n, want: approvals.StatusPending}
	domain := crashPendingDom
	switch {
	case policy && n%20 == 7:
		domain, p.want = crashDeny, approvals.StatusDenied
	case policy && n%20 == 13:
		domain, p.want = crashApprove, approvals.StatusApproved
	}
	p.email = fmt.Sprintf("%s%06d@%s", prefix, n, domain)
	claims := map[string]any{
		"email": p.email, "displayName": fmt.Sprintf("Person %d", n), "givenName": "Pat",
		"surname": fmt.Sprintf("N%d", n), "city": "Leeds", "ui_locales": "en-US",
	}
	switch n % 3 {
	case 0:
		p.identity = &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprintf("g-%s-%d", prefix, n)}
	case 1:
		p.identity = &approvals.Identity{Issuer: "mail", IssuerAssignedID: p.email}
	}
	if p.identity != nil {
		claims["identities"] = []any{map[string]any{"signInType": "federated", "issuer": p.identity.Issuer, "issuerAssignedId": p.identity.IssuerAssignedID}}
	}
	p.body, _ = json.Marshal(claims) // plain values always marshal
	return p
}

func (p person) key() string { return approvals.PersonKey(p.email, p.identity) }

// connectorAnswer is an answer of a connector endpoint.
type connectorAnswer struct {
	Version     string `json:"version"`
	Action      string `json:"action"`
	UserMessage string `json:"userMessage"`
	Status      any    `json:"status"`
}

// postSignUp posts a sign-up to an endpoint and decodes the answer. err is
// a transport error (the server was killed, or is not up).
func postSignUp(ctx context.Context, client *http.Client, url, user, password string, body []byte) (int, connectorAnswer, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, connectorAnswer{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.SetBasicAuth(user, password)
	resp, err := client.Do(req)
	if err != nil {
		return 0, connectorAnswer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, connectorAnswer{}, err
	}
	var a connectorAnswer
	if err := json.Unmarshal(b, &a); err != nil {
		return resp.StatusCode, connectorAnswer{Action: "not JSON: " + string(b)}, nil
	}
	return resp.StatusCode, a, nil
}

// expected reports whether a request-approval answer is the right one for
// the person: ShowBlockPage "waiting for approval" or "denied", or Continue
// for an auto-approved domain. try is true for the "try again later"
// block, which promises nothing.
func (p person) expected(status int, a connectorAnswer) (ok, try bool) {
	if status != http.StatusOK {
		return false, false
	}
	switch {
	case a.Action == "ShowBlockPage" && strings.Contains(a.UserMessage, "try again later"):
		return false, true
	case p.want == approvals.StatusPending:
		return a.Action == "ShowBlockPage" && strings.Contains(a.UserMessage, "waiting for approval"), false
	case p.want == approvals.StatusDenied:
		return a.Action == "ShowBlockPage" && strings.Contains(a.UserMessage, "denied"), false
	default:
		return a.Action == "Continue", false
	}
}

// signUpLedger is what the clients of the crash test know: the sign-ups
// answered (acknowledged), and those whose answer was lost to a kill.
type signUpLedger struct {
	mu       sync.Mutex
	persons  []person
	acked    map[int]bool
	unknown  map[int]bool // sent, no answer: may or may not be stored
	wrong    []string     // answers that must never happen
	next     int
	posts    atomic.Int64
	errs     atomic.Int64
	tryLater atomic.Int64
	reposts  atomic.Int64
}

func (l *signUpLedger) newPerson() person {
	l.mu.Lock()
	defer l.mu.Unlock()
	p := newPerson("crash", l.next, true)
	l.next++
	l.persons = append(l.persons, p)
	return p
}

// pick chooses what a client posts next: mostly a new person; sometimes
// one whose answer was lost (as Entra retries) or one already answered (a
// duplicate, whose answer must not change).
func (l *signUpLedger) pick(rng *mrand.Rand) (p person, repost bool) {
	l.mu.Lock()
	switch x := rng.IntN(100); {
	case x < 8 && len(l.unknown) > 0:
		for n := range l.unknown {
			delete(l.unknown, n)
			p = l.persons[n]
			l.mu.Unlock()
			return p, true
		}
	case x < 16 && len(l.acked) > 0:
		if p = l.persons[rng.IntN(len(l.persons))]; l.acked[p.n] {
			l.mu.Unlock()
			return p, true
		}
	}
	l.mu.Unlock()
	return l.newPerson(), false
}

func (l *signUpLedger) record(p person, status int, a connectorAnswer, err error) {
	l.posts.Add(1)
	l.mu.Lock()
	defer l.mu.Unlock()
	if err != nil {
		l.errs.Add(1)
		if !l.acked[p.n] {
			l.unknown[p.n] = true
		}
		return
	}
	ok, try := p.expected(status, a)
	switch {
	case try:
		l.tryLater.Add(1)
		if !l.acked[p.n] {
			l.unknown[p.n] = true
		}
	case ok:
		l.acked[p.n] = true
		delete(l.unknown, p.n)
	default:
		l.wrong = append(l.wrong, fmt.Sprintf("%s (policy: %s): %d %s %q", p.email, p.want, status, a.Action, a.UserMessage))
	}
}

// hammer posts sign-ups to url from n clients until ctx ends.
func (l *signUpLedger) hammer(ctx context.Context, url *atomic.Pointer[string], n int, seed uint64) {
	tr := &http.Transport{MaxIdleConnsPerHost: n, IdleConnTimeout: 5 * time.Second}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var wg sync.WaitGroup
	for i := range n {
		rng := mrand.New(mrand.NewPCG(seed, uint64(i)))
		wg.Go(func() {
			for ctx.Err() == nil {
				p, repost := l.pick(rng)
				if repost {
					l.reposts.Add(1)
				}
				u := *url.Load() + "/connector/request-approval"
				if rng.IntN(25) == 0 {
					// The same sign-up twice at once: one request.
					var inner sync.WaitGroup
					inner.Go(func() {
						status, a, err := postSignUp(ctx, client, u, crashUser, crashPassword, p.body)
						l.record(p, status, a, err)
					})
					status, a, err := postSignUp(ctx, client, u, crashUser, crashPassword, p.body)
					l.record(p, status, a, err)
					inner.Wait()
					continue
				}
				status, a, err := postSignUp(ctx, client, u, crashUser, crashPassword, p.body)
				l.record(p, status, a, err)
				if err != nil {
					time.Sleep(20 * time.Millisecond) // down: do not spin
				}
			}
		})
	}
	wg.Wait()
}

// storeReport is what verifyStore found in a data file.
type storeReport struct {
	requests int
	byStatus map[approvals.Status]int
	received int // request.received events
	reqs     map[string]*approvals.Request
}

// openAfterKill opens the data file of a killed server and fails the test
// unless it passes Check; the caller closes it.
func openAfterKill(t *testing.T, db string) *bolt.Store {
	t.Helper()
	s, err := bolt.Open(db, bolt.Options{Timeout: 10 * time.Second})
	if err != nil {
		t.Fatalf("open after the kill: %v", err)
	}
	if err := s.Check(); err != nil {
		s.Close()
		t.Fatalf("the data file fails Check after the kill: %v", err)
	}
	return s
}

// verifyStore opens the data file of a stopped server, runs Check, and
// checks that every acknowledged person is there exactly once with the
// status the policy gave, that nobody is there twice, that every request
// belongs to a person the clients sent, and that the counters and the
// audit trail (one request.received per request) agree.
func verifyStore(t *testing.T, db string, persons []person, acked map[int]bool) storeReport {
	t.Helper()
	s := openAfterKill(t, db)
	defer s.Close()
	ctx := context.Background()
	rep := storeReport{byStatus: map[approvals.Status]int{}, reqs: map[string]*approvals.Request{}}
	byKey := map[string][]*approvals.Request{}
	q := approvals.ListQuery{Limit: approvals.MaxPageSize, Order: approvals.OldestFirst}
	for {
		page, err := s.List(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range page.Requests {
			rep.requests++
			rep.byStatus[r.Status]++
			byKey[r.Key()] = append(byKey[r.Key()], r)
			rep.reqs[r.ID] = r
		}
		if page.NextCursor == "" {
			break
		}
		q.Cursor = page.NextCursor
	}
	known := map[string]person{}
	for _, p := range persons {
		known[p.key()] = p
	}
	for k, rs := range byKey {
		p, ok := known[k]
		switch {
		case len(rs) != 1:
			t.Errorf("%d requests for one person (%s): duplicates", len(rs), rs[0].Email)
		case !ok:
			t.Errorf("request %s (%s) belongs to nobody the clients sent", rs[0].ID, rs[0].Email)
		case rs[0].Status != p.want:
			t.Errorf("%s is %s, want %s", p.email, rs[0].Status, p.want)
		}
	}
	for n := range acked {
		if len(byKey[persons[n].key()]) != 1 {
			t.Errorf("%s was answered, but after the kill it has %d requests", persons[n].email, len(byKey[persons[n].key()]))
		}
	}
	counts, err := s.Count(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for st, n := range counts {
		if rep.byStatus[st] != n {
			t.Errorf("Count says %d %s, the listing %d", n, st, rep.byStatus[st])
		}
	}
	received := map[string]int{}
	var after uint64
	for {
		evs, next, err := s.Audit(ctx, approvals.AuditQuery{AfterSeq: after, Limit: approvals.MaxPageSize})
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range evs {
			if ev.Type == approvals.EventReceived {
				received[ev.RequestID]++
				rep.received++
			}
		}
		if next == 0 {
			break
		}
		after = next
	}
	for id := range rep.reqs {
		if received[id] != 1 {
			t.Errorf("request %s has %d request.received events", id, received[id])
		}
	}
	if len(received) != len(rep.reqs) {
		t.Errorf("%d requests have a request.received event, %d requests exist", len(received), len(rep.reqs))
	}
	return rep
}

// TestCrashRequestApproval SIGKILLs the server repeatedly while 32 clients
// post sign-ups (new people, retries of lost answers, duplicates, some
// concurrent). After each kill the data file passes Check and every
// answered sign-up is stored exactly once with its decision; retried and
// duplicated sign-ups get the same answer as the first time (a denied
// person is never let in).
func TestCrashRequestApproval(t *testing.T) {
	start, _, db := startCrashTest(t)
	env := crashEnv(db)
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 1))
	l := &signUpLedger{acked: map[int]bool{}, unknown: map[int]bool{}}
	kills, earlyKills := 0, 0
	var lastReport storeReport

	snapshot := func() ([]person, map[int]bool) {
		l.mu.Lock()
		defer l.mu.Unlock()
		return slices.Clone(l.persons), maps.Clone(l.acked)
	}
	for round := range *crashRounds {
		if round%3 == 2 {
			// A kill while the server starts: opening the file, upgrading
			// the schema, before it listens.
			c := startChild(t, env)
			time.Sleep(time.Duration(rng.IntN(150)) * time.Millisecond)
			c.kill()
			earlyKills++
			persons, acked := snapshot()
			verifyStore(t, db, persons, acked)
			checkProblems(t, c)
		}
		up := 300*time.Millisecond + time.Duration(rng.IntN(900))*time.Millisecond
		l.killUnderLoad(t, env, seed+uint64(round), up)
		kills++
		persons, acked := snapshot()
		lastReport = verifyStore(t, db, persons, acked)
		t.Logf("round %d: killed after %s up; %d requests stored, %d sign-ups answered so far", round+1, up.Round(time.Millisecond), lastReport.requests, len(acked))
		if t.Failed() {
			break
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, w := range l.wrong {
		t.Errorf("wrong answer: %s", w)
	}
	t.Logf("RESULT crash/request-approval: %d kills under load + %d during start-up; %d posts (%d re-posts of answered or lost sign-ups), %d answered, %d transport errors at kills, %d try-later answers; %d people sent, %d requests stored (%v), %d request.received events; duplicates 0, Check ok; %s",
		kills, earlyKills, l.posts.Load(), l.reposts.Load(), len(l.acked), l.errs.Load(), l.tryLater.Load(),
		len(l.persons), lastReport.requests, lastReport.byStatus, lastReport.received, time.Since(start).Round(time.Millisecond))
}

// startCrashTest skips a crash test in -short; it returns when the test
// started, its temporary folder and the data file in it.
func startCrashTest(t *testing.T) (start time.Time, dir, db string) {
	t.Helper()
	if testing.Short() {
		t.Skip("crash test: not in -short")
	}
	dir = t.TempDir()
	return time.Now(), dir, filepath.Join(dir, "approvals.db")
}

// killUnderLoad starts a child server with env, lets crash.clients
// clients post sign-ups to it (from seed) for up, then SIGKILLs it and
// waits for the clients to stop. A problem in the child's log fails the
// test.
func (l *signUpLedger) killUnderLoad(t *testing.T, env map[string]string, seed uint64, up time.Duration) {
	t.Helper()
	c := startChild(t, env)
	addr, err := c.waitReady(60 * time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var url atomic.Pointer[string]
	u := "http://" + addr
	url.Store(&u)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.hammer(ctx, &url, *crashClients, seed); close(done) }()
	time.Sleep(up)
	c.kill()
	cancel()
	<-done
	checkProblems(t, c)
}

// checkProblems fails the test for a data race, a panic or an error line
// in the child's log.
func checkProblems(t *testing.T, c *childServer) {
	t.Helper()
	for _, p := range c.problems() {
		t.Errorf("server log: %s", p)
	}
}

// listAll returns every request of a store, oldest first.
func listAll(t *testing.T, s approvals.Store) []*approvals.Request {
	t.Helper()
	var out []*approvals.Request
	q := approvals.ListQuery{Limit: approvals.MaxPageSize, Order: approvals.OldestFirst}
	for {
		page, err := s.List(context.Background(), q)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, page.Requests...)
		if page.NextCursor == "" {
			return out
		}
		q.Cursor = page.NextCursor
	}
}

// apiCall calls the admin API with the crash test's key and decodes the
// JSON answer into v (when not nil).
func apiCall(ctx context.Context, client *http.Client, method, url, body string, v any) (int, error) {
	var rd io.Reader
	if body != "" {
		rd = strings.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return 0, err
	}
	req.Header.Set("Authorization", "Bearer "+crashAPIKey)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, err
	}
	if v != nil && resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(b, v); err != nil {
			return resp.StatusCode, fmt.Errorf("%s %s: %v: %s", method, url, err, b)
		}
	}
	return resp.StatusCode, nil
}

// apiRequest is what the provisioning crash test reads of a request.
type apiRequest struct {
	ID           string `json:"id"`
	Email        string `json:"email"`
	Status       string `json:"status"`
	Provisioning struct {
		State  string `json:"state"`
		UserID string `json:"user_id"`
	} `json:"provisioning"`
}

// listRequests lists every request with a status through the admin API.
func listRequests(ctx context.Context, client *http.Client, base, status string) ([]apiRequest, error) {
	var out []apiRequest
	cursor := ""
	for {
		var page struct {
			Requests   []apiRequest `json:"requests"`
			NextCursor string       `json:"next_cursor"`
		}
		u := base + "/api/v1/requests?limit=500&status=" + status
		if cursor != "" {
			u += "&cursor=" + cursor
		}
		code, err := apiCall(ctx, client, http.MethodGet, u, "", &page)
		if err != nil {
			return nil, err
		}
		if code != http.StatusOK {
			return nil, fmt.Errorf("list %s: status %d", status, code)
		}
		out = append(out, page.Requests...)
		if cursor = page.NextCursor; cursor == "" {
			return out, nil
		}
	}
}

// signUpAndApprove sends the sign-ups of the people not yet answered
// through the connector, then approves every pending request through the
// admin API, 8 at a time. Both are idempotent, so a round cut short by a
// kill is simply done again; signedUp remembers the answered sign-ups
// across rounds (by person number), approved the answered approvals (by
// request id).
func signUpAndApprove(ctx context.Context, client *http.Client, base string, persons []person, signedUp, approved *sync.Map) error {
	var firstErr atomic.Pointer[error]
	fail := func(err error) { firstErr.CompareAndSwap(nil, &err) }
	var wg sync.WaitGroup
	work := make(chan person)
	for range 8 {
		wg.Go(func() {
			for p := range work {
				status, a, err := postSignUp(ctx, client, base+"/connector/request-approval", crashUser, crashPassword, p.body)
				switch ok, _ := p.expected(status, a); {
				case err != nil:
					fail(err)
				case ok, status == 200 && a.Action == "ShowBlockPage" && strings.Contains(a.UserMessage, "approved"),
					status == 200 && a.Action == "Continue": // approved and provisioned already
					signedUp.Store(p.n, true)
				default:
					fail(fmt.Errorf("sign-up of %s: %d %+v", p.email, status, a))
				}
			}
		})
	}
	for _, p := range persons {
		if _, ok := signedUp.Load(p.n); !ok && firstErr.Load() == nil {
			work <- p
		}
	}
	close(work)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	pending, err := listRequests(ctx, client, base, "pending")
	if err != nil {
		return err
	}
	toApprove := make(chan apiRequest)
	for range 8 {
		wg.Go(func() {
			for r := range toApprove {
				code, err := apiCall(ctx, client, http.MethodPost, base+"/api/v1/requests/"+r.ID+"/approve", `{"reason":"crash test"}`, nil)
				switch {
				case err != nil:
					fail(err)
				case code != http.StatusOK:
					fail(fmt.Errorf("approve %s: status %d", r.ID, code))
				default:
					approved.Store(r.ID, true)
				}
			}
		})
	}
	for _, r := range pending {
		if firstErr.Load() == nil {
			toApprove <- r
		}
	}
	close(toApprove)
	wg.Wait()
	if e := firstErr.Load(); e != nil {
		return *e
	}
	return nil
}

// usersByMail groups the fake directory's users by lower-cased mail.
func usersByMail(g *graphtest.Server) map[string][]graphtest.User {
	out := map[string][]graphtest.User{}
	for _, u := range g.Users() {
		out[strings.ToLower(u.Mail)] = append(out[strings.ToLower(u.Mail)], u)
	}
	return out
}

// provisioningReport counts the provisioning states in a data file.
type provisioningReport struct {
	approved, succeeded, inProgress int
}

// verifyProvisioning opens the data file of a stopped server, runs Check,
// and checks that no answered sign-up or approval was lost and the
// provisioning invariants: no job failed, no person has two directory
// accounts, and every succeeded job names that person's one account.
func verifyProvisioning(t *testing.T, db string, persons []person, g *graphtest.Server, signedUp, approved *sync.Map) provisioningReport {
	t.Helper()
	s := openAfterKill(t, db)
	defer s.Close()
	users := usersByMail(g)
	for _, p := range persons {
		if n := len(users[strings.ToLower(p.email)]); n > 1 {
			t.Errorf("%s has %d accounts in the directory", p.email, n)
		}
		if _, ok := signedUp.Load(p.n); ok {
			if _, err := s.FindByPerson(context.Background(), p.key()); err != nil {
				t.Errorf("%s: the sign-up was answered, but after the kill: %v", p.email, err)
			}
		}
	}
	var rep provisioningReport
	seen := map[string]bool{}
	for _, r := range listAll(t, s) {
		if seen[r.Key()] {
			t.Errorf("%s has two requests", r.Email)
		}
		seen[r.Key()] = true
		if _, ok := approved.Load(r.ID); ok && r.Status != approvals.StatusApproved {
			t.Errorf("%s: the approval was answered, but after the kill the request is %s", r.Email, r.Status)
		}
		if r.Status != approvals.StatusApproved {
			continue
		}
		rep.approved++
		switch r.Provisioning.State {
		case approvals.ProvisioningSucceeded:
			rep.succeeded++
			us := users[strings.ToLower(r.Email)]
			if len(us) != 1 || us[0].ID != r.Provisioning.UserID {
				t.Errorf("%s: provisioning succeeded with user %s; the directory has %d accounts for the mail", r.Email, r.Provisioning.UserID, len(us))
			}
		case approvals.ProvisioningInProgress:
			rep.inProgress++
		default:
			t.Errorf("%s: provisioning %s: %s", r.Email, r.Provisioning.State, r.Provisioning.LastError)
		}
	}
	return rep
}

// TestCrashProvisioning approves sign-ups through the admin API and
// SIGKILLs the server at random moments while it provisions them against
// the fake Graph (25 ms per call, two groups), then lets a last run
// finish. After every kill the file passes Check; in the end every
// approval has succeeded with exactly one directory account, one
// invitation at most, and both group memberships.
func TestCrashProvisioning(t *testing.T) {
	start, dir, db := startCrashTest(t)
	g, groups, graphEnv := provisioningGraph(t, dir)
	env := crashEnv(db)
	maps.Copy(env, graphEnv)
	n := *crashApprovals
	if n <= 0 {
		n = 20 * *crashRounds
	}
	persons := make([]person, n)
	for i := range persons {
		persons[i] = newPerson("prov", i, false)
	}
	seed := mrand.Uint64()
	t.Logf("seed %d", seed)
	rng := mrand.New(mrand.NewPCG(seed, 2))
	client := &http.Client{Timeout: 10 * time.Second}
	kills := 0
	var rep provisioningReport
	var signedUp, approved sync.Map
	for round := 0; ; round++ {
		last := round >= *crashRounds
		c := startChild(t, env)
		addr, err := c.waitReady(60 * time.Second)
		if err != nil {
			t.Fatal(err)
		}
		base := "http://" + addr
		ctx, cancel := context.WithCancel(context.Background())
		driven := make(chan error, 1)
		go func() { driven <- signUpAndApprove(ctx, client, base, persons, &signedUp, &approved) }()
		if !last {
			// Kill while provisioning: a moment after the sign-ups and
			// approvals are in (or during them, when they take long).
			up := 200*time.Millisecond + time.Duration(rng.IntN(800))*time.Millisecond
			select {
			case <-driven:
			case <-time.After(10 * time.Second):
			}
			time.Sleep(up)
			c.kill()
			kills++
			cancel()
			select {
			case <-driven:
			default:
			}
			checkProblems(t, c)
			rep = verifyProvisioning(t, db, persons, g, &signedUp, &approved)
			t.Logf("round %d: killed %s after the approvals; %d approved, %d provisioned, %d in progress, %d directory users", round+1, up.Round(time.Millisecond), rep.approved, rep.succeeded, rep.inProgress, len(g.Users()))
			if t.Failed() {
				return
			}
			continue
		}
		// The last run: let it finish, then stop it gracefully.
		if err := <-driven; err != nil {
			t.Fatalf("last round: %v", err)
		}
		lastStart, before := time.Now(), rep.succeeded
		deadline := lastStart.Add(2*time.Minute + time.Duration(n)*300*time.Millisecond)
		for {
			rs, err := listRequests(ctx, client, base, "approved")
			if err != nil {
				t.Fatal(err)
			}
			done := 0
			for _, r := range rs {
				if r.Provisioning.State == "succeeded" {
					done++
				}
			}
			if done == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("after the last restart %d of %d approvals are provisioned", done, n)
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Logf("last run: %d jobs finished in %s", n-before, time.Since(lastStart).Round(time.Millisecond))
		cancel()
		if err := c.stop(30 * time.Second); err != nil {
			t.Errorf("graceful stop: %v; log:\n%s", err, c.log.tail())
		}
		checkProblems(t, c)
		break
	}
	rep = verifyProvisioning(t, db, persons, g, &signedUp, &approved)
	if rep.approved != n || rep.succeeded != n {
		t.Errorf("%d approved, %d provisioned; want %d", rep.approved, rep.succeeded, n)
	}
	users := usersByMail(g)
	invitations := map[string]int{}
	for _, inv := range g.Invitations() {
		invitations[strings.ToLower(inv.Email)]++
	}
	created, invited := 0, 0
	for _, p := range persons {
		us := users[strings.ToLower(p.email)]
		if len(us) != 1 {
			t.Errorf("%s: %d directory accounts", p.email, len(us))
			continue
		}
		u := us[0]
		switch u.Source {
		case "users":
			created++
		case "invitation":
			invited++
		}
		if p.identity != nil && u.Source != "users" || p.identity == nil && u.Source != "invitation" {
			t.Errorf("%s: account made by %q", p.email, u.Source)
		}
		if u.Properties["city"] != "Leeds" {
			t.Errorf("%s: attributes not written: %v", p.email, u.Properties)
		}
		if got := g.GroupsOf(u.ID); len(got) != len(groups) {
			t.Errorf("%s: member of %v, want %v", p.email, got, groups)
		}
		if invitations[strings.ToLower(p.email)] > 1 {
			t.Errorf("%s: invited %d times", p.email, invitations[strings.ToLower(p.email)])
		}
	}
	t.Logf("RESULT crash/provisioning: %d kills while provisioning, then a last run; %d approvals, %d provisioned, %d directory accounts (%d POST /users, %d invitations), %d Graph calls, %d tokens; duplicates 0, Check ok; %s",
		kills, n, rep.succeeded, len(g.Users()), created, invited, len(g.Calls()), g.TokensIssued(), time.Since(start).Round(time.Millisecond))
}
