package canary

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

func guardrails() spec.Canary {
	return spec.Canary{Mode: spec.ModeSplit, MinRequest: 30, MaxErrorRateDelta: 0.02, MaxP99LatencyDeltaMs: 25,
		MaxFallbackRateDelta: 0.05, MinLabels: 30, MaxMAERegression: 0.05, MAEAlpha: 0.05, ProtectedAttribute: "region", MinDisparateImpact: 0.8}
}

// constant is a model answering c for any input of feature x.
func constant(c float64) *model.Model {
	return &model.Model{Family: "linear", Objective: hparams.SquaredError, Features: []string{"x"}, Inputs: model.NumericInputs([]string{"x"}),
		Linear: &model.Linear{Coef: []float64{0}, Intercept: c, Means: []float64{0}, Scales: []float64{1}}}
}

func traffic(n int, route pipeline.Route, version int, pred float64, errEvery int) []predlog.Record {
	var out []predlog.Record
	for i := range n {
		r := predlog.Record{RequestID: fmt.Sprintf("%s-%d", route, i), Version: int32(version), Route: string(route), LatencyUs: 300,
			Prediction: pred, Inputs: `{"x":1}`, Attributes: fmt.Sprintf(`{"region":"%s"}`, []string{"north", "south"}[i%2])}
		if errEvery > 0 && i%errEvery == 0 {
			r.Error = "boom"
		}
		out = append(out, r)
	}
	return out
}

func TestJudgeDecisions(t *testing.T) {
	base := func() Input {
		recs := append(traffic(50, pipeline.RouteCanary, 2, 5, 0), traffic(50, pipeline.RouteProduction, 1, 5, 0)...)
		return Input{Records: recs, Candidate: 2, Production: 1, Step: 1, Share: 0.1, Guardrails: guardrails(),
			CandidateModel: constant(5), ProductionModel: constant(5)}
	}
	in := base()
	res := Judge(in)
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.Equal(t, 50, res.Candidate.Requests)
	require.NotNil(t, res.Fairness)

	in = base()
	in.Records = in.Records[:10]
	require.Equal(t, pipeline.CanaryWait, Judge(in).Decision, "too little traffic")

	// A guardrail that cannot be evaluated is inconclusive, never a pass.
	in = base()
	in.CandidateModel, in.CandidateErr = nil, errors.New("checksum mismatch")
	res = Judge(in)
	require.Equal(t, pipeline.CanaryInconclusive, res.Decision)
	require.Contains(t, res.Reason, "candidate v2 did not load: checksum mismatch")
	in = base()
	for i := range in.Records {
		in.Records[i].Attributes = ""
	}
	res = Judge(in)
	require.Equal(t, pipeline.CanaryInconclusive, res.Decision)
	require.Contains(t, res.Reason, "carry 0 group(s) of region")
	// ... but a breach still rolls back whatever else is unknown.
	in.Records = append(traffic(50, pipeline.RouteCanary, 2, 5, 2), traffic(50, pipeline.RouteProduction, 1, 5, 0)...)
	in.CandidateModel, in.CandidateErr = nil, errors.New("gone")
	res = Judge(in)
	require.Equal(t, pipeline.CanaryRollback, res.Decision)
	require.Contains(t, res.Reason, "error rate")

	// Live MAE: the candidate is three times worse on the same labels.
	in = base()
	in.Labels = map[string]float64{}
	for i := range in.Records {
		r := &in.Records[i]
		in.Labels[r.RequestID] = 5 + float64(1+i%3)
		if r.Route == string(pipeline.RouteCanary) {
			r.Prediction = 5 - 2*float64(1+i%3)
		}
	}
	res = Judge(in)
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "live MAE")
	// Shadow mode judges the shadow route.
	in = base()
	in.Guardrails.Mode = spec.ModeShadow
	for i := range in.Records {
		if in.Records[i].Route == string(pipeline.RouteCanary) {
			in.Records[i].Route = string(pipeline.RouteShadow)
		}
	}
	require.Equal(t, pipeline.CanaryPromote, Judge(in).Decision)
}

func TestRatesDiffer(t *testing.T) {
	// 45% vs 60% on 40 rows each is not significant; on 2,000 rows each it is.
	small := RatesDiffer(pipeline.GroupRate{Rows: 40, Favorable: 18, Rate: 0.45}, pipeline.GroupRate{Rows: 40, Favorable: 24, Rate: 0.6})
	require.Greater(t, small, 0.05)
	big := RatesDiffer(pipeline.GroupRate{Rows: 2000, Favorable: 900, Rate: 0.45}, pipeline.GroupRate{Rows: 2000, Favorable: 1200, Rate: 0.6})
	require.Less(t, big, 1e-6)
}

// A/A canaries: the candidate is the production model (the same error distribution on both
// routes), looked at after every bake of every step with the labels so far. With alpha spent
// over the looks, at most alpha of the canaries roll back falsely on live MAE. The power to
// catch a 10% worse candidate is measured and logged (it is low at the demo's label counts:
// issue 13's paired, sequential test is the way to raise it).
func TestLiveMAEFalseRollbackRateOverAllLooks(t *testing.T) {
	g := spec.Canary{Steps: []float64{0.1, 0.3, 0.5}, MaxBakes: 3, MAEAlpha: 0.05, MaxMAERegression: 0.05, MinLabels: 30}
	require.Equal(t, 9, Looks(g))
	rng := rand.New(rand.NewPCG(5, 6))
	draw := func(n int, scale float64) []float64 {
		out := make([]float64, n)
		for i := range out {
			out[i] = scale * rng.ExpFloat64()
		}
		return out
	}
	run := func(worse float64) bool { // true: rolled back at some look
		var cand, prod []float64
		for look := 1; look <= Looks(g); look++ {
			cand, prod = append(cand, draw(40, worse)...), append(prod, draw(40, 1)...)
			mc, mp, p := WorseMAE(cand, prod)
			if p < LookAlpha(g) && mc > mp*(1+g.MaxMAERegression) {
				return true
			}
		}
		return false
	}
	const canaries = 1000
	falseRollbacks, caught := 0, 0
	for range canaries {
		if run(1) {
			falseRollbacks++
		}
		if run(1.10) {
			caught++
		}
	}
	rate := float64(falseRollbacks) / canaries
	t.Logf("A/A false rollback rate %.3f (alpha %.2f); power against a 10%% regression %.3f", rate, g.MAEAlpha, float64(caught)/canaries)
	require.LessOrEqual(t, rate, g.MAEAlpha)
}
