package web

import (
	"math"
	"strconv"
	"strings"
)

// Charts are drawn on the server as inline SVG: Go computes the geometry,
// a template (partials/chart.html) writes the elements, and app.css colours
// them by class, so the Content-Security-Policy needs no inline style. Each
// chart carries a <title>, a <desc> and its numbers as a table for screen
// readers and for anyone who prefers to read them.

// chart is the geometry of one SVG chart, in viewBox units.
type chart struct {
	ID, Title, Desc string
	W, H            float64
	Plot            box
	// Grid holds the y of each horizontal grid line; Axis is the base line.
	Grid      []float64
	Axis      line
	Labels    []label
	Bars      []bar
	Lines     []string // SVG path data
	LineClass string
	Points    []bar // circles: X, Y are the centre
	Legend    []legendItem
	Table     dataTable
}

type box struct{ X, Y, W, H float64 }

// Right and Bottom are the plot area's far edges.
func (b box) Right() float64  { return round1(b.X + b.W) }
func (b box) Bottom() float64 { return round1(b.Y + b.H) }

type line struct{ X1, Y1, X2, Y2 float64 }

// label is a text in the chart; Anchor is the SVG text-anchor.
type label struct {
	X, Y   float64
	Text   string
	Anchor string
}

type bar struct {
	X, Y, W, H float64
	Class      string
	Title      string
}

type legendItem struct{ Class, Label string }

type dataTable struct {
	Head []string
	Rows [][]string
}

// series is one set of values drawn in a chart.
type series struct {
	Name   string
	Class  string
	Values []float64 // NaN: no value (a gap in a line)
}

const (
	chartW      = 640.0
	chartH      = 240.0
	marginLeft  = 64.0
	marginRight = 12.0
	marginTop   = 12.0
	marginBot   = 30.0
)

func round1(x float64) float64 { return math.Round(x*10) / 10 }

// niceScale returns a step and top for an axis from 0 to at least max,
// with about four intervals on 1-2-5 steps; integer axes step by whole
// numbers.
func niceScale(max float64, integer bool) (step, top float64) {
	if max <= 0 || math.IsNaN(max) {
		max = 1
	}
	raw := max / 4
	mag := math.Pow(10, math.Floor(math.Log10(raw)))
	switch n := raw / mag; {
	case n <= 1:
		step = mag
	case n <= 2:
		step = 2 * mag
	case n <= 5:
		step = 5 * mag
	default:
		step = 10 * mag
	}
	if integer && step < 1 {
		step = 1
	}
	return step, math.Ceil(max/step) * step
}

func formatNumber(x float64) string {
	if x == math.Trunc(x) {
		return formatInt(int(x))
	}
	return strconv.FormatFloat(x, 'f', 1, 64)
}

func newChart(id, title, desc string, plot box) *chart {
	return &chart{ID: id, Title: title, Desc: desc, W: chartW, H: chartH, Plot: plot,
		Axis: line{X1: plot.X, Y1: plot.Bottom(), X2: plot.Right(), Y2: plot.Bottom()}}
}

// columnPlot is the plot area of charts with a value axis on the left.
var columnPlot = box{X: marginLeft, Y: marginTop, W: chartW - marginLeft - marginRight, H: chartH - marginTop - marginBot}

// yAxis sets the ticks of a vertical value axis and returns the scale.
func (ch *chart) yAxis(max float64, integer bool, unit string) func(float64) float64 {
	step, top := niceScale(max, integer)
	for v := 0.0; v <= top+step/2; v += step {
		y := round1(ch.Plot.Y + ch.Plot.H - v/top*ch.Plot.H)
		ch.Grid = append(ch.Grid, y)
		ch.Labels = append(ch.Labels, label{X: ch.Plot.X - 6, Y: y + 4, Text: formatNumber(v) + unit, Anchor: "end"})
	}
	return func(v float64) float64 { return v / top * ch.Plot.H }
}

// xLabels labels every k-th category, counting back from the last (today),
// so that labels do not collide.
func (ch *chart) xLabels(labels []string, every int) {
	band := ch.Plot.W / float64(len(labels))
	for i, l := range labels {
		if (len(labels)-1-i)%every == 0 {
			ch.Labels = append(ch.Labels, label{X: round1(ch.Plot.X + band*(float64(i)+0.5)), Y: ch.Plot.Bottom() + 18, Text: l, Anchor: "middle"})
		}
	}
}

// table fills the accessible data table.
func (ch *chart) table(first string, labels []string, ss []series, unit string) {
	ch.Table.Head = []string{first}
	for _, s := range ss {
		ch.Table.Head = append(ch.Table.Head, s.Name)
	}
	for i, l := range labels {
		row := []string{l}
		for _, s := range ss {
			if math.IsNaN(s.Values[i]) {
				row = append(row, "–")
			} else {
				row = append(row, formatNumber(s.Values[i])+unit)
			}
		}
		ch.Table.Rows = append(ch.Table.Rows, row)
	}
}

// barChart draws series as bars per category, stacked.
func barChart(id, title, desc string, labels []string, ss []series, labelEvery int) *chart {
	ch := newChart(id, title, desc, columnPlot)
	max := 0.0
	for i := range labels {
		sum := 0.0
		for _, s := range ss {
			sum += s.Values[i]
		}
		max = math.Max(max, sum)
	}
	scale := ch.yAxis(max, true, "")
	ch.xLabels(labels, labelEvery)
	band := ch.Plot.W / float64(len(labels))
	w := math.Max(band*0.72, 1)
	for i, l := range labels {
		base := ch.Plot.Y + ch.Plot.H
		for _, s := range ss {
			v := s.Values[i]
			if v <= 0 || math.IsNaN(v) {
				continue
			}
			h := scale(v)
			base -= h
			ch.Bars = append(ch.Bars, bar{X: round1(ch.Plot.X + band*float64(i) + (band-w)/2), Y: round1(base), W: round1(w), H: round1(h),
				Class: s.Class, Title: l + ": " + formatNumber(v) + " " + strings.ToLower(s.Name)})
		}
	}
	if len(ss) > 1 {
		for _, s := range ss {
			ch.Legend = append(ch.Legend, legendItem{Class: s.Class, Label: s.Name})
		}
	}
	ch.table("Day", labels, ss, "")
	return ch
}

// hbarChart draws one series as horizontal bars, a category per row.
func hbarChart(id, title, desc string, labels []string, s series) *chart {
	ch := newChart(id, title, desc, box{X: 116, Y: marginTop, W: chartW - 116 - 56, H: chartH - marginTop - 12})
	ch.Axis = line{X1: ch.Plot.X, Y1: ch.Plot.Y, X2: ch.Plot.X, Y2: ch.Plot.Bottom()}
	max := 0.0
	for _, v := range s.Values {
		max = math.Max(max, v)
	}
	_, top := niceScale(max, true)
	band := ch.Plot.H / float64(len(labels))
	hgt := band * 0.64
	for i, l := range labels {
		y := ch.Plot.Y + band*float64(i)
		ch.Labels = append(ch.Labels, label{X: ch.Plot.X - 8, Y: round1(y + band/2 + 4), Text: l, Anchor: "end"})
		w := s.Values[i] / top * ch.Plot.W
		ch.Bars = append(ch.Bars, bar{X: ch.Plot.X, Y: round1(y + (band-hgt)/2), W: round1(w), H: round1(hgt), Class: s.Class,
			Title: l + ": " + formatNumber(s.Values[i]) + " " + strings.ToLower(s.Name)})
		// The value is written at the end of the bar.
		ch.Labels = append(ch.Labels, label{X: round1(ch.Plot.X + w + 6), Y: round1(y + band/2 + 4), Text: formatNumber(s.Values[i]), Anchor: "start"})
	}
	ch.table("Age", labels, []series{s}, "")
	return ch
}

// lineChart draws one series as a line with points; NaN values leave gaps.
func lineChart(id, title, desc string, labels []string, s series, unit string, labelEvery int) *chart {
	ch := newChart(id, title, desc, columnPlot)
	ch.LineClass = s.Class
	max := 0.0
	for _, v := range s.Values {
		if !math.IsNaN(v) {
			max = math.Max(max, v)
		}
	}
	scale := ch.yAxis(max, false, unit)
	ch.xLabels(labels, labelEvery)
	band := ch.Plot.W / float64(len(labels))
	var d strings.Builder
	pen := false
	for i, v := range s.Values {
		if math.IsNaN(v) {
			pen = false
			continue
		}
		x, y := round1(ch.Plot.X+band*(float64(i)+0.5)), round1(ch.Plot.Y+ch.Plot.H-scale(v))
		cmd := "L"
		if !pen {
			cmd = "M"
		}
		d.WriteString(cmd + formatCoord(x) + " " + formatCoord(y) + " ")
		pen = true
		ch.Points = append(ch.Points, bar{X: x, Y: y, Class: s.Class, Title: labels[i] + ": " + formatNumber(round1(v)) + unit})
	}
	if d.Len() > 0 {
		ch.Lines = append(ch.Lines, strings.TrimSpace(d.String()))
	}
	rounded := series{Name: s.Name, Class: s.Class, Values: make([]float64, len(s.Values))}
	for i, v := range s.Values {
		rounded.Values[i] = round1(v)
	}
	ch.table("Day", labels, []series{rounded}, unit)
	return ch
}

// durationUnits are the units a duration axis may use, smallest first;
// an axis takes the largest unit in which its largest value is at least 2.
var durationUnits = []struct {
	Name    string
	Seconds float64
}{{"s", 1}, {"min", 60}, {"h", 3600}, {"d", 86400}}

// durationUnit returns the unit for an axis whose largest value is max
// seconds: "45 s", "12 min", "5 h", "3 d", never "0.0 h" for a minute.
func durationUnit(max float64) (name string, seconds float64) {
	u := durationUnits[0]
	for _, c := range durationUnits[1:] {
		if max >= 2*c.Seconds {
			u = c
		}
	}
	return u.Name, u.Seconds
}

// durationChart draws durations in seconds (NaN: no value) as a line, in
// the unit that fits the data.
func durationChart(id, title, desc string, labels []string, s series, labelEvery int) *chart {
	max := 0.0
	for _, v := range s.Values {
		if !math.IsNaN(v) {
			max = math.Max(max, v)
		}
	}
	unit, per := durationUnit(max)
	scaled := series{Name: s.Name, Class: s.Class, Values: make([]float64, len(s.Values))}
	for i, v := range s.Values {
		scaled.Values[i] = v / per
	}
	return lineChart(id, title, desc, labels, scaled, " "+unit, labelEvery)
}

func formatCoord(x float64) string { return strconv.FormatFloat(x, 'f', -1, 64) }
