package console

import (
	"fmt"
	"math"
	"sort"
	"strconv"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/pipeline"
)

// evaluation lays out a run's evaluation: every metric of the candidate and the champion on
// the same holdout, and the MAE per segment.
func evaluation(ev *evaluate.Report) ([]metricRow, []segmentRow, Chart) {
	var champ *model.Metrics
	if ev.Champion != nil {
		champ = &ev.Champion.Overall
	}
	opt := func(p *float64) (float64, bool) {
		if p == nil {
			return 0, false
		}
		return *p, true
	}
	type getter func(m *model.Metrics) (float64, bool)
	var rows []metricRow
	for _, g := range []struct {
		name string
		get  getter
	}{
		{"mae", func(m *model.Metrics) (float64, bool) { return m.MAE, true }},
		{"rmse", func(m *model.Metrics) (float64, bool) { return m.RMSE, true }},
		{"r2", func(m *model.Metrics) (float64, bool) { return m.R2, true }},
		{"mape", func(m *model.Metrics) (float64, bool) { return opt(m.MAPE) }},
		{"logloss", func(m *model.Metrics) (float64, bool) { return opt(m.LogLoss) }},
		{"auc", func(m *model.Metrics) (float64, bool) { return opt(m.AUC) }},
		{"accuracy", func(m *model.Metrics) (float64, bool) { return opt(m.Accuracy) }},
	} {
		c, ok := g.get(&ev.Candidate.Overall)
		if !ok {
			continue
		}
		row := metricRow{Name: g.name, Candidate: c}
		if champ != nil {
			row.Champion, row.HasChampion = g.get(champ)
		}
		rows = append(rows, row)
	}
	segs := make([]string, 0, len(ev.Candidate.Segments))
	for s := range ev.Candidate.Segments {
		segs = append(segs, s)
	}
	sort.Strings(segs)
	var out []segmentRow
	cand, chmp := make([]float64, len(segs)), make([]float64, len(segs))
	for i, s := range segs {
		c := ev.Candidate.Segments[s]
		row := segmentRow{Segment: s, Rows: c.Rows, CandidateMAE: c.MAE}
		cand[i], chmp[i] = c.MAE, math.NaN()
		if ev.Champion != nil {
			if h, ok := ev.Champion.Segments[s]; ok {
				row.ChampionMAE, row.HasChampion, chmp[i] = h.MAE, true, h.MAE
			}
		}
		out = append(out, row)
	}
	series := []Series{{Name: "candidate", Class: "s1", Values: cand}}
	if ev.Champion != nil {
		series = append(series, Series{Name: "champion v" + strconv.Itoa(ev.ChampionVersion), Class: "s0", Values: chmp})
	}
	return rows, out, Bars("MAE by "+orWord(ev.SegmentBy, "segment"), segs, series)
}

func orWord(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// canaryChart draws one canary evaluation: the candidate against production on the step's
// live traffic (error and fallback rates in percent, p99 latency, live MAE when labelled).
func canaryChart(c pipeline.CanaryEvalResult) Chart {
	cats := []string{"error rate %", "fallback rate %", "p99 ms"}
	cand := []float64{100 * c.Candidate.ErrorRate, 100 * c.Candidate.FallbackRate, c.Candidate.P99Ms}
	prod := []float64{100 * c.Production.ErrorRate, 100 * c.Production.FallbackRate, c.Production.P99Ms}
	if c.MAE != nil && (c.MAE.CandidateLabels > 0 || c.MAE.ProductionLabels > 0) {
		cats = append(cats, "live MAE")
		cand, prod = append(cand, c.MAE.Candidate), append(prod, c.MAE.Production)
	}
	return Bars(fmt.Sprintf("step %d at %s: %s (%d vs %d requests)", c.Step, num(100*c.Share)+"%", c.Decision, c.Candidate.Requests, c.Production.Requests), cats,
		[]Series{{Name: "candidate v" + strconv.Itoa(c.Candidate.Version), Class: "s1", Values: cand}, {Name: "production v" + strconv.Itoa(c.Production.Version), Class: "s0", Values: prod}})
}

type monitorPage struct {
	Model         string
	Windows       []monitor.Report
	Newest        *monitor.Report
	MAEChart      Chart
	LatencyChart  Chart
	DriftChart    Chart
	FairnessChart Chart
	NewestDrift   []driftRow
}

func (s *Server) monitorPage(q *req) (string, view, error) {
	m, err := s.modelOf(q)
	if err != nil {
		return "", view{}, err
	}
	ws, err := s.windows(q.Context(), m, 96)
	if err != nil {
		return "", view{}, err
	}
	p := monitorPage{Model: m, Windows: ws}
	var labels []string
	var live, est, p99, slo, psi, di []float64
	for _, w := range ws {
		labels = append(labels, w.To.UTC().Format("01-02 15:04"))
		l := math.NaN()
		if w.Live.Labels > 0 {
			l = w.Live.MAE
		}
		live = append(live, l)
		e := math.NaN()
		if w.Estimated != nil {
			e = w.Estimated.MAE
		}
		est = append(est, e)
		p99, slo = append(p99, w.KPIs.P99Ms), append(slo, w.KPIs.SLOMs)
		sc := math.NaN()
		if w.InputDrift != nil {
			sc = w.InputDrift.Score
		}
		psi = append(psi, sc)
		f := math.NaN()
		if w.Fairness != nil {
			f = w.Fairness.DisparateImpact
		}
		di = append(di, f)
	}
	p.MAEChart = Lines("live and estimated MAE", labels, []Series{{Name: "live MAE", Class: "s0", Values: live}, {Name: "estimated MAE", Class: "s1", Values: est}})
	p.LatencyChart = Lines("latency p99 against its SLO (ms)", labels, []Series{{Name: "p99", Class: "s0", Values: p99}, {Name: "SLO", Class: "s2", Values: slo}})
	p.DriftChart = Lines("input drift score (largest PSI)", labels, []Series{{Name: "PSI", Class: "s1", Values: psi}})
	p.FairnessChart = Lines("disparate impact", labels, []Series{{Name: "disparate impact", Class: "s0", Values: di}})
	if len(ws) > 0 {
		p.Newest = &ws[len(ws)-1]
		p.NewestDrift = driftRows(p.Newest.InputDrift, "window")
	}
	return "monitor.html", view{Title: m + " monitoring", Crumb: []link{{"models", "/"}, {m, "/models/" + m}}, Data: p}, nil
}

// driftRows lays out a drift report: each feature's statistics and its histogram, the
// reference against the current rows (named cur: the run's window, the monitor's window).
func driftRows(dr *drift.Report, cur string) []driftRow {
	if dr == nil {
		return nil
	}
	var out []driftRow
	for _, f := range dr.Features {
		row := driftRow{Name: f.Name, Kind: f.Kind, Test: f.Test, Why: f.Why, Statistic: f.Statistic, P: f.PAdjusted, PSI: f.PSI, JS: f.JS,
			Drifted: f.Drifted, Critical: f.Critical, RefMean: f.RefMean, CurMean: f.CurMean, Nulls: f.NullShare}
		if h := f.Histogram; h != nil {
			row.Chart = Bars(f.Name, h.Labels, []Series{{Name: "reference", Class: "s0", Values: h.Reference}, {Name: cur, Class: "s1", Values: h.Current}})
		} else {
			row.Chart = Chart{Title: f.Name, Empty: "no histogram in this report (written before reports carried one)"}
		}
		out = append(out, row)
	}
	return out
}
