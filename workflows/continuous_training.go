package workflows

import (
	"errors"
	"fmt"
	"strings"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/pipeline"
)

type run struct {
	ctx    workflow.Context
	in     pipeline.RunInput
	runID  string
	wfID   string
	status pipeline.Status
	step   *pipeline.Step
	// evalParts: the pass's partitions holding holdout days, when it ran as partitions (the
	// evaluation runs over them).
	evalParts []pipeline.PartitionInput
}

func (r *run) enter(stage pipeline.Stage) {
	now := workflow.Now(r.ctx)
	r.status.Stage = stage
	r.status.Steps = append(r.status.Steps, pipeline.Step{Name: stage, Started: now})
	r.step = &r.status.Steps[len(r.status.Steps)-1]
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, AttrStage.ValueSet(string(stage)))
	workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("**%s**: stage %s", r.in.Spec.Model, stage))
}

func (r *run) done(format string, args ...any) {
	r.step.Finished = workflow.Now(r.ctx)
	r.step.Summary = fmt.Sprintf(format, args...)
	workflow.GetLogger(r.ctx).Info("step finished", "step", r.step.Name, "summary", r.step.Summary)
}

// finish records the outcome everywhere an operator looks: search attributes, memo, the
// outcome report, metrics and the audit log.
func (r *run) finish(outcome pipeline.Outcome, reason string) (pipeline.RunResult, error) {
	r.status.Outcome, r.status.Reason, r.status.Stage = outcome, reason, pipeline.StageDone
	if r.step != nil && r.step.Finished.IsZero() {
		r.step.Finished = workflow.Now(r.ctx)
		r.step.Summary = reason
	}
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, AttrOutcome.ValueSet(string(outcome)), AttrStage.ValueSet(string(pipeline.StageDone)))
	_ = workflow.UpsertMemo(r.ctx, r.memo())
	workflow.SetCurrentDetails(r.ctx, fmt.Sprintf("**%s**: %s - %s", r.in.Spec.Model, outcome, reason))
	// The outcome must be recorded even when the run was cancelled.
	ctx, _ := workflow.NewDisconnectedContext(r.ctx)
	err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageDone, "record outcome "+string(outcome)), pipeline.ActOutcome, pipeline.OutcomeInput{
		Model: r.in.Spec.Model, RunID: r.runID, WorkflowID: r.wfID, Outcome: outcome, Reason: reason,
		Version: r.status.CandidateVersion, Status: r.status}).Get(ctx, nil)
	if err != nil {
		workflow.GetLogger(r.ctx).Error("record outcome", "error", err)
	}
	return pipeline.RunResult{Outcome: outcome, Reason: reason, Version: r.status.CandidateVersion}, nil
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
func (r *run) fail(err error) (pipeline.RunResult, error) {
	var appErr *temporal.ApplicationError
	outcome := pipeline.OutcomeFailed
	if errors.As(err, &appErr) && appErr.Type() == pipeline.ErrTypeInvalidData {
		outcome = pipeline.OutcomeFailedValidation
	}
	msg := rootMessage(err)
	res, _ := r.finish(outcome, msg)
	return res, temporal.NewNonRetryableApplicationError(fmt.Sprintf("%s: %s", outcome, msg), string(outcome), err)
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
		return temporal.NewNonRetryableApplicationError("give both From and To, or neither", pipeline.ErrTypeInvalidData, nil)
	}
	end := workflow.Now(r.ctx).UTC().AddDate(0, 0, -1)
	r.status.To = end.Format(contract.DateLayout)
	r.status.From = end.AddDate(0, 0, 1-r.in.Spec.Dataset.WindowDays).Format(contract.DateLayout)
	return nil
}

// ContinuousTrainingWorkflow runs the loop once: snapshot, validate, drift, train, evaluate,
// register, policy, approval, canary, promote or roll back. Every run ends in one outcome.
// Each step is a method of run, called in this order (the order of the commands a history
// records).
func ContinuousTrainingWorkflow(ctx workflow.Context, in pipeline.RunInput) (pipeline.RunResult, error) {
	info := workflow.GetInfo(ctx)
	r := &run{ctx: ctx, in: in, runID: info.WorkflowExecution.RunID, wfID: info.WorkflowExecution.ID,
		status: pipeline.Status{Model: in.Spec.Model, RequestedBy: in.RequestedBy, Trigger: in.Reason}}
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrModel.ValueSet(in.Spec.Model))
	if err := workflow.SetQueryHandler(ctx, pipeline.QueryStatus, func() (pipeline.Status, error) { return r.status, nil }); err != nil {
		return pipeline.RunResult{}, err
	}
	approvals := r.approvalHandlers()
	// Runs started before spec validation moved into the workflow keep their old path.
	if workflow.GetVersion(ctx, "validate-spec", workflow.DefaultVersion, 1) >= 1 {
		if err := in.Spec.Validate(); err != nil {
			return r.fail(temporal.NewNonRetryableApplicationError("invalid spec: "+err.Error(), pipeline.ErrTypeInvalidData, nil))
		}
	}
	if err := r.window(); err != nil {
		return r.fail(err)
	}
	snap, err := r.snapshot()
	if err != nil {
		return r.fail(err)
	}
	step, err := r.features(pipeline.StepInput{Model: in.Spec.Model, RunID: r.runID, Spec: in.Spec, SnapshotKey: snap.Key})
	if err != nil {
		return r.fail(err)
	}
	val, dr, train, err := r.inspect(step, snap)
	if err != nil {
		return r.fail(err)
	}
	if dr.ReferenceVersion > 0 && !dr.Drifted && !in.Force {
		return r.finish(pipeline.OutcomeNoDrift, fmt.Sprintf("no drift against v%d: %s", dr.ReferenceVersion, dr.Why))
	}
	tr, err := r.train(step, train, snap)
	if err != nil {
		return r.fail(err)
	}
	ev, err := r.evaluate(step, tr, dr)
	if err != nil {
		return r.fail(err)
	}
	reports := r.reports(val, dr, ev)
	rr, err := r.register(step, tr, ev, reports)
	if err != nil {
		return r.fail(err)
	}
	pr, err := r.policy(rr, ev, dr, reports)
	if err != nil {
		return r.fail(err)
	}
	if !pr.Allow {
		return r.finish(pipeline.OutcomeRejectedByPolicy, strings.Join(pr.Reasons, "; "))
	}
	if pr.ApprovalRequired {
		if res, ended, err := r.approval(approvals, rr.Version); ended {
			return res, err
		}
	}
	return r.deploy(rr, ev, dr)
}

// snapshot pins the window's files (step 1).
func (r *run) snapshot() (pipeline.SnapshotResult, error) {
	sp := r.in.Spec
	r.enter(pipeline.StageSnapshot)
	var snap pipeline.SnapshotResult
	if err := workflow.ExecuteActivity(withStep(r.ctx, pipeline.StageSnapshot, fmt.Sprintf("pin %s %s..%s", sp.Dataset.Name, r.status.From, r.status.To)),
		pipeline.ActSnapshot, pipeline.SnapshotInput{Model: sp.Model, RunID: r.runID, Dataset: sp.Dataset.Name, From: r.status.From, To: r.status.To, PartitionRows: sp.Dataset.PartitionRows,
			Table: sp.Dataset.Table, EventTime: sp.Dataset.EventTime}).Get(r.ctx, &snap); err != nil {
		return snap, err
	}
	r.status.Snapshot = &snap
	r.done("%d files, %d rows pinned in %s", snap.Files, snap.Rows, snap.URI)
	return snap, nil
}

// features joins a feature service's features to the window's rows as of each row's time,
// when the spec names a service (step 1b): the rest of the run reads that set.
func (r *run) features(step pipeline.StepInput) (pipeline.StepInput, error) {
	fsv := r.in.Spec.FeatureService
	if fsv == nil {
		return step, nil
	}
	r.enter(pipeline.StageFeatures)
	var ts pipeline.TrainingSetResult
	if err := execute(withStep(r.ctx, pipeline.StageFeatures, fmt.Sprintf("join %s/%s as of each row's time", fsv.Repo, fsv.Name)),
		pipeline.ActTrainingSet, step).Get(r.ctx, &ts); err != nil {
		return step, err
	}
	r.status.TrainingSet = &ts
	r.in.Spec = r.in.Spec.WithFeatures(ts.Columns)
	step.Spec, step.SnapshotKey = r.in.Spec, ts.Key
	r.done("%d rows with %d features of %s/%s (definitions v%d) in %s", ts.Rows, len(ts.Columns), fsv.Repo, fsv.Name, ts.DefinitionsVersion, ts.URI)
	return step, nil
}

// inspect validates the window against the contract and compares it with the production
// reference (steps 2 and 3): one pass over the window, which also prepares training (the
// candidate's reference profile and the gbdt bins from its training days).
func (r *run) inspect(step pipeline.StepInput, snap pipeline.SnapshotResult) (val pipeline.ValidateResult, dr pipeline.DriftResult, train pipeline.TrainInput, err error) {
	ctx := r.ctx
	train = pipeline.TrainInput{StepInput: step}
	if workflow.GetVersion(ctx, "one-pass-window", workflow.DefaultVersion, 1) >= 1 {
		r.enter(pipeline.StageValidate)
		var ins pipeline.InspectResult
		// A window of more files (or pieces) than the spec's partition size is read as
		// partitions (runs from before partitions, and smaller windows, read it in one
		// activity).
		if per, units := partitionShape(step.Spec.Dataset, snap); per > 0 && units > per && workflow.GetVersion(ctx, "partitioned-pass", workflow.DefaultVersion, 1) >= 1 {
			ins, err = r.partitionedPass(step, snap, per)
		} else {
			err = execute(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("check %d rows against the contract and compare them with the production reference", snap.Rows)),
				pipeline.ActInspect, step).Get(ctx, &ins)
		}
		if err != nil {
			return
		}
		val, dr = ins.Validation, ins.Drift
		train.ProfileKey, train.BinsKey = ins.ProfileKey, ins.BinsKey
		r.status.Validation = &val
		r.done("%d rows accepted, %d quarantined (%.2f%%)", val.RowsAccepted, val.RowsQuarantined, 100*val.BadShare)
		r.enter(pipeline.StageDrift)
	} else {
		r.enter(pipeline.StageValidate)
		if err = execute(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("check %d rows against the contract", snap.Rows)),
			pipeline.ActValidate, step).Get(ctx, &val); err != nil {
			return
		}
		r.status.Validation = &val
		r.done("%d rows accepted, %d quarantined (%.2f%%)", val.RowsAccepted, val.RowsQuarantined, 100*val.BadShare)
		r.enter(pipeline.StageDrift)
		if err = execute(withStep(ctx, pipeline.StageDrift, "compare the window with the production reference profile"),
			pipeline.ActDetect, step).Get(ctx, &dr); err != nil {
			return
		}
	}
	r.status.Drift = &dr
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrDriftScore.ValueSet(dr.Score))
	r.done("%s", dr.Why)
	return val, dr, train, nil
}

// train fits the candidate (step 4): built in, or by an external trainer on its own task
// queue (input built here, artifact adopted here).
func (r *run) train(step pipeline.StepInput, train pipeline.TrainInput, snap pipeline.SnapshotResult) (pipeline.TrainResult, error) {
	ctx, sp := r.ctx, r.in.Spec
	r.enter(pipeline.StageTrain)
	var tr pipeline.TrainResult
	if q := sp.Trainer.TaskQueue; q != "" {
		var ein pipeline.ExternalTrainInput
		if err := execute(withStep(ctx, pipeline.StageTrain, "prepare the external trainer's input (its training and validation rows as CSV)"),
			pipeline.ActExtInput, step).Get(ctx, &ein); err != nil {
			return tr, err
		}
		var eout pipeline.ExternalTrainOutput
		ectx := workflow.WithTaskQueue(withStep(ctx, pipeline.StageTrain, fmt.Sprintf("external trainer on task queue %s", q)), q)
		if err := workflow.ExecuteActivity(ectx, pipeline.ExternalTrainActivity, ein).Get(ctx, &eout); err != nil {
			return tr, err
		}
		if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StageTrain, "verify and stage the external artifact"),
			pipeline.ActAdoptExt, pipeline.AdoptInput{StepInput: step, TaskQueue: q, Output: eout, ProfileKey: train.ProfileKey}).Get(ctx, &tr); err != nil {
			return tr, err
		}
	} else if err := execute(withStep(ctx, pipeline.StageTrain, fmt.Sprintf("train %s on %s", sp.Trainer.Name, snap.ID)),
		pipeline.ActTrain, train).Get(ctx, &tr); err != nil {
		return tr, err
	}
	r.status.Training = &tr
	if tr.TrainMetric != "" && tr.TrainMetric != "rmse" {
		r.done("%s on %d rows, training %s %.4f", sp.Trainer.Name, tr.TrainRows, tr.TrainMetric, tr.TrainLoss)
	} else {
		r.done("%s on %d rows, training RMSE %.3f", sp.Trainer.Name, tr.TrainRows, tr.TrainRMSE)
	}
	return tr, nil
}

// evaluate measures the candidate and production on the same holdout (step 5).
func (r *run) evaluate(step pipeline.StepInput, tr pipeline.TrainResult, dr pipeline.DriftResult) (pipeline.EvaluateResult, error) {
	r.enter(pipeline.StageEvaluate)
	var ev pipeline.EvaluateResult
	in := pipeline.EvaluateInput{StepInput: step, ArtifactKey: tr.ArtifactKey, ChampionVersion: dr.ReferenceVersion}
	// A window read as partitions is evaluated as partitions too (runs from before, and
	// windows read in one activity, evaluate in one).
	if len(r.evalParts) > 1 && workflow.GetVersion(r.ctx, "partitioned-evaluation", workflow.DefaultVersion, 1) >= 1 {
		var err error
		if ev, err = r.partitionedEvaluation(in); err != nil {
			return ev, err
		}
	} else if err := execute(withStep(r.ctx, pipeline.StageEvaluate, "holdout MAE of candidate and production"),
		pipeline.ActEvaluate, in).Get(r.ctx, &ev); err != nil {
		return ev, err
	}
	r.status.Evaluation = &ev
	if ev.HasChampion {
		r.done("candidate MAE %.3f, production v%d MAE %.3f on %d holdout rows", ev.CandidateMAE, dr.ReferenceVersion, ev.ChampionMAE, ev.HoldoutRows)
	} else {
		r.done("candidate MAE %.3f on %d holdout rows (no production model yet)", ev.CandidateMAE, ev.HoldoutRows)
	}
	return ev, nil
}

// reports are the run's reports the registered version links to.
func (r *run) reports(val pipeline.ValidateResult, dr pipeline.DriftResult, ev pipeline.EvaluateResult) map[string]string {
	reports := map[string]string{"validation": val.ReportURI, "evaluation": ev.ReportURI}
	if ts := r.status.TrainingSet; ts != nil {
		reports["training_set"] = ts.ReportURI
	}
	if dr.ReportURI != "" {
		reports["drift"] = dr.ReportURI
	}
	return reports
}

// register registers the candidate with its lineage, metrics and reports (step 6).
func (r *run) register(step pipeline.StepInput, tr pipeline.TrainResult, ev pipeline.EvaluateResult, reports map[string]string) (pipeline.RegisterResult, error) {
	r.enter(pipeline.StageRegister)
	metrics := map[string]float64{"holdout_mae": ev.CandidateMAE, "train_rmse": tr.TrainRMSE, "train_rows": float64(tr.TrainRows), "holdout_rows": float64(ev.HoldoutRows)}
	for _, k := range []string{"rmse", "r2", "mape", "logloss", "auc", "accuracy"} { // a fixed order: no map range
		if v, ok := ev.Metrics[k]; ok {
			metrics["holdout_"+k] = v
		}
	}
	if ev.HasChampion {
		metrics["champion_mae"] = ev.ChampionMAE
	}
	var rr pipeline.RegisterResult
	if err := workflow.ExecuteActivity(withStep(r.ctx, pipeline.StageRegister, "register the candidate with lineage"), pipeline.ActRegister, pipeline.RegisterInput{
		StepInput: step, WorkflowID: r.wfID, RequestedBy: r.in.RequestedBy, ArtifactKey: tr.ArtifactKey, ProfileKey: tr.ProfileKey,
		PredictionProfileKey: ev.PredictionProfileKey, Metrics: metrics, Reports: reports,
		Int8Key: ev.Int8Key, LossEstimatorKey: ev.LossEstimatorKey, Quantization: ev.Quantization, Importance: ev.Importance}).Get(r.ctx, &rr); err != nil {
		return rr, err
	}
	r.status.CandidateVersion = rr.Version
	_ = workflow.UpsertTypedSearchAttributes(r.ctx, AttrVersion.ValueSet(int64(rr.Version)))
	r.done("registered v%d: %s", rr.Version, rr.MetadataURI)
	return rr, nil
}

// policy asks the promotion policy about the registered candidate (step 7).
func (r *run) policy(rr pipeline.RegisterResult, ev pipeline.EvaluateResult, dr pipeline.DriftResult, reports map[string]string) (pipeline.PolicyResult, error) {
	r.enter(pipeline.StagePolicy)
	var pr pipeline.PolicyResult
	if err := workflow.ExecuteActivity(withStep(r.ctx, pipeline.StagePolicy, fmt.Sprintf("promotion policy for v%d", rr.Version)), pipeline.ActPolicy, pipeline.PolicyInput{
		Model: r.in.Spec.Model, RunID: r.runID, Version: rr.Version, CandidateMAE: ev.CandidateMAE, ChampionVersion: dr.ReferenceVersion,
		ChampionMAE: ev.ChampionMAE, Spec: r.in.Spec, Reports: reports, Fairness: ev.Fairness, Quantization: ev.Quantization,
		Origin: r.in.Origin, StartedAt: workflow.GetInfo(r.ctx).WorkflowStartTime}).Get(r.ctx, &pr); err != nil {
		return pr, err
	}
	r.status.Policy = &pr
	if !pr.Allow {
		r.done("deny: %s", strings.Join(pr.Reasons, "; "))
	} else {
		r.done("allow (approval required: %t, policy %s)", pr.ApprovalRequired, pr.Revision)
	}
	return pr, nil
}

// approval waits for a person's decision on the version (step 8); ended says the run ended
// here (timed out, rejected or failed), with its result.
func (r *run) approval(approvals *approvals, version int) (res pipeline.RunResult, ended bool, err error) {
	timeout := r.in.Spec.Approval.Timeout.Duration
	if err := approvals.prepare(version, timeout); err != nil {
		res, err = r.fail(err)
		return res, true, err
	}
	r.enter(pipeline.StageApproval)
	approved, timedOut, err := approvals.wait(version, timeout)
	switch {
	case err != nil:
		res, err = r.fail(err)
		return res, true, err
	case timedOut:
		res, err = r.finish(pipeline.OutcomeApprovalTimeout, fmt.Sprintf("no approval for v%d within %s", version, timeout))
		return res, true, err
	case !approved:
		res, err = r.finish(pipeline.OutcomeRejectedByApprover, fmt.Sprintf("v%d rejected by %s: %s", version, r.status.Approval.Approver, r.status.Approval.Reason))
		return res, true, err
	}
	r.done("approved by %s: %s", r.status.Approval.Approver, r.status.Approval.Reason)
	return res, false, nil
}

// deploy promotes a first version at once, or runs the canary against production and
// promotes or rolls back (steps 9 and 10).
func (r *run) deploy(rr pipeline.RegisterResult, ev pipeline.EvaluateResult, dr pipeline.DriftResult) (pipeline.RunResult, error) {
	ctx, sp := r.ctx, r.in.Spec
	if dr.ReferenceVersion == 0 {
		r.enter(pipeline.StagePromote)
		if err := workflow.ExecuteActivity(withStep(ctx, pipeline.StagePromote, fmt.Sprintf("promote v%d (first deployment)", rr.Version)), pipeline.ActPromote,
			pipeline.DeployInput{Model: sp.Model, RunID: r.runID, Actor: "driftline", Version: rr.Version, Reason: "first deployment"}).Get(ctx, nil); err != nil {
			return r.fail(err)
		}
		r.done("v%d is production", rr.Version)
		return r.finish(pipeline.OutcomePromoted, fmt.Sprintf("v%d promoted: first deployment, MAE %.3f", rr.Version, ev.CandidateMAE))
	}
	r.enter(pipeline.StageCanary)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:    fmt.Sprintf("%s/canary/v%d", r.wfID, rr.Version),
		StaticSummary: fmt.Sprintf("canary v%d at %.0f%% against v%d", rr.Version, 100*sp.Canary.Share, dr.ReferenceVersion),
	})
	var cr pipeline.CanaryResult
	err := workflow.ExecuteChildWorkflow(cctx, pipeline.CanaryWorkflow, pipeline.CanaryInput{Model: sp.Model, RunID: r.runID,
		Candidate: rr.Version, Production: dr.ReferenceVersion, Settings: sp.Canary}).Get(ctx, &cr)
	r.status.Canary = cr.Evidence
	if err != nil {
		return r.fail(err)
	}
	r.done("%s", cr.Reason)
	if cr.Promoted {
		return r.finish(pipeline.OutcomePromoted, fmt.Sprintf("v%d promoted after canary: %s", rr.Version, cr.Reason))
	}
	return r.finish(pipeline.OutcomeRolledBack, fmt.Sprintf("v%d rolled back, v%d stays in production: %s", rr.Version, dr.ReferenceVersion, cr.Reason))
}
