package console

import (
	"fmt"
	"math"
	"strconv"
	"strings"
)

// The charts are laid out here, in Go, and drawn by the templates as inline SVG: numbers in,
// rectangles, polylines and labels out. No JavaScript, and every label goes through
// html/template's escaping like the rest of the page.

// Series is one named set of values over a chart's categories; Class picks its colour.
type Series struct {
	Name   string
	Class  string
	Values []float64
}

// Chart is one SVG chart, geometry computed.
type Chart struct {
	Title   string
	W, H    int
	Bars    []Rect
	Lines   []Line
	XLabels []Label
	YTicks  []Label
	Legend  []Label
	// Empty says why there is nothing to draw (no values).
	Empty string
}

// Rect is one bar; Tip is its tooltip (an SVG <title>).
type Rect struct {
	X, Y, W, H float64
	Class, Tip string
}

// Line is one series of a line chart.
type Line struct {
	Class  string
	Points string
	Dots   []Rect // X, Y the centre; Tip the value
}

// Label is text at a point (Class names a legend entry's colour).
type Label struct {
	X, Y        float64
	Text, Class string
	Anchor      string
}

// maxDots is the most points a line chart marks with dots.
const maxDots = 40

const (
	chartW, chartH         = 640, 220
	padL, padR, padT, padB = 56, 12, 28, 44
)

// Num formats a value as every console page shows it: four significant digits, no exponent
// for everyday sizes.
func Num(v float64) string { return num(v) }

func num(v float64) string {
	switch {
	case math.IsNaN(v):
		return "NaN"
	case math.IsInf(v, 0):
		return strconv.FormatFloat(v, 'f', -1, 64)
	case v != 0 && (math.Abs(v) >= 1e6 || math.Abs(v) < 1e-3):
		return strconv.FormatFloat(v, 'g', 4, 64)
	}
	s := strconv.FormatFloat(v, 'f', max(0, 3-int(math.Floor(math.Log10(math.Max(math.Abs(v), 1e-3))))), 64)
	if strings.Contains(s, ".") {
		s = strings.TrimRight(strings.TrimRight(s, "0"), ".")
	}
	return s
}

// scale maps [0, top] onto the plot's height; top is a round number at or above the largest
// value, and the ticks are its quarters.
func scale(vals ...[]float64) (top float64, ticks []Label) {
	for _, vs := range vals {
		for _, v := range vs {
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				top = math.Max(top, v)
			}
		}
	}
	if top <= 0 {
		top = 1
	}
	step := math.Pow(10, math.Floor(math.Log10(top)))
	for _, m := range []float64{1, 2, 2.5, 5, 10} {
		if m*step >= top {
			top = m * step
			break
		}
	}
	ph := float64(chartH - padT - padB)
	for i := 0; i <= 4; i++ {
		v := top * float64(i) / 4
		ticks = append(ticks, Label{X: padL - 6, Y: padT + ph - ph*float64(i)/4 + 4, Text: num(v), Anchor: "end"})
	}
	return top, ticks
}

func legend(series []Series) []Label {
	var out []Label
	x := float64(padL)
	for _, s := range series {
		out = append(out, Label{X: x, Y: 16, Text: s.Name, Class: s.Class})
		x += 24 + 7*float64(len(s.Name))
	}
	return out
}

// shortLabel keeps an axis label readable; the full text stays in the bar's tooltip.
func shortLabel(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// newChart starts a chart: its legend and value axis (top: the axis's largest value); ok is
// false when there is nothing to draw.
func newChart(title string, categories []string, series []Series) (c Chart, top float64, ok bool) {
	c = Chart{Title: title, W: chartW, H: chartH, Legend: legend(series)}
	if len(categories) == 0 || len(series) == 0 {
		c.Empty = "no values"
		return c, 0, false
	}
	vals := make([][]float64, len(series))
	for i, s := range series {
		vals[i] = s.Values
	}
	top, c.YTicks = scale(vals...)
	return c, top, true
}

// Bars draws grouped bars: one group per category, one bar per series.
func Bars(title string, categories []string, series []Series) Chart {
	c, top, ok := newChart(title, categories, series)
	if !ok {
		return c
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	gw := pw / float64(len(categories))
	bw := gw * 0.8 / float64(len(series))
	every := max(1, len(categories)/12)
	for g, cat := range categories {
		for si, s := range series {
			if g >= len(s.Values) {
				continue
			}
			v := s.Values[g]
			h := 0.0
			if !math.IsNaN(v) && !math.IsInf(v, 0) {
				h = math.Max(0, v) / top * ph
			}
			c.Bars = append(c.Bars, Rect{X: padL + float64(g)*gw + gw*0.1 + float64(si)*bw, Y: padT + ph - h, W: bw, H: h,
				Class: s.Class, Tip: fmt.Sprintf("%s, %s: %s", cat, s.Name, num(v))})
		}
		if g%every == 0 {
			c.XLabels = append(c.XLabels, Label{X: padL + (float64(g)+0.5)*gw, Y: padT + ph + 16, Text: shortLabel(cat, int(max(4, gw*float64(every)/6.5))), Anchor: "middle"})
		}
	}
	return c
}

// Lines draws one polyline per series over the categories (NaN: a gap in the dots); a dot
// with its value as a tooltip marks each point while there are few enough to tell apart.
func Lines(title string, categories []string, series []Series) Chart {
	c, top, ok := newChart(title, categories, series)
	if !ok {
		return c
	}
	pw, ph := float64(chartW-padL-padR), float64(chartH-padT-padB)
	x := func(i int) float64 {
		if len(categories) == 1 {
			return padL + pw/2
		}
		return padL + pw*float64(i)/float64(len(categories)-1)
	}
	for _, s := range series {
		l := Line{Class: s.Class}
		var pts []string
		for i, v := range s.Values {
			if i >= len(categories) || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			y := padT + ph - math.Max(0, v)/top*ph
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(i), y))
			if len(categories) > maxDots {
				continue
			}
			l.Dots = append(l.Dots, Rect{X: x(i), Y: y, Tip: fmt.Sprintf("%s, %s: %s", categories[i], s.Name, num(v))})
		}
		l.Points = strings.Join(pts, " ")
		c.Lines = append(c.Lines, l)
	}
	// As many labels as fit side by side (about 6.5 px a character at 11 px, and a gap).
	longest := 0
	for _, cat := range categories {
		longest = max(longest, len([]rune(shortLabel(cat, 12))))
	}
	fit := max(2, int(pw/(6.5*float64(longest)+14)))
	every := max(1, (len(categories)+fit-1)/fit)
	last := len(categories) - 1
	for i, cat := range categories {
		if i == last || i%every == 0 && last-i >= every*2/3 {
			anchor := "middle"
			if i == last && i > 0 {
				anchor = "end" // the right edge: kept inside the chart
			}
			c.XLabels = append(c.XLabels, Label{X: x(i), Y: padT + ph + 16, Text: shortLabel(cat, 12), Anchor: anchor})
		}
	}
	return c
}

// Graph is a left-to-right graph of boxes (lineage): nodes in columns, edges between them.
type Graph struct {
	W, H  int
	Nodes []Node
	Edges []Edge
}

// Node is one box; Href links it (empty: none).
type Node struct {
	X, Y, W, H   float64
	Title, Sub   string
	Class, Href  string
	Tip          string
	TitleX, SubY float64
}

// Edge joins two nodes' sides.
type Edge struct{ X1, Y1, X2, Y2 float64 }

// GraphNode is a node before layout: its column, text and the nodes of the previous
// columns it comes from (by ID).
type GraphNode struct {
	ID, Title, Sub, Class, Href string
	Tip                         string // the full text, as the node's tooltip
	Column                      int
	From                        []string
}

// Layout places the nodes column by column, each column's nodes stacked and centred.
func Layout(nodes []GraphNode) Graph {
	const nw, nh, gapX, gapY = 172.0, 44.0, 40.0, 14.0
	cols := 0
	per := map[int]int{}
	for _, n := range nodes {
		cols = max(cols, n.Column+1)
		per[n.Column]++
	}
	rows := 0
	for _, k := range per {
		rows = max(rows, k)
	}
	g := Graph{W: int(float64(cols)*(nw+gapX) - gapX + 20), H: int(float64(rows)*(nh+gapY) - gapY + 20)}
	at := map[string]Node{}
	seen := map[int]int{}
	for _, n := range nodes {
		i := seen[n.Column]
		seen[n.Column]++
		top := (float64(g.H) - float64(per[n.Column])*(nh+gapY) + gapY) / 2
		nd := Node{X: 10 + float64(n.Column)*(nw+gapX), Y: top + float64(i)*(nh+gapY), W: nw, H: nh,
			Title: shortLabel(n.Title, 24), Sub: shortLabel(n.Sub, 30), Class: n.Class, Href: n.Href, Tip: n.Tip}
		if nd.Tip == "" {
			nd.Tip = n.Title + ": " + n.Sub
		}
		nd.TitleX, nd.SubY = nd.X+8, nd.Y+34
		g.Nodes = append(g.Nodes, nd)
		at[n.ID] = nd
		for _, f := range n.From {
			if p, ok := at[f]; ok {
				g.Edges = append(g.Edges, Edge{X1: p.X + p.W, Y1: p.Y + p.H/2, X2: nd.X, Y2: nd.Y + nd.H/2})
			}
		}
	}
	return g
}
