package workflows

import (
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// MonitorWindowsPerRun is how many windows a monitor run takes before it continues as new
// (its history stays small: about 12 events a window).
const MonitorWindowsPerRun = 100

// MonitorWorkflowFunc watches one model between runs (workflow monitor/<model>): every
// monitoring.interval it has one window of the prediction log and feedback processed
// (activities.Monitoring.MonitorWindow, from the durable marks the previous window left) and
// starts the model's loop (ct/<model>) when live input drift holds for
// monitoring.drift_windows windows in a row or the live (or estimated) MAE breaches
// monitoring.max_live_mae,
// with the reason and the window's report in the run's memo. A run already in progress is
// not started twice. A window whose disparate impact is below the floor opens a fairness
// review instead (review.go): the Update acknowledge decides it; unacknowledged it escalates.
// Cancelling the workflow stops the monitor.
func MonitorWorkflowFunc(ctx workflow.Context, in pipeline.MonitorInput) error {
	sp := in.Spec
	model := sp.Model
	st := in
	var last *pipeline.MonitorWindowResult
	var lastAt time.Time
	if err := workflow.SetQueryHandler(ctx, pipeline.QueryMonitor, func() (pipeline.MonitorStatus, error) { return monitorStatus(st, last, lastAt), nil }); err != nil {
		return err
	}
	rv, err := newReviews(ctx, &st)
	if err != nil {
		return err
	}
	rv.refresh()
	_ = workflow.UpsertTypedSearchAttributes(ctx, AttrModel.ValueSet(model))
	interval := sp.Monitoring.Interval.Duration
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: max(interval, time.Minute),
		HeartbeatTimeout:    heartbeat,
		Summary:             "monitoring window of " + model,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 5, NonRetryableErrorTypes: pipeline.NonRetryable},
	})
	// A closed partition (the ingest worker's signal) runs the next window at once.
	partitions := workflow.GetSignalChannel(ctx, pipeline.SignalNewPartition)
	signalled := workflow.GetVersion(ctx, "new-partition-signal", workflow.DefaultVersion, 1) >= 1
	for range MonitorWindowsPerRun {
		if !signalled {
			if err := workflow.Sleep(ctx, interval); err != nil {
				return err // cancelled: the monitor stops
			}
		} else if err := waitWindow(ctx, partitions, interval, &st); err != nil {
			return err // cancelled: the monitor stops
		}
		var res pipeline.MonitorWindowResult
		err := workflow.ExecuteActivity(actx, pipeline.ActMonitorWindow, pipeline.MonitorWindowInput{Spec: sp,
			Predictions: st.Predictions, Labels: st.Labels, Until: workflow.Now(ctx)}).Get(ctx, &res)
		if err != nil {
			// The marks did not move: the next window takes what this one could not.
			workflow.GetLogger(ctx).Error("monitoring window failed", "err", err)
			continue
		}
		last, lastAt = &res, workflow.Now(ctx)
		st.Predictions, st.Labels, st.LastReport = res.Predictions, res.Labels, res.ReportURI
		st.Windows++
		if res.Drifted {
			st.DriftedInARow++
		} else {
			st.DriftedInARow = 0
		}
		if res.FairnessBelowMin && st.Review == nil && workflow.GetVersion(ctx, "fairness-review", workflow.DefaultVersion, 1) >= 1 {
			rv.open(res) // a human decides: accept, retrain or roll back
		}
		reason := retrainReason(sp, st, res)
		if reason == "" {
			continue
		}
		run := startLoop(ctx, st, reason, res.ReportURI)
		st.Runs = appendRun(st.Runs, run)
		if run.Started {
			st.DriftedInARow = 0
		}
	}
	// An acknowledgement being carried out finishes in this run; its result is in the state.
	if err := workflow.Await(ctx, func() bool { return workflow.AllHandlersFinished(ctx) }); err != nil {
		return err
	}
	// A partition signalled as this run ends is not lost: the next run's first window is at once.
	if signalled {
		var p pipeline.NewPartition
		for partitions.ReceiveAsync(&p) {
			st.Partition, st.Pending = &p, true
		}
	}
	if st.Review != nil {
		st.Review.Keys = nil // looked up again by the next run (the keys may rotate)
	}
	return workflow.NewContinueAsNewError(ctx, pipeline.MonitorWorkflow, st)
}

// monitorStatus is the monitor's query answer: its state and last window (no review keys).
func monitorStatus(st pipeline.MonitorInput, last *pipeline.MonitorWindowResult, lastAt time.Time) pipeline.MonitorStatus {
	out := pipeline.MonitorStatus{Model: st.Spec.Model, Windows: st.Windows, DriftedInARow: st.DriftedInARow, Last: last, LastAt: lastAt, Runs: st.Runs,
		Reviews: st.Reviews, Partition: st.Partition}
	if st.Review != nil {
		r := *st.Review
		r.Keys = nil
		out.Review = &r
	}
	return out
}

// retrainReason says why a window starts the loop: drift in enough windows in a row, a live
// (or estimated) error or accuracy over its threshold; "" when nothing does.
func retrainReason(sp spec.Spec, st pipeline.MonitorInput, res pipeline.MonitorWindowResult) string {
	switch {
	case st.DriftedInARow >= sp.Monitoring.DriftWindows:
		return fmt.Sprintf("live input drift in %d windows in a row (score %.3f): %s", st.DriftedInARow, res.DriftScore, res.Why)
	case res.MAEBreach:
		return fmt.Sprintf("live MAE %.3f over monitoring.max_live_mae %.3f on %d labels", res.LiveMAE, sp.Monitoring.MaxLiveMAE, res.Labelled)
	case res.AccuracyBreach:
		return fmt.Sprintf("live accuracy %.3f under monitoring.min_accuracy %.3f on %d labels", res.LiveAccuracy, sp.Monitoring.MinAccuracy, res.Labelled)
	case res.EstimateBreach:
		return fmt.Sprintf("estimated MAE %.3f (loss estimator, before labels) over monitoring.max_live_mae %.3f on %d requests",
			res.EstimatedMAE, sp.Monitoring.MaxLiveMAE, res.Requests)
	case res.EstimatedAccuracyBreach:
		return fmt.Sprintf("estimated accuracy %.3f (CBPE, before labels) under monitoring.min_accuracy %.3f on %d requests",
			res.EstimatedAccuracy, sp.Monitoring.MinAccuracy, res.Requests)
	}
	return ""
}

// waitWindow waits for the next window: the interval, or a closed partition signalled
// before it ends (then the window is at once); a partition left pending by the last run
// does not wait.
func waitWindow(ctx workflow.Context, partitions workflow.ReceiveChannel, interval time.Duration, st *pipeline.MonitorInput) error {
	if st.Pending {
		st.Pending = false
		return nil
	}
	tctx, cancel := workflow.WithCancel(ctx)
	defer cancel()
	var err error
	sel := workflow.NewSelector(ctx)
	sel.AddFuture(workflow.NewTimer(tctx, interval), func(f workflow.Future) { err = f.Get(ctx, nil) })
	sel.AddReceive(partitions, func(c workflow.ReceiveChannel, _ bool) {
		var p pipeline.NewPartition
		c.Receive(ctx, &p)
		st.Partition = &p
		workflow.GetLogger(ctx).Info("partition closed: monitoring window now", "dataset", p.Dataset, "day", p.Day, "by", p.By)
	})
	sel.Select(ctx)
	if err == nil {
		err = ctx.Err()
	}
	return err
}

// startLoop starts ct/<model> as an abandoned child (it outlives the monitor's run), forced:
// the monitor's evidence is the reason to retrain, in the run's memo. A run already in
// progress is left alone.
func startLoop(ctx workflow.Context, st pipeline.MonitorInput, reason, report string) pipeline.MonitorRun {
	model := st.Spec.Model
	at := workflow.Now(ctx)
	cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
		WorkflowID:            pipeline.WorkflowID(model),
		TaskQueue:             pipeline.TaskQueue,
		ParentClosePolicy:     enumspb.PARENT_CLOSE_POLICY_ABANDON,
		WorkflowIDReusePolicy: enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		TypedSearchAttributes: temporal.NewSearchAttributes(AttrModel.ValueSet(model)),
		Memo:                  map[string]any{"started_by": "monitor", "reason": reason, "evidence": report},
		StaticSummary:         "retrain " + model + ": " + reason,
	})
	child := workflow.ExecuteChildWorkflow(cctx, pipeline.ContinuousTraining, pipeline.RunInput{Spec: st.Spec, From: st.RunFrom, To: st.RunTo,
		Force: true, RequestedBy: "monitor/" + model, Reason: reason + " (report " + report + ")", Origin: st.Origin})
	var exec workflow.Execution
	err := child.GetChildWorkflowExecution().Get(ctx, &exec)
	var started *temporal.ChildWorkflowExecutionAlreadyStartedError
	var startedTest *serviceerror.WorkflowExecutionAlreadyStarted // the SDK's test environment says it so
	switch {
	case errors.As(err, &started) || errors.As(err, &startedTest):
		return pipeline.MonitorRun{At: at, Reason: reason + " (a run was already in progress)"}
	case err != nil:
		return pipeline.MonitorRun{At: at, Reason: reason + " (the run did not start: " + err.Error() + ")"}
	}
	return pipeline.MonitorRun{At: at, Reason: reason, RunID: exec.RunID, Started: true}
}
