package main

import (
	"context"
	"net/url"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/postgres"
)

// The PostgreSQL backend: APPROVALS_DATABASE_URL selects it (cmd/approvals
// /store.go), several replicas share it (docs/DEPLOY.md).

// databaseChecks are the rules of Validate for the store settings.
func (c *Config) databaseChecks() []check {
	if c.DatabaseURL == "" {
		return nil
	}
	u, err := url.Parse(c.DatabaseURL)
	bad := err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") || u.Host == ""
	return []check{
		{c.explicit["APPROVALS_DB"], "APPROVALS_DB and APPROVALS_DATABASE_URL are both set: keep APPROVALS_DB for one server on a bbolt file, or APPROVALS_DATABASE_URL for PostgreSQL (approvals migrate copies a bbolt file into PostgreSQL)"},
		// The URL is not quoted: it holds the password.
		{bad, "APPROVALS_DATABASE_URL must be a postgres:// URL with a host, such as postgres://approvals:PASSWORD@db.example.com:5432/approvals?sslmode=require"},
	}
}

// openPostgres opens the PostgreSQL store, applying the migrations it
// lacks, and logs where it is with the password redacted.
func openPostgres(c *Config, opts storeOptions) (approvals.Store, error) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := postgres.Open(ctx, c.DatabaseURL, postgres.Options{Clock: opts.Clock})
	if err != nil {
		return nil, err
	}
	if opts.Logger != nil {
		opts.Logger.Info("store", "backend", "postgres", "url", postgres.Redact(c.DatabaseURL), "schema_version", postgres.SchemaVersion())
	}
	return s, nil
}

// noBackupMessage is what GET /api/v1/backup answers on a store without
// Backup.
func noBackupMessage(s approvals.Store) string {
	if _, ok := s.(*postgres.Store); ok {
		return "this server keeps its data in PostgreSQL: back it up with pg_dump (pg_dump --format=custom --file=approvals.dump DATABASE), or your provider's point-in-time recovery; see docs/DEPLOY.md"
	}
	return ""
}

// registerStoreMetrics adds the PostgreSQL pool's figures and the shared
// job queue's to reg, read at every scrape.
func registerStoreMetrics(reg prometheus.Registerer, s approvals.Store, clock approvals.Clock) {
	if ps, ok := s.(*postgres.Store); ok {
		reg.MustRegister(&poolCollector{s: ps, clock: clock})
	}
}

// poolCollector reports pgxpool's Stat and the job queue of the database
// (all replicas), per replica that scrapes it.
type poolCollector struct {
	s     *postgres.Store
	clock approvals.Clock
}

var (
	poolConns = prometheus.NewDesc("approvals_db_pool_connections",
		"Connections of this replica's PostgreSQL pool, by state: acquired (in use), idle, constructing; max is the pool_max_conns limit.", []string{"state"}, nil)
	poolAcquires = prometheus.NewDesc("approvals_db_pool_acquires_total",
		"Connections acquired from the pool, by how: immediate (an idle one was free), waited (the pool was empty), canceled (the caller gave up).", []string{"how"}, nil)
	poolWait = prometheus.NewDesc("approvals_db_pool_acquire_wait_seconds_total",
		"Time spent waiting for a pool connection, summed.", nil, nil)
	dbJobs = prometheus.NewDesc("approvals_db_jobs",
		"Provisioning jobs in the shared database, by state: due, leased (being run by some replica), scheduled.", []string{"state"}, nil)
	dbUp = prometheus.NewDesc("approvals_db_up", "1 when the database answered this scrape's queue count, 0 otherwise.", nil, nil)
)

// Describe implements prometheus.Collector.
func (p *poolCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{poolConns, poolAcquires, poolWait, dbJobs, dbUp} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (p *poolCollector) Collect(ch chan<- prometheus.Metric) {
	st := p.s.Pool().Stat()
	g := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, l...)
	}
	c := func(d *prometheus.Desc, v float64, l ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, l...)
	}
	g(poolConns, float64(st.AcquiredConns()), "acquired")
	g(poolConns, float64(st.IdleConns()), "idle")
	g(poolConns, float64(st.ConstructingConns()), "constructing")
	g(poolConns, float64(st.MaxConns()), "max")
	c(poolAcquires, float64(st.AcquireCount()-st.EmptyAcquireCount()), "immediate")
	c(poolAcquires, float64(st.EmptyAcquireCount()), "waited")
	c(poolAcquires, float64(st.CanceledAcquireCount()), "canceled")
	c(poolWait, st.AcquireDuration().Seconds())
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	n, err := p.s.CountJobs(ctx, p.clock.Now())
	if err != nil {
		g(dbUp, 0)
		return
	}
	g(dbUp, 1)
	g(dbJobs, float64(n.Due), "due")
	g(dbJobs, float64(n.Leased), "leased")
	g(dbJobs, float64(n.Scheduled), "scheduled")
}

// storeDescription is where the server keeps its data, for the log: the
// bbolt file, or the PostgreSQL URL with its password redacted.
func storeDescription(c *Config) string {
	if c.DatabaseURL != "" {
		return postgres.Redact(c.DatabaseURL)
	}
	return c.DB
}
