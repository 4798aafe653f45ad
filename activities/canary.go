package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
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
		lat = append(lat, float64(r.LatencyUs)/1000)
	}
	if st.Requests > 0 {
		st.ErrorRate = float64(st.Errors) / float64(st.Requests)
		slices.Sort(lat)
		st.P99Ms = lat[int(math.Ceil(0.99*float64(len(lat))))-1]
	}
	return st
}

// EvaluateCanary compares candidate and production since the canary started, on error rate and p99
// latency, and writes the evidence to reports/<model>/<run>/canary-<bake>.json.
func (c *Canary) EvaluateCanary(ctx context.Context, in CanaryEvalInput) (CanaryEvalResult, error) {
	now := time.Now
	if c.Now != nil {
		now = c.Now
	}
	recs, err := predlog.Read(ctx, c.Store, in.Model, in.Since, now())
	if err != nil {
		return CanaryEvalResult{}, classify("canary evaluate", err)
	}
	g := in.Guardrails
	res := CanaryEvalResult{Candidate: routeStats(recs, "canary", in.Candidate), Production: routeStats(recs, "production", in.Production)}
	cand, prod := res.Candidate, res.Production
	switch {
	case cand.Requests >= g.MinRequest && cand.ErrorRate > prod.ErrorRate+g.MaxErrorRateDelta:
		res.Decision = CanaryRollback
		res.Reason = fmt.Sprintf("error rate %.2f%% vs production %.2f%%: over the allowed +%.2f%%", 100*cand.ErrorRate, 100*prod.ErrorRate, 100*g.MaxErrorRateDelta)
	case cand.Requests < g.MinRequest || prod.Requests < g.MinRequest:
		res.Decision = CanaryWait
		res.Reason = fmt.Sprintf("not enough traffic yet: %d canary and %d production requests, need %d each", cand.Requests, prod.Requests, g.MinRequest)
	case cand.P99Ms > prod.P99Ms+g.MaxP99LatencyDeltaMs:
		res.Decision = CanaryRollback
		res.Reason = fmt.Sprintf("p99 latency %.3f ms vs production %.3f ms: over the allowed +%.0f ms", cand.P99Ms, prod.P99Ms, g.MaxP99LatencyDeltaMs)
	default:
		res.Decision = CanaryPromote
		res.Reason = fmt.Sprintf("%d requests: error rate %.2f%% (production %.2f%%), p99 %.3f ms (production %.3f ms): within guardrails",
			cand.Requests, 100*cand.ErrorRate, 100*prod.ErrorRate, cand.P99Ms, prod.P99Ms)
	}
	// Prediction drift of the candidate's live answers against its holdout outputs: evidence
	// for people, not a guardrail (a new model on drifted data is expected to move).
	if c.Registry != nil {
		if ref, err := c.Registry.LoadPredictionProfile(ctx, in.Model, in.Candidate); err == nil {
			if rep, n, err := predlog.Drift(ctx, c.Store, in.Model, in.Candidate, ref, in.Since, now(), drift.DefaultConfig()); err == nil && n > 0 {
				f := rep.Features[0]
				res.PredictionDrift = &PredictionDrift{Answers: n, KS: f.KS, PValue: f.PValue, PSI: f.PSI, Drifted: f.Drifted, Why: f.Why}
			}
		}
	}
	key := reportKey(in.Model, in.RunID, fmt.Sprintf("canary-%d.json", in.Bake))
	body, _ := json.MarshalIndent(map[string]any{"since": in.Since, "until": now().UTC(), "guardrails": g, "result": res}, "", " ")
	if _, err := c.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return res, classify("canary evaluate", err)
	}
	res.EvidenceURI = c.Store.URI(key)
	return res, nil
}
