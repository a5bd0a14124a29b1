package bolt

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	bbolt "go.etcd.io/bbolt"
)

var large = flag.Bool("large", false, "also run the listing benchmarks at 1,000,000 requests (slow; about 1 GB of disk)")

// benchRequest returns the i-th distinct sign-up, about 1 KB as JSON like
// the value of BenchmarkRawBoltFsync.
func benchRequest(i int64, at time.Time) *approvals.Request {
	return &approvals.Request{
		Source:      approvals.SourceSignUp,
		Email:       fmt.Sprintf("bench%09d@example.com", i),
		DisplayName: fmt.Sprintf("Bench Person %d", i),
		Identity:    &approvals.Identity{Issuer: approvals.IssuerGoogle, IssuerAssignedID: fmt.Sprintf("g-%d", i)},
		Claims: map[string]any{
			"givenName": "Bench", "surname": "Person", "city": "Redmond", "country": "United States",
			"jobTitle": "Supplier contact", "streetAddress": "1 Microsoft Way", "postalCode": "98052",
			"extension_0123456789abcdef0123456789abcdef_Role":    "supplier",
			"extension_0123456789abcdef0123456789abcdef_Company": "Contoso Supplies Ltd",
			"extension_0123456789abcdef0123456789abcdef_Notes":   strings.Repeat("n", 300),
		},
		Locale:       "en-US",
		Status:       approvals.StatusPending,
		CreatedAt:    at,
		Provisioning: approvals.Provisioning{State: approvals.ProvisioningNotStarted},
	}
}

// pwrites returns how many page writes the database's commits made.
func pwrites(db *bbolt.DB) int64 {
	st := db.Stats()
	return st.TxStats.GetWrite()
}

func reportRate(b *testing.B) {
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "writes/s")
}

// BenchmarkRawBoltFsync is the baseline: one bbolt read-write transaction,
// and so one fsync, per write of a 1 KB value.
func BenchmarkRawBoltFsync(b *testing.B) {
	db, err := bbolt.Open(filepath.Join(b.TempDir(), "raw.db"), 0o600, &bbolt.Options{FreelistType: bbolt.FreelistMapType})
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	value := bytes.Repeat([]byte("v"), 1024)
	if err := db.Update(func(tx *bbolt.Tx) error {
		_, err := tx.CreateBucket([]byte("b"))
		return err
	}); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(value)))
	firstWrites := pwrites(db)
	b.ResetTimer()
	for i := range b.N {
		if err := db.Update(func(tx *bbolt.Tx) error {
			return tx.Bucket([]byte("b")).Put(u64(uint64(i)), value)
		}); err != nil {
			b.Fatal(err)
		}
	}
	reportRate(b)
	b.ReportMetric(float64(pwrites(db)-firstWrites)/float64(b.N), "pwrites/commit")
}

// BenchmarkCreate creates distinct people through the Store from a number
// of concurrent clients, each waiting for its write to be durable before
// the next: the connector's request-approval path.
func BenchmarkCreate(b *testing.B) {
	for _, clients := range []int{1, 8, 64} {
		b.Run(fmt.Sprintf("clients=%d", clients), func(b *testing.B) {
			s := open(b, filepath.Join(b.TempDir(), "approvals.db"), Options{})
			defer s.Close()
			ctx := context.Background()
			start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
			var next atomic.Int64
			var wg sync.WaitGroup
			firstTx := txID(b, s.db)
			firstWrites := pwrites(s.db)
			b.ResetTimer()
			for range clients {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for {
						i := next.Add(1)
						if i > int64(b.N) {
							return
						}
						r := benchRequest(i, start.Add(time.Duration(i)*time.Millisecond))
						events := []approvals.Event{{At: r.CreatedAt, Type: approvals.EventReceived, Actor: approvals.ConnectorActor}}
						if _, created, err := s.Create(ctx, r, events); err != nil || !created {
							b.Errorf("Create = %v, %v", created, err)
							return
						}
					}
				}()
			}
			wg.Wait()
			b.StopTimer()
			reportRate(b)
			commits := float64(txID(b, s.db) - firstTx)
			b.ReportMetric(float64(b.N)/commits, "writes/commit")
			// bbolt writes each dirty page (or run of overflow pages) with
			// its own pwrite: the pages a commit makes the disk sync.
			b.ReportMetric(float64(pwrites(s.db)-firstWrites)/commits, "pwrites/commit")
		})
	}
}

// load stores n requests, a third of them approved, in large unsynced
// transactions through the store's own write path.
func load(b *testing.B, s *Store, n int) {
	b.Helper()
	s.db.NoSync = true
	defer func() { s.db.NoSync = false }()
	start := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	reviewer := approvals.Actor{Kind: approvals.ActorReviewer, ID: "oid-1"}
	const perTx = 20000
	for first := 0; first < n; first += perTx {
		err := s.db.Update(func(tx *bbolt.Tx) error {
			for i := first; i < min(first+perTx, n); i++ {
				r := benchRequest(int64(i), start.Add(time.Duration(i)*time.Second))
				r.Claims = map[string]any{"city": "Redmond"}
				r.ID = approvals.NewID(r.CreatedAt)
				r.Version, r.UpdatedAt = 1, r.CreatedAt
				var events []approvals.Event
				if i%3 == 0 {
					ev, _ := r.Approve(reviewer, "bulk", r.CreatedAt, time.Hour)
					events = append(events, ev)
				}
				value, _ := json.Marshal(r)
				if err := writeBucket(tx, bucketRequests).Put([]byte(r.ID), value); err != nil {
					return err
				}
				if err := reindex(tx, nil, r); err != nil {
					return err
				}
				if err := addCount(tx, r.Status, 1); err != nil {
					return err
				}
				if _, err := appendEvents(tx, events, r.ID); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	if err := s.db.Sync(); err != nil {
		b.Fatal(err)
	}
}

// BenchmarkLargeStore reads a first and a deep page, the counts and the due
// jobs from stores of growing size: with every query answered from an
// index, the cost must not grow with the number of requests.
func BenchmarkLargeStore(b *testing.B) {
	sizes := []int{1_000, 100_000}
	if *large {
		sizes = append(sizes, 1_000_000)
	}
	ctx := context.Background()
	for _, n := range sizes {
		s := open(b, filepath.Join(b.TempDir(), "approvals.db"), Options{})
		load(b, s, n)
		queries := []struct {
			name string
			run  func() error
		}{
			{"ListFirstPage", func() error {
				_, err := s.List(ctx, approvals.ListQuery{})
				return err
			}},
			{"ListPendingFirstPage", func() error {
				_, err := s.List(ctx, approvals.ListQuery{Status: approvals.StatusPending})
				return err
			}},
			{"Count", func() error {
				_, err := s.Count(ctx)
				return err
			}},
			{"FindByPerson", func() error {
				_, err := s.FindByPerson(ctx, approvals.PersonKey(fmt.Sprintf("bench%09d@example.com", n/2), &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprintf("g-%d", n/2)}))
				return err
			}},
			{"FindStanding", func() error {
				_, err := s.FindStanding(ctx, approvals.PersonKey(fmt.Sprintf("bench%09d@example.com", n/2), &approvals.Identity{Issuer: "google.com", IssuerAssignedID: fmt.Sprintf("g-%d", n/2)}))
				return err
			}},
			{"DecisionsAll", func() error {
				return s.Decisions(ctx, approvals.DecisionQuery{}, func(approvals.DecisionRecord) error { return nil })
			}},
			{"DueJobs50", func() error {
				_, err := s.DueJobs(ctx, time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC), 50)
				return err
			}},
			{"AuditLastPage", func() error {
				_, _, err := s.Audit(ctx, approvals.AuditQuery{Since: time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC).Add(time.Duration(n-150) * time.Second)})
				return err
			}},
		}
		for _, q := range queries {
			b.Run(fmt.Sprintf("%s/requests=%d", q.name, n), func(b *testing.B) {
				for range b.N {
					if err := q.run(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
		s.Close()
	}
}
