package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/dataset"
)

// Activity receivers: nil pointers, used only to name the methods.
var (
	data  *activities.Data
	drift *activities.Drift
	train *activities.Training
	reg   *activities.Registry
	pol   *activities.Policy
	can   *activities.Canary
)

type run struct {
	ctx    workflow.Context
	in     RunInput
	runID  string
	wfID   string
	status Status
	step   *Step
}

func (r *run) enter(stage string) {
	now := workflow.Now(r.ctx)
	r.status.Stage = stage
	r.status.Steps = append(r.status.Steps, Step{Name: stage, Started: now})
	r.step = &r.status.Steps[len(r.status.Steps)-1]
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, AttrStage.ValueSet(stage))
	workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("**%s**: stage %s", r.in.Spec.Model, stage))
}

func (r *run) done(format string, args ...any) {
	r.step.Finished = workflow.Now(r.ctx)
	r.step.Summary = fmt.Sprintf(format, args...)
	workflow.GetLogger(r.ctx).Info("step finished", "step", r.step.Name, "summary", r.step.Summary)
}

// finish records the outcome everywhere an operator looks: search attributes, memo, the
// outcome report, metrics and the audit log.
func (r *run) finish(outcome, reason string) (RunResult, error) {
	r.status.Outcome, r.status.Reason, r.status.Stage = outcome, reason, StageDone
	if r.step != nil && r.step.Finished.IsZero() {
		r.step.Finished = workflow.Now(r.ctx)
		r.step.Summary = reason
	}
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, AttrOutcome.ValueSet(outcome), AttrStage.ValueSet(StageDone))
	_ = workflow.UpsertMemo(r.ctx, r.memo())
	workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("**%s**: %s - %s", r.in.Spec.Model, outcome, reason))
	// The outcome must be recorded even when the run was cancelled.
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	err := workflow.ExecuteActivity(withStep(ctx, StageDone, "record outcome "+outcome), reg.RecordOutcome, activities.OutcomeInput{
		Model: r.in.Spec.Model, RunID: r.runID, WorkflowID: r.wfID, Outcome: outcome, Reason: reason,
		Version: r.status.CandidateVersion, Status: r.status}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(r.ctx).Error("record outcome", "error", err)
	}
	return RunResult{Outcome: outcome, Reason: reason, Version: r.status.CandidateVersion}, nil
}

func (r *run) memo() map[string]any {
	m := map[string]any{"outcome": r.status.Outcome, "reason": r.status.Reason, "window": r.status.From + ".." + r.status.To}
	if s := r.status.Snapshot; s != nil {
		m["snapshot"] = s.URI
		m["rows"] = s.Rows
	}
	if v := r.status.Validation; v != nil {
		m["validation_report"] = v.ReportURI
		m["rows_quarantined"] = v.RowsQuarantined
	}
	if d := r.status.Drift; d != nil && d.ReportURI != "" {
		m["drift_report"] = d.ReportURI
		m["drift_score"] = d.Score
	}
	if e := r.status.Evaluation; e != nil {
		m["evaluation_report"] = e.ReportURI
		m["candidate_mae"] = e.CandidateMAE
		if e.HasChampion {
			m["champion_mae"] = e.ChampionMAE
		}
	}
	if r.status.CandidateVersion > 0 {
		m["candidate_version"] = r.status.CandidateVersion
	}
	if p := r.status.Policy; p != nil {
		m["policy_decision"] = p.DecisionURI
	}
	if n := len(r.status.Canary); n > 0 {
		m["canary_evidence"] = r.status.Canary[n-1].EvidenceURI
	}
	return m
}

// fail ends the run after an activity error: invalid data is the failed_validation outcome
// and fails the workflow with a non-retryable error naming what was wrong; other errors
// are the failed outcome.
func (r *run) fail(err error) (RunResult, error) {
	var appErr *temporal.ApplicationError
	outcome := OutcomeFailed
	if errors.As(err, &appErr) && appErr.Type() == activities.ErrTypeInvalidData {
		outcome = OutcomeFailedValidation
	}
	msg := rootMessage(err)
	res, _ := r.finish(outcome, msg)
	return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %s", outcome, msg), outcome, err)
}

// rootMessage is the innermost application error message: what actually went wrong.
func rootMessage(err error) string {
	msg := err.Error()
	for e := err; e != nil; e = errors.Unwrap(e) {
		var appErr *temporal.ApplicationError
		if errors.As(e, &appErr) {
			msg = appErr.Message()
		}
	}
	return msg
}

// window resolves the run's dataset window.
func (r *run) window() error {
	if r.in.From != "" && r.in.To != "" {
		r.status.From, r.status.To = r.in.From, r.in.To
		return nil
	}
	if r.in.From != "" || r.in.To != "" {
		return temporal.NewNonRetryableApplicationError("give both From and To, or neither", activities.ErrTypeInvalidData, nil)
	}
	end := workflow.Now(r.ctx).UTC().AddDate(0, 0, -1)
	r.status.To = end.Format(dataset.DateLayout)
	r.status.From = end.AddDate(0, 0, 1-r.in.Spec.Dataset.WindowDays).Format(dataset.DateLayout)
	return nil
}

// ContinuousTrainingWorkflow runs the loop once: snapshot, validate, drift, train, evaluate,
// register, policy, approval, canary, promote or roll back. Every run ends in one outcome.
func ContinuousTrainingWorkflow(ctx workflow.Context, in RunInput) (RunResult, error) {
	info := workflow.GetInfo(ctx)
	r := &run{ctx: ctx, in: in, runID: info.WorkflowExecution.RunID, wfID: info.WorkflowExecution.ID,
		status: Status{Model: in.Spec.Model}}
	model := in.Spec.Model
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrModel.ValueSet(model))
	if err := workflow.SetQueryHandler(ctx, QueryStatus, func() (Status, error) { return r.status, nil }); err != nil {
		return RunResult{}, err
	}
	approvals := r.approvalHandlers()
	// Runs started before spec validation moved into the workflow keep their old path.
	if workflow.GetVersion(ctx, "validate-spec", workflow.DefaultVersion, 1) >= 1 {
		if err := in.Spec.Validate(); err != nil {
			return r.fail(temporal.NewNonRetryableApplicationError("invalid spec: "+err.Error(), activities.ErrTypeInvalidData, nil))
		}
	}
	if err := r.window(); err != nil {
		return r.fail(err)
	}

	// 1 Snapshot
	r.enter(StageSnapshot)
	var snap activities.SnapshotResult
	if err := workflow.ExecuteActivity(withStep(ctx, StageSnapshot, fmt.Sprintf("pin %s %s..%s", in.Spec.Dataset.Name, r.status.From, r.status.To)),
		data.Snapshot, activities.SnapshotInput{Model: model, RunID: r.runID, Dataset: in.Spec.Dataset.Name, From: r.status.From, To: r.status.To}).Get(ctx, &snap); err != nil {
		return r.fail(err)
	}
	r.status.Snapshot = &snap
	r.done("%d files, %d rows pinned in %s", snap.Files, snap.Rows, snap.URI)
	step := activities.StepInput{Model: model, RunID: r.runID, Spec: in.Spec, SnapshotKey: snap.Key}

	// 2 Validate
	r.enter(StageValidate)
	var val activities.ValidateResult
	if err := workflow.ExecuteActivity(withStep(ctx, StageValidate, fmt.Sprintf("check %d rows against the contract", snap.Rows)),
		data.Validate, step).Get(ctx, &val); err != nil {
		return r.fail(err)
	}
	r.status.Validation = &val
	r.done("%d rows accepted, %d quarantined (%.2f%%)", val.RowsAccepted, val.RowsQuarantined, 100*val.BadShare)

	// 3 Drift
	r.enter(StageDrift)
	var dr activities.DriftResult
	if err := workflow.ExecuteActivity(withStep(ctx, StageDrift, "compare the window with the production reference profile"),
		drift.Detect, step).Get(ctx, &dr); err != nil {
		return r.fail(err)
	}
	r.status.Drift = &dr
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrDriftScore.ValueSet(dr.Score))
	r.done("%s", dr.Why)
	if dr.ReferenceVersion > 0 && !dr.Drifted && !in.Force {
		return r.finish(OutcomeNoDrift, fmt.Sprintf("no drift against v%d: %s", dr.ReferenceVersion, dr.Why))
	}

	// 4 Train
	r.enter(StageTrain)
	var tr activities.TrainResult
	if q := in.Spec.Trainer.TaskQueue; q != "" {
		// An external trainer on its own task queue: input built here, artifact adopted here.
		var ein activities.ExternalTrainInput
		if err := workflow.ExecuteActivity(withStep(ctx, StageTrain, "prepare the external trainer's input"),
			train.ExternalInput, step).Get(ctx, &ein); err != nil {
			return r.fail(err)
		}
		var eout activities.ExternalTrainOutput
		ectx := workflow.WithTaskQueue(withStep(ctx, StageTrain, fmt.Sprintf("external trainer on task queue %s", q)), q)
		if err := workflow.ExecuteActivity(ectx, activities.ExternalTrainActivity, ein).Get(ctx, &eout); err != nil {
			return r.fail(err)
		}
		if err := workflow.ExecuteActivity(withStep(ctx, StageTrain, "verify and stage the external artifact"),
			train.AdoptExternal, activities.AdoptInput{StepInput: step, TaskQueue: q, Output: eout}).Get(ctx, &tr); err != nil {
			return r.fail(err)
		}
	} else if err := workflow.ExecuteActivity(withStep(ctx, StageTrain, fmt.Sprintf("train %s on %s", in.Spec.Trainer.Name, snap.ID)),
		train.Train, step).Get(ctx, &tr); err != nil {
		return r.fail(err)
	}
	r.status.Training = &tr
	if tr.TrainMetric != "" && tr.TrainMetric != "rmse" {
		r.done("%s on %d rows, training %s %.4f", in.Spec.Trainer.Name, tr.TrainRows, tr.TrainMetric, tr.TrainLoss)
	} else {
		r.done("%s on %d rows, training RMSE %.3f", in.Spec.Trainer.Name, tr.TrainRows, tr.TrainRMSE)
	}

	// 5 Evaluate
	r.enter(StageEvaluate)
	var ev activities.EvaluateResult
	if err := workflow.ExecuteActivity(withStep(ctx, StageEvaluate, "holdout MAE of candidate and production"),
		train.Evaluate, activities.EvaluateInput{StepInput: step, ArtifactKey: tr.ArtifactKey, ChampionVersion: dr.ReferenceVersion}).Get(ctx, &ev); err != nil {
		return r.fail(err)
	}
	r.status.Evaluation = &ev
	if ev.HasChampion {
		r.done("candidate MAE %.3f, production v%d MAE %.3f on %d holdout rows", ev.CandidateMAE, dr.ReferenceVersion, ev.ChampionMAE, ev.HoldoutRows)
	} else {
		r.done("candidate MAE %.3f on %d holdout rows (no production model yet)", ev.CandidateMAE, ev.HoldoutRows)
	}

	// 6 Register
	r.enter(StageRegister)
	reports := map[string]string{"validation": val.ReportURI, "evaluation": ev.ReportURI}
	if dr.ReportURI != "" {
		reports["drift"] = dr.ReportURI
	}
	metrics := map[string]float64{"holdout_mae": ev.CandidateMAE, "train_rmse": tr.TrainRMSE, "train_rows": float64(tr.TrainRows), "holdout_rows": float64(ev.HoldoutRows)}
	for _, k := range []string{"rmse", "r2", "mape", "logloss", "auc", "accuracy"} { // a fixed order: no map range
		if v, ok := ev.Metrics[k]; ok {
			metrics["holdout_"+k] = v
		}
	}
	if ev.HasChampion {
		metrics["champion_mae"] = ev.ChampionMAE
	}
	var rr activities.RegisterResult
	if err := workflow.ExecuteActivity(withStep(ctx, StageRegister, "register the candidate with lineage"), reg.Register, activities.RegisterInput{
		StepInput: step, WorkflowID: r.wfID, RequestedBy: in.RequestedBy, ArtifactKey: tr.ArtifactKey, ProfileKey: tr.ProfileKey,
		PredictionProfileKey: ev.PredictionProfileKey, Metrics: metrics, Reports: reports,
		Int8Key: ev.Int8Key, Quantization: ev.Quantization, Importance: ev.Importance}).Get(ctx, &rr); err != nil {
		return r.fail(err)
	}
	r.status.CandidateVersion = rr.Version
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrVersion.ValueSet(int64(rr.Version)))
	r.done("registered v%d: %s", rr.Version, rr.MetadataURI)

	// 7 Policy
	r.enter(StagePolicy)
	var pr activities.PolicyResult
	if err := workflow.ExecuteActivity(withStep(ctx, StagePolicy, fmt.Sprintf("promotion policy for v%d", rr.Version)), pol.Check, activities.PolicyInput{
		Model: model, RunID: r.runID, Version: rr.Version, CandidateMAE: ev.CandidateMAE, ChampionVersion: dr.ReferenceVersion,
		ChampionMAE: ev.ChampionMAE, Spec: in.Spec, Reports: reports, Fairness: ev.Fairness, Quantization: ev.Quantization}).Get(ctx, &pr); err != nil {
		return r.fail(err)
	}
	r.status.Policy = &pr
	if !pr.Allow {
		r.done("deny: %s", strings.Join(pr.Reasons, "; "))
		return r.finish(OutcomeRejectedByPolicy, strings.Join(pr.Reasons, "; "))
	}
	r.done("allow (approval required: %t, policy %s)", pr.ApprovalRequired, pr.Revision)

	// 8 Approval
	if pr.ApprovalRequired {
		if err := approvals.prepare(rr.Version, in.Spec.Approval.Timeout.Duration); err != nil {
			return r.fail(err)
		}
		r.enter(StageApproval)
		approved, timedOut, err := approvals.wait(rr.Version, in.Spec.Approval.Timeout.Duration)
		if err != nil {
			return r.fail(err)
		}
		switch {
		case timedOut:
			return r.finish(OutcomeApprovalTimeout, fmt.Sprintf("no approval for v%d within %s", rr.Version, in.Spec.Approval.Timeout.Duration))
		case !approved:
			return r.finish(OutcomeRejectedByApprover, fmt.Sprintf("v%d rejected by %s: %s", rr.Version, r.status.Approval.Approver, r.status.Approval.Reason))
		}
		r.done("approved by %s: %s", r.status.Approval.Approver, r.status.Approval.Reason)
	}

	// 9 Canary (only against a production model) and 10 promote or roll back
	if dr.ReferenceVersion == 0 {
		r.enter(StagePromote)
		if err := workflow.ExecuteActivity(withStep(ctx, StagePromote, fmt.Sprintf("promote v%d (first deployment)", rr.Version)), reg.Promote,
			activities.DeployInput{Model: model, RunID: r.runID, Actor: "driftline", Version: rr.Version, Reason: "first deployment"}).Get(ctx, nil); err != nil {
			return r.fail(err)
		}
		r.done("v%d is production", rr.Version)
		return r.finish(OutcomePromoted, fmt.Sprintf("v%d promoted: first deployment, MAE %.3f", rr.Version, ev.CandidateMAE))
	}
	r.enter(StageCanary)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    fmt.Sprintf("%s/canary/v%d", r.wfID, rr.Version),
		StaticSummary: fmt.Sprintf("canary v%d at %.0f%% against v%d", rr.Version, 100*in.Spec.Canary.Share, dr.ReferenceVersion),
	})
	var cr CanaryResult
	err := workflow.ExecuteChildWorkflow(cctx, CanaryWorkflow, CanaryInput{Model: model, RunID: r.runID,
		Candidate: rr.Version, Production: dr.ReferenceVersion, Settings: in.Spec.Canary}).Get(ctx, &cr)
	r.status.Canary = cr.Evidence
	if err != nil {
		return r.fail(err)
	}
	r.done("%s", cr.Reason)
	if cr.Promoted {
		return r.finish(OutcomePromoted, fmt.Sprintf("v%d promoted after canary: %s", rr.Version, cr.Reason))
	}
	return r.finish(OutcomeRolledBack, fmt.Sprintf("v%d rolled back, v%d stays in production: %s", rr.Version, dr.ReferenceVersion, cr.Reason))
}
