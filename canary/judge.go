package canary

import (
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

// Input is one canary evaluation: the step's traffic and what to compare it with.
type Input struct {
	Records []predlog.Record
	// Labels are feedback labels by request id.
	Labels                map[string]float64
	Candidate, Production int
	Step                  int
	Share                 float64
	Guardrails            spec.Canary
	// Models are needed for disparate impact (production re-scores the candidate's requests);
	// a load error is kept so the guardrail reports it instead of being skipped.
	CandidateModel, ProductionModel *model.Model
	CandidateErr, ProductionErr     error
}

// Looks is how many times a canary may test its candidate: every bake of every step.
func Looks(g spec.Canary) int { return max(1, len(g.StepShares())*max(g.MaxBakes, 1)) }

// LookAlpha is the significance level of one look: the canary's alpha spent evenly over its
// looks (Bonferroni), so the chance that any look falsely rolls back a candidate no worse than
// production stays at most alpha over the whole canary (decision 0014).
func LookAlpha(g spec.Canary) float64 { return g.MAEAlpha / float64(Looks(g)) }

// Judge decides the step: rollback on any breach; inconclusive when a guardrail that applies
// could not be evaluated; wait while there is too little traffic; promote otherwise.
func Judge(in Input) pipeline.CanaryEvalResult {
	g := in.Guardrails
	alpha := LookAlpha(g)
	route := pipeline.CandidateRoute(g.Mode)
	res := pipeline.CanaryEvalResult{Step: in.Step, Share: in.Share,
		Candidate: RouteStats(in.Records, route, in.Candidate), Production: RouteStats(in.Records, pipeline.RouteProduction, in.Production)}
	cand, prod := res.Candidate, res.Production
	var breaches, unknown []string
	enough := cand.Requests >= g.MinRequest && prod.Requests >= g.MinRequest
	if cand.Requests >= g.MinRequest && cand.ErrorRate > prod.ErrorRate+g.MaxErrorRateDelta {
		breaches = append(breaches, fmt.Sprintf("error rate %.2f%% vs production %.2f%%: over the allowed +%.2f%%", 100*cand.ErrorRate, 100*prod.ErrorRate, 100*g.MaxErrorRateDelta))
	}
	if enough && cand.P99Ms > prod.P99Ms+g.MaxP99LatencyDeltaMs {
		breaches = append(breaches, fmt.Sprintf("p99 latency %.3f ms vs production %.3f ms: over the allowed +%.0f ms", cand.P99Ms, prod.P99Ms, g.MaxP99LatencyDeltaMs))
	}
	if enough && cand.FallbackRate > prod.FallbackRate+g.MaxFallbackRateDelta {
		breaches = append(breaches, fmt.Sprintf("fallback rate %.2f%% vs production %.2f%%: over the allowed +%.2f%%", 100*cand.FallbackRate, 100*prod.FallbackRate, 100*g.MaxFallbackRateDelta))
	}
	ce := LabelledErrors(in.Records, in.Labels, route, in.Candidate)
	pe := LabelledErrors(in.Records, in.Labels, pipeline.RouteProduction, in.Production)
	res.MAE = &pipeline.LiveMAE{CandidateLabels: len(ce), ProductionLabels: len(pe), MinLabels: g.MinLabels}
	if len(ce) >= g.MinLabels && len(pe) >= g.MinLabels && len(ce) > 1 && len(pe) > 1 {
		mc, mp, p := WorseMAE(ce, pe)
		res.MAE.Candidate, res.MAE.Production, res.MAE.PValue, res.MAE.Decided = mc, mp, p, true
		if p < alpha && mc > mp*(1+g.MaxMAERegression) {
			breaches = append(breaches, fmt.Sprintf("live MAE %.3f vs production %.3f on %d/%d labels: worse by more than %.0f%% (p %.2g)", mc, mp, len(ce), len(pe), 100*g.MaxMAERegression, p))
		}
	}
	if g.ProtectedAttribute != "" {
		breach, why := fairness(in, route, &res)
		switch {
		case breach != "":
			breaches = append(breaches, breach)
		case why != "" && enough:
			unknown = append(unknown, why)
		}
	}
	switch {
	case len(breaches) > 0:
		res.Decision, res.Reason = pipeline.CanaryRollback, strings.Join(breaches, "; ")
	case !enough:
		res.Decision = pipeline.CanaryWait
		res.Reason = fmt.Sprintf("not enough traffic yet: %d candidate and %d production requests, need %d each", cand.Requests, prod.Requests, g.MinRequest)
	case len(unknown) > 0:
		res.Decision = pipeline.CanaryInconclusive
		res.Reason = "inconclusive: " + strings.Join(unknown, "; ")
	default:
		res.Decision = pipeline.CanaryPromote
		res.Reason = fmt.Sprintf("step %d at %.0f%%: %d requests, error rate %.2f%% (production %.2f%%), p99 %.3f ms (production %.3f ms)",
			in.Step, 100*in.Share, cand.Requests, 100*cand.ErrorRate, 100*prod.ErrorRate, cand.P99Ms, prod.P99Ms)
		if res.MAE.Decided {
			res.Reason += fmt.Sprintf(", live MAE %.3f (production %.3f)", res.MAE.Candidate, res.MAE.Production)
		} else {
			res.Reason += fmt.Sprintf(", MAE undecided (%d/%d labels of %d)", len(ce), len(pe), g.MinLabels)
		}
		res.Reason += ": within guardrails"
	}
	return res
}

// fairness compares the disparate impact of the candidate's answers by the protected
// attribute of the request with production's answers to the very same requests (re-scored
// from the logged inputs). It returns a breach, or why the guardrail could not be evaluated.
func fairness(in Input, route pipeline.Route, res *pipeline.CanaryEvalResult) (breach, unknown string) {
	g := in.Guardrails
	switch {
	case in.CandidateErr != nil || in.CandidateModel == nil:
		return "", fmt.Sprintf("disparate impact not evaluated: candidate v%d did not load: %v", in.Candidate, in.CandidateErr)
	case in.ProductionErr != nil || in.ProductionModel == nil:
		return "", fmt.Sprintf("disparate impact not evaluated: production v%d did not load: %v", in.Production, in.ProductionErr)
	}
	threshold := evaluate.FavorableCut(in.CandidateModel) // the favorable cut Evaluate used
	cand, prod := evaluate.Groups{}, evaluate.Groups{}
	skipped := 0
	for _, r := range in.Records {
		if pipeline.Route(r.Route) != route || int(r.Version) != in.Candidate || r.Error != "" {
			continue
		}
		var attrs map[string]string
		var feats map[string]float64
		if r.Attributes == "" || json.Unmarshal([]byte(r.Attributes), &attrs) != nil || attrs[g.ProtectedAttribute] == "" ||
			json.Unmarshal([]byte(r.Inputs), &feats) != nil {
			skipped++
			continue
		}
		x, err := in.ProductionModel.Vector(feats)
		if err != nil {
			skipped++
			continue
		}
		group := attrs[g.ProtectedAttribute]
		cand.Add(group, r.Prediction >= threshold)
		prod.Add(group, in.ProductionModel.Predict(x) >= threshold)
	}
	if len(cand) < 2 {
		return "", fmt.Sprintf("disparate impact not evaluated: the candidate's requests carry %d group(s) of %s (%d requests without it)", len(cand), g.ProtectedAttribute, skipped)
	}
	res.Fairness = evaluate.DisparateImpact(g.ProtectedAttribute, threshold, cand, max(g.MinGroupRows, 1))
	res.ProductionFairness = evaluate.DisparateImpact(g.ProtectedAttribute, threshold, prod, max(g.MinGroupRows, 1))
	f, pf := res.Fairness, res.ProductionFairness
	if f.Lowest != f.Highest && f.DisparateImpact < g.MinDisparateImpact && f.DisparateImpact < pf.DisparateImpact {
		lo, hi := f.Groups[f.Lowest], f.Groups[f.Highest]
		if p := RatesDiffer(lo, hi); p < LookAlpha(g) {
			return fmt.Sprintf("disparate impact of %s %.3f (%s vs %s) under %.2f and below production's %.3f on the same requests (p %.2g)",
				g.ProtectedAttribute, f.DisparateImpact, f.Lowest, f.Highest, g.MinDisparateImpact, pf.DisparateImpact, p), ""
		}
	}
	return "", ""
}

// RouteStats are one route's live numbers.
func RouteStats(recs []predlog.Record, route pipeline.Route, version int) pipeline.RouteStats {
	st := pipeline.RouteStats{Version: version}
	var lat []float64
	for _, r := range recs {
		if pipeline.Route(r.Route) != route || int(r.Version) != version {
			continue
		}
		st.Requests++
		if r.Error != "" {
			st.Errors++
		}
		if r.Fallback != "" {
			st.Fallbacks++
		}
		lat = append(lat, float64(r.LatencyUs)/1000)
	}
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Errors) / float64(st.Requests)
		st.FallbackRate = float64(st.Fallbacks) / float64(st.Requests)
		slices.Sort(lat)
		st.P99Ms = lat[int(math.Ceil(0.99*float64(len(lat))))-1]
	}
	return st
}

// LabelledErrors are the absolute errors of a route's answers that have a label.
func LabelledErrors(recs []predlog.Record, labels map[string]float64, route pipeline.Route, version int) []float64 {
	var out []float64
	for _, r := range recs {
		if pipeline.Route(r.Route) != route || int(r.Version) != version || r.Error != "" {
			continue
		}
		if y, ok := labels[r.RequestID]; ok {
			out = append(out, math.Abs(r.Prediction-y))
		}
	}
	return out
}

func meanVar(x []float64) (float64, float64) {
	var m, v float64
	for _, e := range x {
		m += e
	}
	m /= float64(len(x))
	for _, e := range x {
		v += (e - m) * (e - m)
	}
	return m, v / float64(len(x)-1)
}

// WorseMAE tests whether the candidate's mean absolute error exceeds production's: one-sided
// Welch z-test (normal approximation) on the absolute errors of labelled answers.
func WorseMAE(cand, prod []float64) (mc, mp, p float64) {
	mc, vc := meanVar(cand)
	mp, vp := meanVar(prod)
	se := math.Sqrt(vc/float64(len(cand)) + vp/float64(len(prod)))
	if se == 0 {
		if mc > mp {
			return mc, mp, 0
		}
		return mc, mp, 1
	}
	z := (mc - mp) / se
	return mc, mp, 0.5 * math.Erfc(z/math.Sqrt2)
}

// RatesDiffer is the one-sided p-value that the higher group's favorable rate exceeds the
// lower group's (two-proportion z-test with a pooled rate).
func RatesDiffer(lo, hi pipeline.GroupRate) float64 {
	n1, n2 := float64(lo.Rows), float64(hi.Rows)
	p := float64(lo.Favorable+hi.Favorable) / (n1 + n2)
	se := math.Sqrt(p * (1 - p) * (1/n1 + 1/n2))
	if se == 0 {
		if hi.Rate > lo.Rate {
			return 0
		}
		return 1
	}
	z := (hi.Rate - lo.Rate) / se
	return 0.5 * math.Erfc(z/math.Sqrt2)
}
