package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/driftline/driftline/audit"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/internal/buildinfo"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// Registry registers versions, moves the deployment pointer and records outcomes.
type Registry struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
}

// Register turns the staged candidate into an immutable version with full lineage. A retry of
// the same run returns the version it already created.
func (r *Registry) Register(ctx context.Context, in RegisterInput) (RegisterResult, error) {
	art, _, err := objstore.ReadAll(ctx, r.Store, in.ArtifactKey)
	if err != nil {
		return RegisterResult{}, classify("register", err)
	}
	pb, _, err := objstore.ReadAll(ctx, r.Store, in.ProfileKey)
	if err != nil {
		return RegisterResult{}, classify("register", err)
	}
	var prof drift.Profile
	if err := json.Unmarshal(pb, &prof); err != nil {
		return RegisterResult{}, invalid("register: profile %s: %v", in.ProfileKey, err)
	}
	snap, err := loadSnapshot(ctx, r.Store, in.SnapshotKey)
	if err != nil {
		return RegisterResult{}, err
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
	var predProf *drift.Profile
	if in.PredictionProfileKey != "" {
		b, _, err := objstore.ReadAll(ctx, r.Store, in.PredictionProfileKey)
		if err != nil {
			return RegisterResult{}, classify("register", err)
		}
		predProf = &drift.Profile{}
		if err := json.Unmarshal(b, predProf); err != nil {
			return RegisterResult{}, invalid("register: prediction profile %s: %v", in.PredictionProfileKey, err)
		}
	}
	v.Quantization, v.Importance = in.Quantization, in.Importance
	var variants []registry.Variant
	if in.Int8Key != "" {
		b, _, err := objstore.ReadAll(ctx, r.Store, in.Int8Key)
		if err != nil {
			return RegisterResult{}, classify("register", err)
		}
		variants = append(variants, registry.Variant{Name: "int8", Artifact: b})
	}
	got, err := r.Registry.Register(ctx, v, art, prof, predProf, variants...)
	if err != nil {
		return RegisterResult{}, classify("register", err)
	}
	return RegisterResult{Version: got.Version, MetadataURI: r.Store.URI(registry.MetadataKey(in.Model, got.Version))}, nil
}

func deployResult(d registry.Deployment) DeployResult {
	return DeployResult{Production: d.Production, Canary: d.Canary, Previous: d.Previous, CanarySince: d.CanarySince}
}

// SetCanary routes Share of the traffic to Version (or, in shadow mode, scores Share of it
// with Version), starting a new step: CanarySince is the step's start. Idempotent for the same
// version and share.
func (r *Registry) SetCanary(ctx context.Context, in DeployInput) (DeployResult, error) {
	d, err := r.Registry.UpdateDeployment(ctx, in.Model, registry.Change{Action: "set_canary", Actor: in.Actor, RunID: in.RunID,
		Reason: in.Reason, Key: fmt.Sprintf("set_canary/%s/%s/%d/%g", in.Model, in.RunID, in.Version, in.Share)},
		func(d *registry.Deployment) error {
			if d.Canary == in.Version {
				if d.CanaryShare != in.Share {
					d.CanaryShare, d.CanarySince = in.Share, time.Now().UTC()
				}
				return nil
			}
			if d.Canary != 0 {
				return fmt.Errorf("v%d is already in canary: %w", d.Canary, registry.ErrConflict)
			}
			if d.Production == 0 {
				return fmt.Errorf("no production version to canary against: %w", registry.ErrConflict)
			}
			d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = in.Version, in.Share, time.Now().UTC(), in.Mode
			return nil
		})
	return deployResult(d), classify("set canary", err)
}

// Promote makes Version production and clears the canary. Idempotent.
func (r *Registry) Promote(ctx context.Context, in DeployInput) (DeployResult, error) {
	d, err := r.Registry.UpdateDeployment(ctx, in.Model, registry.Change{Action: "promote", Actor: in.Actor, RunID: in.RunID,
		Reason: in.Reason, Key: fmt.Sprintf("promote/%s/%s/%d", in.Model, in.RunID, in.Version)},
		func(d *registry.Deployment) error {
			if d.Production == in.Version {
				return nil
			}
			if d.Canary != 0 && d.Canary != in.Version {
				return fmt.Errorf("v%d is in canary, not v%d: %w", d.Canary, in.Version, registry.ErrConflict)
			}
			d.Previous, d.Production = d.Production, in.Version
			d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = 0, 0, time.Time{}, ""
			return nil
		})
	return deployResult(d), classify("promote", err)
}

// AbortCanary takes Version out of the canary: production answers everything again.
// Idempotent: nothing to do when Version is not in canary.
func (r *Registry) AbortCanary(ctx context.Context, in DeployInput) (DeployResult, error) {
	d, err := r.Registry.UpdateDeployment(ctx, in.Model, registry.Change{Action: "rollback_canary", Actor: in.Actor, RunID: in.RunID,
		Reason: in.Reason, Key: fmt.Sprintf("rollback_canary/%s/%s/%d", in.Model, in.RunID, in.Version)},
		func(d *registry.Deployment) error {
			if d.Canary == in.Version {
				d.Canary, d.CanaryShare, d.CanarySince, d.CanaryMode = 0, 0, time.Time{}, ""
			}
			return nil
		})
	return deployResult(d), classify("rollback canary", err)
}

// RecordOutcome stores reports/<model>/<run>/outcome.json and counts the run.
func (r *Registry) RecordOutcome(ctx context.Context, in OutcomeInput) error {
	body, _ := json.MarshalIndent(in, "", " ")
	if _, err := r.Store.Put(ctx, reportKey(in.Model, in.RunID, "outcome.json"), body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return classify("record outcome", err)
	}
	rec, err := r.Registry.Audit.Append(ctx, "outcome/"+in.RunID, audit.Record{Actor: "driftline", Action: "run_finished",
		Model: in.Model, Version: in.Version, RunID: in.RunID, Decision: in.Outcome, Reason: in.Reason})
	if err != nil {
		return classify("record outcome", err)
	}
	// Count once per run even when this activity is retried after the audit record landed.
	if r.Metrics != nil && time.Since(rec.Time) < time.Minute {
		r.Metrics.Runs.WithLabelValues(in.Model, in.Outcome).Inc()
	}
	return nil
}

// RecordApproval audits a human decision taken in the workflow.
func (r *Registry) RecordApproval(ctx context.Context, in ApprovalRecord) error {
	decision := "rejected"
	if in.Approved {
		decision = "approved"
	}
	if _, err := r.Registry.PutRecord(ctx, in.Model, in.Version, "approvals", in.RunID, in); err != nil {
		return classify("record approval", err)
	}
	_, err := r.Registry.Audit.Append(ctx, fmt.Sprintf("approval/%s/%d", in.RunID, in.Version), audit.Record{
		Actor: in.Approver, Action: "approval", Model: in.Model, Version: in.Version, RunID: in.RunID,
		Decision: decision, Reason: in.Reason, Details: map[string]any{"via": in.Via}})
	return classify("record approval", err)
}
