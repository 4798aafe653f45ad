package activities

import (
	"context"
	"errors"
	"fmt"
	"math"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// MonitorMetrics are the monitor's Prometheus metrics (driftline_monitor_*), per model.
// The window counts are gauges of the last window, not counters: a retried window (the same
// marks) sets them again instead of adding its requests twice.
type MonitorMetrics struct {
	Requests, Labels, UnknownLabels, BadParts      *prometheus.GaugeVec
	LiveMAE, EstimatedMAE, DriftScore, Drifted, DI *prometheus.GaugeVec
	P99, OverSLO, Watermark                        *prometheus.GaugeVec
	// The spec's thresholds and the interval's upper bound, so alerting rules compare with
	// each model's own (deploy/prometheus/rules.yml).
	MaxLiveMAE, MinDI, DIHigh, Interval   *prometheus.GaugeVec
	DecisionAccuracy, MinDecisionAccuracy *prometheus.GaugeVec
	ExplanationNDCG                       *prometheus.GaugeVec
	// ReviewOpen is 1 while a fairness review is open, ReviewEscalated 1 once it escalated.
	ReviewOpen, ReviewEscalated *prometheus.GaugeVec
	// EstimatedAccuracy (CBPE) and LiveAccuracy are a classifier's.
	EstimatedAccuracy, LiveAccuracy *prometheus.GaugeVec
	// FeatureAge is the largest age of the feature store's values the window's answers used.
	FeatureAge *prometheus.GaugeVec
}

// NewMonitorMetrics builds and registers the monitor's metrics.
func NewMonitorMetrics(reg prometheus.Registerer) *MonitorMetrics {
	g := func(name, help string) *prometheus.GaugeVec {
		return prometheus.NewGaugeVec(prometheus.GaugeOpts{Namespace: Namespace, Subsystem: "monitor", Name: name, Help: help}, []string{"model"})
	}
	m := &MonitorMetrics{
		Requests:            g("window_requests", "Requests of the production version in the last window."),
		Labels:              g("window_labels", "Labels joined to an answer of the production version in the last window."),
		UnknownLabels:       g("window_unknown_labels", "Labels of the last window for no request answered within the label horizon."),
		BadParts:            g("window_bad_log_parts", "Prediction-log or feedback parts of the last window that did not decode (named in its report)."),
		LiveMAE:             g("live_mae", "Live MAE of the last window's labels."),
		EstimatedMAE:        g("estimated_mae", "MAE the version's loss estimator expects on the last window's requests (before labels)."),
		DriftScore:          g("input_drift_score", "Input drift score (largest PSI) of the last window's requests."),
		Drifted:             g("input_drifted", "1 when the last window's input drift decided drift."),
		DI:                  g("disparate_impact", "Disparate impact of the last window's answers by the protected attribute."),
		P99:                 g("latency_p99_ms", "p99 latency of the last window, ms."),
		OverSLO:             g("over_slo_share", "Share of the last window's requests slower than the latency SLO."),
		Watermark:           g("watermark_timestamp_seconds", "Write time of the newest prediction-log part processed."),
		MaxLiveMAE:          g("max_live_mae", "The spec's monitoring.max_live_mae."),
		MinDI:               g("min_disparate_impact", "The spec's fairness.min_disparate_impact."),
		DIHigh:              g("disparate_impact_high", "Upper bound of the last window's disparate-impact interval."),
		Interval:            g("interval_seconds", "The spec's monitoring.interval."),
		DecisionAccuracy:    g("decision_accuracy", "Share of the last window's labelled requests whose decision (the spec's rule) the label confirms."),
		MinDecisionAccuracy: g("min_decision_accuracy", "The spec's monitoring.decision.min_accuracy."),
		ExplanationNDCG:     g("explanation_ndcg", "nDCG of the last window's feature ranking by mean |SHAP| against the reference's (1: same order)."),
		EstimatedAccuracy:   g("estimated_accuracy", "A classifier's accuracy on the last window's requests estimated from its calibrated scores (CBPE), before labels."),
		LiveAccuracy:        g("live_accuracy", "A classifier's accuracy on the last window's labels."),
		FeatureAge:          g("feature_age_max_seconds", "Largest age of the online feature store's values the last window's answers used."),
		ReviewOpen:          g("fairness_review_open", "1 while a fairness review of the model waits for acknowledgement."),
		ReviewEscalated:     g("fairness_review_escalated", "1 while the open fairness review is escalated (unacknowledged past monitoring.review_timeout)."),
	}
	reg.MustRegister(m.Requests, m.Labels, m.UnknownLabels, m.BadParts, m.LiveMAE, m.EstimatedMAE, m.DriftScore, m.Drifted, m.DI, m.P99, m.OverSLO, m.Watermark,
		m.MaxLiveMAE, m.MinDI, m.DIHigh, m.Interval, m.DecisionAccuracy, m.MinDecisionAccuracy, m.ExplanationNDCG,
		m.ReviewOpen, m.ReviewEscalated, m.EstimatedAccuracy, m.LiveAccuracy, m.FeatureAge)
	return m
}

// Monitoring computes the monitor's windows.
type Monitoring struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *MonitorMetrics
	// Webhook (Slack-compatible, the approval webhook) and Alertmanager (its base URL) are
	// told about fairness reviews; either may be empty.
	Webhook, Alertmanager string
}

// MonitorWindow processes the prediction-log and feedback parts written after the input's
// marks (and at least the spec's settle time before Until), computes the window's report
// against the production version and stores it at reports/<model>/monitor/<until>.json. A part
// that does not decode is named in the report, counted, and passed (the marks move past it,
// so it never stalls the monitor); a storage fault fails the activity, which retries with the
// same marks (nothing is counted twice).
func (m *Monitoring) MonitorWindow(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
	sp := in.Spec
	model := sp.Model
	upto := in.Until.Add(-sp.Monitoring.Settle.Duration)
	var problems []string
	recParts, err := predlog.PartsBetween(ctx, m.Store, model, false, predlog.Mark(in.Predictions), upto)
	if err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: list the prediction log", err)
	}
	labParts, err := predlog.PartsBetween(ctx, m.Store, model, true, predlog.Mark(in.Labels), upto)
	if err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: list the feedback", err)
	}
	bad := 0
	var recs []predlog.Record
	for _, p := range recParts {
		heartbeat(ctx)
		rows, err := predlog.ReadPart[predlog.Record](ctx, m.Store, p.Key)
		if errors.Is(err, dataset.ErrInvalidData) {
			problems, bad = append(problems, err.Error()), bad+1
			continue
		}
		if err != nil {
			return pipeline.MonitorWindowResult{}, classify("monitor: read the prediction log", err)
		}
		recs = append(recs, rows...)
	}
	var labels []predlog.Label
	for _, p := range labParts {
		heartbeat(ctx)
		rows, err := predlog.ReadPart[predlog.Label](ctx, m.Store, p.Key)
		if errors.Is(err, dataset.ErrInvalidData) {
			problems, bad = append(problems, err.Error()), bad+1
			continue
		}
		if err != nil {
			return pipeline.MonitorWindowResult{}, classify("monitor: read the feedback", err)
		}
		labels = append(labels, rows...)
	}
	// Labels join answers: a paired or shadow score of the same request must not take its place.
	answered := map[string]predlog.Record{}
	for _, r := range recs {
		if monitor.IsAnswer(r) {
			answered[r.RequestID] = r
		}
	}
	if missing := unjoined(labels, answered); missing > 0 {
		// Labels of requests answered in earlier windows: read the label horizon's log.
		earlier, err := predlog.PartsBetween(ctx, m.Store, model, false, predlog.Mark{WrittenNanos: upto.Add(-sp.Monitoring.LabelHorizon.Duration).UnixNano()}, upto)
		if err != nil {
			return pipeline.MonitorWindowResult{}, classify("monitor: list the label horizon", err)
		}
		for _, p := range earlier {
			heartbeat(ctx)
			rows, err := predlog.ReadPart[predlog.Record](ctx, m.Store, p.Key)
			if errors.Is(err, dataset.ErrInvalidData) {
				continue // named by the window that first met it
			}
			if err != nil {
				return pipeline.MonitorWindowResult{}, classify("monitor: read the label horizon", err)
			}
			for _, r := range rows {
				if monitor.IsAnswer(r) {
					answered[r.RequestID] = r
				}
			}
		}
	}

	win := monitor.Input{Spec: sp, Records: recs, Labels: labels, Answered: answered, Problems: problems, FavorableAbove: math.NaN(),
		To: upto, From: upto.Add(-sp.Monitoring.Interval.Duration)}
	dep, _, err := m.Registry.Deployment(ctx, model)
	if err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: deployment", err)
	}
	win.Version = dep.Production
	if win.Version > 0 {
		if p, err := m.Registry.LoadProfile(ctx, model, win.Version); err == nil {
			win.Reference = &p
		} else {
			win.Problems = append(win.Problems, fmt.Sprintf("v%d's reference profile: %v", win.Version, err))
		}
		if p, err := m.Registry.LoadPredictionProfile(ctx, model, win.Version); err == nil {
			win.Predictions = &p
		}
		if est, err := m.Registry.LoadLossEstimator(ctx, model, win.Version); err == nil {
			win.Estimator = est
		}
		if v, err := m.Registry.Version(ctx, model, win.Version); err == nil {
			win.Importance = v.Importance
		}
		if mdl, err := m.Registry.LoadModel(ctx, model, win.Version); err == nil {
			win.Model = mdl
			win.FavorableAbove = evaluate.FavorableCut(mdl)
		} else {
			win.Problems = append(win.Problems, fmt.Sprintf("v%d's model (fairness not computed): %v", win.Version, err))
		}
	}
	rep := monitor.Compute(win)
	key := fmt.Sprintf("reports/%s/monitor/%s.json", model, in.Until.UTC().Format("20060102T150405Z"))
	if err := putJSON(ctx, m.Store, key, rep, false); err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: store the report", err)
	}
	res := pipeline.MonitorWindowResult{ReportURI: m.Store.URI(key), Version: win.Version, Predictions: in.Predictions, Labels: in.Labels,
		Requests: rep.KPIs.Requests, Labelled: rep.Live.Labels, LiveMAE: rep.Live.MAE, Drifted: rep.Drifted, MAEBreach: rep.MAEBreach,
		EstimateBreach: rep.EstimateBreach,
		Problems:       len(rep.Problems)}
	if n := len(recParts); n > 0 {
		res.Predictions = pipeline.LogMark(mark(recParts[n-1]))
	}
	if n := len(labParts); n > 0 {
		res.Labels = pipeline.LogMark(mark(labParts[n-1]))
	}
	if rep.InputDrift != nil {
		res.DriftScore, res.Why = rep.InputDrift.Score, rep.InputDrift.Why
	}
	if rep.Fairness != nil {
		res.FairnessBelowMin = rep.Fairness.BelowMin
		res.DisparateImpact, res.DisparateImpactLow, res.DisparateImpactHigh = rep.Fairness.DisparateImpact, rep.Fairness.Low, rep.Fairness.High
	}
	if rep.Estimated != nil {
		res.EstimatedMAE, res.EstimatedAccuracy = rep.Estimated.MAE, rep.Estimated.Accuracy
	}
	if rep.Live.Accuracy != nil {
		res.LiveAccuracy = *rep.Live.Accuracy
	}
	res.AccuracyBreach, res.EstimatedAccuracyBreach = rep.AccuracyBreach, rep.EstimatedAccuracyBreach
	m.observe(model, rep, bad, res)
	if mm := m.Metrics; mm != nil {
		mm.MaxLiveMAE.WithLabelValues(model).Set(sp.Monitoring.MaxLiveMAE)
		mm.MinDI.WithLabelValues(model).Set(sp.Fairness.MinDisparateImpact)
		mm.Interval.WithLabelValues(model).Set(sp.Monitoring.Interval.Seconds())
		if d := rep.Live.Decision; d != nil {
			mm.MinDecisionAccuracy.WithLabelValues(model).Set(d.Target)
			if d.Labels > 0 {
				mm.DecisionAccuracy.WithLabelValues(model).Set(d.Accuracy)
			}
		}
	}
	return res, nil
}

func mark(p predlog.Part) predlog.Mark { return predlog.Mark{WrittenNanos: p.WrittenNanos, Key: p.Key} }

func unjoined(labels []predlog.Label, answered map[string]predlog.Record) int {
	n := 0
	for _, l := range labels {
		if _, ok := answered[l.RequestID]; !ok {
			n++
		}
	}
	return n
}

func (m *Monitoring) observe(model string, rep monitor.Report, bad int, res pipeline.MonitorWindowResult) {
	mm := m.Metrics
	if mm == nil {
		return
	}
	mm.Requests.WithLabelValues(model).Set(float64(rep.KPIs.Requests))
	mm.Labels.WithLabelValues(model).Set(float64(rep.Live.Labels))
	mm.UnknownLabels.WithLabelValues(model).Set(float64(rep.Live.Unknown))
	mm.BadParts.WithLabelValues(model).Set(float64(bad))
	if rep.Live.Labels > 0 {
		mm.LiveMAE.WithLabelValues(model).Set(rep.Live.MAE)
	}
	if rep.InputDrift != nil {
		mm.DriftScore.WithLabelValues(model).Set(rep.InputDrift.Score)
	}
	if rep.Estimated != nil {
		mm.EstimatedMAE.WithLabelValues(model).Set(rep.Estimated.MAE)
		if rep.Estimated.Method == "cbpe" {
			mm.EstimatedAccuracy.WithLabelValues(model).Set(rep.Estimated.Accuracy)
		}
	}
	if rep.Live.Accuracy != nil {
		mm.LiveAccuracy.WithLabelValues(model).Set(*rep.Live.Accuracy)
	}
	if rep.ExplanationDrift != nil {
		mm.ExplanationNDCG.WithLabelValues(model).Set(rep.ExplanationDrift.NDCG)
	}
	mm.Drifted.WithLabelValues(model).Set(b2f(rep.Drifted))
	if rep.Fairness != nil {
		mm.DI.WithLabelValues(model).Set(rep.Fairness.DisparateImpact)
		mm.DIHigh.WithLabelValues(model).Set(rep.Fairness.High)
	}
	if f := rep.KPIs.Features; f != nil {
		mm.FeatureAge.WithLabelValues(model).Set(f.MaxAgeS)
	}
	if rep.KPIs.Requests > 0 {
		mm.P99.WithLabelValues(model).Set(rep.KPIs.P99Ms)
		mm.OverSLO.WithLabelValues(model).Set(rep.KPIs.OverSLO)
	}
	if res.Predictions.WrittenNanos > 0 {
		mm.Watermark.WithLabelValues(model).Set(float64(res.Predictions.WrittenNanos) / 1e9)
	}
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
