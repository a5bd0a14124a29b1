package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/connector"
)

// sut returns the base URL of the system under test and its Basic
// authorization header: the -url target, or a new in-process system.
func (b *Bench) sut(policy approvals.Policy) (url, auth string, err error) {
	if b.url != "" {
		return strings.TrimSuffix(b.url, "/"), basicAuth(b.user, b.password), nil
	}
	b.system, err = startSystem(systemOptions{DB: filepath.Join(b.workDir, "approvals.db"), Policy: policy})
	if err != nil {
		return "", "", err
	}
	return b.system.URL, basicAuth(benchUser, benchPassword), nil
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

// category is a kind of person the check step is asked about.
type category struct {
	name   string
	domain string // "" for people never seeded
	weight int
	// seedWant is the request step's answer when the person is seeded;
	// checkWant the check step's answer afterwards.
	seedWant, checkWant string
	bodies              [][]byte
}

// checkCategories parses -mix: the weights of unknown, approved, pending
// and denied people among the checks.
func (b *Bench) checkCategories() ([]*category, error) {
	parts := strings.Split(b.mix, ",")
	if len(parts) != 4 {
		return nil, fmt.Errorf("-mix %q: give four weights, unknown,approved,pending,denied", b.mix)
	}
	cats := []*category{
		{name: "unknown", domain: "", checkWant: "Continue"},
		{name: "approved", domain: b.approveDomain, seedWant: "Continue", checkWant: "Continue"},
		{name: "pending", domain: pendingDomain, seedWant: "ShowBlockPage", checkWant: "ShowBlockPage"},
		{name: "denied", domain: b.denyDomain, seedWant: "ShowBlockPage", checkWant: "ShowBlockPage"},
	}
	total := 0
	for i, p := range parts {
		w, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil || w < 0 {
			return nil, fmt.Errorf("-mix %q: %q is not a weight", b.mix, p)
		}
		cats[i].weight = w
		total += w
	}
	if total == 0 {
		return nil, fmt.Errorf("-mix %q: every weight is zero", b.mix)
	}
	return cats, nil
}

// runCheck measures check-approval-status against the bare Echo baseline,
// on a store pre-seeded with people of every status.
func (b *Bench) runCheck(ctx context.Context) error {
	cats, err := b.checkCategories()
	if err != nil {
		return err
	}
	url, auth, err := b.sut(approvals.Policy{AutoApproveDomains: []string{b.approveDomain}, AutoDenyDomains: []string{b.denyDomain}})
	if err != nil {
		return err
	}
	seeds := b.checkPeople(cats)
	fmt.Fprintf(b.Stdout, "seeding %d people through %s ...\n", len(seeds), connector.RequestApprovalPath)
	if err := postAll(ctx, url+connector.RequestApprovalPath, auth, seeds, 32); err != nil {
		return fmt.Errorf("seeding: %w", err)
	}
	base, err := startBaseline("")
	if err != nil {
		return err
	}
	b.closers = append(b.closers, base.Close)

	body := func(w int, want func(*category) string) func() call {
		next := pickCategory(cats, w)
		rng := rand.New(rand.NewPCG(uint64(w), 0xb0d1))
		return func() call {
			c := next()
			return call{body: c.bodies[rng.IntN(len(c.bodies))], want: want(c)}
		}
	}
	targets := []target{
		httpTarget("baseline", base.URL+connector.CheckApprovalStatusPath, "", b.conc, func(w int) func() call {
			return body(w, func(*category) string { return "Continue" })
		}),
		httpTarget("check", url+connector.CheckApprovalStatusPath, auth, b.conc, func(w int) func() call {
			return body(w, func(c *category) string { return c.checkWant })
		}),
	}
	res, err := b.load(ctx, targets)
	if err != nil {
		return err
	}
	r := res.ratio("check", "baseline", b.url == "")
	printRatio(b.Stdout, r)
	b.result.Load = &res
	check := res.Targets[1]
	b.project(check)
	b.goal(fmt.Sprintf("check-approval-status at %d connections: at least 0.8x the bare Echo baseline", b.conc), r.Median >= 0.8, fmt.Sprintf("%.2fx (median of rounds)", r.Median))
	b.goal(fmt.Sprintf("check-approval-status at %d connections: p99 under 25 ms", b.conc), check.Latency.P99 < 25, fmt.Sprintf("p99 %.2f ms", check.Latency.P99))
	b.goal("no failed calls", check.Errors == 0 && res.Targets[0].Errors == 0, fmt.Sprintf("%d errors", check.Errors+res.Targets[0].Errors))
	return nil
}

// checkPeople fills every category's check bodies (-people people each,
// split by the weights among the seeded categories) and returns the
// request-step calls that seed the approved, pending and denied ones.
func (b *Bench) checkPeople(cats []*category) []call {
	seeded := 0
	for _, c := range cats[1:] {
		seeded += c.weight
	}
	var seeds []call
	for _, c := range cats {
		n := b.people
		if c.domain != "" {
			if seeded == 0 {
				continue
			}
			n = b.people * c.weight / seeded
		}
		kind := "c" + c.name[:1]
		for i := range n {
			c.bodies = append(c.bodies, appendSignUp(nil, b.tag, kind, i, c.domain, false))
			if c.domain != "" {
				seeds = append(seeds, call{body: appendSignUp(nil, b.tag, kind, i, c.domain, true), want: c.seedWant})
			}
		}
		if cats[0] == c && len(c.bodies) > 0 {
			// Unknown people have a domain too, only they never asked.
			for i := range c.bodies {
				c.bodies[i] = appendSignUp(nil, b.tag, kind, i, pendingDomain, false)
			}
		}
	}
	return seeds
}

// pickCategory returns worker w's draw of categories by their weights,
// from a sequence of its own.
func pickCategory(cats []*category, w int) func() *category {
	rng := rand.New(rand.NewPCG(uint64(w), 0x5eed))
	total := 0
	for _, c := range cats {
		if len(c.bodies) > 0 {
			total += c.weight
		}
	}
	return func() *category {
		n := rng.IntN(total)
		for _, c := range cats {
			if len(c.bodies) == 0 {
				continue
			}
			if n < c.weight {
				return c
			}
			n -= c.weight
		}
		return cats[0]
	}
}

// postAll posts every call to url from conc workers and checks each answer.
func postAll(ctx context.Context, url, auth string, calls []call, conc int) error {
	client := newClient(conc, nil)
	defer client.CloseIdleConnections()
	var next atomic.Int64
	var mu sync.Mutex
	var first error
	var wg sync.WaitGroup
	for range conc {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var buf bytes.Buffer
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(calls)) {
					return
				}
				if err := doCall(client, url, auth, calls[i], &buf); err != nil {
					mu.Lock()
					if first == nil {
						first = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if first == nil {
		first = ctx.Err()
	}
	return first
}

// runRequest measures request-approval with a new person on every call
// (each one a durable write), against the bare Echo baseline and raw
// bbolt writes with one fsync each.
func (b *Bench) runRequest(ctx context.Context) error {
	url, auth, err := b.sut(approvals.Policy{AutoApproveDomains: []string{b.approveDomain}, AutoDenyDomains: []string{b.denyDomain}})
	if err != nil {
		return err
	}
	base, err := startBaseline("")
	if err != nil {
		return err
	}
	b.closers = append(b.closers, base.Close)
	raw, err := rawFsyncTarget(filepath.Join(b.workDir, "raw.db"))
	if err != nil {
		return err
	}
	b.closers = append(b.closers, raw.closeDB)
	newPeople := func(want string) func(w int) func() call {
		var n atomic.Int64
		return func(int) func() call {
			return func() call {
				i := int(n.Add(1))
				return call{body: appendSignUp(make([]byte, 0, 768), b.tag, "r"+want[:1], i, pendingDomain, true), want: want}
			}
		}
	}
	targets := []target{
		httpTarget("baseline", base.URL+connector.RequestApprovalPath, "", b.conc, newPeople("Continue")),
		raw.target,
		httpTarget("request", url+connector.RequestApprovalPath, auth, b.conc, newPeople("ShowBlockPage")),
	}
	var hooks *webhookReceiver
	if b.webhooks {
		// The same load on a second server whose notifier sends a
		// webhook per sign-up (bench_notify.go).
		var wurl string
		if wurl, hooks, err = b.webhookSystem(approvals.Policy{AutoApproveDomains: []string{b.approveDomain}, AutoDenyDomains: []string{b.denyDomain}}); err != nil {
			return err
		}
		targets = append(targets, httpTarget("request-webhooks", wurl+connector.RequestApprovalPath, basicAuth(benchUser, benchPassword), b.conc, newPeople("ShowBlockPage")))
	}
	res, err := b.load(ctx, targets)
	if err != nil {
		return err
	}
	if hooks != nil {
		rw := res.ratio("request-webhooks", "request", false)
		printRatio(b.Stdout, rw)
		b.goal(fmt.Sprintf("request-approval at %d connections with webhooks on: at least 0.9x webhooks off", b.conc), rw.Median >= 0.9, fmt.Sprintf("%.2fx (median of rounds); %d webhooks received", rw.Median, hooks.calls.Load()))
	}
	rb := res.ratio("request", "baseline", b.url == "")
	rr := res.ratio("request", "rawfsync", false)
	printRatio(b.Stdout, rb)
	printRatio(b.Stdout, rr)
	b.result.Load = &res
	req := res.Targets[2]
	b.project(req)
	if b.conc == 1 {
		b.goal("request-approval at 1 connection: at least 0.7x raw bbolt with one fsync per transaction", rr.Median >= 0.7, fmt.Sprintf("%.2fx (median of rounds)", rr.Median))
	} else {
		b.goal(fmt.Sprintf("request-approval at %d connections: at least 5,000 requests/s", b.conc), req.PerSecond >= 5000, fmt.Sprintf("%.0f requests/s", req.PerSecond))
	}
	b.goal("no failed calls", req.Errors == 0, fmt.Sprintf("%d errors", req.Errors))
	return nil
}

// runRawFsync measures the raw bbolt baseline alone.
func (b *Bench) runRawFsync(ctx context.Context) error {
	raw, err := rawFsyncTarget(filepath.Join(b.workDir, "raw.db"))
	if err != nil {
		return err
	}
	b.closers = append(b.closers, raw.closeDB)
	res, err := b.load(ctx, []target{raw.target})
	if err != nil {
		return err
	}
	b.result.Load = &res
	return nil
}

// rawFsync is the baseline of durable writes: one bbolt read-write
// transaction, so one commit with its fsyncs, per 1 KB value, from one
// writer, as BenchmarkRawBoltFsync in store/bolt does.
type rawFsync struct {
	target  target
	closeDB func() error
}

func rawFsyncTarget(path string) (*rawFsync, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		return nil, err
	}
	bucket := []byte("b")
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucket)
		return err
	}); err != nil {
		db.Close()
		return nil, err
	}
	value := bytes.Repeat([]byte("v"), 1024)
	var seq uint64
	return &rawFsync{
		target: target{
			Name: "rawfsync",
			Conc: 1,
			newWorker: func(int) func() error {
				return func() error {
					seq++
					var k [8]byte
					binary.BigEndian.PutUint64(k[:], seq)
					return db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucket).Put(k[:], value) })
				}
			},
		},
		closeDB: db.Close,
	}, nil
}

// project prints what the measured CPU time per call would allow if this
// process had every CPU of the machine to itself: on a shared machine the
// calls/s measured are what was left over by others. In process only,
// where the server's CPU time is counted.
func (b *Bench) project(p PhaseResult) {
	if b.url != "" || p.CPUPerCall <= 0 {
		return
	}
	cpus := runtime.NumCPU()
	rate := float64(cpus) / (p.CPUPerCall / 1e6)
	used := p.CPUSeconds / p.Seconds
	fmt.Fprintf(b.Stdout, "%s used %.2f of %d CPUs (%.0f us of CPU per call, load generator included): %d CPUs to itself would give about %.0f calls/s\n",
		p.Target, used, cpus, p.CPUPerCall, cpus, rate)
	if b.result.Extra == nil {
		b.result.Extra = map[string]any{}
	}
	b.result.Extra["projected_calls_per_second"] = rate
	b.result.Extra["cpus_used"] = used
}
