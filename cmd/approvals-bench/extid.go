package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync/atomic"
	"time"

	"github.com/labstack/echo/v4"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/externalid"
	"github.com/approvals-dev/approvals/externalid/externalidtest"
	"github.com/approvals-dev/approvals/internal/httplog"
	"github.com/approvals-dev/approvals/store/bolt"
)

// The extid mode measures the External ID extensions as Entra calls
// them: every call carries a bearer token that is checked in full (RS256
// signature, iss, aud, tid, exp, nbf, azp) against keys from a fake
// issuer on loopback, and is answered from a bbolt store. Beside it in the
// same run: a bare Echo handler on the same paths that decodes the body
// into a map and answers continue, with no token, store or log.
const (
	extidTenant = "0d6e6a0e-0d6f-4f4a-9f43-6f3c2a1b0c9d"
	extidApp    = "3c1b0a2f-8e7d-4c6b-a5f4-e3d2c1b0a9f8"
)

// extidBody is an extension payload for email, as Entra sends it.
func extidBody(event, email string) []byte {
	return []byte(`{"type":"microsoft.graph.authenticationEvent.` + event + `","data":{"@odata.type":"microsoft.graph.on` +
		string(event[0]-32) + event[1:] + `CalloutData","tenantId":"` + extidTenant + `","authenticationContext":{"correlationId":"7c6d5e4f-3a2b-4c1d-8e9f-0a1b2c3d4e5f",
"client":{"ip":"30.51.176.110","locale":"en-us","market":"en-us"},"protocol":"OAUTH2.0"},"userSignUpInfo":{"attributes":{
"givenName":{"@odata.type":"microsoft.graph.stringDirectoryAttributeValue","value":"Larissa","attributeType":"builtIn"},
"extension_0123456789abcdef0123456789abcdef_graduationYear":{"@odata.type":"microsoft.graph.int64DirectoryAttributeValue","value":2010,"attributeType":"directorySchemaExtension"}},
"identities":[{"signInType":"email","issuer":"contoso.onmicrosoft.com","issuerAssignedId":"` + email + `"}]}}}`)
}

func (b *Bench) runExtID(ctx context.Context) error {
	iss, err := externalidtest.NewIssuer(extidTenant)
	if err != nil {
		return err
	}
	b.closers = append(b.closers, func() error { iss.Close(); return nil })
	token, err := iss.Token(iss.Claims(extidApp, time.Now(), 2*time.Hour))
	if err != nil {
		return err
	}
	store, err := bolt.Open(filepath.Join(b.workDir, "approvals.db"), bolt.Options{})
	if err != nil {
		return err
	}
	b.closers = append(b.closers, store.Close)
	logFile, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	logw := httplog.NewWriter(logFile, 0)
	logger := httplog.NewLogger(logw, slog.LevelInfo)
	svc := &approvals.Service{Store: store, Clock: approvals.SystemClock, Policy: approvals.Policy{AutoApproveDomains: []string{b.approveDomain}}}
	h, err := externalid.New(externalid.Config{
		Service: svc,
		Tokens:  externalid.TokenConfig{TenantID: extidTenant, AppID: extidApp, Issuers: []string{iss.URL()}},
		Logger:  logger,
	})
	if err != nil {
		return err
	}
	h.Tokens().Warm()
	url, err := serveOn(httplog.Middleware(logger, approvals.SystemClock, h), logger, &b.closers)
	if err != nil {
		return err
	}
	base, err := startExtIDBaseline()
	if err != nil {
		return err
	}
	b.closers = append(b.closers, base.Close)

	// People: half pending (recorded through submit), half auto-approved;
	// start calls also ask about people never seen (continue).
	n := max(b.people, 2)
	var pending, approved, unknown [][]byte
	var seedSubmit [][]byte
	for i := range n {
		email := fmt.Sprintf("person%06d@example.com", i)
		if i%2 == 1 {
			email = fmt.Sprintf("person%06d@%s", i, b.approveDomain)
		}
		seedSubmit = append(seedSubmit, extidBody("attributeCollectionSubmit", email))
		if i%2 == 0 {
			pending = append(pending, extidBody("attributeCollectionSubmit", email))
		} else {
			approved = append(approved, extidBody("attributeCollectionSubmit", email))
		}
		unknown = append(unknown, extidBody("attributeCollectionStart", fmt.Sprintf("new%06d@example.com", i)))
	}
	fmt.Fprintf(b.Stdout, "seeding %d people through %s ...\n", n, externalid.SubmitPath)
	client := newClient(8, new(atomic.Int64))
	for _, body := range seedSubmit {
		if err := extidCall(client, url+externalid.SubmitPath, token, body, "attributeCollectionSubmit."); err != nil {
			return fmt.Errorf("seeding: %w", err)
		}
	}
	startOf := func(bodies [][]byte) [][]byte {
		out := make([][]byte, len(bodies))
		for i, body := range bodies {
			out[i] = bytes.Replace(body, []byte("attributeCollectionSubmit"), []byte("attributeCollectionStart"), 1)
		}
		return out
	}
	startMix := [][][]byte{unknown, startOf(pending), startOf(approved)}
	startWant := []string{"continueWithDefaultBehavior", "showBlockPage", "continueWithDefaultBehavior"}
	submitMix := [][][]byte{pending, approved}
	submitWant := []string{"showBlockPage", "continueWithDefaultBehavior"}
	pick := func(mix [][][]byte, want []string) func(w int) func() ([]byte, string) {
		return func(w int) func() ([]byte, string) {
			rng := rand.New(rand.NewPCG(uint64(w), 0xe71d))
			return func() ([]byte, string) {
				k := rng.IntN(len(mix))
				return mix[k][rng.IntN(len(mix[k]))], want[k]
			}
		}
	}
	baselineNext := func(w int) func() ([]byte, string) {
		next := pick(startMix, startWant)(w)
		return func() ([]byte, string) { body, _ := next(); return body, "continueWithDefaultBehavior" }
	}
	targets := []target{
		extidTarget("baseline", base.URL+externalid.StartPath, "", b.conc, baselineNext),
		extidTarget("start", url+externalid.StartPath, token, b.conc, pick(startMix, startWant)),
		extidTarget("submit", url+externalid.SubmitPath, token, b.conc, pick(submitMix, submitWant)),
	}
	res, err := b.load(ctx, targets)
	if err != nil {
		return err
	}
	b.result.Load = &res
	for i, name := range []string{"start", "submit"} {
		r := res.ratio(name, "baseline", true)
		printRatio(b.Stdout, r)
		p := res.Targets[i+1]
		b.goal(fmt.Sprintf("External ID %s with token validation at %d connections: at least 0.7x the bare Echo baseline", name, b.conc), r.Median >= 0.7, fmt.Sprintf("%.2fx (median of rounds)", r.Median))
		b.goal(fmt.Sprintf("External ID %s at %d connections: p99 under 50 ms", name, b.conc), p.Latency.P99 < 50, fmt.Sprintf("p99 %.2f ms", p.Latency.P99))
		b.goal(fmt.Sprintf("External ID %s: no failed calls", name), p.Errors == 0, fmt.Sprintf("%d errors", p.Errors))
	}
	if n := iss.JWKSHits.Load(); n != 1 {
		b.goal("the JWKS is fetched once", false, fmt.Sprintf("%d fetches", n))
	}
	return nil
}

// serveOn serves h on a loopback port and returns its URL.
func serveOn(h http.Handler, logger *slog.Logger, closers *[]func() error) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := newServer(h, logger)
	done := make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ln) }()
	*closers = append(*closers, func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		err := srv.Shutdown(ctx)
		<-done
		return err
	})
	return "http://" + ln.Addr().String(), nil
}

// extidBaseline is the bare Echo handler of the extid mode.
type extidBaseline struct{ URL string }

func startExtIDBaseline() (*extidBaselineCloser, error) {
	e := echo.New()
	e.HideBanner, e.HidePort = true, true
	handle := func(c echo.Context) error {
		var m map[string]any
		if err := json.NewDecoder(c.Request().Body).Decode(&m); err != nil {
			return c.JSON(http.StatusBadRequest, map[string]string{"error": "bad request"})
		}
		return c.JSON(http.StatusOK, map[string]any{"data": map[string]any{
			"@odata.type": "microsoft.graph.onAttributeCollectionStartResponseData",
			"actions":     []map[string]string{{"@odata.type": "microsoft.graph.attributeCollectionStart.continueWithDefaultBehavior"}},
		}})
	}
	e.POST(externalid.StartPath, handle)
	e.POST(externalid.SubmitPath, handle)
	var closers []func() error
	url, err := serveOn(e, slog.New(slog.DiscardHandler), &closers)
	if err != nil {
		return nil, err
	}
	return &extidBaselineCloser{extidBaseline{URL: url}, closers}, nil
}

type extidBaselineCloser struct {
	extidBaseline
	closers []func() error
}

func (c *extidBaselineCloser) Close() error {
	var errs []error
	for _, f := range c.closers {
		errs = append(errs, f())
	}
	return errors.Join(errs...)
}

// extidTarget posts the bodies next returns with the bearer token (none
// when ""), checking that the one action is the wanted one.
func extidTarget(name, url, token string, conc int, next func(w int) func() ([]byte, string)) target {
	var dials atomic.Int64
	client := newClient(conc, &dials)
	return target{
		Name: name, Conc: conc, dials: &dials, close: client.CloseIdleConnections,
		newWorker: func(w int) func() error {
			nextCall := next(w)
			return func() error {
				body, want := nextCall()
				return extidCall(client, url, token, body, want)
			}
		},
	}
}

// extidCall posts one call and checks its answer.
func extidCall(client *http.Client, url, token string, body []byte, want string) error {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	_, err = buf.ReadFrom(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK || !bytes.Contains(buf.Bytes(), []byte(want)) || bytes.Count(buf.Bytes(), []byte(`"@odata.type"`)) != 2 {
		return fmt.Errorf("status %d, want one %s action: %.200s", resp.StatusCode, want, buf.Bytes())
	}
	return nil
}
