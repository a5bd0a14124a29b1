package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"
)

// defaultHealthURL is the server `approvals healthcheck` probes when
// neither --url nor APPROVALS_LISTEN says otherwise.
const defaultHealthURL = "http://127.0.0.1:8080"

// Healthcheck is `approvals healthcheck`: it asks a running server's
// /readyz whether it is ready and succeeds only on 200. It is the
// container health check of an image without a shell or curl.
type Healthcheck struct {
	Stdout, Stderr io.Writer
	Getenv         func(string) string

	url      string
	insecure bool
	timeout  time.Duration
}

// ParseFlags reads the healthcheck's flags.
func (h *Healthcheck) ParseFlags(args []string) error {
	fs := newFlagSet("approvals healthcheck", fmt.Sprintf("Usage: approvals healthcheck [--url URL]\n\n"+
		"Probes GET /readyz of a running server: exit status 0 when it answers 200, 1 otherwise.\n"+
		"Without --url: %s, or 127.0.0.1 at the port of APPROVALS_LISTEN when it is set\n"+
		"(https, unverified, when APPROVALS_TLS_CERT_FILE is set).\n\n", defaultHealthURL))
	fs.StringVar(&h.url, "url", "", "base URL of the server (default "+defaultHealthURL+")")
	fs.BoolVar(&h.insecure, "insecure", false, "do not verify the server's TLS certificate")
	fs.DurationVar(&h.timeout, "timeout", 5*time.Second, "how long to wait for the answer")
	if err := parseFlags(fs, args, h.Stdout); err != nil {
		return err
	}
	if h.url == "" {
		h.url, h.insecure = h.defaultURL()
	}
	u, err := url.Parse(h.url)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("--url %q: give the server's base URL, such as %s", h.url, defaultHealthURL)
	}
	if h.timeout <= 0 {
		return errors.New("--timeout must be positive")
	}
	return nil
}

// defaultURL is the loopback address of a server configured by this
// environment, and whether to skip verifying its certificate (which names
// the public host, not 127.0.0.1).
func (h *Healthcheck) defaultURL() (string, bool) {
	getenv := h.Getenv
	if getenv == nil {
		getenv = func(string) string { return "" }
	}
	listen := strings.TrimSpace(getenv("APPROVALS_LISTEN"))
	if listen == "" {
		return defaultHealthURL, false
	}
	_, port, err := net.SplitHostPort(listen)
	if err != nil || port == "" || port == "0" {
		return defaultHealthURL, false
	}
	if getenv("APPROVALS_TLS_CERT_FILE") != "" {
		return "https://" + net.JoinHostPort("127.0.0.1", port), true
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port), false
}

// Run probes the server once.
func (h *Healthcheck) Run(ctx context.Context) error {
	target := strings.TrimRight(h.url, "/") + "/readyz"
	ctx, cancel := context.WithTimeout(ctx, h.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	if err != nil {
		return err
	}
	tr := &http.Transport{Proxy: nil}
	if h.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true} // #nosec G402: a probe of a loopback address
	}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := client.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("GET %s: %v", target, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s %s", target, resp.Status, strings.TrimSpace(string(body)))
	}
	fmt.Fprintf(h.Stdout, "ready: %s\n", target)
	return nil
}

// Close releases nothing: the probe holds no resources after Run.
func (h *Healthcheck) Close() error { return nil }
