package web

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/approvals-dev/approvals/approvals"
	"github.com/approvals-dev/approvals/store/memory"
)

func TestNiceScale(t *testing.T) {
	for _, tc := range []struct {
		max       float64
		integer   bool
		step, top float64
	}{
		{0, true, 1, 1},
		{3, true, 1, 3},
		{7, true, 2, 8},
		{9, true, 5, 10},
		{43, true, 20, 60},
		{1234, true, 500, 1500},
		{0.3, false, 0.1, 0.30000000000000004},
		{2.5, false, 1, 3},
		{math.NaN(), true, 1, 1},
	} {
		step, top := niceScale(tc.max, tc.integer)
		if step != tc.step || top != tc.top {
			t.Errorf("niceScale(%v) = %v, %v; want %v, %v", tc.max, step, top, tc.step, tc.top)
		}
	}
}

func TestBarChartGeometry(t *testing.T) {
	ch := barChart("c", "T", "D", []string{"a", "b", "c"}, []series{
		{Name: "Approved", Class: "s-approved", Values: []float64{2, 0, 4}},
		{Name: "Denied", Class: "s-denied", Values: []float64{1, 0, 0}},
	}, 1)
	if len(ch.Bars) != 3 {
		t.Fatalf("%d bars", len(ch.Bars))
	}
	bottom := ch.Plot.Bottom()
	// Stacked: the denied bar of "a" sits on its approved bar.
	a1, a2 := ch.Bars[0], ch.Bars[1]
	if a1.Y+a1.H != bottom || math.Abs(a2.Y+a2.H-a1.Y) > 0.11 {
		t.Errorf("stacking: %+v %+v bottom %v", a1, a2, bottom)
	}
	// The tallest stack (4) reaches the top of the 0..4 axis.
	if c := ch.Bars[2]; c.Y != ch.Plot.Y || c.Title != "c: 4 approved" {
		t.Errorf("tallest bar %+v", c)
	}
	if len(ch.Legend) != 2 || len(ch.Table.Rows) != 3 || strings.Join(ch.Table.Rows[0], ",") != "a,2,1" {
		t.Errorf("legend %v table %v", ch.Legend, ch.Table.Rows)
	}
	line := lineChart("l", "T", "D", []string{"a", "b", "c"}, series{Name: "h", Class: "s", Values: []float64{1, math.NaN(), 3}}, " h", 1)
	if len(line.Points) != 2 || line.Lines[0] != "M"+formatCoord(line.Points[0].X)+" "+formatCoord(line.Points[0].Y)+" M"+formatCoord(line.Points[1].X)+" "+formatCoord(line.Points[1].Y) {
		t.Errorf("line with a gap: %q", line.Lines)
	}
	if line.Table.Rows[1][1] != "–" {
		t.Errorf("gap in the table: %v", line.Table.Rows[1])
	}
}

func TestFormatting(t *testing.T) {
	now := time.Date(2026, 11, 21, 9, 0, 0, 0, time.UTC)
	for in, want := range map[int]string{0: "0", 999: "999", 1000: "1,000", 1234567: "1,234,567", -4500: "-4,500"} {
		if got := formatInt(in); got != want {
			t.Errorf("formatInt(%d) = %q", in, got)
		}
	}
	for d, want := range map[time.Duration]string{30 * time.Second: "just now", 5 * time.Minute: "5 min ago", 47 * time.Hour: "47 h ago", 72 * time.Hour: "3 days ago", -2 * time.Hour: "in 2 h"} {
		if got := ago(now.Add(-d), now); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
	if got := initials("ada  lovelace king"); got != "AL" {
		t.Errorf("initials %q", got)
	}
	for k, want := range map[string][2]string{
		"extension_2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00_Role": {"2d3a8b0ef8c44b6c9a1e5a3e9c4d1f00", "Role"},
		"extension_Role":  {"", "Role"},
		"extension_a_b_c": {"", "a_b_c"},
	} {
		app, name, ok := splitExtension(k)
		if !ok || app != want[0] || name != want[1] {
			t.Errorf("splitExtension(%q) = %q %q %v", k, app, name, ok)
		}
	}
	if _, _, ok := splitExtension("city"); ok {
		t.Error("city is an extension")
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/": "/", "/dashboard?x=1": "/dashboard?x=1", "": "/", "https://evil.example/": "/", "//evil.example/x": "/",
		`/\evil.example`: "/", "/auth/login?next=/": "/", "javascript:alert(1)": "/", "dashboard": "/",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestScanResumesMidPage checks that a scan stopped inside a store page
// resumes after the last row it read, across page boundaries.
func TestScanResumesMidPage(t *testing.T) {
	st := memory.New(nil)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := range 23 {
		if _, _, err := st.Create(ctx, &approvals.Request{Email: fmt.Sprintf("u%02d@x.com", i), Status: approvals.StatusPending, CreatedAt: t0.Add(time.Duration(i) * time.Minute)}, nil); err != nil {
			t.Fatal(err)
		}
	}
	odd := func(r *approvals.Request) bool { var n int; fmt.Sscanf(r.Email, "u%02d@", &n); return n%2 == 1 }
	q := approvals.ListQuery{Order: approvals.OldestFirst}
	var got []string
	pos := scanPos{Phase: "x"}
	for range 20 {
		res, err := scan(ctx, st, q, pos, 5, 3, 100, odd)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range res.Kept {
			got = append(got, r.Email[:3])
		}
		if res.End {
			break
		}
		if res.Next.Phase != "x" {
			t.Fatalf("phase lost: %+v", res.Next)
		}
		back, err := decodeScanPos(res.Next.encode())
		if err != nil || back != res.Next {
			t.Fatalf("cursor round trip: %+v %v", back, err)
		}
		pos = back
	}
	if strings.Join(got, ",") != "u01,u03,u05,u07,u09,u11,u13,u15,u17,u19,u21" {
		t.Errorf("scanned %v", got)
	}
	// The budget stops a scan that finds nothing.
	res, err := scan(ctx, st, q, scanPos{}, 5, 3, 7, func(*approvals.Request) bool { return false })
	if err != nil || res.Read != 7 || res.End || len(res.Kept) != 0 {
		t.Errorf("budget: %+v %v", res, err)
	}
	if _, err := decodeScanPos("!!"); err == nil {
		t.Error("decoded garbage")
	}
}
