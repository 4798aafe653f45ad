package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// The loss estimator registered with a version, measured as the monitor uses it: on one-day
// windows of the demo's data after the training window, the estimated MAE (before labels)
// against the realised MAE of the same requests. Before the holiday shift the estimate is
// within 10% in every window; on the drifted days the share within 10% is logged (the
// figure in docs/monitoring.md: 0 of 30 on 2026-12-01, the estimator under-reads by 49-66%:
// the holiday changes how demand answers the features, which no estimator trained on the
// holdout can see; the live MAE and input drift catch it).
func TestLossEstimatorAgainstRealisedMAE(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	cfg := dataset.DefaultRetail() // 1,000 store-items a day: windows of 1,000 requests
	e.spec.Dataset.Name = "retail_estimate"
	_, _, err := dataset.WriteRetail(ctx, e.store, e.spec.Dataset.Name, cfg)
	require.NoError(t, err)
	_, _, _, rr, _ := e.cycle("base", "2026-09-01", "2026-09-28")
	reg := registry.New(e.store)
	est, err := reg.LoadLossEstimator(ctx, "demand", rr.Version)
	require.NoError(t, err)
	require.Equal(t, evaluate.EstimatorPrediction, est.Features[len(est.Features)-1])
	mdl, err := reg.LoadModel(ctx, "demand", rr.Version)
	require.NoError(t, err)
	ndcgs := map[int]float64{}
	window := func(day int) (estimated, realised float64) {
		var recs []predlog.Record
		var labels []predlog.Label
		for i, r := range cfg.RetailDay(day) {
			if math.IsNaN(r.Temperature) {
				continue
			}
			feats := map[string]float64{"price": r.Price, "promo": float64(r.Promo), "weekday": float64(r.Weekday),
				"temperature": r.Temperature, "item_popularity": r.ItemPopularity}
			x, err := mdl.Vector(feats)
			require.NoError(t, err)
			in, _ := json.Marshal(feats)
			id := fmt.Sprintf("%d-%d", day, i)
			recs = append(recs, predlog.Record{RequestID: id, Version: int32(rr.Version), Route: string(pipeline.RouteProduction),
				Prediction: mdl.Predict(x), Inputs: string(in)})
			labels = append(labels, predlog.Label{RequestID: id, Label: r.UnitsSold})
		}
		answered := map[string]predlog.Record{}
		for _, r := range recs {
			answered[r.RequestID] = r
		}
		v, err := reg.Version(ctx, "demand", rr.Version)
		require.NoError(t, err)
		rep := monitor.Compute(monitor.Input{Spec: e.spec, Version: rr.Version, Estimator: est, FavorableAbove: math.NaN(),
			Model: mdl, Importance: v.Importance, Records: recs, Labels: labels, Answered: answered, To: time.Now()})
		require.NotNil(t, rep.Estimated)
		require.NotNil(t, rep.ExplanationDrift)
		ndcgs[day] = rep.ExplanationDrift.NDCG
		require.Equal(t, len(recs), rep.Live.Labels)
		return rep.Estimated.MAE, rep.Live.MAE
	}
	within := func(from, to int) (int, int) {
		ok := 0
		for day := from; day < to; day++ {
			est, real := window(day)
			rel := est/real - 1
			if math.Abs(rel) <= 0.10 {
				ok++
			}
			t.Logf("day %d: estimated MAE %.3f, realised %.3f (%+.1f%%); explanation nDCG %.3f", day, est, real, 100*rel, ndcgs[day])
		}
		return ok, to - from
	}
	ok, n := within(cfg.ShiftDay-2, cfg.ShiftDay)
	require.Equal(t, n, ok, "before the shift the estimate is within 10%% of the realised MAE")
	for day := cfg.ShiftDay - 2; day < cfg.ShiftDay; day++ {
		require.GreaterOrEqual(t, ndcgs[day], 0.9, "before the shift the features rank as on the holdout")
	}
	ok, n = within(cfg.ShiftDay, cfg.Days)
	t.Logf("after the holiday shift: the estimate within 10%% of the realised MAE in %d of %d one-day windows (target: 90%%)", ok, n)
}
