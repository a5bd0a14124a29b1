package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/mail"
)

// TestMailScreenshots renders the reviewer and approved emails' HTML in
// headless Chromium at desktop (1280) and phone (390) widths and saves the
// PNGs in the artifacts folder (mail-*.png), for a person to look at. The
// page must not scroll sideways on a phone: the layout is fluid.
func TestMailScreenshots(t *testing.T) {
	chromium := chromiumPath(t)
	dir := artifactsDir(t)
	r, err := mail.NewRenderer(mail.Settings{PublicURL: "https://approvals.contoso.com", SignInURL: "https://myapps.microsoft.com"})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 2, 9, 41, 0, 0, time.UTC)
	q := &approvals.Request{
		ID: "18ea03d18c9224802777cba8", Email: "ada.lovelace@fabrikam.com", DisplayName: "Ada Lovelace",
		Identity: &approvals.Identity{Issuer: "google.com", IssuerAssignedID: "1"}, Locale: "en-GB",
		Claims: map[string]any{"city": "London", "jobTitle": "Analyst", "extension_0123abcd_CompanyName": "Analytical Engines Ltd"},
		Status: approvals.StatusPending, CreatedAt: at,
	}
	pending, err := r.Render(&approvals.Delivery{ID: "evt-1.email.rev@contoso.com", Channel: approvals.ChannelEmail, Kind: approvals.MailReviewerPending, Recipient: "rev@contoso.com", Request: q}, nil)
	if err != nil {
		t.Fatal(err)
	}
	a := q.Clone()
	a.Locale, a.Status = "fr-FR", approvals.StatusApproved
	a.Provisioning = approvals.Provisioning{State: approvals.ProvisioningSucceeded, Method: approvals.MethodInvitation, RedeemURL: "https://login.microsoftonline.com/redeem?rd=https%3a%2f%2finvitations.microsoft.com%2fredeem%2f%3ftenant%3dabc"}
	approved, err := r.Render(&approvals.Delivery{ID: "evt-2.email.ada", Channel: approvals.ChannelEmail, Kind: approvals.MailApplicantApproved, Recipient: "ada.lovelace@fabrikam.com", Request: a}, nil)
	if err != nil {
		t.Fatal(err)
	}
	pages := map[string]string{"/reviewer-pending": pending.HTML, "/applicant-approved": approved.HTML}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// As a mail client shows it: no scripts, nothing from elsewhere.
		w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'")
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(pages[r.URL.Path]))
	}))
	defer srv.Close()

	allocCtx, cancel := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromium), chromedp.UserDataDir(t.TempDir()), chromedp.Headless, chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
	)
	defer cancel()
	ctx, cancel := context.WithTimeout(allocCtx, 2*time.Minute)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	for path := range pages {
		for _, width := range []int64{1280, 390} {
			if _, err := chromedp.Run(ctx, chromedp.EmulateViewport(width, 900)); err != nil {
				t.Fatal(err)
			}
			if _, err := chromedp.Run(ctx, chromedp.Navigate(srv.URL+path)); err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			scrollWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`document.documentElement.scrollWidth`))
			if err != nil {
				t.Fatal(err)
			}
			innerWidth, err := chromedp.Run(ctx, chromedp.Evaluate[int64](`window.innerWidth`))
			if err != nil {
				t.Fatal(err)
			}
			png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
			if err != nil {
				t.Fatalf("%s at %d: %v", path, width, err)
			}
			if scrollWidth > innerWidth {
				t.Errorf("%s at %d px scrolls sideways: %d px wide", path, width, scrollWidth)
			}
			name := filepath.Join(dir, "mail"+filepath.Base(path)+"-"+map[int64]string{1280: "desktop", 390: "phone"}[width]+".png")
			if err := os.WriteFile(name, png, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}
