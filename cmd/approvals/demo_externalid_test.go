package main

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"github.com/approvals-dev/approvals/internal/logcapture"
)

// TestDemoExternalID: the demo's External ID samples are in with source
// external_id, and the curl line it prints works with the token it prints.
func TestDemoExternalID(t *testing.T) {
	d, _, _ := startDemo(t)
	code, body := call(t, "GET", d.PublicURL+"/api/v1/requests?limit=100", "Bearer "+d.APIKey, "")
	if code != 200 {
		t.Fatalf("list: %d %s", code, body)
	}
	var list struct {
		Requests []struct{ Email, Status, Source string }
	}
	if err := json.Unmarshal(body, &list); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range list.Requests {
		if r.Source == "external_id" {
			got[r.Email] = r.Status
		}
	}
	if len(got) != demoExternalIDSamples || got["larissa@woodgrove.example"] != "pending" || got["otto@partner.example"] != "approved" {
		t.Fatalf("External ID samples: %v", got)
	}
	out := d.Stdout.(*logcapture.Buffer).String()
	tok := regexp.MustCompile(`TOKEN='([^']+)'`).FindStringSubmatch(out)
	payload := regexp.MustCompile(`-d '(\{"type":"microsoft\.graph\.authenticationEvent\.attributeCollectionSubmit"[^']+)'`).FindStringSubmatch(out)
	if tok == nil || payload == nil || tok[1] != d.ExternalIDToken {
		t.Fatalf("the banner lacks the token or the payload:\n%s", out)
	}
	code, body = call(t, "POST", d.PublicURL+"/external-id/attribute-collection-submit", "Bearer "+tok[1], payload[1])
	if code != 200 || !strings.Contains(string(body), "attributeCollectionSubmit.showBlockPage") || !strings.Contains(string(body), "attente") {
		t.Fatalf("the printed curl line: %d %s", code, body)
	}
}
