package console

import (
	"fmt"
	"io/fs"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/driftline/driftline/deploy"
	"github.com/driftline/driftline/internal/dashboards"
	"github.com/driftline/driftline/spec"
)

// The dashboards page draws the Grafana dashboards shipped in deploy/grafana/dashboards from
// their own queries against Prometheus: the same panels for those who run no Grafana, and
// the dashboards as code seen working (the browser test's screenshot in docs/).

// shipped are the dashboards as shipped, parsed once.
var shipped = sync.OnceValues(func() ([]dashboards.Dashboard, error) {
	sub, err := fs.Sub(deploy.Dashboards, "grafana/dashboards")
	if err != nil {
		return nil, err
	}
	return dashboards.Parse(sub)
})

// ranges are the time ranges a dashboard page offers, in order, and their lengths.
var (
	ranges     = []string{"1m", "5m", "15m", "1h", "6h", "24h", "7d"}
	rangeOf    = map[string]time.Duration{"1m": time.Minute, "5m": 5 * time.Minute, "15m": 15 * time.Minute, "1h": time.Hour, "6h": 6 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}
	defaultRng = "6h"
)

// points is about how many steps a panel's range is cut into.
const points = 120

// maxSeries is how many series a panel draws (the colours of the stylesheet); the rest are
// counted, not drawn.
const maxSeries = 8

func (s *Server) boards() ([]dashboards.Dashboard, error) {
	if s.Dashboards != nil {
		return s.Dashboards, nil
	}
	return shipped()
}

func (s *Server) dashboardList(q *req) (string, view, error) {
	ds, err := s.boards()
	if err != nil {
		return "", view{}, err
	}
	return "dashboards.html", view{Title: "Dashboards", Crumb: []link{{"models", "/"}}, Data: struct {
		Boards     []dashboards.Dashboard
		Configured bool
	}{ds, s.Metrics != nil}}, nil
}

type dashboardPage struct {
	Board      dashboards.Dashboard
	Model      string   // the model chosen ("" every model the viewer may view)
	Models     []string // the models the viewer may view
	Range      string
	Ranges     []string
	From, To   time.Time
	Step       time.Duration
	Configured bool
	Panels     []panelView
}

// Link is the page with one setting changed.
func (p dashboardPage) Link(model, rng string) string {
	v := url.Values{}
	if model != "" {
		v.Set("model", model)
	}
	v.Set("range", rng)
	return "/dashboards/" + url.PathEscape(p.Board.UID) + "?" + v.Encode()
}

type panelView struct {
	ID                 int
	Title, Description string
	Unit               string
	Stat               bool
	Chart              Chart
	Series             []seriesView
	// More is how many series were not drawn (over maxSeries).
	More int
	// FleetHidden: the panel had series of every model together (no model label), shown only
	// to viewers of every model.
	FleetHidden bool
	Errors      []string
}

type seriesView struct{ Name, Class, Last string }

// named is one series of a panel's answers, on the page's time grid.
type named struct {
	name   string
	values []float64
	last   float64
}

func (s *Server) dashboardPage(q *req) (string, view, error) {
	ds, err := s.boards()
	if err != nil {
		return "", view{}, err
	}
	uid := q.PathValue("uid")
	var board *dashboards.Dashboard
	for i := range ds {
		if ds[i].UID == uid {
			board = &ds[i]
		}
	}
	if board == nil {
		return "", view{}, fmt.Errorf("%w: no dashboard %q (see /dashboards)", errNotFound, uid)
	}
	names, err := s.models(q.Context())
	if err != nil {
		return "", view{}, err
	}
	p := dashboardPage{Board: *board, Ranges: ranges, Configured: s.Metrics != nil}
	for _, m := range names {
		if spec.ValidName(m) && q.may(m) {
			p.Models = append(p.Models, m)
		}
	}
	if len(p.Models) == 0 {
		return "", view{}, &httpError{http.StatusForbidden, fmt.Sprintf("%s may view no model, so no dashboard (the RBAC's view permission)", q.who.ID)}
	}
	everyModel := len(p.Models) == len(names)
	selected := p.Models
	if m := q.URL.Query().Get("model"); m != "" {
		if !spec.ValidName(m) {
			return "", view{}, &httpError{http.StatusBadRequest, fmt.Sprintf("model %q: not a model name", m)}
		}
		if !q.may(m) {
			return "", view{}, forbidden(q.who, m)
		}
		p.Model, selected = m, []string{m}
	}
	rng, err := p.timeRange(q, board.From)
	if err != nil {
		return "", view{}, err
	}
	p.Step = max(time.Second, (rng / points).Truncate(time.Second))
	p.From = p.To.Add(-rng)
	if s.Metrics != nil {
		allowed := map[string]bool{}
		for _, m := range p.Models {
			allowed[m] = true
		}
		for _, pn := range board.Panels {
			p.Panels = append(p.Panels, s.panel(q, pn, p, strings.Join(selected, "|"), allowed, everyModel))
		}
	}
	title := board.Title
	if p.Model != "" {
		title += " · " + p.Model
	}
	return "dashboard.html", view{Title: title, Crumb: []link{{"models", "/"}, {"dashboards", "/dashboards"}}, Data: p}, nil
}

// timeRange reads the page's time range from the query (range, or from .. end; the board's
// own default, boardFrom, otherwise) and sets the page's range and end; it returns the range's
// length. A bad value is a 400 naming it.
func (p *dashboardPage) timeRange(q *req, boardFrom string) (time.Duration, error) {
	p.Range = strings.TrimPrefix(boardFrom, "now-")
	if r := q.URL.Query().Get("range"); r != "" {
		p.Range = r
	}
	rng, ok := rangeOf[p.Range]
	if !ok && q.URL.Query().Get("range") != "" {
		return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("range %q: want one of %s", p.Range, strings.Join(ranges, ", "))}
	}
	if !ok { // the dashboard's own default is not one the console offers
		p.Range, rng = defaultRng, rangeOf[defaultRng]
	}
	p.To = time.Now().UTC().Truncate(time.Second)
	if e := q.URL.Query().Get("end"); e != "" {
		var err error
		if p.To, err = time.Parse(time.RFC3339, e); err != nil {
			return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("end %q: want an RFC 3339 time (2026-12-02T05:00:00Z)", e)}
		}
		p.To = p.To.UTC()
	}
	if f := q.URL.Query().Get("from"); f != "" { // an absolute window (an incident): from .. end
		from, err := time.Parse(time.RFC3339, f)
		if err != nil {
			return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("from %q: want an RFC 3339 time (2026-12-02T04:00:00Z)", f)}
		}
		if rng = p.To.Sub(from); rng <= 0 || rng > rangeOf[ranges[len(ranges)-1]] {
			return 0, &httpError{http.StatusBadRequest, fmt.Sprintf("from %s .. end %s: want a window of at most %s that ends after it starts", f, p.To.Format(time.RFC3339), ranges[len(ranges)-1])}
		}
		p.Range = ""
	}
	return rng, nil
}

// panel asks Prometheus each of the panel's queries and draws the answer. The RBAC holds on
// what comes back as well as on what is asked: a series of a model the viewer may not view
// is dropped, and a series without a model label (every model's traffic together) is shown
// only to a viewer of every model.
func (s *Server) panel(q *req, pn dashboards.Panel, p dashboardPage, models string, allowed map[string]bool, everyModel bool) panelView {
	pv := panelView{ID: pn.ID, Title: pn.Title, Description: pn.Description, Stat: pn.Type == "stat"}
	scale := 1.0
	switch pn.Unit {
	case "percentunit":
		pv.Unit, scale = "%", 100
	case "s":
		pv.Unit = "s"
	case "reqps":
		pv.Unit = "req/s"
	case "ms":
		pv.Unit = "ms"
	}
	n := int(p.To.Sub(p.From)/p.Step) + 1
	all := s.panelSeries(q, pn, p, models, allowed, everyModel, scale, &pv)
	sort.SliceStable(all, func(i, j int) bool { return all[i].name < all[j].name })
	if pv.Unit == "s" && below(all, 1) { // latencies: milliseconds read better than 0.000375 s
		pv.Unit = "ms"
		for k := range all {
			for i := range all[k].values {
				all[k].values[i] *= 1000
			}
			all[k].last *= 1000
		}
	}
	if len(all) > maxSeries {
		pv.More = len(all) - maxSeries
		all = all[:maxSeries]
	}
	format := "15:04"
	switch rng := p.To.Sub(p.From); {
	case rng > 24*time.Hour:
		format = "01-02 15:04"
	case rng <= 15*time.Minute:
		format = "15:04:05"
	}
	cats := make([]string, n)
	for i := range cats {
		cats[i] = p.From.Add(time.Duration(i) * p.Step).Format(format)
	}
	series := make([]Series, len(all))
	for i, a := range all {
		class := fmt.Sprintf("s%d", i)
		series[i] = Series{Name: a.name, Class: class, Values: a.values}
		last := "-"
		if !math.IsNaN(a.last) {
			last = num(a.last)
		}
		pv.Series = append(pv.Series, seriesView{Name: a.name, Class: class, Last: last})
	}
	if len(all) == 0 {
		pv.Chart = Chart{Title: pn.Title, Empty: "no data in this range"}
		return pv
	}
	pv.Chart = Lines(pn.Title, cats, series)
	pv.Chart.Legend = nil // drawn under the chart, as a list: a panel can have many series
	return pv
}

// panelSeries queries the panel's targets over the page's range and returns each series the
// viewer may see (their models', and the fleet's for a viewer of every model) on the page's
// steps; a query's error is shown on the panel.
func (s *Server) panelSeries(q *req, pn dashboards.Panel, p dashboardPage, models string, allowed map[string]bool, everyModel bool, scale float64, pv *panelView) []named {
	n := int(p.To.Sub(p.From)/p.Step) + 1
	var all []named
	for _, t := range pn.Targets {
		got, err := s.Metrics.QueryRange(q.Context(), dashboards.WithModels(t.Expr, models), p.From, p.To, p.Step)
		if err != nil {
			pv.Errors = append(pv.Errors, fmt.Sprintf("query %s: %v", t.RefID, err))
			continue
		}
		for _, ser := range got {
			if m, ok := ser.Labels["model"]; ok && !allowed[m] {
				continue
			}
			if _, ok := ser.Labels["model"]; !ok && !everyModel {
				pv.FleetHidden = true
				continue
			}
			vals := make([]float64, n)
			for i := range vals {
				vals[i] = math.NaN()
			}
			last := math.NaN()
			for _, pt := range ser.Points {
				i := int(math.Round(float64(pt.T.Sub(p.From)) / float64(p.Step)))
				if i >= 0 && i < n {
					vals[i] = pt.V * scale
					last = pt.V * scale
				}
			}
			all = append(all, named{dashboards.Legend(t.Legend, ser.Labels), vals, last})
		}
	}
	return all
}

// below reports whether the series have a finite value and every one is under limit in
// magnitude.
func below(series []named, limit float64) bool {
	some := false
	for _, s := range series {
		for _, v := range s.values {
			if math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if math.Abs(v) >= limit {
				return false
			}
			some = true
		}
	}
	return some
}
