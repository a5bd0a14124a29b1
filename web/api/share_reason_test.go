package api

import "testing"

// The deny call's share_reason is recorded on the decision: only then does
// the denied email tell the person the reason.
func TestDenyShareReason(t *testing.T) {
	e := newEnv(t)
	for _, tc := range []struct {
		email, body string
		want        bool
	}{
		{"kept@example.com", `{"reason":"not a partner"}`, false},
		{"shared@example.com", `{"reason":"not a partner","share_reason":true}`, true},
	} {
		r := e.signUp(tc.email)
		e.do("POST", "/api/v1/requests/"+r.ID+"/deny", tc.body).want(t, 200)
		var got struct {
			Decision struct {
				Reason      string `json:"reason"`
				ShareReason bool   `json:"share_reason"`
			} `json:"decision"`
		}
		e.do("GET", "/api/v1/requests/"+r.ID, "").want(t, 200).json(t, &got)
		if got.Decision.Reason != "not a partner" || got.Decision.ShareReason != tc.want {
			t.Errorf("%s: decision %+v, want share %v", tc.email, got.Decision, tc.want)
		}
	}
	e.do("POST", "/api/v1/requests/x/deny", `{"reason":"r","share_reason":"yes"}`).want(t, 400)
}
