package activities

import (
	"context"
	"fmt"
	"time"

	"github.com/driftline/driftline/canary"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// Canary judges live traffic from the prediction log.
type Canary struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// EvaluateCanary reads the traffic and labels since the step started, has canary.Judge
// decide, adds the candidate's prediction drift as evidence, and writes it all to
// reports/<model>/<run>/canary-<step>-<bake>.json.
func (c *Canary) EvaluateCanary(ctx context.Context, in pipeline.CanaryEvalInput) (pipeline.CanaryEvalResult, error) {
	until := time.Now()
	if c.Now != nil {
		until = c.Now()
	}
	recs, err := predlog.Read(ctx, c.Store, in.Model, in.Since, until)
	if err != nil {
		return pipeline.CanaryEvalResult{}, classify("canary evaluate", err)
	}
	labels, err := predlog.ReadLabels(ctx, c.Store, in.Model, in.Since, until)
	if err != nil {
		return pipeline.CanaryEvalResult{}, classify("canary evaluate", err)
	}
	j := canary.Input{Records: recs, Labels: make(map[string]float64, len(labels)), Candidate: in.Candidate, Production: in.Production,
		Step: in.Step, Share: in.Share, Guardrails: in.Guardrails}
	for _, l := range labels {
		j.Labels[l.RequestID] = l.Label
	}
	if in.Guardrails.ProtectedAttribute != "" {
		j.CandidateModel, j.CandidateErr = c.Registry.LoadModel(ctx, in.Model, in.Candidate)
		j.ProductionModel, j.ProductionErr = c.Registry.LoadModel(ctx, in.Model, in.Production)
	}
	res := canary.Judge(j)
	// Prediction drift of the candidate's live answers against its holdout outputs: evidence
	// for people, not a guardrail (a new model on drifted data is expected to move).
	if ref, err := c.Registry.LoadPredictionProfile(ctx, in.Model, in.Candidate); err == nil {
		if rep, n, err := predlog.Drift(ctx, c.Store, in.Model, in.Candidate, ref, in.Since, until, drift.DefaultConfig()); err == nil && n > 0 {
			f := rep.Features[0]
			res.PredictionDrift = &pipeline.PredictionDrift{Answers: n, KS: f.KS, PValue: f.PValue, PSI: f.PSI, Drifted: f.Drifted, Why: f.Why}
		}
	}
	key := reportKey(in.Model, in.RunID, fmt.Sprintf("canary-%d-%d.json", in.Step, in.Bake))
	if err := putJSON(ctx, c.Store, key, map[string]any{"since": in.Since, "until": until.UTC(), "guardrails": in.Guardrails, "result": res}, false); err != nil {
		return res, classify("canary evaluate", err)
	}
	res.EvidenceURI = c.Store.URI(key)
	return res, nil
}
