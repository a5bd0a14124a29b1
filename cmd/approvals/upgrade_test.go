package main

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/internal/logcapture"
	"github.com/approvals-dev/approvals/store/bolt"
)

// serveOldFile serves a copy of store/bolt/testdata/NAME.db and returns
// its path, the server's URL and its log.
func serveOldFile(t *testing.T, name string) (db, url string, log *logcapture.Buffer) {
	t.Helper()
	old, err := os.ReadFile("../../store/bolt/testdata/" + name + ".db")
	if err != nil {
		t.Fatal(err)
	}
	db = t.TempDir() + "/approvals.db"
	if err := os.WriteFile(db, old, 0o600); err != nil {
		t.Fatal(err)
	}
	_, url, log = startServer(t, db, "info", serverTimeouts{})
	return db, url, log
}

// A data file written by the first version is copied aside and upgraded
// when serve opens it, with progress in the log, and everything in it is
// served afterwards.
func TestServeUpgradesAnOldDataFile(t *testing.T) {
	db, url, log := serveOldFile(t, "v1")
	for _, want := range []string{`"msg":"copied the data file aside before upgrading it`, `"copy":"` + db + `.v1.bak"`,
		`"msg":"upgrading the data file before serving`, `"msg":"upgraded the data file"`, `"to_version":5`} {
		if !strings.Contains(log.String(), want) {
			t.Errorf("log lacks %s:\n%s", want, log.String())
		}
	}
	// The copy aside is the version 1 file, which the first version opens.
	if ro, err := bolt.Open(db+".v1.bak", bolt.Options{ReadOnly: true}); err == nil || !strings.Contains(err.Error(), "schema version 1 and needs an upgrade") {
		if ro != nil {
			ro.Close()
		}
		t.Errorf("the copy aside: %v; want a version 1 file", err)
	}
	status, body := call(t, "GET", url+"/api/v1/requests?limit=500", "Bearer "+crashAPIKey, "")
	var page struct {
		Requests []struct {
			ID     string `json:"id"`
			Status string `json:"status"`
		} `json:"requests"`
	}
	if err := json.Unmarshal(body, &page); status != 200 || err != nil || len(page.Requests) == 0 {
		t.Fatalf("GET /api/v1/requests after the upgrade = %d %s (%v)", status, body, err)
	}
	// The upgraded export rows answer the export.
	status, body = call(t, "GET", url+"/api/v1/decisions/export?format=ndjson", "Bearer "+crashAPIKey, "")
	if status != 200 || strings.Count(string(body), "\n") == 0 {
		t.Errorf("export after the upgrade = %d %q", status, body)
	}
}

// serve upgrades a version 3 file with the IDNA rule wired in: the stored
// addresses come out canonical, and two requests that are one person now
// are both kept, with a warning.
func TestServeMakesStoredAddressesCanonical(t *testing.T) {
	_, url, log := serveOldFile(t, "v3-unicode")
	if want := `"kept":"000000000000000000000013","also":"000000000000000000000014"`; !strings.Contains(log.String(), want) {
		t.Errorf("log lacks %s:\n%s", want, log.String())
	}
	for id, email := range map[string]string{"000000000000000000000013": "anna@xn--bcher-kva.de", "000000000000000000000014": "anna@xn--bcher-kva.de"} {
		status, body := call(t, "GET", url+"/api/v1/requests/"+id, "Bearer "+crashAPIKey, "")
		var r struct {
			Email string `json:"email"`
		}
		if err := json.Unmarshal(body, &r); status != 200 || err != nil || r.Email != email {
			t.Errorf("GET /api/v1/requests/%s = %d %s; want email %s", id, status, body, email)
		}
	}
}
