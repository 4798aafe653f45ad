package monitor

import (
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

func features(r dataset.RetailRow) map[string]float64 {
	return map[string]float64{"price": r.Price, "promo": float64(r.Promo), "weekday": float64(r.Weekday),
		"temperature": r.Temperature, "item_popularity": r.ItemPopularity}
}

// reference profiles the demo's rows of the days before the holiday shift, as registration does.
func reference(t *testing.T, sp spec.Spec, cfg dataset.RetailConfig) drift.Profile {
	b := drift.NewProfileBuilder(sp.Features, sp.FeatureKinds())
	key := uint64(0)
	for day := 0; day < 14; day++ {
		for _, r := range cfg.RetailDay(day) {
			x := features(r)
			for i, f := range sp.Features {
				if sp.FeatureKinds()[i] == drift.Categorical {
					b.AddCategory(i, fmt.Sprint(x[f]))
				} else {
					b.AddNumeric(i, x[f], key)
				}
			}
			key++
		}
	}
	return b.Profile()
}

// live turns the demo's rows of a day into logged answers of v1 (prediction = truth + err)
// and their labels a minute later.
func live(t *testing.T, cfg dataset.RetailConfig, day int, at time.Time, err float64) ([]predlog.Record, []predlog.Label) {
	var recs []predlog.Record
	var labels []predlog.Label
	for i, r := range cfg.RetailDay(day) {
		if math.IsNaN(r.Temperature) {
			continue
		}
		in, _ := json.Marshal(features(r))
		attrs, _ := json.Marshal(map[string]string{"region": r.Region})
		id := fmt.Sprintf("d%d-%d", day, i)
		e := err
		if i%2 == 0 {
			e = -err
		}
		recs = append(recs, predlog.Record{RequestID: id, TimeUnixMs: at.UnixMilli(), Model: "demand", Version: 1,
			Route: string(pipeline.RouteProduction), LatencyUs: int64(1000 + i%100*10), Prediction: r.UnitsSold + e,
			Inputs: string(in), Attributes: string(attrs)})
		labels = append(labels, predlog.Label{RequestID: id, TimeUnixMs: at.Add(time.Minute).UnixMilli(), Model: "demand", Label: r.UnitsSold})
	}
	return recs, labels
}

func demoSpec(t *testing.T) spec.Spec {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	return sp
}

func byID(recs []predlog.Record) map[string]predlog.Record {
	m := map[string]predlog.Record{}
	for _, r := range recs {
		m[r.RequestID] = r
	}
	return m
}

// A window of live requests like the reference does not drift; its KPIs and its live MAE are
// those of the requests and labels; the window after the holiday shift drifts.
func TestWindowReportsKPIsLiveErrorsAndDrift(t *testing.T) {
	sp := demoSpec(t)
	cfg := dataset.DefaultRetail()
	ref := reference(t, sp, cfg)
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)

	recs, labels := live(t, cfg, 20, at, 1.5)
	require.Greater(t, len(recs), sp.Monitoring.MinRequests)
	rep := Compute(Input{Spec: sp, Version: 1, Reference: &ref, FavorableAbove: 20, Records: recs, Labels: labels, Answered: byID(recs),
		From: at, To: at.Add(5 * time.Minute)})
	require.Equal(t, len(recs), rep.KPIs.Requests)
	require.Zero(t, rep.KPIs.Errors)
	require.InDelta(t, 1.5, rep.KPIs.P50Ms, 0.1)
	require.Zero(t, rep.KPIs.OverSLO)
	require.NotNil(t, rep.InputDrift)
	require.False(t, rep.Drifted, "live requests like the reference: %s", rep.InputDrift.Why)
	require.Equal(t, len(labels), rep.Live.Labels)
	require.InDelta(t, 1.5, rep.Live.MAE, 1e-9)
	require.InDelta(t, 60, rep.Live.DelayP50s, 1e-9)
	require.False(t, rep.MAEBreach)
	// The same labels sent again (to another replica): the first of each answer counts.
	again := append(append([]predlog.Label(nil), labels...), labels...)
	for i := len(labels); i < len(again); i++ {
		again[i].Label += 1000
	}
	dup := Compute(Input{Spec: sp, Version: 1, Reference: &ref, FavorableAbove: 20, Records: recs, Labels: again, Answered: byID(recs),
		From: at, To: at.Add(5 * time.Minute)})
	require.Equal(t, len(labels), dup.Live.Labels)
	require.Equal(t, len(labels), dup.Live.Duplicates)
	require.InDelta(t, 1.5, dup.Live.MAE, 1e-9)
	require.NotNil(t, rep.Fairness)
	require.LessOrEqual(t, rep.Fairness.Low, rep.Fairness.DisparateImpact)
	require.GreaterOrEqual(t, rep.Fairness.High, rep.Fairness.DisparateImpact)
	require.InDelta(t, 0, rep.Fairness.ErrorGap, 1e-9, "every group has the same error")

	// After the shift (prices up 20%, 12 degrees colder): drift, and the errors grew.
	shifted, slabels := live(t, cfg, cfg.ShiftDay+2, at, 5)
	rep = Compute(Input{Spec: sp, Version: 1, Reference: &ref, FavorableAbove: 20, Records: shifted, Labels: slabels, Answered: byID(shifted),
		From: at, To: at.Add(5 * time.Minute)})
	require.True(t, rep.Drifted, "%+v", rep.InputDrift)
	require.True(t, rep.MAEBreach, "live MAE %.2f over %.2f", rep.Live.MAE, sp.Monitoring.MaxLiveMAE)

	// Too few requests: reported, not acted on.
	rep = Compute(Input{Spec: sp, Version: 1, Reference: &ref, FavorableAbove: 20, Records: shifted[:50], Answered: byID(shifted), From: at, To: at})
	require.True(t, rep.InputDrift.Drifted)
	require.False(t, rep.Drifted)
	require.Contains(t, fmt.Sprint(rep.Notes), "under monitoring.min_requests")
}

// Bad input is named and counted, the rest of the window is still computed: a label for no
// known request, a label of another version's answer, inputs that are not JSON, a version
// without a reference profile.
func TestWindowNamesBadInputAndGoesOn(t *testing.T) {
	sp := demoSpec(t)
	cfg := dataset.DefaultRetail()
	at := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	recs, labels := live(t, cfg, 3, at, 1)
	recs[0].Inputs = "{not json"
	recs[1].Version = 2 // a canary's answer
	recs[1].Route = string(pipeline.RouteCanary)
	labels = append(labels, predlog.Label{RequestID: "nobody", Label: 3})
	ref := reference(t, sp, cfg)
	rep := Compute(Input{Spec: sp, Version: 1, Reference: &ref, FavorableAbove: math.NaN(), Records: recs, Labels: labels, Answered: byID(recs),
		Problems: []string{"log part s3://b/predictions/demand/dt=2026-12-01/part-1-a-000001.parquet: not Parquet"}})
	require.Equal(t, 1, rep.Live.Unknown)
	require.Equal(t, 1, rep.Live.OtherVersion)
	require.Equal(t, len(labels)-2, rep.Live.Labels)
	require.Equal(t, len(recs)-1, rep.KPIs.Requests, "the canary's answer is not v1's")
	require.Contains(t, fmt.Sprint(rep.Problems), "part-1-a-000001.parquet")
	require.Contains(t, fmt.Sprint(rep.Problems), "1 labels for requests not answered")
	require.Contains(t, fmt.Sprint(rep.Problems), "1 requests whose inputs cannot be read")
	require.Nil(t, rep.Fairness, "no favorable cut: fairness not computed")

	rep = Compute(Input{Spec: sp, Version: 1, FavorableAbove: math.NaN(), Records: recs, Labels: labels, Answered: byID(recs)})
	require.Nil(t, rep.InputDrift)
	require.Contains(t, fmt.Sprint(rep.Notes), "v1 has no reference profile")
	require.Equal(t, len(labels)-2, rep.Live.Labels, "live errors are still computed")
}

// Disparate impact per window: the interval holds the estimate, and only a window whose
// whole interval is under the floor is flagged.
func TestWindowFairnessInterval(t *testing.T) {
	sp := demoSpec(t)
	recs := func(southRate float64, n int) []predlog.Record {
		var out []predlog.Record
		for i := range n {
			for _, g := range []string{"north", "south", "east"} {
				rate := 0.5
				if g == "south" {
					rate = southRate
				}
				pred := 10.0
				if float64(i%100) < rate*100 {
					pred = 30
				}
				out = append(out, predlog.Record{RequestID: fmt.Sprintf("%s-%d", g, i), Version: 1, Route: string(pipeline.RouteProduction),
					Prediction: pred, Inputs: `{}`, Attributes: fmt.Sprintf(`{"region":%q}`, g)})
			}
		}
		return out
	}
	for _, c := range []struct {
		south float64
		n     int
		below bool
	}{{0.5, 1000, false}, {0.45, 1000, false}, {0.2, 1000, true}, {0.35, 60, false}} {
		rep := Compute(Input{Spec: sp, Version: 1, FavorableAbove: 20, Records: recs(c.south, c.n)})
		f := rep.Fairness
		require.NotNil(t, f)
		require.LessOrEqual(t, f.Low, f.DisparateImpact, "%+v", c)
		require.GreaterOrEqual(t, f.High, f.DisparateImpact, "%+v", c)
		require.Equal(t, c.below, f.BelowMin, "south %.2f on %d rows: DI %.3f [%.3f, %.3f]", c.south, c.n, f.DisparateImpact, f.Low, f.High)
	}
}

// The decision KPI: right when the label is on the prediction's side of the threshold (a
// constant, or the request's attribute); under its target on enough labels it is flagged.
func TestWindowDecisionAccuracy(t *testing.T) {
	sp := demoSpec(t)
	sp.Monitoring.MinLabels = 4
	sp.Monitoring.Decision = &spec.Decision{Name: "order", ThresholdAttribute: "stock", MinAccuracy: 0.9}
	rec := func(id string, pred float64, attrs string) predlog.Record {
		return predlog.Record{RequestID: id, Version: 1, Route: string(pipeline.RouteProduction), Prediction: pred, Inputs: `{}`, Attributes: attrs}
	}
	recs := []predlog.Record{rec("a", 12, `{"stock":10}`), rec("b", 8, `{"stock":10}`), rec("c", 12, `{"stock":"10"}`),
		rec("d", 30, `{"stock":40}`), rec("e", 5, `{}`)}
	labels := []predlog.Label{{RequestID: "a", Label: 11}, {RequestID: "b", Label: 9}, {RequestID: "c", Label: 9},
		{RequestID: "d", Label: 35}, {RequestID: "e", Label: 1}}
	rep := Compute(Input{Spec: sp, Version: 1, FavorableAbove: math.NaN(), Records: recs, Labels: labels, Answered: byID(recs)})
	d := rep.Live.Decision
	require.NotNil(t, d)
	require.Equal(t, 4, d.Labels)
	require.Equal(t, 1, d.NoThreshold, "a request without the stock attribute is left out")
	require.InDelta(t, 0.75, d.Accuracy, 1e-9, "c ordered (12 > 10) but 9 sold")
	require.True(t, d.Below)
	sp.Monitoring.Decision = &spec.Decision{Name: "order", Threshold: 10, MinAccuracy: 0.5}
	rep = Compute(Input{Spec: sp, Version: 1, FavorableAbove: math.NaN(), Records: recs, Labels: labels, Answered: byID(recs)})
	require.Equal(t, 5, rep.Live.Decision.Labels)
	require.False(t, rep.Live.Decision.Below)
}

// The window reports how fresh the feature store's values were, from the log's provenance:
// answers that read the store, values that fell back, the median and largest age.
func TestWindowReportsFeatureFreshness(t *testing.T) {
	prov := func(fellBack int, age float64) string {
		b, _ := json.Marshal(predlog.FeatureProvenance{Service: "demand_forecast", Served: 4 - fellBack, FellBack: fellBack, OldestAgeS: age})
		return string(b)
	}
	recs := []predlog.Record{{LatencyUs: 100, Features: prov(0, 3600)}, {LatencyUs: 100, Features: prov(1, 7200)},
		{LatencyUs: 100, Features: prov(0, 60)}, {LatencyUs: 100}}
	k := kpis(recs, 50)
	require.Equal(t, &FeatureFreshness{Requests: 3, FellBack: 1, P50AgeS: 3600, MaxAgeS: 7200}, k.Features)
	require.Zero(t, k.Fallbacks, "provenance is not a fallback")
	require.Nil(t, kpis(recs[3:], 50).Features, "no answer read the store")
}
