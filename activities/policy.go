package activities

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/policies"
)

// Policy evaluates the promotion policy (OPA, compiled once) and records the decision.
type Policy struct {
	Store  objstore.Bucket
	Engine *policies.Engine
	Audit  audit.Log
}

// Check evaluates the evidence and stores the decision with its input at
// reports/<model>/<run>/policy.json.
func (p *Policy) Check(ctx context.Context, in PolicyInput) (PolicyResult, error) {
	input := map[string]any{
		"model":     in.Model,
		"version":   in.Version,
		"candidate": map[string]any{"mae": in.CandidateMAE},
		"spec":      in.Spec,
		"reports":   in.Reports,
	}
	if in.ChampionVersion > 0 {
		input["champion"] = map[string]any{"version": in.ChampionVersion, "mae": in.ChampionMAE}
	}
	d, err := p.Engine.Promotion(ctx, input)
	if err != nil {
		return PolicyResult{}, err
	}
	key := reportKey(in.Model, in.RunID, "policy.json")
	decisionID := fmt.Sprintf("%s/v%d/promotion", in.RunID, in.Version)
	body, _ := json.MarshalIndent(map[string]any{"decision_id": decisionID, "policy": "driftline.promotion",
		"input": input, "result": d}, "", " ")
	if _, err := p.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return PolicyResult{}, classify("policy", err)
	}
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	if _, err := p.Audit.Append(ctx, "policy/"+decisionID, audit.Record{Actor: "driftline", Action: "policy_decision",
		Model: in.Model, Version: in.Version, RunID: in.RunID, Decision: verdict,
		Details: map[string]any{"reasons": d.Reasons, "policy_revision": d.Revision, "decision_id": decisionID}}); err != nil {
		return PolicyResult{}, classify("policy", err)
	}
	return PolicyResult{Allow: d.Allow, ApprovalRequired: d.ApprovalRequired, Reasons: d.Reasons,
		Revision: d.Revision, DecisionURI: p.Store.URI(key)}, nil
}
