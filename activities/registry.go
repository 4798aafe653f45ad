package activities

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	enumspb "go.temporal.io/api/enums/v1"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/buildinfo"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Registry registers versions, moves the deployment pointer and records outcomes.
type Registry struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
	// Temporal reads a run's history (the identity behind a break-glass approval); optional.
	Temporal client.Client
	// EdgeKey signs the edge bundle every version with an int8 variant gets (docs/edge.md);
	// nil: no bundles.
	EdgeKey ed25519.PrivateKey
}

// Register turns the staged candidate into an immutable version with full lineage. A retry of
// the same run returns the version it already created.
func (r *Registry) Register(ctx context.Context, in pipeline.RegisterInput) (pipeline.RegisterResult, error) {
	art, _, err := objstore.ReadAll(ctx, r.Store, in.ArtifactKey)
	if err != nil {
		return pipeline.RegisterResult{}, classify("register", err)
	}
	pb, _, err := objstore.ReadAll(ctx, r.Store, in.ProfileKey)
	if err != nil {
		return pipeline.RegisterResult{}, classify("register", err)
	}
	var prof drift.Profile
	if err := json.Unmarshal(pb, &prof); err != nil {
		return pipeline.RegisterResult{}, invalid("register: profile %s: %v", in.ProfileKey, err)
	}
	snap, err := loadSnapshot(ctx, r.Store, in.SnapshotKey)
	if err != nil {
		return pipeline.RegisterResult{}, err
	}
	var files []registry.SnapshotFile
	for _, f := range snap.Files {
		files = append(files, registry.SnapshotFile{Key: f.Key, ETag: f.ETag, Rows: f.Rows})
	}
	v := registry.Version{Model: in.Model, Metrics: in.Metrics, Lineage: registry.Lineage{SnapshotFiles: files,
		RunID: in.RunID, WorkflowID: in.WorkflowID, CreatedBy: in.RequestedBy, SpecHash: in.Spec.Hash,
		CodeRevision: buildinfo.Revision(), Trainer: in.Spec.Trainer.Name, Params: in.Spec.Trainer.Params,
		SnapshotURI: r.Store.URI(in.SnapshotKey), SnapshotID: in.RunID, Reports: in.Reports,
	}}
	if t := snap.Table; t != nil {
		v.Lineage.Table = &registry.TableVersion{Format: t.Format, URI: t.URI, Version: t.Version, CommitTime: t.CommitTime, Metadata: t.Metadata}
	}
	var predProf *drift.Profile
	if in.PredictionProfileKey != "" {
		b, _, err := objstore.ReadAll(ctx, r.Store, in.PredictionProfileKey)
		if err != nil {
			return pipeline.RegisterResult{}, classify("register", err)
		}
		predProf = &drift.Profile{}
		if err := json.Unmarshal(b, predProf); err != nil {
			return pipeline.RegisterResult{}, invalid("register: prediction profile %s: %v", in.PredictionProfileKey, err)
		}
	}
	v.Quantization, v.Importance = in.Quantization, in.Importance
	if v.Lineage.TrainingSample, err = trainingSample(art); err != nil {
		return pipeline.RegisterResult{}, invalid("register: artifact %s: %v", in.ArtifactKey, err)
	}
	var variants []registry.Variant
	if in.Int8Key != "" {
		b, _, err := objstore.ReadAll(ctx, r.Store, in.Int8Key)
		if err != nil {
			return pipeline.RegisterResult{}, classify("register", err)
		}
		variants = append(variants, registry.Variant{Name: "int8", Artifact: b})
	}
	if in.LossEstimatorKey != "" {
		b, _, err := objstore.ReadAll(ctx, r.Store, in.LossEstimatorKey)
		if err != nil {
			return pipeline.RegisterResult{}, classify("register", err)
		}
		variants = append(variants, registry.Variant{Name: registry.LossEstimator, Artifact: b})
	}
	got, err := r.Registry.Register(ctx, v, art, prof, predProf, variants...)
	if err != nil {
		return pipeline.RegisterResult{}, classify("register", err)
	}
	res := pipeline.RegisterResult{Version: got.Version, MetadataURI: r.Store.URI(registry.MetadataKey(in.Model, got.Version))}
	if len(variants) > 0 && variants[0].Name == "int8" && r.EdgeKey != nil {
		b, err := r.Registry.IssueEdgeBundle(ctx, in.Model, got.Version, variants[0].Artifact, contractRanges(in.Spec), r.EdgeKey)
		if err != nil {
			return res, classify("register: edge bundle", err)
		}
		res.EdgeBundleURI = r.Store.URI(b.Key)
	}
	return res, nil
}

// contractRanges are the contract's [min, max] of each column that has both.
func contractRanges(sp spec.Spec) map[string][2]float64 {
	out := map[string][2]float64{}
	for _, c := range sp.Contract.Columns {
		if c.Min != nil && c.Max != nil {
			out[c.Name] = [2]float64{*c.Min, *c.Max}
		}
	}
	return out
}

// SetCanary routes Share of the traffic to Version (or, in shadow mode, scores Share of it
// with Version), starting a new step: CanarySince is the step's start. Idempotent.
func (r *Registry) SetCanary(ctx context.Context, in pipeline.DeployInput) (pipeline.DeployResult, error) {
	return r.deploy(ctx, in, registry.TransSetCanary, fmt.Sprintf("%d/%g", in.Version, in.Share), func(d *registry.Deployment) (bool, error) {
		changed, err := d.SetCanary(in.Version, in.Share, in.Mode, time.Now())
		if err == nil && d.PairedShare != in.PairedShare {
			d.PairedShare, changed = in.PairedShare, true
		}
		return changed, err
	})
}

// Promote makes Version production and ends its canary. Idempotent.
func (r *Registry) Promote(ctx context.Context, in pipeline.DeployInput) (pipeline.DeployResult, error) {
	return r.deploy(ctx, in, registry.TransPromote, fmt.Sprint(in.Version), func(d *registry.Deployment) (bool, error) {
		return d.Promote(in.Version)
	})
}

// AbortCanary takes Version out of the canary: production answers everything again.
// Idempotent: nothing changes when Version is not in canary.
func (r *Registry) AbortCanary(ctx context.Context, in pipeline.DeployInput) (pipeline.DeployResult, error) {
	return r.deploy(ctx, in, registry.TransAbortCanary, fmt.Sprint(in.Version), func(d *registry.Deployment) (bool, error) {
		return d.AbortCanary(in.Version)
	})
}

// deploy applies one transition of the deployment pointer with compare-and-swap; the audit
// key makes a retried activity's change land once.
func (r *Registry) deploy(ctx context.Context, in pipeline.DeployInput, t registry.Transition, key string, step registry.Step) (pipeline.DeployResult, error) {
	d, err := r.Registry.UpdateDeployment(ctx, in.Model, registry.Change{Action: t, Actor: in.Actor, RunID: in.RunID, Reason: in.Reason,
		Key: fmt.Sprintf("%s/%s/%s/%s", t, in.Model, in.RunID, key)}, step)
	return pipeline.DeployResult{Production: d.Production, Canary: d.Canary, Previous: d.Previous, CanarySince: d.CanarySince}, classify(string(t), err)
}

// RecordOutcome stores reports/<model>/<run>/outcome.json with the run's cost (the sum of its
// steps' accounting), keeps the cost with the version the run registered
// (versions/<n>/cost/<run>.json) and counts the run.
func (r *Registry) RecordOutcome(ctx context.Context, in pipeline.OutcomeInput) error {
	cost, err := SumCost(ctx, r.Store, in.Model, in.RunID)
	if err != nil {
		return classify("record outcome: the run's cost", err)
	}
	body, _ := json.MarshalIndent(struct {
		pipeline.OutcomeInput
		Cost RunCost `json:"cost"`
	}{in, cost}, "", " ")
	if in.Version > 0 {
		if _, err := r.Registry.PutRecord(ctx, in.Model, in.Version, CostRecordKind, in.RunID, cost); err != nil {
			return classify("record outcome: the run's cost", err)
		}
	}
	if r.Metrics != nil && r.Metrics.RunCPU != nil {
		r.Metrics.RunCPU.WithLabelValues(in.Model, strconv.Itoa(in.Version)).Set(cost.CPUSeconds)
	}
	if _, err := r.Store.Put(ctx, reportKey(in.Model, in.RunID, "outcome.json"), body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return classify("record outcome", err)
	}
	rec, err := r.Registry.Audit.Append(ctx, "outcome/"+in.RunID, audit.Record{Actor: "driftline", Action: "run_finished",
		Model: in.Model, Version: in.Version, RunID: in.RunID, Decision: string(in.Outcome), Reason: in.Reason})
	if err != nil {
		return classify("record outcome", err)
	}
	// Count once per run even when this activity is retried after the audit record landed.
	if r.Metrics != nil && time.Since(rec.Time) < time.Minute {
		r.Metrics.Runs.WithLabelValues(in.Model, string(in.Outcome)).Inc()
	}
	return nil
}

// RecordApproval audits a human decision taken in the workflow, with the attestation it was
// accepted on; a break-glass decision is recorded under the Temporal client identity that
// sent it (read from the run's history), never under the approver it claimed.
func (r *Registry) RecordApproval(ctx context.Context, in pipeline.ApprovalRecord) error {
	decision := "rejected"
	if in.Approved {
		decision = "approved"
	}
	actor, details := in.Approver, map[string]any{"via": in.Via}
	if in.Attestation != "" {
		details["attestation"], details["attestation_id"] = in.Attestation, in.AttestationID
	}
	if in.BreakGlass {
		identity, err := r.senderIdentity(ctx, in)
		if err != nil {
			return err
		}
		actor = "break-glass:" + identity
		details["break_glass"], details["temporal_identity"] = true, identity
		in.Approver = actor
	}
	if _, err := r.Registry.PutRecord(ctx, in.Model, in.Version, "approvals", in.RunID, in); err != nil {
		return classify("record approval", err)
	}
	action := "approval"
	if in.BreakGlass {
		action = "approval_break_glass"
	}
	_, err := r.Registry.Audit.Append(ctx, fmt.Sprintf("approval/%s/%d", in.RunID, in.Version), audit.Record{
		Actor: actor, Action: action, Model: in.Model, Version: in.Version, RunID: in.RunID,
		Decision: decision, Reason: in.Reason, Details: details})
	return classify("record approval", err)
}

// senderIdentity finds, in the run's history, the identity of the Temporal client that sent
// the accepted Update (by its id) or, for a signal, the last approval signal.
func (r *Registry) senderIdentity(ctx context.Context, in pipeline.ApprovalRecord) (string, error) {
	return sentBy(ctx, r.Temporal, in.Model, in.RunID, in.MessageID, 0)
}

// sentBy reads a run's history for the identity of the Temporal client that sent the Update
// with updateID or, without one, the nth approval signal (0: the last). The identity is the
// one the Temporal server recorded for the request, never a name the request carried.
func sentBy(ctx context.Context, c client.Client, model, runID, updateID string, nth int) (string, error) {
	if c == nil {
		return "unknown (worker has no Temporal client for history lookups)", nil
	}
	it := c.GetWorkflowHistory(ctx, pipeline.WorkflowID(model), runID, false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	identity, signals := "", 0
	for it.HasNext() {
		ev, err := it.Next()
		if err != nil {
			return "", fmt.Errorf("read history of %s: %w", runID, err)
		}
		if a := ev.GetWorkflowExecutionUpdateAcceptedEventAttributes(); a != nil && updateID != "" &&
			a.GetAcceptedRequest().GetMeta().GetUpdateId() == updateID {
			identity = a.GetAcceptedRequest().GetMeta().GetIdentity()
		}
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil && updateID == "" && a.GetSignalName() == pipeline.SignalApproval {
			if signals++; nth == 0 || signals == nth {
				identity = a.GetIdentity()
			}
		}
	}
	if identity == "" {
		identity = "unknown"
	}
	return identity, nil
}

// trainingSample is the sample a built-in gbdt artifact records it trained on (nil: every
// row, or an artifact that records none).
func trainingSample(art []byte) (*registry.TrainingSample, error) {
	m, err := model.Unmarshal(art)
	if err != nil {
		return nil, err
	}
	days, ok := m.Settings["sample_days"]
	if !ok {
		return nil, nil
	}
	ts := &registry.TrainingSample{Rows: int64(m.Params["sample_rows"]), Of: int64(m.Params["sample_of_rows"]), Rate: m.Params["sample_rate"]}
	return ts, json.Unmarshal([]byte(days), &ts.Days)
}
