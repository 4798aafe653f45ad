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
	// Records are the step's traffic (the route guardrails and disparate impact judge it).
	Records []predlog.Record
	// Paired is every record since the canary began, for the live MAE test whose looks form
	// one sequence over the whole canary; nil means Records.
	Paired []predlog.Record
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

// LookAlpha is the significance level of one look for the guardrails tested afresh at every
// look (disparate impact): the canary's alpha spent evenly over its looks (Bonferroni), so
// the chance that any look falsely rolls back stays at most alpha (decision 0014). Live MAE
// needs no such split: its sequential test is valid over all looks at alpha (decision 0015).
func LookAlpha(g spec.Canary) float64 { return g.MAEAlpha / float64(Looks(g)) }

// LatencyQuantile and LatencyConfidence: the latency guardrail compares the 99th percentiles
// only when each route has enough requests for its largest to bound a p99 with 95% confidence.
const (
	LatencyQuantile   = 0.99
	LatencyConfidence = 0.95
)

// MethodMAE names the live MAE test in the evidence.
const MethodMAE = "paired mSPRT (half-normal mixture) on |candidate error| - (1+max_mae_regression)|production error|"

// Judge decides the step: rollback on any breach; inconclusive when a guardrail that applies
// could not be evaluated; wait while there is too little traffic; promote otherwise.
func Judge(in Input) pipeline.CanaryEvalResult {
	g := in.Guardrails
	route := pipeline.CandidateRoute(g.Mode)
	res := pipeline.CanaryEvalResult{Step: in.Step, Share: in.Share,
		Candidate: RouteStats(in.Records, route, in.Candidate), Production: RouteStats(in.Records, pipeline.RouteProduction, in.Production)}
	cand, prod := res.Candidate, res.Production
	var breaches, unknown []string
	enough := cand.Requests >= g.MinRequest && prod.Requests >= g.MinRequest
	if cand.Requests >= g.MinRequest && cand.ErrorRate > prod.ErrorRate+g.MaxErrorRateDelta {
		breaches = append(breaches, fmt.Sprintf("error rate %.2f%% vs production %.2f%%: over the allowed +%.2f%%", 100*cand.ErrorRate, 100*prod.ErrorRate, 100*g.MaxErrorRateDelta))
	}
	need := QuantileSamples(LatencyQuantile, LatencyConfidence)
	res.Candidate.P99Samples, res.Production.P99Samples = need, need
	switch {
	case !enough:
	case cand.Requests < need || prod.Requests < need:
		unknown = append(unknown, fmt.Sprintf("p99 latency not evaluated: %d candidate and %d production requests, a p99 needs %d per route (below that it is the maximum of a few)", cand.Requests, prod.Requests, need))
	case cand.P99Ms > prod.P99Ms+g.MaxP99LatencyDeltaMs:
		breaches = append(breaches, fmt.Sprintf("p99 latency %.3f ms vs production %.3f ms: over the allowed +%.0f ms", cand.P99Ms, prod.P99Ms, g.MaxP99LatencyDeltaMs))
	}
	if enough && cand.FallbackRate > prod.FallbackRate+g.MaxFallbackRateDelta {
		breaches = append(breaches, fmt.Sprintf("fallback rate %.2f%% vs production %.2f%%: over the allowed +%.2f%%", 100*cand.FallbackRate, 100*prod.FallbackRate, 100*g.MaxFallbackRateDelta))
	}
	paired := in.Paired
	if paired == nil {
		paired = in.Records
	}
	ce, pe := PairedErrors(paired, in.Labels, route, in.Candidate, in.Production)
	res.MAE = &pipeline.LiveMAE{CandidateLabels: labelled(paired, in.Labels, in.Candidate), ProductionLabels: labelled(paired, in.Labels, in.Production),
		Pairs: len(ce), MinLabels: g.MinLabels, Method: MethodMAE}
	if len(ce) >= g.MinLabels && len(ce) > 1 {
		t := WorseMAE(ce, pe, g.MaxMAERegression, g.MAEAlpha)
		res.MAE.Candidate, res.MAE.Production, res.MAE.PValue, res.MAE.LogEvidence, res.MAE.Decided = mean(ce), mean(pe), t.PValue, t.LogLambda, true
		if t.Significant {
			breaches = append(breaches, fmt.Sprintf("live MAE %.3f vs production %.3f on the same %d labelled requests: worse by more than %.0f%% (always-valid p %.2g)",
				res.MAE.Candidate, res.MAE.Production, len(ce), 100*g.MaxMAERegression, t.PValue))
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
			res.Reason += fmt.Sprintf(", live MAE %.3f (production %.3f on the same %d requests)", res.MAE.Candidate, res.MAE.Production, res.MAE.Pairs)
		} else {
			res.Reason += fmt.Sprintf(", MAE undecided (%d paired labels of %d)", res.MAE.Pairs, g.MinLabels)
		}
		res.Reason += ": within guardrails"
	}
	return res
}

// fairness compares the disparate impact of the candidate's answers by the protected
// attribute of the request with production's answers to the very same requests (re-scored
// from the logged inputs), with a bootstrap interval of the difference. It returns a breach,
// or why the guardrail could not be evaluated.
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
	rows := diRows{}
	ids := map[string]int{}
	skipped := 0
	for _, r := range in.Records {
		if pipeline.Route(r.Route) != route || int(r.Version) != in.Candidate || r.Error != "" {
			continue
		}
		var attrs map[string]string
		if r.Attributes == "" || json.Unmarshal([]byte(r.Attributes), &attrs) != nil || attrs[g.ProtectedAttribute] == "" {
			skipped++
			continue
		}
		feats, ok := r.InputMap()
		if !ok {
			skipped++
			continue
		}
		x, err := in.ProductionModel.Vector(feats)
		if err != nil {
			skipped++
			continue
		}
		group := attrs[g.ProtectedAttribute]
		c, p := r.Prediction >= threshold, in.ProductionModel.Predict(x) >= threshold
		cand.Add(group, c)
		prod.Add(group, p)
		id, ok := ids[group]
		if !ok {
			id = len(ids)
			ids[group] = id
		}
		rows.group, rows.cand, rows.prod = append(rows.group, id), append(rows.cand, c), append(rows.prod, p)
	}
	rows.groups = len(ids)
	if len(cand) < 2 {
		return "", fmt.Sprintf("disparate impact not evaluated: the candidate's requests carry %d group(s) of %s (%d requests without it)", len(cand), g.ProtectedAttribute, skipped)
	}
	minRows := max(g.MinGroupRows, 1)
	res.Fairness = evaluate.DisparateImpact(g.ProtectedAttribute, threshold, cand, minRows)
	res.ProductionFairness = evaluate.DisparateImpact(g.ProtectedAttribute, threshold, prod, minRows)
	f, pf := res.Fairness, res.ProductionFairness
	// One-sided at the look's alpha: the candidate is worse when the whole interval is below 0.
	tail := LookAlpha(g)
	lo, hi := rows.bootstrapDelta(minRows, DIResamples, tail)
	res.DisparateImpactDelta = &pipeline.DeltaCI{Estimate: f.DisparateImpact - pf.DisparateImpact, Low: lo, High: hi, Level: 1 - 2*tail, Requests: len(rows.group)}
	if f.DisparateImpact < g.MinDisparateImpact && hi < 0 {
		return fmt.Sprintf("disparate impact of %s %.3f (%s vs %s) under %.2f and below production's %.3f on the same %d requests (difference %.3f, %.1f%% interval [%.3f, %.3f])",
			g.ProtectedAttribute, f.DisparateImpact, f.Lowest, f.Highest, g.MinDisparateImpact, pf.DisparateImpact, len(rows.group),
			f.DisparateImpact-pf.DisparateImpact, 100*(1-2*tail), lo, hi), ""
	}
	return "", ""
}

// DIResamples is the number of bootstrap resamples of the disparate-impact interval.
const DIResamples = 400

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

// PairedErrors are the absolute errors of both models on every labelled request that both
// answered: the candidate's answer on its route or paired with a production request, and
// production's answer on its route or paired with a candidate request. Requests answered by
// a failing model, or that lost their pair (serving sheds pairing under overload), are left out.
func PairedErrors(recs []predlog.Record, labels map[string]float64, route pipeline.Route, candidate, production int) (cand, prod []float64) {
	type pair struct {
		c, p       float64
		hasC, hasP bool
	}
	pairs := map[string]*pair{}
	var order []string
	for _, r := range recs {
		y, ok := labels[r.RequestID]
		if !ok || r.Error != "" {
			continue
		}
		rt, v := pipeline.Route(r.Route), int(r.Version)
		isC := v == candidate && (rt == route || rt == pipeline.RoutePaired)
		isP := v == production && (rt == pipeline.RouteProduction || rt == pipeline.RoutePaired)
		if !isC && !isP {
			continue
		}
		pr := pairs[r.RequestID]
		if pr == nil {
			pr = &pair{}
			pairs[r.RequestID] = pr
			order = append(order, r.RequestID)
		}
		e := math.Abs(r.Prediction - y)
		if isC {
			pr.c, pr.hasC = e, true
		} else {
			pr.p, pr.hasP = e, true
		}
	}
	for _, id := range order { // in log order: the result does not depend on map order
		if pr := pairs[id]; pr.hasC && pr.hasP {
			cand, prod = append(cand, pr.c), append(prod, pr.p)
		}
	}
	return cand, prod
}

// labelled counts the labelled answers of a version on any route (paired included).
func labelled(recs []predlog.Record, labels map[string]float64, version int) int {
	n := 0
	for _, r := range recs {
		if _, ok := labels[r.RequestID]; ok && int(r.Version) == version && r.Error == "" {
			n++
		}
	}
	return n
}

func mean(x []float64) float64 {
	m := 0.0
	for _, e := range x {
		m += e
	}
	return m / float64(len(x))
}

func meanVar(x []float64) (float64, float64) {
	m, v := mean(x), 0.0
	for _, e := range x {
		v += (e - m) * (e - m)
	}
	return m, v / float64(len(x)-1)
}

// WorseMAE tests whether the candidate's absolute errors exceed (1 + regression) times
// production's on the same requests: the paired differences d_i = |c_i| - (1+regression)|p_i|
// go through the mixture sequential test at alpha, with the mixture scale the regression's
// size in MAE units (regression x production MAE, at least 1% of it): the effects the
// guardrail exists to catch.
//
// The differences are winsorized first: those beyond their WinsorShare and 1 - WinsorShare
// quantiles are set to those quantiles, so no single label (a client sending one absurd
// value) can move the mean or blow up the variance the test sees: one label of 10,000 on
// 2,000 pairs no longer turns a 30% regression into "not worse". The operating
// characteristics with the winsorizing are simulated in TestLiveMAEOperatingCharacteristics.
func WorseMAE(cand, prod []float64, regression, alpha float64) MSPRT {
	d := make([]float64, len(cand))
	for i := range cand {
		d[i] = cand[i] - (1+regression)*prod[i]
	}
	winsorize(d, WinsorShare)
	tau := max(regression, 0.01) * median(prod)
	if !(tau > 0) {
		tau = 1e-9
	}
	return SequentialTest(d, tau, alpha)
}

// WinsorShare is the share of paired differences on each side that the live MAE test clips to
// the quantile there (at least one pair per side once there are 2/WinsorShare pairs).
const WinsorShare = 0.01

// winsorize clips x to its share and 1-share quantiles, in place.
func winsorize(x []float64, share float64) {
	if len(x) < 3 {
		return
	}
	s := append([]float64(nil), x...)
	slices.Sort(s)
	k := max(int(share*float64(len(s))), 1)
	lo, hi := s[k], s[len(s)-1-k]
	for i, v := range x {
		x[i] = min(max(v, lo), hi)
	}
}

// median of x (0 when empty).
func median(x []float64) float64 {
	if len(x) == 0 {
		return 0
	}
	s := append([]float64(nil), x...)
	slices.Sort(s)
	if n := len(s); n%2 == 1 {
		return s[n/2]
	} else {
		return (s[n/2-1] + s[n/2]) / 2
	}
}
