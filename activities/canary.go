package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// Canary judges live traffic from the prediction log.
type Canary struct {
	Store    objstore.Bucket
	Registry *registry.Registry // for the candidate's prediction profile (evidence only)
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

func routeStats(recs []predlog.Record, route string, version int) RouteStats {
	st := RouteStats{Version: version}
	var lat []float64
	for _, r := range recs {
		if r.Route != route || int(r.Version) != version {
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

// labelledErrors are the absolute errors of a route's answers that have a label.
func labelledErrors(recs []predlog.Record, labels map[string]float64, route string, version int) []float64 {
	var out []float64
	for _, r := range recs {
		if r.Route != route || int(r.Version) != version || r.Error != "" {
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

// worseMAE tests whether the candidate's mean absolute error exceeds production's: one-sided
// Welch z-test (normal approximation, sound at the minimum sample sizes used) on the
// absolute errors of labelled answers.
func worseMAE(cand, prod []float64) (mc, mp, p float64) {
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

// ratesDiffer is the one-sided p-value that the higher group's favorable rate exceeds the
// lower group's (two-proportion z-test with a pooled rate).
func ratesDiffer(lo, hi GroupRate) float64 {
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

// EvaluateCanary compares candidate and production on the traffic since this step started:
// error rate, p99 latency, fallback rate, live MAE once labels arrive (with a minimum sample
// and a significance test), and the disparate impact of the candidate's answers. It writes the
// evidence to reports/<model>/<run>/canary-<step>-<bake>.json.
func (c *Canary) EvaluateCanary(ctx context.Context, in CanaryEvalInput) (CanaryEvalResult, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	until := now()
	recs, err := predlog.Read(ctx, c.Store, in.Model, in.Since, until)
	if err != nil {
		return CanaryEvalResult{}, classify("canary evaluate", err)
	}
	g := in.Guardrails
	route := "canary"
	if g.Mode == "shadow" {
		route = "shadow"
	}
	res := CanaryEvalResult{Step: in.Step, Share: in.Share, Candidate: routeStats(recs, route, in.Candidate), Production: routeStats(recs, "production", in.Production)}
	cand, prod := res.Candidate, res.Production
	var breaches []string
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
	// Live MAE from the prediction log joined with feedback labels.
	labels, err := predlog.ReadLabels(ctx, c.Store, in.Model, in.Since, until)
	if err != nil {
		return CanaryEvalResult{}, classify("canary evaluate", err)
	}
	byID := make(map[string]float64, len(labels))
	for _, l := range labels {
		byID[l.RequestID] = l.Label
	}
	ce, pe := labelledErrors(recs, byID, route, in.Candidate), labelledErrors(recs, byID, "production", in.Production)
	res.MAE = &LiveMAE{CandidateLabels: len(ce), ProductionLabels: len(pe), MinLabels: g.MinLabels}
	if len(ce) >= g.MinLabels && len(pe) >= g.MinLabels && len(ce) > 1 && len(pe) > 1 {
		mc, mp, p := worseMAE(ce, pe)
		res.MAE.Candidate, res.MAE.Production, res.MAE.PValue, res.MAE.Decided = mc, mp, p, true
		if p < g.MAEAlpha && mc > mp*(1+g.MaxMAERegression) {
			breaches = append(breaches, fmt.Sprintf("live MAE %.3f vs production %.3f on %d/%d labels: worse by more than %.0f%% (p %.2g)", mc, mp, len(ce), len(pe), 100*g.MaxMAERegression, p))
		}
	}
	// Disparate impact of the candidate's answers by the protected attribute of the request,
	// against production's answers to the very same requests (scored here from the logged
	// inputs): the traffic a canary sees is a subset whose mix can differ by group, so only a
	// candidate that is both under the minimum and worse than production, significantly, fails.
	if g.ProtectedAttribute != "" && c.Registry != nil {
		cm, err1 := c.Registry.LoadModel(ctx, in.Model, in.Candidate)
		pm, err2 := c.Registry.LoadModel(ctx, in.Model, in.Production)
		if err1 == nil && err2 == nil {
			threshold := cm.ExpectedValue() // the favorable cut Evaluate used
			if cm.Classifier() {
				threshold = 0.5
			}
			cand, prod := map[string]*GroupRate{}, map[string]*GroupRate{}
			add := func(groups map[string]*GroupRate, group string, favorable bool) {
				gr := groups[group]
				if gr == nil {
					gr = &GroupRate{}
					groups[group] = gr
				}
				gr.Rows++
				if favorable {
					gr.Favorable++
				}
			}
			for _, r := range recs {
				if r.Route != route || int(r.Version) != in.Candidate || r.Error != "" || r.Attributes == "" {
					continue
				}
				var attrs map[string]string
				var feats map[string]float64
				if json.Unmarshal([]byte(r.Attributes), &attrs) != nil || attrs[g.ProtectedAttribute] == "" || json.Unmarshal([]byte(r.Inputs), &feats) != nil {
					continue
				}
				x, err := pm.Vector(feats)
				if err != nil {
					continue
				}
				group := attrs[g.ProtectedAttribute]
				add(cand, group, r.Prediction >= threshold)
				add(prod, group, pm.Predict(x) >= threshold)
			}
			if len(cand) > 1 {
				res.Fairness = disparateImpact(g.ProtectedAttribute, threshold, cand, max(g.MinGroupRows, 1))
				res.ProductionFairness = disparateImpact(g.ProtectedAttribute, threshold, prod, max(g.MinGroupRows, 1))
				f, pf := res.Fairness, res.ProductionFairness
				if f.Lowest != f.Highest && f.DisparateImpact < g.MinDisparateImpact && f.DisparateImpact < pf.DisparateImpact {
					lo, hi := f.Groups[f.Lowest], f.Groups[f.Highest]
					if p := ratesDiffer(lo, hi); p < g.MAEAlpha {
						breaches = append(breaches, fmt.Sprintf("disparate impact of %s %.3f (%s vs %s) under %.2f and below production's %.3f on the same requests (p %.2g)",
							g.ProtectedAttribute, f.DisparateImpact, f.Lowest, f.Highest, g.MinDisparateImpact, pf.DisparateImpact, p))
					}
				}
			}
		}
	}
	switch {
	case len(breaches) > 0:
		res.Decision, res.Reason = CanaryRollback, strings.Join(breaches, "; ")
	case !enough:
		res.Decision = CanaryWait
		res.Reason = fmt.Sprintf("not enough traffic yet: %d candidate and %d production requests, need %d each", cand.Requests, prod.Requests, g.MinRequest)
	default:
		res.Decision = CanaryPromote
		res.Reason = fmt.Sprintf("step %d at %.0f%%: %d requests, error rate %.2f%% (production %.2f%%), p99 %.3f ms (production %.3f ms)",
			in.Step, 100*in.Share, cand.Requests, 100*cand.ErrorRate, 100*prod.ErrorRate, cand.P99Ms, prod.P99Ms)
		if res.MAE.Decided {
			res.Reason += fmt.Sprintf(", live MAE %.3f (production %.3f)", res.MAE.Candidate, res.MAE.Production)
		} else {
			res.Reason += fmt.Sprintf(", MAE undecided (%d/%d labels of %d)", len(ce), len(pe), g.MinLabels)
		}
		res.Reason += ": within guardrails"
	}
	// Prediction drift of the candidate's live answers against its holdout outputs: evidence
	// for people, not a guardrail (a new model on drifted data is expected to move).
	if c.Registry != nil {
		if ref, err := c.Registry.LoadPredictionProfile(ctx, in.Model, in.Candidate); err == nil {
			if rep, n, err := predlog.Drift(ctx, c.Store, in.Model, in.Candidate, ref, in.Since, until, drift.DefaultConfig()); err == nil && n > 0 {
				f := rep.Features[0]
				res.PredictionDrift = &PredictionDrift{Answers: n, KS: f.KS, PValue: f.PValue, PSI: f.PSI, Drifted: f.Drifted, Why: f.Why}
			}
		}
	}
	key := reportKey(in.Model, in.RunID, fmt.Sprintf("canary-%d-%d.json", in.Step, in.Bake))
	body, _ := json.MarshalIndent(map[string]any{"since": in.Since, "until": until.UTC(), "guardrails": g, "result": res}, "", " ")
	if _, err := c.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return res, classify("canary evaluate", err)
	}
	res.EvidenceURI = c.Store.URI(key)
	return res, nil
}
