package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/policies"
	"github.com/driftline/driftline/registry"
)

// Policy evaluates the promotion policy (OPA, compiled once) and records the decision.
type Policy struct {
	Store  objstore.Bucket
	Engine *policies.Engine
	Audit  audit.Log
	// Webhook receives a Slack-compatible message when a run waits for approval (optional).
	Webhook string
	// Registry keeps each decision with the version it judged.
	Registry *registry.Registry
	// Keys returns the control-plane API's attestation keys (KeysFromURL); nil: attested
	// approvals cannot be verified, and runs waiting for one fail with the reason.
	Keys func(ctx context.Context) ([]pipeline.AttestationKey, error)
	// Temporal reads a run's history (who sent an ignored approval signal); optional.
	Temporal client.Client
}

// AttestationKeys returns the keys that verify approval attestations, for a run about to wait.
func (p *Policy) AttestationKeys(ctx context.Context, _ pipeline.AttestationKeysInput) ([]pipeline.AttestationKey, error) {
	if p.Keys == nil {
		return nil, invalid("no attestation keys: start the worker with --attestation-keys (the control-plane API's /v1/attestation-keys)")
	}
	keys, err := p.Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("attestation keys: %w", err) // a fault: retried
	}
	if len(keys) == 0 {
		return nil, invalid("the attestation key source returned no keys")
	}
	return keys, nil
}

// KeysFromURL fetches attestation keys from the API's GET /v1/attestation-keys.
func KeysFromURL(url string) func(ctx context.Context) ([]pipeline.AttestationKey, error) {
	return func(ctx context.Context) ([]pipeline.AttestationKey, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("%s answered HTTP %d", url, resp.StatusCode)
		}
		var doc struct {
			Keys []pipeline.AttestationKey `json:"keys"`
		}
		if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&doc); err != nil {
			return nil, fmt.Errorf("%s: %w", url, err)
		}
		return doc.Keys, nil
	}
}

// Check evaluates the evidence and stores the decision with its input at
// reports/<model>/<run>/policy.json.
func (p *Policy) Check(ctx context.Context, in pipeline.PolicyInput) (pipeline.PolicyResult, error) {
	gov, err := p.governance(ctx, in)
	if err != nil {
		return pipeline.PolicyResult{}, err
	}
	input := policies.PromotionInput{Model: in.Model, Version: in.Version, Candidate: policies.Candidate{MAE: in.CandidateMAE},
		Spec: gov.spec, Reports: in.Reports, Governance: policies.GovernanceInput{SpecVersion: gov.version, Requester: gov.requester,
			RequesterVerified: gov.verified, ChangedFields: gov.changed}}
	if in.ChampionVersion > 0 {
		input.Champion = &policies.Champion{Version: in.ChampionVersion, MAE: in.ChampionMAE}
	}
	if q := in.Quantization; q != nil && q.Error == "" {
		input.Quantization = &policies.QuantizationInput{Variant: q.Variant, MAELoss: q.MAELoss, MAE: q.MAE, FloatMAE: q.FloatMAE,
			SizeBytes: q.SizeBytes, FloatSizeBytes: q.FloatSizeBytes}
	}
	if in.Fairness != nil {
		input.Fairness = &policies.FairnessInput{Attribute: in.Fairness.Attribute, DisparateImpact: in.Fairness.DisparateImpact,
			LowestGroup: in.Fairness.Lowest, HighestGroup: in.Fairness.Highest}
	}
	d, err := p.Engine.Promotion(ctx, input)
	if err != nil {
		return pipeline.PolicyResult{}, err
	}
	d = gov.judge(d)
	key := reportKey(in.Model, in.RunID, "policy.json")
	decisionID := fmt.Sprintf("%s/v%d/promotion", in.RunID, in.Version)
	body, _ := json.MarshalIndent(map[string]any{"decision_id": decisionID, "policy": "driftline.promotion",
		"input": input, "result": d}, "", " ")
	if _, err := p.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return pipeline.PolicyResult{}, classify("policy", err)
	}
	record := map[string]any{"decision_id": decisionID, "policy": "driftline.promotion", "input": input, "result": d}
	if p.Registry != nil {
		if _, err := p.Registry.PutRecord(ctx, in.Model, in.Version, "decisions", decisionID, record); err != nil {
			return pipeline.PolicyResult{}, classify("policy", err)
		}
	}
	if d.Allow && d.ServeQuantized && p.Registry != nil {
		if _, err := p.Registry.PutRecord(ctx, in.Model, in.Version, registry.ServingRecordKind, registry.ServingRecordID,
			registry.ServingVariant{Variant: "int8", DecisionID: decisionID}); err != nil {
			return pipeline.PolicyResult{}, classify("policy", err)
		}
	}
	verdict := "deny"
	if d.Allow {
		verdict = "allow"
	}
	if _, err := p.Audit.Append(ctx, "policy/"+decisionID, audit.Record{Actor: "driftline", Action: "policy_decision",
		Model: in.Model, Version: in.Version, RunID: in.RunID, Decision: verdict,
		Details: map[string]any{"reasons": d.Reasons, "policy_revision": d.Revision, "decision_id": decisionID}}); err != nil {
		return pipeline.PolicyResult{}, classify("policy", err)
	}
	return pipeline.PolicyResult{Allow: d.Allow, ApprovalRequired: d.ApprovalRequired, Reasons: d.Reasons, ServeQuantized: d.Allow && d.ServeQuantized,
		Revision: d.Revision, DecisionURI: p.Store.URI(key), Governed: true, DistinctApprover: d.DistinctApprover,
		Requester: gov.requester, BreakGlass: d.BreakGlass, SpecVersion: gov.version}, nil
}

// Approvers lists the RBAC subjects that may approve the model.
func (p *Policy) Approvers(ctx context.Context, in pipeline.ApproversInput) ([]string, error) {
	who, err := p.Engine.Approvers(ctx, in.Model)
	if err != nil {
		return nil, err
	}
	if len(who) == 0 {
		return nil, invalid("nobody may approve model %s: give a subject the approve action in the RBAC file", in.Model)
	}
	return who, nil
}

// NotifyApproval posts a Slack-compatible message ({"text": ...} plus structured fields) to
// the approval webhook, when one is configured.
func (p *Policy) NotifyApproval(ctx context.Context, in pipeline.ApprovalRequest) error {
	if p.Webhook == "" {
		return nil
	}
	text := fmt.Sprintf("Driftline: %s v%d waits for approval (run %s, timeout %s). Approvers: %s. Approve with `driftline approve --model %s --version %d --reason \"...\"`.",
		in.Model, in.Version, in.RunID, in.Timeout, strings.Join(in.Approvers, ", "), in.Model, in.Version)
	body, _ := json.Marshal(map[string]any{"text": text, "model": in.Model, "version": in.Version, "run_id": in.RunID,
		"workflow_id": in.WorkflowID, "approvers": in.Approvers, "evidence": in.Evidence})
	return postJSON(ctx, "approval webhook", p.Webhook, body, in.RunID+"/"+strconv.Itoa(in.Version))
}

// RecordIgnoredApproval audits an approval signal the run refused.
func (p *Policy) RecordIgnoredApproval(ctx context.Context, in pipeline.IgnoredApproval) error {
	decision := "reject"
	if in.Approve {
		decision = "approve"
	}
	// The actor is who sent the signal as the Temporal server recorded it; the approver the
	// signal claimed is only a detail (runs from before the signal's index: the last signal).
	identity, err := sentBy(ctx, p.Temporal, in.Model, in.RunID, "", in.Signal)
	if err != nil {
		return err
	}
	_, err = p.Audit.Append(ctx, fmt.Sprintf("ignored-signal/%s/%s/%d/%s/%d/%s", in.RunID, in.Approver, in.Version, decision, in.Signal, in.Why), audit.Record{
		Actor: "temporal:" + identity, Action: "approval_signal_ignored", Model: in.Model, Version: in.Version, RunID: in.RunID,
		Decision: decision, Reason: in.Why, Details: map[string]any{"claimed_approver": in.Approver, "temporal_identity": identity}})
	return classify("audit ignored approval", err)
}
