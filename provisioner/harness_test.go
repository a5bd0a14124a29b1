package provisioner_test

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/provisioner"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
	"github.com/approvals-dev/approvals/store/memory"
)

const ext = "extension_0123456789abcdef0123456789abcdef_Role"

// harness runs a Provisioner against a graphtest server over TLS, with the
// real azidentity client secret credential and the real Graph SDK.
type harness struct {
	t      *testing.T
	srv    *graphtest.Server
	store  approvals.Store
	svc    *approvals.Service
	prov   *provisioner.Provisioner
	reg    *prometheus.Registry
	logs   *logcapture.Buffer
	groups []string
	cfg    provisioner.Config
	// wrap, when set, wraps the transport to the fake Graph.
	wrap func(http.RoundTripper) http.RoundTripper

	cancel context.CancelFunc
	done   chan error
}

type harnessOption func(*harness)

func withConfig(f func(*provisioner.Config)) harnessOption {
	return func(h *harness) { f(&h.cfg) }
}

func withStore(s approvals.Store) harnessOption { return func(h *harness) { h.store = s } }

// withTransport wraps the transport to the fake Graph, to tamper with
// answers in ways the fake itself never would.
func withTransport(wrap func(http.RoundTripper) http.RoundTripper) harnessOption {
	return func(h *harness) { h.wrap = wrap }
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newHarness(t *testing.T, opts ...harnessOption) *harness {
	t.Helper()
	h := &harness{t: t, srv: graphtest.New(graphtest.Options{}), logs: &logcapture.Buffer{}}
	t.Cleanup(h.srv.Close)
	h.groups = []string{h.srv.AddGroup(""), h.srv.AddGroup("")}
	h.cfg = provisioner.Config{
		TenantDomain:          h.srv.TenantDomain(),
		InviteRedirectURL:     "https://apps.example.com/welcome",
		SendInvitationMessage: true,
		GroupIDs:              h.groups,
		Workers:               4,
		Retry:                 provisioner.RetryPolicy{Base: 20 * time.Millisecond, Max: 200 * time.Millisecond, LagWindow: 10 * time.Second},
		ShutdownGrace:         2 * time.Second,
	}
	for _, o := range opts {
		o(h)
	}
	if h.store == nil {
		h.store = memory.New(nil)
	}
	h.svc = &approvals.Service{Store: h.store, ProvisioningDeadline: time.Minute}
	return h
}

// credential is the real azidentity client secret credential, pointed at
// the fake authority as AZURE_AUTHORITY_HOST would point it.
func (h *harness) credential() azcore.TokenCredential {
	h.t.Helper()
	cred, err := provisioner.NewCredential(provisioner.CredentialConfig{
		TenantID: h.srv.TenantID(), ClientID: h.srv.ClientID(), ClientSecret: h.srv.ClientSecret(),
		AuthorityHost: h.srv.AuthorityURL(), DisableInstanceDiscovery: true, HTTPClient: h.srv.Client(),
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return cred
}

// start builds a new Provisioner on the harness's store and runs it.
func (h *harness) start() {
	h.t.Helper()
	h.reg = prometheus.NewRegistry()
	cfg := h.cfg
	cfg.Store = h.store
	var transport http.RoundTripper = h.srv.Transport()
	if h.wrap != nil {
		transport = h.wrap(transport)
	}
	cfg.Graph = provisioner.GraphConfig{URL: h.srv.URL(), Credential: h.credential(), Transport: transport, Timeout: cfg.Graph.Timeout}
	cfg.Logger = slog.New(slog.NewJSONHandler(h.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.Metrics = h.reg
	p, err := provisioner.New(cfg)
	if err != nil {
		h.t.Fatal(err)
	}
	h.prov = p
	h.svc.Provisioner = p
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done = cancel, make(chan error, 1)
	go func() { h.done <- p.Run(ctx) }()
	h.t.Cleanup(h.stop)
}

// stop stops the running Provisioner and waits for Run to return.
func (h *harness) stop() {
	if h.cancel == nil {
		return
	}
	h.cancel()
	select {
	case err := <-h.done:
		if err != nil {
			h.t.Errorf("Run: %v", err)
		}
	case <-time.After(10 * time.Second):
		h.t.Error("Run did not return within 10s of its context ending")
	}
	h.cancel = nil
}

type person struct {
	email    string
	identity *approvals.Identity
	claims   map[string]any
}

// approve records a sign-up and approves it.
func (h *harness) approve(p person) *approvals.Request {
	h.t.Helper()
	ctx := context.Background()
	r, _, err := h.svc.RequestApproval(ctx, approvals.SignUp{Email: p.email, Identity: p.identity, Claims: p.claims, DisplayName: claimString(p.claims, "displayName")})
	if err != nil {
		h.t.Fatal(err)
	}
	r, err = h.svc.Approve(ctx, r.ID, approvals.Actor{Kind: approvals.ActorReviewer, ID: "rev-1", Name: "Rita Reviewer"}, "ok")
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// provision starts the provisioner, approves p and waits up to 20 s for
// its provisioning to reach want.
func (h *harness) provision(p person, want approvals.ProvisioningState) *approvals.Request {
	h.t.Helper()
	h.start()
	return h.wait(h.approve(p).ID, want, 20*time.Second)
}

func claimString(c map[string]any, k string) string {
	s, _ := c[k].(string)
	return s
}

// wait polls the store until the request's provisioning reaches state.
func (h *harness) wait(id string, state approvals.ProvisioningState, within time.Duration) *approvals.Request {
	h.t.Helper()
	deadline := time.Now().Add(within)
	for {
		r, err := h.store.Get(context.Background(), id)
		if err != nil {
			h.t.Fatal(err)
		}
		if r.Provisioning.State == state {
			return r
		}
		if time.Now().After(deadline) {
			h.t.Fatalf("request %s: provisioning %s (step %s, attempts %d, last error %q) after %s; want %s",
				id, r.Provisioning.State, r.Provisioning.Step, r.Provisioning.Attempts, r.Provisioning.LastError, within, state)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// usersWithMail returns the directory users holding the address.
func (h *harness) usersWithMail(email string) []graphtest.User {
	var out []graphtest.User
	for _, u := range h.srv.Users() {
		if strings.EqualFold(u.Mail, email) {
			out = append(out, u)
		}
	}
	return out
}

// checkProvisioned checks the outcome every successful job must have: one
// account, recorded, in every group once.
func (h *harness) checkProvisioned(r *approvals.Request) graphtest.User {
	h.t.Helper()
	us := h.usersWithMail(r.Email)
	if len(us) != 1 {
		h.t.Fatalf("%s: %d directory users, want exactly 1", r.Email, len(us))
	}
	u := us[0]
	if r.Provisioning.UserID != u.ID {
		h.t.Errorf("%s: recorded user id %s, directory has %s", r.Email, r.Provisioning.UserID, u.ID)
	}
	for _, g := range h.groups {
		n := 0
		for _, m := range h.srv.Members(g) {
			if m == u.ID {
				n++
			}
		}
		if n != 1 {
			h.t.Errorf("%s: member of group %s %d times", r.Email, g, n)
		}
	}
	if r.Provisioning.LastError != "" || r.Provisioning.Step != approvals.StepGroups || len(r.Provisioning.GroupsDone) != len(h.groups) {
		h.t.Errorf("%s: provisioning record %+v", r.Email, r.Provisioning)
	}
	return u
}

func (h *harness) counter(name string, labels ...string) float64 {
	h.t.Helper()
	mfs, err := h.reg.Gather()
	if err != nil {
		h.t.Fatal(err)
	}
	total := 0.0
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
	metric:
		for _, m := range mf.GetMetric() {
			for i := 0; i+1 < len(labels); i += 2 {
				found := false
				for _, lp := range m.GetLabel() {
					if lp.GetName() == labels[i] && lp.GetValue() == labels[i+1] {
						found = true
					}
				}
				if !found {
					continue metric
				}
			}
			switch {
			case m.Counter != nil:
				total += m.Counter.GetValue()
			case m.Gauge != nil:
				total += m.Gauge.GetValue()
			case m.Histogram != nil:
				total += float64(m.Histogram.GetSampleCount())
			}
		}
	}
	return total
}

// countingStore counts the claims and reads of the job queue, to prove
// the dispatcher does not spin.
type countingStore struct {
	approvals.Store
	claims, nextJobAt atomic.Int64
}

func (s *countingStore) ClaimJobs(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*approvals.Request, error) {
	s.claims.Add(1)
	return s.Store.ClaimJobs(ctx, now, lease, limit)
}

func (s *countingStore) NextJobAt(ctx context.Context) (time.Time, bool, error) {
	s.nextJobAt.Add(1)
	return s.Store.NextJobAt(ctx)
}
