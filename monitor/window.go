package monitor

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"runtime"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

// Input is one window's evidence.
type Input struct {
	Spec    spec.Spec
	Version int // the production version watched (0: none deployed)
	// Reference is the version's input profile, Predictions its holdout prediction profile
	// (nil: missing; named in the report, the rest is still computed).
	Reference, Predictions *drift.Profile
	// Model is the version (nil: explanation drift is not computed) and Importance its
	// reference mean |SHAP| per feature on the holdout (the version's metadata).
	Model      *model.Model
	Importance map[string]float64
	// Estimator is the version's loss estimator (nil: none; the estimate is not computed).
	Estimator *model.Model
	// FavorableAbove is the prediction over which an outcome is favorable (evaluate.FavorableCut
	// of the version); NaN: fairness is not computed.
	FavorableAbove float64
	Records        []predlog.Record // the window's new prediction records (every version and route)
	Labels         []predlog.Label  // the window's new labels
	// Answered holds the answers (IsAnswer) of the label horizon by request id (the window's
	// included): what the labels are joined to.
	Answered map[string]predlog.Record
	From, To time.Time
	// Problems the reader met (a part that did not decode, ...), each naming what.
	Problems []string
}

// Report is a window's monitoring report (reports/<model>/monitor/<window end>.json).
type Report struct {
	Model   string    `json:"model"`
	Version int       `json:"version"`
	From    time.Time `json:"from"`
	To      time.Time `json:"to"`
	KPIs    KPIs      `json:"kpis"`
	// InputDrift of the live requests against the version's reference profile, and
	// PredictionDrift of its answers against its holdout predictions (nil: not computed, Notes say why).
	InputDrift      *drift.Report `json:"input_drift,omitempty"`
	PredictionDrift *drift.Report `json:"prediction_drift,omitempty"`
	// ExplanationDrift: the ranking of mean |SHAP| against the reference's (nDCG).
	ExplanationDrift *ExplanationDrift `json:"explanation_drift,omitempty"`
	// Drifted: input drift by the loop's decision, on at least monitoring.min_requests requests.
	Drifted bool       `json:"drifted"`
	Live    LiveErrors `json:"live"`
	// Estimated is the MAE the version's loss estimator expects on the window's requests,
	// before their labels arrive.
	Estimated *Estimate `json:"estimated,omitempty"`
	// EstimateBreach: the estimated MAE over monitoring.max_live_mae on at least
	// monitoring.min_requests requests.
	EstimateBreach bool `json:"estimate_breach"`
	// MAEBreach: live MAE over monitoring.max_live_mae on at least monitoring.min_labels labels.
	MAEBreach bool `json:"mae_breach"`
	// AccuracyBreach and EstimatedAccuracyBreach (classifiers): the live accuracy (on
	// min_labels) or the CBPE estimate (on min_requests) under monitoring.min_accuracy.
	AccuracyBreach          bool            `json:"accuracy_breach,omitempty"`
	EstimatedAccuracyBreach bool            `json:"estimated_accuracy_breach,omitempty"`
	Fairness                *FairnessWindow `json:"fairness,omitempty"`
	Notes                   []string        `json:"notes,omitempty"`
	Problems                []string        `json:"problems,omitempty"`
}

// Estimate is the window's performance estimated before labels: direct loss estimation
// (dle, regression) or confidence-based estimation from the calibrated scores (cbpe,
// classification: the expected accuracy of the answers thresholded at 0.5, and the expected
// |score - label| so MAE compares with the live one).
type Estimate struct {
	Method   string  `json:"method"`
	MAE      float64 `json:"mae"`
	Accuracy float64 `json:"accuracy,omitempty"` // cbpe
	Requests int     `json:"requests"`
}

// KPIs are the window's serving numbers for the version.
type KPIs struct {
	Requests  int     `json:"requests"`
	Errors    int     `json:"errors"`
	Fallbacks int     `json:"fallbacks"`
	P50Ms     float64 `json:"latency_p50_ms"`
	P99Ms     float64 `json:"latency_p99_ms"`
	SLOMs     float64 `json:"latency_slo_ms"`
	// OverSLO is the share of requests slower than the SLO.
	OverSLO float64 `json:"over_slo_share"`
	// Features is how fresh the feature store's values were (nil: no answer read the store).
	Features *FeatureFreshness `json:"features,omitempty"`
}

// FeatureFreshness summarises the prediction log's feature provenance over the window.
type FeatureFreshness struct {
	Requests int `json:"requests"`  // answers that read the online store
	FellBack int `json:"fell_back"` // values that fell back to defaults (missing, expired, store failed)
	// The age of each answer's oldest served value: median and largest, seconds.
	P50AgeS float64 `json:"age_p50_s"`
	MaxAgeS float64 `json:"age_max_s"`
}

// LiveErrors are the errors on the labels that arrived in the window.
type LiveErrors struct {
	Labels int `json:"labels"` // joined to a request the version answered
	// OtherVersion: labels of requests another version answered (a canary's); Unknown: labels
	// of no request answered within the label horizon.
	OtherVersion int `json:"other_version"`
	Unknown      int `json:"unknown"`
	// Duplicates: labels of an answer already labelled in the window (the first counts).
	Duplicates int     `json:"duplicates,omitempty"`
	MAE        float64 `json:"mae"` // 0 with no labels
	RMSE       float64 `json:"rmse"`
	// Accuracy (classifiers): the share of labelled answers whose class (score >= 0.5) is
	// the label's; what the cbpe estimate predicts.
	Accuracy *float64 `json:"accuracy,omitempty"`
	// Decision: the spec's business rule judged against the labels (nil: no rule).
	Decision *DecisionKPI `json:"decision,omitempty"`
	// Label delay (label time minus prediction time), seconds.
	DelayP50s float64 `json:"label_delay_p50_s"`
	DelayP90s float64 `json:"label_delay_p90_s"`
	DelayMaxs float64 `json:"label_delay_max_s"`
}

// DecisionKPI is the share of labelled requests whose decision (prediction over the
// threshold) is the one the label would have taken.
type DecisionKPI struct {
	Name     string  `json:"name"`
	Labels   int     `json:"labels"`
	Accuracy float64 `json:"accuracy"`
	Target   float64 `json:"target"`
	// Below: accuracy under the target on at least monitoring.min_labels labels.
	Below bool `json:"below"`
	// NoThreshold counts labelled requests without the threshold attribute (left out).
	NoThreshold int `json:"no_threshold,omitempty"`
}

// FairnessWindow is disparate impact over the window's answers, with a bootstrap interval,
// and the live error of each group.
type FairnessWindow struct {
	pipeline.FairnessResult
	// Low and High bound the ratio (95%: each group's Wilson interval, Bonferroni over the groups).
	Low       float64            `json:"low"`
	High      float64            `json:"high"`
	GroupMAE  map[string]float64 `json:"group_mae,omitempty"`
	ErrorGap  float64            `json:"error_gap"` // highest minus lowest group MAE (labelled groups)
	BelowMin  bool               `json:"below_min"` // the whole interval under fairness.min_disparate_impact
	MinImpact float64            `json:"min_disparate_impact"`
}

// keep is the records that pass: recs itself when all do (a window of a million records is
// not copied for nothing), else a copy of those that do.
func keep(recs []predlog.Record, pass func(*predlog.Record) bool) []predlog.Record {
	n := 0
	for i := range recs {
		if pass(&recs[i]) {
			n++
		}
	}
	if n == len(recs) {
		return recs
	}
	out := make([]predlog.Record, 0, n)
	for i := range recs {
		if pass(&recs[i]) {
			out = append(out, recs[i])
		}
	}
	return out
}

// Compute builds the window's report.
func Compute(in Input) Report {
	sp, m := in.Spec, in.Spec.Monitoring
	rep := Report{Model: sp.Model, Version: in.Version, From: in.From, To: in.To, Problems: in.Problems}
	mine := keep(in.Records, func(r *predlog.Record) bool { return int(r.Version) == in.Version && answered(*r) })
	rep.KPIs = kpis(mine, m.LatencySLOMs)
	if in.Version == 0 {
		rep.Notes = append(rep.Notes, "no production version: nothing to watch")
		return rep
	}
	ok := keep(mine, func(r *predlog.Record) bool { return r.Error == "" })
	feats := in.requestFeatures(ok)
	rep.inputDrift(in, ok, feats)
	rep.modelDrift(in, ok, feats)
	byGroup := rep.liveErrors(in)
	rep.groupFairness(in, ok, byGroup)
	return rep
}

// requestFeatures are the answered requests' inputs that the drift suite or the estimator
// reads, parsed once into columns.
func (in Input) requestFeatures(ok []predlog.Record) requestFeatures {
	names := append([]string(nil), in.Spec.Features...)
	if in.Model != nil {
		for _, f := range in.Model.Features {
			if !slices.Contains(names, f) {
				names = append(names, f)
			}
		}
	}
	if in.Estimator != nil {
		for _, f := range in.Estimator.Features[:len(in.Estimator.Features)-1] {
			if !slices.Contains(names, f) {
				names = append(names, f)
			}
		}
	}
	cols, parsed := columns(ok, names)
	return requestFeatures{names: names, cols: cols, parsed: parsed}
}

// inputDrift compares the answered requests' inputs with the version's reference profile.
func (rep *Report) inputDrift(in Input, ok []predlog.Record, feats requestFeatures) {
	m := in.Spec.Monitoring
	switch {
	case in.Reference == nil:
		rep.Notes = append(rep.Notes, fmt.Sprintf("input drift not computed: v%d has no reference profile", in.Version))
	case len(ok) == 0:
		rep.Notes = append(rep.Notes, "input drift not computed: no answered requests in the window")
	default:
		d, bad := inputDrift(in.Spec, *in.Reference, ok, feats)
		rep.InputDrift = &d
		if bad > 0 {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%d requests whose inputs cannot be read (not a JSON object of numbers) left out of input drift", bad))
		}
		rep.Drifted = d.Drifted && len(ok) >= m.MinRequests
		if d.Drifted && !rep.Drifted {
			rep.Notes = append(rep.Notes, fmt.Sprintf("input drift on %d requests, under monitoring.min_requests %d: not acted on", len(ok), m.MinRequests))
		}
	}
}

// modelDrift is what the model makes of the window before labels: explanation drift, the
// loss estimator's estimated MAE (or a classifier's accuracy) and prediction drift.
func (rep *Report) modelDrift(in Input, ok []predlog.Record, feats requestFeatures) {
	m := in.Spec.Monitoring
	if in.Model != nil && len(ok) > 0 {
		rep.ExplanationDrift = explanationDrift(in.Model, in.Importance, feats, len(ok))
		if rep.ExplanationDrift == nil && len(in.Importance) == 0 {
			rep.Notes = append(rep.Notes, fmt.Sprintf("explanation drift not computed: v%d has no reference importance", in.Version))
		}
	}
	if in.Estimator != nil && len(ok) > 0 {
		if e := estimate(in.Estimator, ok, feats); e.Requests > 0 {
			rep.Estimated = &e
			rep.EstimateBreach = e.Requests >= m.MinRequests && e.MAE > m.MaxLiveMAE
			rep.EstimatedAccuracyBreach = e.Method == "cbpe" && e.Requests >= m.MinRequests && e.Accuracy < m.MinAccuracy
		}
	} else if in.Estimator == nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("MAE not estimated: v%d has no loss estimator", in.Version))
	}
	if in.Predictions != nil && len(ok) > 0 {
		w := drift.NewWindow(*in.Predictions)
		if i := w.Index(drift.PredictionFeature); i >= 0 {
			for _, r := range ok {
				w.AddNumeric(i, r.Prediction, rowKey(r.RequestID))
			}
			d := w.Report(in.Spec.Drift.Config())
			rep.PredictionDrift = &d
		}
	} else if in.Predictions == nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("prediction drift not computed: v%d has no prediction profile", in.Version))
	}
}

// labelled is one labelled answer's absolute error and its protected group.
type labelled struct {
	group string
	err   float64
}

// liveErrors joins the window's labels to the answers they label: live MAE and RMSE, a
// classifier's accuracy, the decision KPI and the labels' delays. It returns each labelled
// answer's error by protected group, for fairness.
func (rep *Report) liveErrors(in Input) []labelled {
	sp, m := in.Spec, in.Spec.Monitoring
	var errs, delays []float64
	var byGroup []labelled
	decided, right, noThreshold := 0, 0, 0
	classifier := (in.Model != nil && in.Model.Classifier()) || (in.Estimator != nil && in.Estimator.Classifier())
	correct := 0
	labelledIDs := make(map[string]bool, len(in.Labels))
	for _, l := range in.Labels {
		r, found := in.Answered[l.RequestID]
		switch {
		case labelledIDs[l.RequestID]:
			rep.Live.Duplicates++
			continue
		case !found:
			rep.Live.Unknown++
			continue
		case int(r.Version) != in.Version || !answered(r) || r.Error != "":
			rep.Live.OtherVersion++
			continue
		}
		labelledIDs[l.RequestID] = true
		e := r.Prediction - l.Label
		errs = append(errs, e)
		if classifier && (r.Prediction >= 0.5) == (l.Label >= 0.5) {
			correct++
		}
		if d := m.Decision; d != nil {
			if t, ok := threshold(r, d); ok {
				decided++
				if (r.Prediction > t) == (l.Label > t) {
					right++
				}
			} else {
				noThreshold++
			}
		}
		delays = append(delays, float64(l.TimeUnixMs-r.TimeUnixMs)/1000)
		if g := group(r, sp.Fairness.ProtectedAttribute); g != "" {
			byGroup = append(byGroup, labelled{g, math.Abs(e)})
		}
	}
	if rep.Live.Unknown > 0 {
		rep.Problems = append(rep.Problems, fmt.Sprintf("%d labels for requests not answered within the label horizon (%s): counted, not joined", rep.Live.Unknown, m.LabelHorizon.Duration))
	}
	rep.Live.Labels = len(errs)
	if d := m.Decision; d != nil {
		k := &DecisionKPI{Name: d.Name, Labels: decided, Target: d.MinAccuracy, NoThreshold: noThreshold}
		if decided > 0 {
			k.Accuracy = float64(right) / float64(decided)
			k.Below = decided >= m.MinLabels && k.Accuracy < d.MinAccuracy
		}
		rep.Live.Decision = k
	}
	if len(errs) > 0 {
		var sa, ss float64
		for _, e := range errs {
			sa += math.Abs(e)
			ss += e * e
		}
		rep.Live.MAE, rep.Live.RMSE = sa/float64(len(errs)), math.Sqrt(ss/float64(len(errs)))
		if classifier {
			a := float64(correct) / float64(len(errs))
			rep.Live.Accuracy = &a
			rep.AccuracyBreach = len(errs) >= m.MinLabels && a < m.MinAccuracy
		}
		slices.Sort(delays)
		rep.Live.DelayP50s, rep.Live.DelayP90s, rep.Live.DelayMaxs = quantile(delays, 0.5), quantile(delays, 0.9), delays[len(delays)-1]
		rep.MAEBreach = len(errs) >= m.MinLabels && rep.Live.MAE > m.MaxLiveMAE
		if len(errs) < m.MinLabels {
			rep.Notes = append(rep.Notes, fmt.Sprintf("live MAE on %d labels, under monitoring.min_labels %d: not acted on", len(errs), m.MinLabels))
		}
	}
	return byGroup
}

// groupFairness is the window's disparate impact of the protected attribute, with each
// group's live MAE.
func (rep *Report) groupFairness(in Input, ok []predlog.Record, byGroup []labelled) {
	sp := in.Spec
	if a := sp.Fairness.ProtectedAttribute; a != "" && !math.IsNaN(in.FavorableAbove) {
		rep.Fairness = fairness(sp, a, in.FavorableAbove, ok)
		if rep.Fairness != nil {
			sums, counts := map[string]float64{}, map[string]int{}
			for _, x := range byGroup {
				sums[x.group] += x.err
				counts[x.group]++
			}
			if len(counts) > 0 {
				rep.Fairness.GroupMAE = map[string]float64{}
				lo, hi := math.Inf(1), math.Inf(-1)
				for g, s := range sums {
					v := s / float64(counts[g])
					rep.Fairness.GroupMAE[g] = v
					lo, hi = min(lo, v), max(hi, v)
				}
				rep.Fairness.ErrorGap = hi - lo
			}
		}
	}
}

// IsAnswer reports whether a record is a request's answer (routes production and canary),
// not a second scoring of it (paired, shadow) that carries the same request id.
func IsAnswer(r predlog.Record) bool { return answered(r) }

// answered: a record of a request the version answered (not a paired or shadow score).
func answered(r predlog.Record) bool {
	route := pipeline.Route(r.Route)
	return route == pipeline.RouteProduction || route == pipeline.RouteCanary
}

func kpis(recs []predlog.Record, slo float64) KPIs {
	k := KPIs{Requests: len(recs), SLOMs: slo}
	lat := make([]float64, 0, len(recs))
	var ages []float64
	over := 0
	for _, r := range recs {
		if r.Error != "" {
			k.Errors++
		}
		if r.Fallback != "" {
			k.Fallbacks++
		}
		if r.Features != "" {
			var p predlog.FeatureProvenance
			if json.Unmarshal([]byte(r.Features), &p) == nil {
				if k.Features == nil {
					k.Features = &FeatureFreshness{}
				}
				k.Features.Requests++
				k.Features.FellBack += p.FellBack
				ages = append(ages, p.OldestAgeS)
			}
		}
		ms := float64(r.LatencyUs) / 1000
		lat = append(lat, ms)
		if ms > slo {
			over++
		}
	}
	if len(lat) > 0 {
		slices.Sort(lat)
		k.P50Ms, k.P99Ms = quantile(lat, 0.5), quantile(lat, 0.99)
		k.OverSLO = float64(over) / float64(len(lat))
	}
	if len(ages) > 0 {
		slices.Sort(ages)
		k.Features.P50AgeS, k.Features.MaxAgeS = quantile(ages, 0.5), ages[len(ages)-1]
	}
	return k
}

// requestFeatures are the window's request features by column (NaN: missing or null).
type requestFeatures struct {
	names  []string
	cols   [][]float64
	parsed []bool // false: the request's inputs are not a JSON object of numbers
}

func (f requestFeatures) col(name string) []float64 {
	return f.cols[slices.Index(f.names, name)]
}

// inputDrift feeds the requests' features to a drift window of the reference: numbers as
// they are, categories rendered as the training data's Parquet renders them, a missing or
// null feature as a null. Features run in parallel (each has its own accumulator).
func inputDrift(sp spec.Spec, ref drift.Profile, recs []predlog.Record, f requestFeatures) (drift.Report, int) {
	var keep drift.Profile
	var cols []contract.Column
	for _, name := range sp.Features {
		if fp, ok := ref.Feature(name); ok {
			keep.Features = append(keep.Features, fp)
			col, _ := sp.Contract.Column(name)
			cols = append(cols, col)
		}
	}
	w := drift.NewWindow(keep)
	keys := make([]uint64, len(recs))
	bad := 0
	for k, r := range recs {
		keys[k] = rowKey(r.RequestID)
		if !f.parsed[k] {
			bad++
		}
	}
	next := make(chan int, len(keep.Features))
	for i := range keep.Features {
		next <- i
	}
	close(next)
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), len(keep.Features)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range next {
				fp, vals := keep.Features[i], f.col(keep.Features[i].Name)
				for k, v := range vals {
					switch {
					case !f.parsed[k]:
					case fp.Kind == drift.Categorical && v != v:
						w.AddCategory(i, "null")
					case fp.Kind == drift.Categorical:
						w.AddCategory(i, dataset.FormatNumber(cols[i], v))
					default:
						w.AddNumeric(i, v, keys[k])
					}
				}
			}
		}()
	}
	wg.Wait()
	return w.Report(sp.Drift.Config()), bad
}

// estimate averages the loss estimator's expected absolute error over the requests: their
// features (a missing one as a missing value) and the prediction, scored in batches on every
// core.
func estimate(est *model.Model, recs []predlog.Record, f requestFeatures) Estimate {
	p := len(est.Features)
	var rows []int
	for k := range recs {
		if f.parsed[k] {
			rows = append(rows, k)
		}
	}
	if len(rows) == 0 {
		return Estimate{}
	}
	src := make([][]float64, p-1)
	for j, name := range est.Features[:p-1] {
		src[j] = f.col(name)
	}
	sums := make([]float64, len(rows))
	right := make([]float64, len(rows)) // cbpe: the chance each answer is right
	cbpe := est.Classifier()
	parallel(len(rows), func(lo, hi int) {
		const batch = 1024
		x := make([]float64, batch*p)
		out := make([]float64, batch)
		for b := lo; b < hi; b += batch {
			m := min(batch, hi-b)
			for i := range m {
				k := rows[b+i]
				for j := range p - 1 {
					x[i*p+j] = src[j][k]
				}
				x[i*p+p-1] = recs[k].Prediction
			}
			est.GBDT.PredictBatch(x[:m*p], p, out[:m])
			for i := range m {
				if !cbpe {
					sums[b+i] = max(0, out[i])
					continue
				}
				// c = P(label 1 | score): E|score - label| = c(1-score) + (1-c)score, and the
				// answer (score >= 0.5) is right with probability c, or 1-c.
				c, score := out[i], recs[rows[b+i]].Prediction
				sums[b+i] = c*(1-score) + (1-c)*score
				if score >= 0.5 {
					right[b+i] = c
				} else {
					right[b+i] = 1 - c
				}
			}
		}
	})
	var sum, acc float64
	for i, v := range sums {
		sum, acc = sum+v, acc+right[i]
	}
	n := float64(len(rows))
	if cbpe {
		return Estimate{Method: "cbpe", MAE: sum / n, Accuracy: acc / n, Requests: len(rows)}
	}
	return Estimate{Method: "dle", MAE: sum / n, Requests: len(rows)}
}

// fairness is disparate impact over the answers, with an interval from each group's rate
// interval (Wilson, 95% jointly over the groups by Bonferroni): the ratio's bounds are what the
// lowest and highest rates can be within their intervals. It always holds the estimate (a
// bootstrap of a min/max ratio sits below it: the extreme rates of a resample are noisier).
func fairness(sp spec.Spec, attr string, above float64, recs []predlog.Record) *FairnessWindow {
	groups := evaluate.Groups{}
	for _, r := range recs {
		if g := group(r, attr); g != "" {
			groups.Add(g, r.Prediction >= above)
		}
	}
	if len(groups) < 2 {
		return nil
	}
	minRows := max(sp.Fairness.MinGroupRows, 1)
	f := evaluate.DisparateImpact(attr, above, groups, minRows)
	out := &FairnessWindow{FairnessResult: *f, Low: f.DisparateImpact, High: f.DisparateImpact, MinImpact: sp.Fairness.MinDisparateImpact}
	var counted []pipeline.GroupRate
	for _, gr := range f.Groups {
		if gr.Rows >= minRows {
			counted = append(counted, gr)
		}
	}
	if len(counted) < 2 {
		return out
	}
	z := normalQuantile(1 - 0.025/float64(len(counted)))
	minLo, minHi, maxLo, maxHi := math.Inf(1), math.Inf(1), 0.0, 0.0
	for _, gr := range counted {
		lo, hi := wilson(gr.Favorable, gr.Rows, z)
		minLo, minHi = min(minLo, lo), min(minHi, hi)
		maxLo, maxHi = max(maxLo, lo), max(maxHi, hi)
	}
	if maxHi > 0 {
		out.Low = minLo / maxHi
	}
	out.High = 1
	if maxLo > 0 {
		out.High = min(1, minHi/maxLo)
	}
	out.BelowMin = out.High < out.MinImpact
	return out
}

// wilson is the Wilson score interval of k successes in n.
func wilson(k, n int, z float64) (lo, hi float64) {
	p, fn := float64(k)/float64(n), float64(n)
	den := 1 + z*z/fn
	c := (p + z*z/(2*fn)) / den
	h := z * math.Sqrt(p*(1-p)/fn+z*z/(4*fn*fn)) / den
	return max(0, c-h), min(1, c+h)
}

// normalQuantile is the standard normal quantile (bisection on erfc; p in (0.5, 1)).
func normalQuantile(p float64) float64 {
	lo, hi := 0.0, 10.0
	for range 100 {
		mid := (lo + hi) / 2
		if 0.5*math.Erfc(-mid/math.Sqrt2) < p {
			lo = mid
		} else {
			hi = mid
		}
	}
	return (lo + hi) / 2
}

// group is the request's group by the protected attribute ("" when it has none). Requests
// share few distinct attribute objects (a region, a segment), so each distinct one is decoded
// once per window (up to maxGroupCache of them; beyond, each request's is decoded).
func group(r predlog.Record, attr string) string {
	if r.Attributes == "" || attr == "" {
		return ""
	}
	k := groupKey{attr, r.Attributes}
	groupMu.Lock()
	g, ok := groupCache[k]
	groupMu.Unlock()
	if ok {
		return g
	}
	g = r.Attribute(attr)
	groupMu.Lock()
	if len(groupCache) >= maxGroupCache {
		clear(groupCache)
	}
	groupCache[k] = g
	groupMu.Unlock()
	return g
}

type groupKey struct{ attr, attributes string }

const maxGroupCache = 4096

var (
	groupMu    sync.Mutex
	groupCache = map[groupKey]string{}
)

// threshold is the decision's threshold for a request: the constant, or its attribute.
func threshold(r predlog.Record, d *spec.Decision) (float64, bool) {
	if d.ThresholdAttribute == "" {
		return d.Threshold, true
	}
	var a map[string]any
	if json.Unmarshal([]byte(r.Attributes), &a) != nil {
		return 0, false
	}
	switch v := a[d.ThresholdAttribute].(type) {
	case float64:
		return v, true
	case string:
		f, err := strconv.ParseFloat(v, 64)
		return f, err == nil
	}
	return 0, false
}

func rowKey(id string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(id))
	return h.Sum64()
}

// quantile of sorted x (linear interpolation).
func quantile(x []float64, q float64) float64 {
	if len(x) == 0 {
		return 0
	}
	pos := q * float64(len(x)-1)
	i := int(pos)
	if i+1 >= len(x) {
		return x[len(x)-1]
	}
	return x[i] + (pos-float64(i))*(x[i+1]-x[i])
}
