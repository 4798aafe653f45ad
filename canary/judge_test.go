package canary

import (
	"errors"
	"fmt"
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

// pairedWith is the other model's answers to the same requests, as serving logs them off the
// request path.
func pairedWith(recs []predlog.Record, version int, pred func(i int) float64) []predlog.Record {
	out := make([]predlog.Record, len(recs))
	for i, r := range recs {
		r.Route, r.Version, r.Prediction, r.Error = string(pipeline.RoutePaired), int32(version), pred(i), ""
		out[i] = r
	}
	return out
}

func TestJudgeDecisions(t *testing.T) {
	const n = 300 // enough requests per route for a p99 (QuantileSamples(0.99, 0.95) = 299)
	require.Equal(t, 299, QuantileSamples(0.99, 0.95))
	base := func() Input {
		recs := append(traffic(n, pipeline.RouteCanary, 2, 5, 0), traffic(n, pipeline.RouteProduction, 1, 5, 0)...)
		return Input{Records: recs, Candidate: 2, Production: 1, Step: 1, Share: 0.1, Guardrails: guardrails(),
			CandidateModel: constant(5), ProductionModel: constant(5)}
	}
	in := base()
	res := Judge(in)
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.Equal(t, n, res.Candidate.Requests)
	require.NotNil(t, res.Fairness)
	require.NotNil(t, res.DisparateImpactDelta)
	require.Zero(t, res.DisparateImpactDelta.Estimate, "the same answers on the same requests")

	in = base()
	in.Records = in.Records[:10]
	require.Equal(t, pipeline.CanaryWait, Judge(in).Decision, "too little traffic")

	// Enough requests for the other guardrails but too few for a p99: inconclusive, named.
	in = base()
	in.Records = append(traffic(100, pipeline.RouteCanary, 2, 5, 0), traffic(n, pipeline.RouteProduction, 1, 5, 0)...)
	res = Judge(in)
	require.Equal(t, pipeline.CanaryInconclusive, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "p99 latency not evaluated: 100 candidate and 300 production requests, a p99 needs 299")
	// With enough, a slow candidate breaches.
	in = base()
	for i := range in.Records {
		if in.Records[i].Route == string(pipeline.RouteCanary) && i%20 == 0 {
			in.Records[i].LatencyUs = 90_000
		}
	}
	res = Judge(in)
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "p99 latency")

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
	in.Records = append(traffic(n, pipeline.RouteCanary, 2, 5, 2), traffic(n, pipeline.RouteProduction, 1, 5, 0)...)
	in.CandidateModel, in.CandidateErr = nil, errors.New("gone")
	res = Judge(in)
	require.Equal(t, pipeline.CanaryRollback, res.Decision)
	require.Contains(t, res.Reason, "error rate")

	// Live MAE on the same requests: each route's requests carry the other model's answer.
	labelled := func(candPred func(i int) float64) Input {
		in := base()
		can, prod := in.Records[:n], in.Records[n:]
		for i := range can {
			can[i].Prediction = candPred(i)
		}
		in.Records = append(append(in.Records, pairedWith(can, 1, func(int) float64 { return 5 })...), pairedWith(prod, 2, func(i int) float64 { return candPred(n + i) })...)
		in.Labels = map[string]float64{}
		for i, r := range in.Records[:2*n] {
			in.Labels[r.RequestID] = 5 + float64(1+i%3)
		}
		return in
	}
	// Three times worse on the same labels: rolled back, with the paired count in the evidence.
	res = Judge(labelled(func(i int) float64 { return 5 - 2*float64(1+i%3) }))
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "live MAE")
	require.Equal(t, 2*n, res.MAE.Pairs)
	require.True(t, res.MAE.Decided)
	// Better on the same requests: promoted, decided.
	res = Judge(labelled(func(i int) float64 { return 5 + float64(1+i%3) - 0.5 }))
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.True(t, res.MAE.Decided)
	require.Less(t, res.MAE.Candidate, res.MAE.Production)
	// Without the paired answers the MAE is undecided: different customers are not compared.
	in = labelled(func(i int) float64 { return 5 - 2*float64(1+i%3) })
	in.Records = in.Records[:2*n]
	res = Judge(in)
	require.Equal(t, pipeline.CanaryPromote, res.Decision, res.Reason)
	require.False(t, res.MAE.Decided)
	require.Zero(t, res.MAE.Pairs)

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

// Disparate impact is compared on the same requests with an interval: a candidate that
// favours one region much less than production does on those requests breaches; the same
// gap on a handful of requests does not (its interval reaches 0).
func TestJudgeDisparateImpactInterval(t *testing.T) {
	// The candidate's answers: north favourable 40% of the time, south 80%; production (a
	// constant 5, at the favourable cut) favours everyone.
	mk := func(n int) Input {
		recs := traffic(n, pipeline.RouteCanary, 2, 5, 0)
		for i := range recs {
			if i%2 == 0 && i%10 >= 4 { // north: 4 of every 10 even rows... 40%
				recs[i].Prediction = 0
			}
			if i%2 == 1 && i%10 == 9 { // south: 80%
				recs[i].Prediction = 0
			}
		}
		recs = append(recs, traffic(n, pipeline.RouteProduction, 1, 5, 0)...)
		return Input{Records: recs, Candidate: 2, Production: 1, Step: 1, Share: 0.1, Guardrails: guardrails(),
			CandidateModel: constant(5), ProductionModel: constant(5)}
	}
	res := Judge(mk(400))
	require.Equal(t, pipeline.CanaryRollback, res.Decision, res.Reason)
	require.Contains(t, res.Reason, "disparate impact of region 0.500")
	ci := res.DisparateImpactDelta
	require.InDelta(t, -0.5, ci.Estimate, 1e-9)
	require.Less(t, ci.High, 0.0)
	require.Less(t, ci.Low, ci.Estimate)

	small := mk(10)
	small.Guardrails.MinRequest = 5
	small.Guardrails.Steps, small.Guardrails.MaxBakes = []float64{0.1, 0.3, 0.5}, 3 // 9 looks share alpha
	res = Judge(small)
	require.NotContains(t, res.Reason, "disparate impact of region", "10 requests cannot show it at the look's alpha")
	require.GreaterOrEqual(t, res.DisparateImpactDelta.High, 0.0)
}
