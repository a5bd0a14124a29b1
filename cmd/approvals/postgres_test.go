package main

import (
	"context"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/internal/pgtest"
	"github.com/approvals-dev/approvals/provisioner/graphtest"
)

func TestDatabaseURLSettings(t *testing.T) {
	const u = "postgres://approvals:s3cret-pw@127.0.0.1:5432/approvals"
	env := validEnv()
	delete(env, "APPROVALS_DB")
	env["APPROVALS_DATABASE_URL"] = u
	c, err := loadConfig(t, env)
	if err != nil || c.StoreBackend() != "postgres" || c.DatabaseURL != u {
		t.Fatalf("config = backend %q url %q, %v; want postgres", c.StoreBackend(), c.DatabaseURL, err)
	}
	if _, ok := storeBackends()[c.StoreBackend()]; !ok {
		t.Fatal("no postgres entry in the backend map")
	}

	env["APPROVALS_DB"] = "approvals.db"
	if _, err := loadConfig(t, env); err == nil || !strings.Contains(err.Error(), "APPROVALS_DB and APPROVALS_DATABASE_URL are both set") {
		t.Errorf("both set: %v; want the error naming both", err)
	}
	delete(env, "APPROVALS_DB")
	if _, err := loadConfig(t, env, "--db", "x.db"); err == nil || !strings.Contains(err.Error(), "both set") {
		t.Errorf("--db with APPROVALS_DATABASE_URL: %v; want the error naming both", err)
	}

	env["APPROVALS_DATABASE_URL"] = "mysql://root:s3cret-pw@db/approvals"
	_, err = loadConfig(t, env)
	if err == nil || !strings.Contains(err.Error(), "must be a postgres:// URL") || strings.Contains(err.Error(), "s3cret-pw") {
		t.Errorf("bad scheme: %v; want the error without the password", err)
	}

	file := filepath.Join(t.TempDir(), "database-url")
	if err := os.WriteFile(file, []byte(u+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	delete(env, "APPROVALS_DATABASE_URL")
	env["APPROVALS_DATABASE_URL_FILE"] = file
	if c, err := loadConfig(t, env); err != nil || c.DatabaseURL != u {
		t.Errorf("from the file: %q, %v", c.DatabaseURL, err)
	}
	env["APPROVALS_DATABASE_URL"] = u
	if _, err := loadConfig(t, env); err == nil || !strings.Contains(err.Error(), "APPROVALS_DATABASE_URL_FILE") {
		t.Errorf("both the variable and its file: %v", err)
	}
}

func get(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeOnPostgres runs serve on PostgreSQL and stops the database under
// it: /readyz answers 503 and the connector fails closed (the "try again
// later" block page, never Continue) while it is down, and both recover
// when it is back, without a restart of the server. The backup route says
// to use pg_dump; /metrics has the pool's figures.
func TestServeOnPostgres(t *testing.T) {
	cl := pgtest.StartClusterFor(t)
	env := crashEnv("")
	delete(env, "APPROVALS_DB")
	env["APPROVALS_DATABASE_URL"] = cl.URL("postgres") + "&statement_timeout=2s&connect_timeout=1"
	g := graphtest.New(graphtest.Options{})
	t.Cleanup(g.Close)
	m, base, log := startServerEnv(t, g, env, serverTimeouts{})
	if !strings.Contains(log.String(), `"backend":"postgres"`) {
		t.Errorf("start log does not name the backend: %s", log.String())
	}

	if code, body := get(t, base+"/readyz"); code != 200 {
		t.Fatalf("/readyz = %d %s", code, body)
	}
	ctx := context.Background()
	client := &http.Client{Timeout: 20 * time.Second}
	connector := func(route string, p person) connectorAnswer {
		t.Helper()
		code, a, err := postSignUp(ctx, client, base+"/connector/"+route, crashUser, crashPassword, p.body)
		if err != nil || code != 200 {
			t.Fatalf("%s = %d, %v", route, code, err)
		}
		return a
	}
	check := func(p person) connectorAnswer { t.Helper(); return connector("check-approval-status", p) }
	signUp := func(p person) connectorAnswer { t.Helper(); return connector("request-approval", p) }
	pending, approved := newPerson("pg", 1, true), newPerson("pg", 13, true)
	if a := signUp(pending); a.Action != "ShowBlockPage" || !strings.Contains(a.UserMessage, "waiting for approval") {
		t.Fatalf("sign-up = %+v", a)
	}
	if a := signUp(approved); a.Action != "Continue" {
		t.Fatalf("auto-approved sign-up = %+v", a)
	}
	if a := check(approved); a.Action != "Continue" {
		t.Fatalf("check of an auto-approved person = %+v", a)
	}

	req, _ := http.NewRequest(http.MethodGet, base+"/api/v1/backup", nil)
	req.Header.Set("Authorization", "Bearer "+crashAPIKey)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotImplemented || !strings.Contains(string(b), "pg_dump") {
		t.Errorf("backup = %d %s; want 501 naming pg_dump", resp.StatusCode, b)
	}
	if code, body := get(t, "http://"+m.MetricsAddr().String()+"/metrics"); code != 200 ||
		!strings.Contains(body, `approvals_db_pool_connections{state="max"}`) || !strings.Contains(body, "approvals_db_up 1") {
		t.Errorf("metrics lack the pool figures: %d", code)
	}

	if err := cl.Stop(); err != nil {
		t.Fatal(err)
	}
	if code, body := get(t, base+"/readyz"); code != http.StatusServiceUnavailable || !strings.Contains(body, "database not reachable") {
		t.Errorf("/readyz with the database down = %d %s; want 503", code, body)
	}
	for _, p := range []person{approved, pending, newPerson("pg", 33, true), newPerson("pg", 53, true)} {
		for _, a := range []connectorAnswer{check(p), signUp(p)} {
			if a.Action == "Continue" || !strings.Contains(a.UserMessage, "try again later") {
				t.Errorf("with the database down, %s got %+v; want the try-later block page", p.email, a)
			}
		}
	}

	if err := cl.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		code, _ := get(t, base+"/readyz")
		if code == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz still %d after the database came back", code)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if a := check(approved); a.Action != "Continue" {
		t.Errorf("check after recovery = %+v", a)
	}
	if a := signUp(newPerson("pg", 73, true)); a.Action != "Continue" {
		t.Errorf("sign-up after recovery = %+v", a)
	}
}
