package activities

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
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
	// Keys returns the control-plane API's attestation keys: a review's rollback is carried out
	// only on an acknowledgement and a monitor origin they verify.
	Keys func(ctx context.Context) ([]pipeline.AttestationKey, error)
}

// MonitorWindow processes the prediction-log and feedback parts written after the input's
// marks (and at least the spec's settle time before Until), computes the window's report
// against the production version and stores it at reports/<model>/monitor/<until>.json. A part
// that does not decode is named in the report, counted, and passed (the marks move past it,
// so it never stalls the monitor); a storage fault fails the activity, which retries with the
// same marks (nothing is counted twice).
func (m *Monitoring) MonitorWindow(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
	sp := in.Spec
	upto := in.Until.Add(-sp.Monitoring.Settle.Duration)
	lw, err := m.readWindowLog(ctx, in, upto)
	if err != nil {
		return pipeline.MonitorWindowResult{}, err
	}
	win := monitor.Input{Spec: sp, Records: lw.recs, Labels: lw.labels, Answered: lw.answered, Problems: lw.problems, FavorableAbove: math.NaN(),
		To: upto, From: upto.Add(-sp.Monitoring.Interval.Duration)}
	if err := m.loadReferences(ctx, &win); err != nil {
		return pipeline.MonitorWindowResult{}, err
	}
	rep := monitor.Compute(win)
	key := keys.MonitorWindow(sp.Model, in.Until)
	if err := putJSON(ctx, m.Store, key, rep, false); err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: store the report", err)
	}
	res := resultOf(rep, in, lw, win.Version, m.Store.URI(key))
	if res.Fleets, err = m.fleetDrift(ctx, sp.Model, win.From, win.To, sp.Drift.Config()); err != nil {
		return pipeline.MonitorWindowResult{}, classify("monitor: the fleets' sketches", err)
	}
	if why := fleetsWhy(res.Fleets); why != "" {
		if !res.Drifted {
			res.Why = ""
		}
		res.Drifted = true
		res.Why = strings.TrimPrefix(res.Why+"; "+why, "; ")
		for _, f := range res.Fleets {
			res.DriftScore = max(res.DriftScore, f.Score)
		}
	}
	m.observe(sp, rep, lw.bad, res)
	return res, nil
}

// windowLog is what a monitoring window read of the prediction log and the feedback: the
// window's records and labels, the answers labels join (with the label horizon's when a label
// is of an earlier window), and the parts it could not read, named.
type windowLog struct {
	recParts, labParts []predlog.Part
	recs               []predlog.Record
	labels             []predlog.Label
	answered           map[string]predlog.Record
	problems           []string
	bad                int
}

func (m *Monitoring) readWindowLog(ctx context.Context, in pipeline.MonitorWindowInput, upto time.Time) (windowLog, error) {
	sp := in.Spec
	model := sp.Model
	var lw windowLog
	var err error
	lw.recParts, err = predlog.PartsBetween(ctx, m.Store, model, false, predlog.Mark(in.Predictions), upto)
	if err != nil {
		return lw, classify("monitor: list the prediction log", err)
	}
	lw.labParts, err = predlog.PartsBetween(ctx, m.Store, model, true, predlog.Mark(in.Labels), upto)
	if err != nil {
		return lw, classify("monitor: list the feedback", err)
	}
	for _, p := range lw.recParts {
		heartbeat(ctx)
		rows, err := predlog.ReadPart[predlog.Record](ctx, m.Store, p.Key)
		if errors.Is(err, dataset.ErrInvalidData) {
			lw.problems, lw.bad = append(lw.problems, err.Error()), lw.bad+1
			continue
		}
		if err != nil {
			return lw, classify("monitor: read the prediction log", err)
		}
		lw.recs = append(lw.recs, rows...)
	}
	for _, p := range lw.labParts {
		heartbeat(ctx)
		rows, err := predlog.ReadPart[predlog.Label](ctx, m.Store, p.Key)
		if errors.Is(err, dataset.ErrInvalidData) {
			lw.problems, lw.bad = append(lw.problems, err.Error()), lw.bad+1
			continue
		}
		if err != nil {
			return lw, classify("monitor: read the feedback", err)
		}
		lw.labels = append(lw.labels, rows...)
	}
	// Labels join answers: a paired or shadow score of the same request must not take its place.
	lw.answered = map[string]predlog.Record{}
	for _, r := range lw.recs {
		if monitor.IsAnswer(r) {
			lw.answered[r.RequestID] = r
		}
	}
	if missing := unjoined(lw.labels, lw.answered); missing > 0 {
		// Labels of requests answered in earlier windows: read the label horizon's log.
		earlier, err := predlog.PartsBetween(ctx, m.Store, model, false, predlog.Mark{WrittenNanos: upto.Add(-sp.Monitoring.LabelHorizon.Duration).UnixNano()}, upto)
		if err != nil {
			return lw, classify("monitor: list the label horizon", err)
		}
		for _, p := range earlier {
			heartbeat(ctx)
			rows, err := predlog.ReadPart[predlog.Record](ctx, m.Store, p.Key)
			if errors.Is(err, dataset.ErrInvalidData) {
				continue // named by the window that first met it
			}
			if err != nil {
				return lw, classify("monitor: read the label horizon", err)
			}
			for _, r := range rows {
				if monitor.IsAnswer(r) {
					lw.answered[r.RequestID] = r
				}
			}
		}
	}

	return lw, nil
}

// loadReferences fills the window's production version and what it is compared with: the
// reference profiles, the loss estimator, the importance and the model (for fairness); what
// cannot be loaded is a problem the report names, not a failed window.
func (m *Monitoring) loadReferences(ctx context.Context, win *monitor.Input) error {
	model := win.Spec.Model
	dep, _, err := m.Registry.Deployment(ctx, model)
	if err != nil {
		return classify("monitor: deployment", err)
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
	return nil
}

// resultOf is the window's result for the workflow: the report's URI, the marks the next
// window reads from (past the last part read) and the verdicts.
func resultOf(rep monitor.Report, in pipeline.MonitorWindowInput, lw windowLog, version int, uri string) pipeline.MonitorWindowResult {
	res := pipeline.MonitorWindowResult{ReportURI: uri, Version: version, Predictions: in.Predictions, Labels: in.Labels,
		Requests: rep.KPIs.Requests, Labelled: rep.Live.Labels, LiveMAE: rep.Live.MAE, Drifted: rep.Drifted, MAEBreach: rep.MAEBreach,
		EstimateBreach: rep.EstimateBreach,
		Problems:       len(rep.Problems)}
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
	if n := len(lw.recParts); n > 0 {
		res.Predictions = pipeline.LogMark(mark(lw.recParts[n-1]))
	}
	if n := len(lw.labParts); n > 0 {
		res.Labels = pipeline.LogMark(mark(lw.labParts[n-1]))
	}
	return res
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

func (m *Monitoring) observe(sp spec.Spec, rep monitor.Report, bad int, res pipeline.MonitorWindowResult) {
	mm := m.Metrics
	if mm == nil {
		return
	}
	model := sp.Model
	mm.MaxLiveMAE.WithLabelValues(model).Set(sp.Monitoring.MaxLiveMAE)
	mm.MinDI.WithLabelValues(model).Set(sp.Fairness.MinDisparateImpact)
	mm.Interval.WithLabelValues(model).Set(sp.Monitoring.Interval.Seconds())
	if d := rep.Live.Decision; d != nil {
		mm.MinDecisionAccuracy.WithLabelValues(model).Set(d.Target)
		if d.Labels > 0 {
			mm.DecisionAccuracy.WithLabelValues(model).Set(d.Accuracy)
		}
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
