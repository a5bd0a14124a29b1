package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/bolt"
)

// SeedResult describes a data file written by -mode seed.
type SeedResult struct {
	Path      string         `json:"path"`
	Requests  int            `json:"requests"`
	ByStatus  map[string]int `json:"by_status"`
	Seconds   float64        `json:"seconds"`
	PerSecond float64        `json:"per_second"`
	// FileBytes is the file's size; DiskBytes the blocks it occupies.
	FileBytes       int64         `json:"file_bytes"`
	DiskBytes       int64         `json:"disk_bytes"`
	BytesPerRequest float64       `json:"bytes_per_request"`
	Buckets         []BucketStats `json:"buckets,omitempty"`
	FreePages       int           `json:"free_pages"`
	PageSize        int           `json:"page_size"`
}

// BucketStats is the space one bucket of the schema takes.
type BucketStats struct {
	Name  string `json:"name"`
	Keys  int    `json:"keys"`
	Pages int    `json:"pages"`
	// Bytes is what the bucket's pages occupy; InUse what its keys and
	// values fill of them.
	Bytes int64 `json:"bytes"`
	InUse int64 `json:"in_use"`
}

// seedWriters is the number of concurrent Creates while seeding: enough
// for the store's group commit to fill its transactions (up to 1000
// writes, one fsync each).
const seedWriters = 1024

// seedSpan is how far back the seeded requests go.
const seedSpan = 2 * 365 * 24 * time.Hour

// seedPeople are the reviewers and rules that decided seeded requests.
var (
	seedReviewers = []approvals.Actor{
		{Kind: approvals.ActorReviewer, ID: "00000000-0000-0000-0000-00000000ada1", Name: "Ada Reviewer"},
		{Kind: approvals.ActorReviewer, ID: "00000000-0000-0000-0000-000000000b0b", Name: "Rob Reviewer"},
		{Kind: approvals.ActorAPIKey, ID: "hr-sync"},
	}
	seedGroups = []string{"6f1c0b1e-0d5a-4a44-9a57-4f3e8c1d2b10"}
)

// mix64 is SplitMix64's finalizer: a cheap, well-spread hash of i.
func mix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// seedRequest returns the i-th of n seeded requests with the events its
// history would have written: received, and for decided ones the
// decision and, for reviewer approvals, the provisioning steps. Statuses
// come from the state machine's own transitions. Creation times spread
// evenly over seedSpan before base.
func seedRequest(i, n int, base time.Time, pending, denied float64) (*approvals.Request, []approvals.Event, error) {
	created := base.Add(-seedSpan + time.Duration(int64(seedSpan)/int64(n)*int64(i))).UTC()
	h := mix64(uint64(i))
	u := float64(h%1_000_000) / 1_000_000
	given, surname := givenNames[i%len(givenNames)], surnames[(i/len(givenNames))%len(surnames)]
	r := &approvals.Request{
		Source:      approvals.SourceSignUp,
		DisplayName: given + " " + surname,
		Claims: map[string]any{
			"givenName": given, "surname": surname, "jobTitle": "Supplier contact", "streetAddress": "1000 Microsoft Way",
			"city": "Seattle", "postalCode": "98052", "state": "Washington", "country": "United States",
			"extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_Company": "Contoso Supplies Ltd",
			"extension_9f1d2c3b4a5e6f708192a3b4c5d6e7f8_Role":    "supplier",
		},
		Locale:       locales[i%len(locales)],
		Status:       approvals.StatusPending,
		CreatedAt:    created,
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
	}
	decided := created.Add(time.Hour + time.Duration(h>>20%(47*3600))*time.Second)
	reviewer := seedReviewers[(h>>8)%uint64(len(seedReviewers))]
	auto := (h>>16)%10 < 3 // three decisions in ten are taken by a rule
	status := approvals.StatusApproved
	switch {
	case u < pending:
		status = approvals.StatusPending
	case u < pending+denied:
		status = approvals.StatusDenied
	}
	domain := pendingDomain
	if auto && status == approvals.StatusApproved {
		domain = autoApproveDomain
	} else if auto && status == approvals.StatusDenied {
		domain = autoDenyDomain
	}
	r.Email = string(appendEmail(nil, "seed", "s", i, domain))
	if iss := identityKind(i); iss != "" {
		id := strconv.Itoa(104598273645123456 + i)
		if iss == approvals.IssuerMail {
			id = r.Email
		}
		r.Identity = &approvals.Identity{Issuer: iss, IssuerAssignedID: id}
	}
	events := []approvals.Event{{At: created, Type: approvals.EventReceived, Actor: approvals.ConnectorActor, Details: map[string]string{"source": string(approvals.SourceSignUp)}}}
	switch {
	case status == approvals.StatusPending:
	case auto:
		events = append(events, autoDecide(r, status, "auto-"+map[approvals.Status]string{approvals.StatusApproved: "approve", approvals.StatusDenied: "deny"}[status]+"-domain:"+domain, created))
	case status == approvals.StatusDenied:
		ev, err := r.Deny(reviewer, "not a supplier of ours", decided)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, ev)
	default:
		evs, err := approveAndProvision(r, i, reviewer, decided)
		if err != nil {
			return nil, nil, err
		}
		events = append(events, evs...)
	}
	return r, events, nil
}

// autoDecide is what approvals.Service.RequestApproval does for a sign-up
// a policy rule decides.
func autoDecide(r *approvals.Request, s approvals.Status, rule string, at time.Time) approvals.Event {
	by := approvals.Actor{Kind: approvals.ActorPolicy, ID: rule}
	r.Status = s
	r.Decision = &approvals.Decision{By: by.String(), ByID: rule, ActorKind: approvals.ActorPolicy, At: at, Reason: "matched " + rule, Automatic: true}
	t := approvals.EventAutoDenied
	if s == approvals.StatusApproved {
		r.Provisioning = approvals.Provisioning{State: approvals.ProvisioningByEntra}
		t = approvals.EventAutoApproved
	}
	return approvals.Event{At: at, Type: t, Actor: by, Details: map[string]string{"rule": rule}}
}

// approveAndProvision approves r and runs its provisioning to success,
// step by step, as the provisioner records it.
func approveAndProvision(r *approvals.Request, i int, by approvals.Actor, at time.Time) ([]approvals.Event, error) {
	var events []approvals.Event
	ev, err := r.Approve(by, "known supplier", at, approvals.DefaultProvisioningDeadline)
	if err != nil {
		return nil, err
	}
	events = append(events, ev)
	step := at.Add(2 * time.Second)
	if err := r.StartAttempt(); err != nil {
		return nil, err
	}
	userID := fmt.Sprintf("%08x-0000-4000-8000-%012x", i, mix64(uint64(i))&0xffffffffffff)
	for _, s := range []struct {
		step approvals.ProvisioningStep
		res  approvals.StepResult
	}{
		{approvals.StepLookedUp, approvals.StepResult{}},
		{approvals.StepCreated, approvals.StepResult{UserID: userID}},
		{approvals.StepAttributes, approvals.StepResult{}},
		{approvals.StepGroups, approvals.StepResult{Group: seedGroups[0]}},
	} {
		step = step.Add(300 * time.Millisecond)
		ev, err := r.CompleteStep(s.step, s.res, step)
		if err != nil {
			return nil, err
		}
		events = append(events, ev)
	}
	ev, err = r.SucceedProvisioning(step)
	if err != nil {
		return nil, err
	}
	return append(events, ev), nil
}

// runSeed writes -n requests to a new data file through the store's
// public API: concurrent Creates, which the store's group commit gathers
// into transactions of up to a thousand writes with one fsync each.
func (b *Bench) runSeed(ctx context.Context) error {
	if _, err := os.Stat(b.db); err == nil {
		return fmt.Errorf("%s exists; seed writes a new file (delete it first)", b.db)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	s, err := bolt.Open(b.db, bolt.Options{})
	if err != nil {
		return err
	}
	res := &SeedResult{Path: b.db, Requests: b.n, ByStatus: map[string]int{}}
	b.result.Seed = res
	base := time.Now().UTC().Truncate(time.Hour)
	start := time.Now()
	var (
		next     atomic.Int64
		done     atomic.Int64
		mu       sync.Mutex
		firstErr error
		counts   [3]atomic.Int64
		wg       sync.WaitGroup
	)
	fail := func(err error) {
		mu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		mu.Unlock()
	}
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(5 * time.Second)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				n := done.Load()
				fmt.Fprintf(b.Stdout, "  %d requests in %s (%.0f/s)\n", n, time.Since(start).Round(time.Second), float64(n)/time.Since(start).Seconds())
			}
		}
	}()
	for range seedWriters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= b.n {
					return
				}
				r, events, err := seedRequest(i, b.n, base, b.pending, b.denied)
				if err == nil {
					var created bool
					_, created, err = s.Create(ctx, r, events)
					if err == nil && !created {
						err = fmt.Errorf("request %d was not created: the person exists", i)
					}
				}
				if err != nil {
					fail(err)
					return
				}
				switch r.Status {
				case approvals.StatusPending:
					counts[0].Add(1)
				case approvals.StatusApproved:
					counts[1].Add(1)
				default:
					counts[2].Add(1)
				}
				done.Add(1)
			}
		}()
	}
	wg.Wait()
	close(stop)
	elapsed := time.Since(start)
	if err := s.Close(); err != nil && firstErr == nil {
		firstErr = err
	}
	if firstErr == nil {
		firstErr = ctx.Err()
	}
	if firstErr != nil {
		return firstErr
	}
	res.Seconds = elapsed.Seconds()
	res.PerSecond = float64(b.n) / elapsed.Seconds()
	for i, st := range approvals.Statuses {
		res.ByStatus[string(st)] = int(counts[i].Load())
	}
	st, err := os.Stat(b.db)
	if err != nil {
		return err
	}
	res.FileBytes = st.Size()
	if sys, ok := st.Sys().(*syscall.Stat_t); ok {
		res.DiskBytes = sys.Blocks * 512
	}
	res.BytesPerRequest = float64(res.FileBytes) / float64(b.n)
	fmt.Fprintf(b.Stdout, "seeded %d requests (%d pending, %d approved, %d denied) in %s: %.0f requests/s\n",
		b.n, res.ByStatus["pending"], res.ByStatus["approved"], res.ByStatus["denied"], elapsed.Round(time.Millisecond), res.PerSecond)
	fmt.Fprintf(b.Stdout, "%s: %d bytes (%d on disk), %.0f bytes per request\n", b.db, res.FileBytes, res.DiskBytes, res.BytesPerRequest)
	if err := bucketStats(b.db, res); err != nil {
		return err
	}
	tw := newTable(b.Stdout)
	fmt.Fprintln(tw, "bucket\tkeys\tpages\tMB\tfilled\tbytes/request\t")
	for _, bs := range res.Buckets {
		fill := 0.0
		if bs.Bytes > 0 {
			fill = float64(bs.InUse) / float64(bs.Bytes) * 100
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%.0f%%\t%.0f\t\n", bs.Name, bs.Keys, bs.Pages, float64(bs.Bytes)/1e6, fill, float64(bs.Bytes)/float64(b.n))
	}
	fmt.Fprintf(tw, "free pages\t\t%d\t%.1f\t\t%.0f\t\n", res.FreePages, float64(res.FreePages*res.PageSize)/1e6, float64(res.FreePages*res.PageSize)/float64(b.n))
	return tw.Flush()
}

// bucketStats reads the size of every bucket of the file.
func bucketStats(path string, res *SeedResult) error {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: 2 * time.Second})
	if err != nil {
		return err
	}
	defer db.Close()
	res.PageSize = db.Info().PageSize
	res.FreePages = db.Stats().FreePageN
	return db.View(func(tx *bbolt.Tx) error {
		err := tx.ForEach(func(name []byte, bk *bbolt.Bucket) error {
			st := bk.Stats()
			res.Buckets = append(res.Buckets, BucketStats{
				Name:  string(name),
				Keys:  st.KeyN,
				Pages: st.BranchPageN + st.BranchOverflowN + st.LeafPageN + st.LeafOverflowN,
				Bytes: int64(st.BranchAlloc + st.LeafAlloc),
				InUse: int64(st.BranchInuse + st.LeafInuse),
			})
			return nil
		})
		sort.Slice(res.Buckets, func(i, j int) bool { return res.Buckets[i].Bytes > res.Buckets[j].Bytes })
		return err
	})
}
