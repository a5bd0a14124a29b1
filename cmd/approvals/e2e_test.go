package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/approvals-dev/approvals/internal/logcapture"
)

// Time bounds: the whole browser session, and each step in it.
const (
	browserSessionTimeout = 240 * time.Second
	browserStepTimeout    = 15 * time.Second
)

// missingRequest is the id of a request the test opens that does not exist.
const missingRequest = "000000000000000000000000"

// Viewports of the screenshots.
var (
	desktopViewport = chromedp.EmulateViewport(1280, 900)
	phoneViewport   = chromedp.EmulateViewport(390, 844, chromedp.EmulateMobile, chromedp.EmulateTouch, chromedp.EmulatePortrait)
)

// errNoChromium says how to get the browser the test needs.
var errNoChromium = errors.New("the browser end-to-end test needs Chromium, which is not installed: run `apt-get install chromium` " +
	"(Debian; .ci/run does it), or set $CHROMIUM to a Chromium or Chrome binary; APPROVALS_SKIP_BROWSER=1 skips this test")

// findChromium returns $CHROMIUM, else chromium on the PATH, else
// /usr/bin/chromium.
func findChromium(getenv func(string) string, lookPath func(string) (string, error), exists func(string) bool) (string, error) {
	if p := getenv("CHROMIUM"); p != "" {
		if !exists(p) {
			return "", fmt.Errorf("$CHROMIUM names %s, which does not exist", p)
		}
		return p, nil
	}
	if p, err := lookPath("chromium"); err == nil {
		return p, nil
	}
	if exists("/usr/bin/chromium") {
		return "/usr/bin/chromium", nil
	}
	return "", errNoChromium
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// chromiumPath finds the browser, or fails the test saying how to get one.
// Without Chromium the test fails rather than skips, so that CI cannot pass
// without running it; APPROVALS_SKIP_BROWSER=1 skips it on purpose.
func chromiumPath(t *testing.T) string {
	t.Helper()
	if os.Getenv("APPROVALS_SKIP_BROWSER") == "1" {
		t.Skip("APPROVALS_SKIP_BROWSER=1: skipping the browser end-to-end test")
	}
	p, err := findChromium(os.Getenv, exec.LookPath, fileExists)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestFindChromium(t *testing.T) {
	none := func(string) (string, error) { return "", exec.ErrNotFound }
	onPath := func(string) (string, error) { return "/opt/bin/chromium", nil }
	tests := []struct {
		name     string
		env      string
		lookPath func(string) (string, error)
		files    []string
		want     string
		wantErr  string
	}{
		{"$CHROMIUM", "/opt/chrome", none, []string{"/opt/chrome"}, "/opt/chrome", ""},
		{"$CHROMIUM missing", "/opt/chrome", onPath, nil, "", "$CHROMIUM names /opt/chrome"},
		{"on the PATH", "", onPath, nil, "/opt/bin/chromium", ""},
		{"Debian's place", "", none, []string{"/usr/bin/chromium"}, "/usr/bin/chromium", ""},
		{"not installed", "", none, nil, "", "apt-get install chromium"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			getenv := func(k string) string {
				if k == "CHROMIUM" {
					return tt.env
				}
				return ""
			}
			exists := func(p string) bool { return slices.Contains(tt.files, p) }
			got, err := findChromium(getenv, tt.lookPath, exists)
			if got != tt.want || (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("findChromium = %q, %v; want %q, an error with %q", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// artifactsDir is where screenshots go: $APPROVALS_ARTIFACTS, or
// artifacts/e2e at the repository root (ignored by git).
func artifactsDir(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("APPROVALS_ARTIFACTS")
	if dir == "" {
		// Tests run in their package's folder, two below the root.
		dir = filepath.Join("..", "..", "artifacts", "e2e")
	}
	dir, err := filepath.Abs(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("artifacts folder: %v", err)
	}
	// A failure screenshot of an earlier run would mislead.
	old, _ := filepath.Glob(filepath.Join(dir, "failure-*.png"))
	for _, f := range old {
		_ = os.Remove(f)
	}
	return dir
}

// tab is one browser tab of the test, with its own cookies when it was
// opened in a new browser context.
type tab struct {
	t    *testing.T
	ctx  context.Context
	dir  string // screenshots
	name string // in failure messages
}

// newBrowser opens, in tb's browser, a browser context of its own (as a
// private window is: no cookies shared) for the person name, with the
// desktop viewport; cancel closes it.
func (tb *tab) newBrowser(name string) (_ *tab, cancel context.CancelFunc) {
	tb.t.Helper()
	ctx, cancel := chromedp.NewContext(tb.ctx, chromedp.WithNewBrowserContext())
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		tb.t.Fatalf("opening a browser context for %s: %v", name, err)
	}
	other := &tab{t: tb.t, ctx: ctx, dir: tb.dir, name: name}
	other.step("setting the desktop viewport", desktopViewport)
	return other, cancel
}

// step runs actions with a time bound and fails the test, with a
// screenshot of the tab, when one fails.
func (b *tab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.fail(what, err)
	}
}

// load runs actions that navigate (a click on a link or a submit button)
// and returns the HTTP status of the page they lead to.
func (b *tab) load(what string, actions ...chromedp.Action[chromedp.Void]) int64 {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	resp, err := chromedp.RunResponse(ctx, actions...)
	if err != nil {
		b.fail(what, err)
	}
	return resp.Status
}

func (b *tab) fail(what string, err error) {
	b.t.Helper()
	loc, _ := b.location()
	b.shotAs("failure-" + b.name)
	b.t.Fatalf("%s: %s: %v (at %s)", b.name, what, err, loc)
}

func (b *tab) location() (string, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Location())
}

// eval evaluates a JavaScript expression in the page; no waiting.
func eval[T any](b *tab, expr string) T {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		b.fail("evaluating "+expr, err)
	}
	return v
}

// text is the trimmed text of the first element matching a CSS selector,
// waiting for it to be there.
func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.fail("reading "+sel, err)
	}
	return strings.Join(strings.Fields(s), " ")
}

// count is how many elements match a CSS selector now.
func (b *tab) count(sel string) int {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return eval[int](b, fmt.Sprintf("document.querySelectorAll(%s).length", q))
}

// texts are the trimmed texts of every element matching a CSS selector now.
func (b *tab) texts(sel string) []string {
	b.t.Helper()
	q, _ := json.Marshal(sel)
	return eval[[]string](b, fmt.Sprintf("Array.from(document.querySelectorAll(%s), e => e.innerText.trim().replace(/\\s+/g, ' '))", q))
}

// shot saves a full-page screenshot as name.png.
func (b *tab) shot(name string) {
	b.t.Helper()
	if path := b.shotAs(name); path != "" {
		b.t.Logf("screenshot %s", path)
	}
}

func (b *tab) shotAs(name string) string {
	ctx, cancel := context.WithTimeout(b.ctx, browserStepTimeout)
	defer cancel()
	png, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	path := filepath.Join(b.dir, name+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Errorf("screenshot %s: %v", name, err)
		return ""
	}
	return path
}

// signIn opens the reviewer UI, follows the redirect to the demo's sign-in
// page and picks a user; it returns the status of the page it lands on.
func (b *tab) signIn(d *Demo, user string) int64 {
	b.t.Helper()
	b.load("opening the reviewer UI", chromedp.Navigate(d.PublicURL+"/"))
	if loc, _ := b.location(); !strings.HasPrefix(loc, d.idp.Issuer()) {
		b.t.Fatalf("%s: the reviewer UI sent the browser to %s, not to the sign-in page of %s", b.name, loc, d.idp.Issuer())
	}
	button := fmt.Sprintf(`button[name="user"][value=%q]`, user)
	b.step("waiting for the sign-in page", chromedp.WaitVisible(chromedp.CSS(button)))
	return b.load("signing in as "+user, chromedp.Click(chromedp.CSS(button)))
}

// queueRow selects the link to a request from the queue, by email.
func queueRow(email string) chromedp.Search {
	return chromedp.Search(fmt.Sprintf(`//tr[.//*[contains(@class,"person-email") and normalize-space()=%q]]//a[contains(@class,"person-name")]`, email))
}

// requestID is the id of the request page the tab shows.
func (b *tab) requestID() string {
	b.t.Helper()
	loc, err := b.location()
	if err != nil {
		b.fail("reading the location", err)
	}
	u, err := url.Parse(loc)
	if err != nil {
		b.t.Fatal(err)
	}
	id, ok := strings.CutPrefix(u.Path, "/requests/")
	if !ok || id == "" {
		b.t.Fatalf("%s: not a request page: %s", b.name, loc)
	}
	return id
}

// TestBrowserEndToEnd drives the reviewer UI of `approvals demo` in a real
// headless Chromium, as a reviewer would: sign-in through the OpenID
// Connect flow of the demo's provider, the queue, approving a request until
// the fake Graph has the account, denying another, signing out, and the 403
// page of a user without a role. Console errors (a CSP violation, a script
// error) fail it. It saves screenshots of the pages, at desktop and phone
// widths, in $APPROVALS_ARTIFACTS (artifacts/e2e at the repository root by
// default).
//
// It needs Chromium (Debian: apt-get install chromium; .ci/run installs
// it). $CHROMIUM names another binary; APPROVALS_SKIP_BROWSER=1 skips it.
func TestBrowserEndToEnd(t *testing.T) {
	chromium := chromiumPath(t)
	dir := artifactsDir(t)
	start := time.Now()
	d, _, _ := startDemo(t)
	t.Logf("demo up in %v", time.Since(start).Round(time.Millisecond))

	var browserLog logcapture.Buffer
	allocCtx, cancel := chromedp.NewExecAllocator(t.Context(),
		chromedp.ExecPath(chromium),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Headless,
		chromedp.NoSandbox, // CI runs as root
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-default-apps", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-breakpad", true),
		chromedp.Flag("disable-client-side-phishing-detection", true),
		chromedp.Flag("disable-domain-reliability", true),
		chromedp.Flag("disable-features", "Translate,OptimizationHints,MediaRouter,DialMediaRouteProvider,AutofillServerCommunication,CertificateTransparencyComponentUpdater"),
		chromedp.Flag("no-pings", true),
		chromedp.Flag("metrics-recording-only", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("password-store", "basic"),
		chromedp.Flag("force-color-profile", "srgb"),
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		// Loopback only: no host name resolves, so nothing leaves the
		// machine; the demo listens on 127.0.0.1.
		chromedp.Flag("host-resolver-rules", "MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost"),
		chromedp.CombinedOutput(&browserLog),
	)
	defer cancel()
	ctx, cancel := context.WithTimeout(allocCtx, browserSessionTimeout)
	defer cancel()
	ctx, cancel = chromedp.NewContext(ctx)
	defer cancel()
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("starting %s: %v; its output:\n%s", chromium, err, browserLog.String())
	}
	defer func() {
		if t.Failed() {
			t.Logf("browser output:\n%s", browserLog.String())
		}
	}()

	rob := &tab{t: t, ctx: ctx, dir: dir, name: "rob"}

	// Every console error and uncaught exception in Rob's tab fails the
	// test: a CSP violation shows up here.
	var consoleMu sync.Mutex
	var consoleErrors []string
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			// The page of a missing request is a 404 on purpose.
			if strings.Contains(m.URL, "/requests/"+missingRequest) {
				continue
			}
			if m.Type == chromedp.ConsoleError || m.IsException() {
				consoleMu.Lock()
				consoleErrors = append(consoleErrors, fmt.Sprintf("%s (%s:%d)", m.Text, m.URL, m.Line+1))
				consoleMu.Unlock()
			}
		}
	}()
	// The pages ask for confirmations in a dialog of their own: a native
	// one (window.confirm) is dismissed and fails the test.
	var nativeDialogs []string
	dialogs := chromedp.Events(ctx, page.JavascriptDialogOpening)
	go func() {
		for ev, err := range dialogs {
			if err != nil {
				return
			}
			consoleMu.Lock()
			nativeDialogs = append(nativeDialogs, ev.Message)
			consoleMu.Unlock()
			if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: false}); err != nil && ctx.Err() == nil {
				t.Errorf("dismissing the dialog %q: %v", ev.Message, err)
			}
		}
	}()

	// Sign in: the reviewer UI sends the browser to the provider, Rob picks
	// himself, and the callback lands him on the queue.
	rob.step("setting the desktop viewport", desktopViewport)
	if status := rob.signIn(d, "rob"); status != 200 {
		t.Fatalf("after signing in: HTTP %d", status)
	}
	if loc, _ := rob.location(); loc != d.PublicURL+"/" {
		t.Fatalf("after signing in the browser is at %s, want the queue %s/", loc, d.PublicURL)
	}
	if who := rob.text(".account .who-name"); who != "Rob Reviewer" {
		t.Fatalf("signed in as %q", who)
	}
	if got := rob.text("h1"); got != "Queue" {
		t.Fatalf("heading %q", got)
	}
	if tab := rob.text(`.tabs [aria-current="page"]`); !strings.HasPrefix(tab, "Pending") {
		t.Fatalf("current tab %q, want Pending", tab)
	}
	pending := rob.texts("tr.row-pending .person-email")
	for _, want := range []string{"johnsmith@outlook.com", "maria.garcia@gmail.com", "li.wei@example.cn"} {
		if !slices.Contains(pending, want) {
			t.Fatalf("pending rows %q, want %s among them", pending, want)
		}
	}
	if slices.Contains(pending, "ann.lee@partner.example") || slices.Contains(pending, "bot@spam.example") {
		t.Fatalf("pending rows %q include a request a rule decided", pending)
	}
	if n := rob.count(`.mainnav a[href="/invite"]`); n != 0 {
		t.Fatal("a reviewer without the admin role sees the Invite link")
	}
	// The script runs (under the CSP): bulk buttons wait for a selection.
	bulkDisabled := `Array.from(document.querySelectorAll('#bulk-form button[name="action"]'), b => b.disabled)`
	if got := eval[[]bool](rob, bulkDisabled); len(got) != 2 || !got[0] || !got[1] {
		t.Fatalf("bulk buttons disabled %v before a selection, want both", got)
	}
	rob.checkPage("queue")
	rob.step("selecting a request", chromedp.Click(chromedp.CSS(`#bulk-form input[name="id"]`)))
	if got := eval[[]bool](rob, bulkDisabled); len(got) != 2 || got[0] || got[1] {
		t.Fatalf("bulk buttons disabled %v after a selection, want neither", got)
	}
	if n := rob.text("[data-selected-count]"); n != "1" {
		t.Fatalf("selection count %q", n)
	}
	rob.step("clearing the selection", chromedp.Click(chromedp.CSS(`#bulk-form input[name="id"]`)))

	// The order is applied by the Apply button (or Enter), never by an
	// arrow key in the dropdown (WCAG 3.2.2).
	before, _ := rob.location()
	rob.step("choosing an order with the keyboard", chromedp.Focus(chromedp.ID("order")), chromedp.KeyEvent(kb.ArrowDown))
	time.Sleep(300 * time.Millisecond)
	if loc, _ := rob.location(); loc != before {
		t.Fatalf("an arrow key in the order dropdown loaded %s", loc)
	}
	if got := eval[string](rob, `document.activeElement.id`); got != "order" {
		t.Fatalf("after an arrow key the focus is on %q, want the order dropdown", got)
	}
	rob.load("applying the order with Enter", chromedp.KeyEvent(kb.Enter))
	if loc, _ := rob.location(); !strings.Contains(loc, "order=newest") {
		t.Fatalf("Enter in the order dropdown loaded %s, want the newest-first order", loc)
	}
	rob.load("back to the queue", chromedp.Navigate(d.PublicURL+"/"))

	// Approve John Smith (Facebook): provisioning creates the guest in the
	// fake Graph, and the request page says so.
	if status := rob.load("opening John Smith's request", chromedp.Click(queueRow("johnsmith@outlook.com"))); status != 200 {
		t.Fatalf("request page: HTTP %d", status)
	}
	johnID := rob.requestID()
	if h := rob.text("h1"); h != "John Smith" {
		t.Fatalf("request heading %q", h)
	}
	if s := rob.text(".request-head .pill"); s != "Pending" {
		t.Fatalf("request status %q, want Pending", s)
	}
	if idp := rob.text(".props"); !strings.Contains(idp, "Facebook") {
		t.Fatalf("details %q do not name Facebook", idp)
	}
	rob.checkPage("request-pending")

	rob.step("typing the approval note", chromedp.SendKeys(chromedp.ID("approve-reason"), "Known supplier, checked with purchasing"))
	if status := rob.load("approving", chromedp.Click(chromedp.CSS(`form[action$="/approve"] button[type="submit"]`))); status != 200 {
		t.Fatalf("after approving: HTTP %d", status)
	}
	if msg := rob.text(".flash-success"); !strings.Contains(msg, "Approved John Smith") {
		t.Fatalf("flash after approving: %q", msg)
	}
	rob.checkPage("queue-after-approve")
	if status := rob.load("following the flash link", chromedp.Click(chromedp.CSS(".flash-success a"))); status != 200 {
		t.Fatalf("request page: HTTP %d", status)
	}
	if id := rob.requestID(); id != johnID {
		t.Fatalf("the flash links to %s, want %s", id, johnID)
	}
	// The provisioning card's pill carries the state in its class.
	provState := func() string {
		return eval[string](rob, `((document.querySelector('[aria-labelledby="h-prov"] .pill') || {}).className || '').replace(/.*pill-prov-(\S+).*/, '$1')`)
	}
	var prov string
	for {
		prov = provState()
		if prov == "succeeded" || prov == "failed" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("provisioning still %q when the time ran out", prov)
		case <-time.After(150 * time.Millisecond):
		}
		rob.load("reloading the request page", chromedp.Reload())
	}
	if prov != "succeeded" {
		t.Fatalf("provisioning %s: %s", prov, rob.text(`[aria-labelledby="h-prov"]`))
	}
	if s := rob.texts(".request-head .pill"); len(s) != 2 || s[0] != "Approved" || s[1] != "Provisioned" {
		t.Fatalf("request status pills %q, want Approved, Provisioned", s)
	}
	objectID := eval[string](rob, `(() => { for (const d of document.querySelectorAll('[aria-labelledby="h-prov"] dl > div')) { if (d.querySelector('dt').textContent.trim() === 'Directory object id') return d.querySelector('dd').textContent.trim(); } return ''; })()`)
	u, ok := d.graph.User(objectID)
	if !ok || u.Mail != "johnsmith@outlook.com" || u.UserType != "Guest" {
		t.Fatalf("the page names directory object %q; the fake Graph has %+v (found %v)", objectID, u, ok)
	}
	if groups := d.graph.GroupsOf(u.ID); len(groups) != len(demoGroups) {
		t.Fatalf("the new guest is in groups %v, want %v", groups, demoGroups)
	}
	if by := rob.text(`[aria-labelledby="h-decision"] dl`); !strings.Contains(by, "Rob Reviewer") || !strings.Contains(by, "Known supplier") {
		t.Fatalf("decision card %q", by)
	}
	rob.checkPage("request-approved")

	// The approval told John Smith: once his account existed, the notifier
	// sent him the approved email with the sign-in link (a Facebook person
	// gets a guest user, not an invitation to redeem), and the
	// demo's Mail page shows it (the notifier works after the decision, so
	// the page is reloaded until it is there).
	var approvedMail string
	for approvedMail == "" {
		rob.load("opening the demo's Mail page", chromedp.Navigate(d.PublicURL+"/demo/mail"))
		approvedMail = eval[string](rob, `(() => { for (const tr of document.querySelectorAll('#demo-mails tbody tr')) { const td = tr.querySelectorAll('td'); if (td[1].textContent.includes('johnsmith@outlook.com') && td[0].textContent.includes('Your account is ready')) return td[0].querySelector('a').getAttribute('href'); } return ''; })()`)
		if approvedMail != "" {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("no approved email to johnsmith@outlook.com on the Mail page; it lists %q", rob.texts("#demo-mails tbody tr"))
		case <-time.After(200 * time.Millisecond):
		}
	}
	rob.load("opening the approved email", chromedp.Navigate(d.PublicURL+approvedMail))
	if text := rob.text("#demo-mail-text"); !strings.Contains(text, "Sign in: https://") || strings.Contains(text, "redeem") {
		t.Fatalf("the approved email's text part has no sign-in link:\n%s", text)
	}
	if n := rob.count(`#demo-mails tbody tr`); n < 2 {
		t.Fatalf("the Mail page lists %d emails; the reviewer alerts and the received emails are missing", n)
	}
	rob.checkPage("demo-mail-approved")
	rob.load("going back to John Smith's request", chromedp.Navigate(d.PublicURL+"/requests/"+johnID))

	// Deny María García: the form wants a reason and a confirmation.
	rob.load("going back to the queue", chromedp.Click(chromedp.CSS(".breadcrumb a")))
	if rob.count(`tr.row-pending`) == 0 || slices.Contains(rob.texts("tr.row-pending .person-email"), "johnsmith@outlook.com") {
		t.Fatal("the approved request is still in the pending queue")
	}
	rob.load("opening María García's request", chromedp.Click(queueRow("maria.garcia@gmail.com")))
	mariaID := rob.requestID()
	if rob.count(".claim-extension") == 0 {
		t.Fatal("the extension attribute is not marked")
	}
	rob.step("typing the reason for denying", chromedp.SendKeys(chromedp.ID("deny-reason"), "Not a known supplier"))
	// Deny asks for confirmation in an in-page dialog: Cancel keeps the
	// request pending, the dialog's Deny denies it.
	rob.step("asking to deny", chromedp.Click(chromedp.CSS(`form[action$="/deny"] button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("dialog.confirm[open]")))
	if msg := rob.text("dialog.confirm[open]"); !strings.Contains(msg, "Deny this request?") {
		t.Fatalf("confirmation dialog %q", msg)
	}
	if role := eval[string](rob, `document.activeElement.closest("dialog") ? document.activeElement.textContent.trim() : ""`); role != "Cancel" {
		t.Fatalf("the confirmation dialog has focus on %q, want its Cancel button", role)
	}
	rob.checkPage("request-deny-dialog")
	rob.step("cancelling", chromedp.Click(chromedp.CSS(`dialog.confirm[open] button[value="cancel"]`)), chromedp.WaitNotPresent(chromedp.CSS("dialog.confirm[open]")))
	// By keyboard: Escape closes the dialog and the focus goes back to Deny.
	rob.step("asking to deny by keyboard", chromedp.Focus(chromedp.CSS(`form[action$="/deny"] button[type="submit"]`)), chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS("dialog.confirm[open]")), chromedp.KeyEvent(kb.Escape), chromedp.WaitNotPresent(chromedp.CSS("dialog.confirm[open]")))
	if got := eval[string](rob, `document.activeElement.closest('form[action$="/deny"]') ? document.activeElement.textContent.trim() : document.activeElement.tagName`); got != "Deny" {
		t.Fatalf("after Escape the focus is on %q, want the Deny button", got)
	}
	if s := rob.text(".request-head .pill"); s != "Pending" {
		t.Fatalf("after cancelling the request is %q, want Pending", s)
	}
	rob.step("asking to deny again", chromedp.Click(chromedp.CSS(`form[action$="/deny"] button[type="submit"]`)), chromedp.WaitVisible(chromedp.CSS("dialog.confirm[open]")))
	// The dialog submits the form from its close handler; the redirected
	// page's success flash (shown only after the denial is stored) is what
	// to wait for, rather than a navigation the click itself may not start.
	rob.step("denying", chromedp.Click(chromedp.CSS(`dialog.confirm[open] button[value="confirm"]`)),
		chromedp.WaitVisible(chromedp.CSS(".flash-success")))
	if msg := rob.text(".flash-success"); !strings.Contains(msg, "Denied María García") {
		t.Fatalf("flash after denying: %q", msg)
	}
	rob.load("opening the denied request", chromedp.Click(chromedp.CSS(".flash-success a")))
	if id := rob.requestID(); id != mariaID {
		t.Fatalf("the flash links to %s, want %s", id, mariaID)
	}
	if s := rob.text(".request-head .pill"); s != "Denied" {
		t.Fatalf("request status %q, want Denied", s)
	}
	if dec := rob.text(`[aria-labelledby="h-decision"] dl`); !strings.Contains(dec, "Not a known supplier") || !strings.Contains(dec, "Rob Reviewer") {
		t.Fatalf("decision card %q", dec)
	}
	if rob.count(`form[action$="/reopen"]`) != 0 {
		t.Fatal("a reviewer without the admin role is offered to reopen")
	}
	rob.checkPage("request-denied")

	// The admin API agrees with the pages.
	for id, want := range map[string]string{johnID: "approved", mariaID: "denied"} {
		code, body := call(t, "GET", d.PublicURL+"/api/v1/requests/"+url.PathEscape(id), "Bearer "+d.APIKey, "")
		var r struct {
			Status   string `json:"status"`
			Decision struct {
				By string `json:"by"`
			} `json:"decision"`
		}
		if err := json.Unmarshal(body, &r); err != nil || code != 200 {
			t.Fatalf("GET request %s: %d %s", id, code, body)
		}
		if r.Status != want || r.Decision.By != "Rob Reviewer" {
			t.Fatalf("request %s through the API: %s", id, body)
		}
	}

	// The All tab lists pending requests first, then the decided ones with
	// who decided.
	rob.load("going back to the queue", chromedp.Click(chromedp.CSS(".breadcrumb a")))
	rob.load("opening the All tab", chromedp.Click(chromedp.CSS(".tabs a.tab-all")))
	if n, want := rob.count("tr.row"), len(samples())+demoExternalIDSamples; n != want {
		t.Fatalf("the All tab lists %d requests, want %d", n, want)
	}
	if dec := strings.Join(rob.texts("tr.row-denied td.col-outcome"), " | "); !strings.Contains(dec, "Rob Reviewer") || !strings.Contains(strings.ToLower(dec), "rule") {
		t.Fatalf("decisions on the All tab: %q", dec)
	}
	rob.checkPage("queue-all")

	// The Denied tab shows why each request was denied.
	rob.load("opening the Denied tab", chromedp.Click(chromedp.CSS(".tabs a.tab-denied")))
	if reasons := strings.Join(rob.texts("tr.row-denied .outcome-reason"), " | "); !strings.Contains(reasons, "Not a known supplier") {
		t.Fatalf("reasons on the Denied tab: %q", reasons)
	}
	rob.checkPage("queue-denied")
	rob.load("opening the dashboard", chromedp.Click(chromedp.CSS(`.mainnav a[href="/dashboard"]`)))
	if cur := rob.text(`.mainnav [aria-current="page"]`); cur != "Dashboard" {
		t.Fatalf("the navigation highlights %q on the dashboard", cur)
	}
	rob.checkPage("dashboard")
	rob.load("opening a request that does not exist", chromedp.Navigate(d.PublicURL+"/requests/"+missingRequest))
	if h := rob.text("h1"); h != "Request not found" {
		t.Fatalf("the page of a missing request says %q", h)
	}
	rob.checkPage("request-not-found")
	rob.load("going back to the queue", chromedp.Navigate(d.PublicURL+"/"))

	// Signing out ends the session: the queue asks for a sign-in again.
	rob.load("signing out", chromedp.Click(chromedp.CSS(`form.signout button`)))
	if loc, _ := rob.location(); !strings.HasPrefix(loc, d.PublicURL+"/auth/signed-out") {
		t.Fatalf("after signing out the browser is at %s", loc)
	}
	rob.load("opening the queue signed out", chromedp.Navigate(d.PublicURL+"/"))
	if loc, _ := rob.location(); !strings.HasPrefix(loc, d.idp.Issuer()) {
		t.Fatalf("signed out, the queue did not ask for a sign-in: at %s", loc)
	}

	// Nora, in a browser context of her own, has no role: a 403 page says
	// which role she needs and how an administrator grants it.
	nora, cancelNora := rob.newBrowser("nora")
	defer cancelNora()
	if status := nora.signIn(d, "nora"); status != 403 {
		t.Fatalf("Nora got HTTP %d, want 403", status)
	}
	if code := nora.text(".status-code"); !strings.Contains(code, "403") {
		t.Fatalf("403 page says %q", code)
	}
	if role := nora.text("code.role"); role != "Approvals.Reviewer" {
		t.Fatalf("the 403 page names the role %q", role)
	}
	if n := nora.count(".mainnav"); n != 0 {
		t.Fatal("the 403 page shows the navigation")
	}
	nora.checkPage("forbidden")

	// Ada, an administrator, in a browser of her own in Tokyo: the admin
	// pages, an invitation, the audit trail, local times.
	ada, cancelAda := rob.newBrowser("ada")
	defer cancelAda()
	if _, err := chromedp.Call(ada.ctx, emulation.SetTimezoneOverride, emulation.SetTimezoneOverrideParams{TimezoneID: "Asia/Tokyo"}); err != nil {
		t.Fatalf("setting the time zone: %v", err)
	}
	if status := ada.signIn(d, "ada"); status != 200 {
		t.Fatalf("Ada got HTTP %d", status)
	}

	// An invitation of someone with a long name and address.
	ada.load("opening the invite page", chromedp.Click(chromedp.CSS(`.mainnav a[href="/invite"]`)))
	if cur := ada.text(`.mainnav [aria-current="page"]`); cur != "Invite" {
		t.Fatalf("the navigation highlights %q on the invite page", cur)
	}
	ada.checkPage("invite")
	// A form with mistakes comes back with the errors by their fields.
	ada.step("clearing the redirect URL", chromedp.SetValue(chromedp.ID("redirect_url"), "not a url"))
	if status := ada.load("inviting nobody", chromedp.Click(chromedp.CSS(`form.form-card button[type="submit"]`))); status != 422 {
		t.Fatalf("an invitation without an address: HTTP %d, want 422", status)
	}
	if n := ada.count(".field-error"); n == 0 {
		t.Fatal("the invite form shows no errors")
	}
	ada.checkPage("invite-errors")
	ada.step("restoring the redirect URL", chromedp.SetValue(chromedp.ID("redirect_url"), "https://myapps.microsoft.com"))
	const longName = "Alexandra Konstantinopoulou-Wetherspoon de la Cruz Montgomery-Featherstonehaugh"
	const longEmail = "alexandra.konstantinopoulou-wetherspoon.delacruz@partners-of-contoso-international.example"
	ada.step("filling in the invitation",
		chromedp.SendKeys(chromedp.ID("email"), longEmail),
		chromedp.SendKeys(chromedp.ID("display_name"), longName),
		chromedp.SendKeys(chromedp.ID("attributes"), "jobTitle=Principal supply-chain compliance and sustainability auditor\ncompanyName=Konstantinopoulou Wetherspoon Partners International"),
	)
	if status := ada.load("inviting", chromedp.Click(chromedp.CSS(`form.form-card button[type="submit"]`))); status != 200 {
		t.Fatalf("after inviting: HTTP %d", status)
	}
	invitedID := ada.requestID()
	if h := ada.text("h1"); h != longName {
		t.Fatalf("the invited person's page is headed %q", h)
	}
	ada.checkPage("request-invited")

	// Sam Taylor is in the directory already: the invite page offers his
	// account.
	ada.load("opening the invite page", chromedp.Click(chromedp.CSS(`.mainnav a[href="/invite"]`)))
	ada.step("filling in Sam Taylor", chromedp.SendKeys(chromedp.ID("email"), "sam.taylor@outlook.com"))
	ada.load("looking Sam Taylor up", chromedp.Click(chromedp.CSS(`form.form-card button[type="submit"]`)))
	if n := ada.count("tr.match"); n == 0 {
		t.Fatal("the invite page found no directory match for Sam Taylor")
	}
	ada.checkPage("invite-matches")

	// The queue of an administrator, with the long name in it, and local
	// times with UTC on hover.
	ada.load("opening the queue", chromedp.Click(chromedp.CSS(`.mainnav a[href="/"]`)))
	ada.load("opening the All tab", chromedp.Click(chromedp.CSS(".tabs a.tab-all")))
	ada.checkPage("queue-admin")
	ada.load("opening John Smith's request", chromedp.Navigate(d.PublicURL+"/requests/"+url.PathEscape(johnID)))
	got := eval[[]string](ada, `(() => { const t = document.querySelector(".props time[datetime]"); return [t.getAttribute("datetime"), t.textContent.trim(), t.title]; })()`)
	at, err := time.Parse(time.RFC3339, got[0])
	if err != nil {
		t.Fatalf("time element %q: %v", got, err)
	}
	tokyo := at.In(time.FixedZone("JST", 9*3600))
	if !strings.Contains(got[1], tokyo.Format("15:04")) || !strings.Contains(got[1], tokyo.Format("2006")) {
		t.Errorf("a time shows %q in Tokyo, want the local time %s", got[1], tokyo.Format("2006-01-02 15:04"))
	}
	if want := at.UTC().Format("2 Jan 2006 15:04 UTC"); !strings.Contains(got[2], want) {
		t.Errorf("a time's hover text is %q, want the UTC time %q in it", got[2], want)
	}

	// An export through the admin API is an admin event in the audit trail.
	if code, body := call(t, "GET", d.PublicURL+"/api/v1/decisions/export?format=json", "Bearer "+d.APIKey, ""); code != 200 {
		t.Fatalf("export through the API: %d %s", code, body)
	}
	ada.load("opening the export page", chromedp.Navigate(d.PublicURL+"/export"))
	ada.checkPage("export")

	// The audit trail names the people, links to their requests and
	// labels every event.
	ada.load("opening the audit trail", chromedp.Click(chromedp.CSS(`.mainnav a[href="/audit"]`)))
	if cur := ada.text(`.mainnav [aria-current="page"]`); cur != "Audit" {
		t.Fatalf("the navigation highlights %q on the audit trail", cur)
	}
	people := strings.Join(ada.texts(".audit-table .audit-person"), " | ")
	for _, want := range []string{"John Smith johnsmith@outlook.com", "María García maria.garcia@gmail.com", longName} {
		if !strings.Contains(people, want) {
			t.Errorf("the audit trail names %q, want %q among them", people, want)
		}
	}
	if n := ada.count(`.audit-table a.person-name[href^="/requests/` + johnID + `?back="]`); n == 0 {
		t.Error("the audit trail does not link to John Smith's request")
	}
	for _, l := range ada.texts(".audit-table .event-label") {
		if strings.Contains(l, ".") || strings.Contains(l, "_") {
			t.Errorf("an audit event has no label: %q", l)
		}
	}
	if labels := ada.texts(".audit-table .event-label"); !slices.Contains(labels, "Decisions exported") {
		t.Errorf("audit events %q, want the export among them", labels)
	}
	ada.checkPage("audit")
	ada.load("opening the audit trail of the invitation", chromedp.Navigate(d.PublicURL+"/audit?since=2000-01-01&request="+url.QueryEscape(invitedID)))
	ada.checkPage("audit-invitation")

	ada.load("signing out", chromedp.Click(chromedp.CSS(`form.signout button`)))
	ada.checkPage("signed-out")

	consoleMu.Lock()
	defer consoleMu.Unlock()
	if len(nativeDialogs) > 0 {
		t.Errorf("the pages opened native dialogs: %q", nativeDialogs)
	}
	if len(consoleErrors) > 0 {
		t.Fatalf("console errors in the reviewer UI:\n%s", strings.Join(consoleErrors, "\n"))
	}
	t.Logf("the whole test took %v", time.Since(start).Round(time.Millisecond))
	if err := ctx.Err(); errors.Is(err, context.DeadlineExceeded) {
		t.Fatal("the browser session ran out of time")
	}
}
