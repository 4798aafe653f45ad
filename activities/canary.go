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
	// LabelKey checks the label token of every feedback label (the key serving signs them
	// with); labels that do not verify are ignored and counted. Nil: no label is used.
	LabelKey []byte
	// LabelTTL bounds a label's age (default 7 days, as serving's).
	LabelTTL time.Duration
}

// EvaluateCanary reads the traffic and labels since the step started, has canary.Judge
// decide, adds the candidate's prediction drift as evidence, and writes it all to
// reports/<model>/<run>/canary-<step>-<bake>.json.
func (c *Canary) EvaluateCanary(ctx context.Context, in pipeline.CanaryEvalInput) (pipeline.CanaryEvalResult, error) {
	until := time.Now()
	if c.Now != nil {
		until = c.Now()
	}
	start := in.Start
	if start.IsZero() || start.After(in.Since) {
		start = in.Since
	}
	all, err := predlog.Read(ctx, c.Store, in.Model, start, until)
	if err != nil {
		return pipeline.CanaryEvalResult{}, classify("canary evaluate", err)
	}
	labels, err := predlog.ReadLabels(ctx, c.Store, in.Model, start, until)
	if err != nil {
		return pipeline.CanaryEvalResult{}, classify("canary evaluate", err)
	}
	// The step's guardrails judge the step's traffic; live MAE takes every pair since the start.
	var recs []predlog.Record
	since := in.Since.UnixMilli()
	for _, r := range all {
		if r.TimeUnixMs >= since {
			recs = append(recs, r)
		}
	}
	j := canary.Input{Records: recs, Paired: all, Labels: make(map[string]float64, len(labels)), Candidate: in.Candidate, Production: in.Production,
		Step: in.Step, Share: in.Share, Guardrails: in.Guardrails}
	ttl := c.LabelTTL
	if ttl <= 0 {
		ttl = 7 * 24 * time.Hour
	}
	ignored := 0
	for _, l := range labels {
		if len(c.LabelKey) == 0 {
			ignored++
			continue
		}
		if _, err := predlog.VerifyLabelToken(c.LabelKey, l.Token, in.Model, l.RequestID, time.UnixMilli(l.TimeUnixMs), ttl); err != nil {
			ignored++
			continue
		}
		// One label per answer, the first in the log: a label sent again (to another replica,
		// or after a restart forgot it) adds no weight.
		if _, dup := j.Labels[l.RequestID]; dup {
			ignored++
			continue
		}
		j.Labels[l.RequestID] = l.Label
	}
	if in.Guardrails.ProtectedAttribute != "" {
		j.CandidateModel, j.CandidateErr = c.Registry.LoadModel(ctx, in.Model, in.Candidate)
		j.ProductionModel, j.ProductionErr = c.Registry.LoadModel(ctx, in.Model, in.Production)
	}
	res := canary.Judge(j)
	res.MAE.IgnoredLabels = ignored
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
