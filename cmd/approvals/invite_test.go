package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestInvitationRetryFinishesItsGroups: a line-of-business invitation whose
// group add fails is recorded as failed; once the group exists, an admin's
// retry-provisioning hands it to the provisioner, which adds the user to
// that group (and only that group: the sign-up groups are not for it).
func TestInvitationRetryFinishesItsGroups(t *testing.T) {
	d, _, _ := startDemo(t, "--no-samples")
	bearer := "Bearer " + d.APIKey
	missing := "0d9c3a6e-5b2f-4c1d-8e7a-6f5b4c3d2e1f" // not a group yet

	body := `{"email":"pat.lee@fabrikam.example","display_name":"Pat Lee","redirect_url":"https://apps.contoso.example",
		"send_invitation_message":false,"group_ids":["` + missing + `"],"attributes":{"jobTitle":"Auditor"}}`
	code, resp := call(t, "POST", d.PublicURL+"/api/v1/invitations", bearer, body)
	if code != 502 || !strings.Contains(string(resp), "provisioning_incomplete") {
		t.Fatalf("invitation with a missing group: %d %s", code, resp)
	}
	var got struct {
		Error struct {
			Details struct {
				UserID    string `json:"user_id"`
				RequestID string `json:"request_id"`
			} `json:"details"`
		} `json:"error"`
		UserID    string `json:"user_id"`
		RequestID string `json:"request_id"`
	}
	if err := json.Unmarshal(resp, &got); err != nil {
		t.Fatal(err)
	}
	reqID := cmpOr(got.RequestID, got.Error.Details.RequestID)
	if reqID == "" {
		t.Fatalf("no request id in %s", resp)
	}

	d.graph.AddGroup(missing)
	if code, resp = call(t, "POST", d.PublicURL+"/api/v1/requests/"+reqID+"/retry-provisioning", bearer, ""); code != 200 {
		t.Fatalf("retry: %d %s", code, resp)
	}
	var r struct {
		Provisioning struct {
			State  string `json:"state"`
			UserID string `json:"user_id"`
		} `json:"provisioning"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for r.Provisioning.State != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("retry did not finish: %s", resp)
		}
		time.Sleep(100 * time.Millisecond)
		_, resp = call(t, "GET", d.PublicURL+"/api/v1/requests/"+reqID, bearer, "")
		if err := json.Unmarshal(resp, &r); err != nil {
			t.Fatal(err)
		}
	}
	u, ok := d.graph.User(r.Provisioning.UserID)
	if !ok || u.Properties["jobTitle"] != "Auditor" {
		t.Fatalf("directory user %+v", u)
	}
	if groups := d.graph.GroupsOf(u.ID); !slices.Equal(groups, []string{missing}) {
		t.Fatalf("groups %v, want only %s", groups, missing)
	}
	if n := len(d.graph.Invitations()); n != 1 {
		t.Fatalf("%d invitations, want 1", n)
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}
