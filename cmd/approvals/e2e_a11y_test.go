package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/chromedp/chromedp"
)

// The browser test checks every page it visits with axe-core, the
// accessibility engine of Deque, installed from npm into testdata/axe
// (package.json and package-lock.json are committed, node_modules is not).

// axeDir holds the package.json that pins axe-core.
const axeDir = "testdata/axe"

// axeTags are the rule sets every page must pass: WCAG 2.1 A and AA and
// axe's best practices.
var axeTags = []string{"wcag2a", "wcag2aa", "wcag21a", "wcag21aa", "best-practice"}

var axeSource = struct {
	once sync.Once
	src  string
	err  error
}{}

// loadAxe returns the source of axe.min.js, running `npm ci` in testdata/axe
// first when node_modules is missing (a fresh clone, CI).
func loadAxe(t *testing.T) string {
	t.Helper()
	axeSource.once.Do(func() {
		path := filepath.Join(axeDir, "node_modules", "axe-core", "axe.min.js")
		if _, err := os.Stat(path); err != nil {
			npm, err := exec.LookPath("npm")
			if err != nil {
				axeSource.err = errors.New("the browser test checks accessibility with axe-core, installed from npm into cmd/approvals/testdata/axe, " +
					"and npm is not installed: run `apt-get install npm` (Debian), or `npm ci` in cmd/approvals/testdata/axe on a machine that has it; " +
					"APPROVALS_SKIP_BROWSER=1 skips the browser test")
				return
			}
			cmd := exec.Command(npm, "ci", "--no-audit", "--no-fund", "--loglevel=error")
			cmd.Dir = axeDir
			if out, err := cmd.CombinedOutput(); err != nil {
				axeSource.err = fmt.Errorf("installing axe-core with `npm ci` in cmd/approvals/testdata/axe: %v\n%s", err, out)
				return
			}
		}
		b, err := os.ReadFile(path)
		if err != nil {
			axeSource.err = fmt.Errorf("axe-core: %v (run `npm ci` in cmd/approvals/testdata/axe)", err)
			return
		}
		axeSource.src = string(b)
	})
	if axeSource.err != nil {
		t.Fatal(axeSource.err)
	}
	return axeSource.src
}

// axeViolation is one failed rule of an axe run, with the elements that
// fail it.
type axeViolation struct {
	ID     string `json:"id"`
	Impact string `json:"impact"`
	Help   string `json:"help"`
	Nodes  []struct {
		Target         []any  `json:"target"`
		FailureSummary string `json:"failureSummary"`
	} `json:"nodes"`
}

func (v axeViolation) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s): %s", v.ID, v.Impact, v.Help)
	for i, n := range v.Nodes {
		if i == 5 {
			fmt.Fprintf(&b, "\n      ... and %d more", len(v.Nodes)-5)
			break
		}
		fmt.Fprintf(&b, "\n      %v: %s", n.Target, strings.ReplaceAll(n.FailureSummary, "\n", " "))
	}
	return b.String()
}

// axe runs axe-core on the page the tab shows and returns the violations.
func (b *tab) axe() []axeViolation {
	b.t.Helper()
	src := loadAxe(b.t)
	if !eval[bool](b, `typeof window.axe === "object"`) {
		// Through the DevTools protocol, so the page's Content-Security-Policy
		// does not apply.
		b.step("loading axe-core", chromedp.Evaluate[chromedp.Void](src+"\n;undefined"))
	}
	tags, _ := json.Marshal(axeTags)
	js := fmt.Sprintf(`axe.run(document, {runOnly: {type: "tag", values: %s}, resultTypes: ["violations"]}).then(r => JSON.stringify(r.violations))`, tags)
	out := evalAwait[string](b, js)
	var vs []axeViolation
	if err := json.Unmarshal([]byte(out), &vs); err != nil {
		b.t.Fatalf("axe result: %v", err)
	}
	return vs
}

// evalAwait evaluates a JavaScript expression that returns a promise and
// returns what it resolves to.
func evalAwait[T any](b *tab, expr string) T {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		b.fail("evaluating "+expr[:min(len(expr), 60)], err)
	}
	return v
}

// overflowJS lists what does not fit across the page: a document that
// scrolls sideways, any element whose content is wider than its box
// (clipped, scrolled or spilling out), and any element that sticks out of
// its parent.
const overflowJS = `(() => {
  const out = [];
  const de = document.documentElement;
  if (de.scrollWidth > de.clientWidth) out.push("the page scrolls sideways: " + de.scrollWidth + "px of content in a " + de.clientWidth + "px window");
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "");
  const path = el => { const p = []; for (let e = el; e && e !== document.body && p.length < 4; e = e.parentElement) p.unshift(name(e)); return p.join(" > "); };
  for (const el of document.body.querySelectorAll("*")) {
    if (el.closest("svg, .visually-hidden, [hidden], dialog:not([open]), script, style, option")) continue;
    if (el.matches("input, select, textarea")) continue; // their text scrolls inside them
    const cs = getComputedStyle(el);
    if (cs.display === "none" || cs.visibility === "hidden") continue;
    if (el.clientWidth > 0 && el.scrollWidth > el.clientWidth + 1)
      out.push(path(el) + ": content " + el.scrollWidth + "px wide in a " + el.clientWidth + "px box");
    let p = el.parentElement;
    while (p && p !== document.body && getComputedStyle(p).display === "contents") p = p.parentElement;
    if (!p || cs.position === "absolute" || cs.position === "fixed") continue;
    const r = el.getBoundingClientRect(), pr = p.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    if (r.right > pr.right + 1 || r.left < pr.left - 1)
      out.push(path(el) + ": " + Math.round(r.left) + "–" + Math.round(r.right) + "px sticks out of its parent (" + Math.round(pr.left) + "–" + Math.round(pr.right) + "px)");
  }
  return out.slice(0, 20);
})()`

// focusClipJS lists focusable elements whose focus ring (3px outline, 2px
// offset) a scrolling or clipping ancestor would cut off.
const focusClipJS = `(() => {
  const out = [];
  const ring = 5;
  const name = el => el.tagName.toLowerCase() + (el.id ? "#" + el.id : "") +
    (typeof el.className === "string" && el.className.trim() ? "." + el.className.trim().split(/\s+/).join(".") : "");
  for (const el of document.querySelectorAll("a[href], button, input, select, textarea, summary, [tabindex]")) {
    if (el.closest("[hidden], dialog:not([open])") || el.tabIndex < 0 || el.disabled) continue;
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.height === 0) continue;
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const cs = getComputedStyle(a);
      if (cs.overflowX === "visible" && cs.overflowY === "visible") continue;
      const ar = a.getBoundingClientRect();
      if (r.left - ring < ar.left || r.right + ring > ar.right || r.top - ring < ar.top || r.bottom + ring > ar.bottom) {
        out.push(name(el) + " (" + (el.innerText || el.value || "").trim().slice(0, 30) + ") in " + name(a) + " (overflow " + cs.overflowX + "/" + cs.overflowY + ")");
        break;
      }
    }
  }
  return out.slice(0, 20);
})()`

// checkPage checks the page the tab shows at desktop and phone widths: no
// overflow, no focus ring cut off, zero axe violations; and saves a
// screenshot of each as name-desktop.png and name-phone.png. It leaves the
// tab at the desktop width.
func (b *tab) checkPage(name string) {
	b.t.Helper()
	for _, vp := range []struct {
		suffix string
		set    chromedp.Action[chromedp.Void]
	}{{"desktop", desktopViewport}, {"phone", phoneViewport}} {
		b.step("setting the "+vp.suffix+" viewport", vp.set)
		where := name + " at " + vp.suffix + " width"
		if problems := eval[[]string](b, overflowJS); len(problems) > 0 {
			b.t.Errorf("%s: does not fit:\n  %s", where, strings.Join(problems, "\n  "))
		}
		if problems := eval[[]string](b, focusClipJS); len(problems) > 0 {
			b.t.Errorf("%s: focus rings cut off:\n  %s", where, strings.Join(problems, "\n  "))
		}
		if vs := b.axe(); len(vs) > 0 {
			msgs := make([]string, len(vs))
			for i, v := range vs {
				msgs[i] = v.String()
			}
			b.t.Errorf("%s: %d axe-core violations:\n    %s", where, len(vs), strings.Join(msgs, "\n    "))
		}
		b.shot(name + "-" + vp.suffix)
	}
	b.step("setting the desktop viewport", desktopViewport)
}
