package starter

import (
	"context"
	"errors"
	"fmt"
	"time"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/workflows"
)

// StartMonitor starts the model's monitor (monitor/<model>); one runs per model: starting it
// again while it runs replaces nothing and fails with a clear error.
func StartMonitor(ctx context.Context, c client.Client, in pipeline.MonitorInput) (string, error) {
	if err := in.Spec.Validate(); err != nil {
		return "", fmt.Errorf("spec of model %q: %w", in.Spec.Model, err)
	}
	opts := client.StartWorkflowOptions{
		ID:                       pipeline.MonitorWorkflowID(in.Spec.Model),
		TaskQueue:                pipeline.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK hands back the open run instead of the conflict.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.AttrModel.ValueSet(in.Spec.Model)),
		StaticSummary: fmt.Sprintf("monitor %s every %s (drift in %d windows or live MAE over %.3g starts the loop)", in.Spec.Model,
			in.Spec.Monitoring.Interval.Duration, in.Spec.Monitoring.DriftWindows, in.Spec.Monitoring.MaxLiveMAE),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, pipeline.MonitorWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return "", fmt.Errorf("model %s already has a monitor (%s): stop it first", in.Spec.Model, opts.ID)
	}
	if err != nil {
		return "", err
	}
	return run.GetRunID(), nil
}

// StopMonitor cancels the model's monitor.
func StopMonitor(ctx context.Context, c client.Client, model string) error {
	if err := c.CancelWorkflow(ctx, pipeline.MonitorWorkflowID(model), ""); err != nil {
		return fmt.Errorf("stop %s: %w", pipeline.MonitorWorkflowID(model), err)
	}
	return nil
}

// MonitorStatus asks the model's monitor for its status.
func MonitorStatus(ctx context.Context, c client.Client, model string) (pipeline.MonitorStatus, error) {
	var st pipeline.MonitorStatus
	v, err := c.QueryWorkflow(ctx, pipeline.MonitorWorkflowID(model), "", pipeline.QueryMonitor)
	if err != nil {
		return st, fmt.Errorf("status of %s: %w", pipeline.MonitorWorkflowID(model), err)
	}
	return st, v.Get(&st)
}

// Acknowledge sends the decision on the monitor's open fairness review (the Update
// acknowledge) and waits for it to be carried out.
func Acknowledge(ctx context.Context, c client.Client, model string, ack pipeline.ReviewAck) (string, error) {
	h, err := c.UpdateWorkflow(ctx, client.UpdateWorkflowOptions{
		WorkflowID: pipeline.MonitorWorkflowID(model), UpdateName: pipeline.UpdateAcknowledge, Args: []any{ack},
		WaitForStage: client.WorkflowUpdateStageCompleted,
	})
	if err != nil {
		return "", fmt.Errorf("acknowledge %s of %s: %w", ack.Review, model, err)
	}
	var out string
	if err := h.Get(ctx, &out); err != nil {
		return "", fmt.Errorf("acknowledge %s of %s: %w", ack.Review, model, err)
	}
	return out, nil
}

// StartMaterialize starts materializing a feature view (materialize/<repo>/<view>); one runs
// per view at a time.
func StartMaterialize(ctx context.Context, c client.Client, in pipeline.MaterializeInput) (string, error) {
	opts := client.StartWorkflowOptions{
		ID:                       pipeline.MaterializeWorkflowID(in.Repo, in.View),
		TaskQueue:                pipeline.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK hands back the open run instead of the conflict.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		StaticSummary: fmt.Sprintf("materialize %s/%s from %s to %s in chunks of %s", in.Repo, in.View, in.Watermark.Format(time.RFC3339),
			in.Until.Format(time.RFC3339), in.Chunk),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, pipeline.MaterializeWorkflow, in)
	var started *serviceerror.WorkflowExecutionAlreadyStarted
	if errors.As(err, &started) {
		return "", fmt.Errorf("%s is already running", opts.ID)
	}
	if err != nil {
		return "", err
	}
	return run.GetRunID(), nil
}
