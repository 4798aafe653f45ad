package api

import (
	"context"
	"errors"
	"fmt"

	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/starter"
)

// TemporalRuns carries out the API's run operations on Temporal.
type TemporalRuns struct{ Client client.Client }

var _ Runs = TemporalRuns{}

// Start implements Runs.
func (t TemporalRuns) Start(ctx context.Context, in pipeline.RunInput) (string, error) {
	run, err := starter.StartRun(ctx, t.Client, in)
	if err != nil {
		return "", err
	}
	return run.GetRunID(), nil
}

// Cancel implements Runs.
func (t TemporalRuns) Cancel(ctx context.Context, model, _ string) error {
	return t.Client.CancelWorkflow(ctx, pipeline.WorkflowID(model), "")
}

// Waiting implements Runs: the open run's status query.
func (t TemporalRuns) Waiting(ctx context.Context, model string) (string, int, error) {
	d, err := t.Client.DescribeWorkflowExecution(ctx, pipeline.WorkflowID(model), "")
	if err != nil {
		return "", 0, err
	}
	runID := d.GetWorkflowExecutionInfo().GetExecution().GetRunId()
	st, err := starter.Status(ctx, t.Client, model, runID)
	if err != nil {
		return "", 0, err
	}
	if st.Stage != pipeline.StageApproval {
		return runID, 0, fmt.Errorf("%w: run %s of %s is at stage %s, not waiting for approval", errConflict, runID, model, st.Stage)
	}
	return runID, st.CandidateVersion, nil
}

// Decide implements Runs.
func (t TemporalRuns) Decide(ctx context.Context, model string, approve bool, a pipeline.Approval) (string, error) {
	return starter.Decide(ctx, t.Client, model, approve, a)
}

// CreateSchedule implements Runs.
func (t TemporalRuns) CreateSchedule(ctx context.Context, in pipeline.RunInput, cron string) (string, error) {
	return starter.CreateSchedule(ctx, t.Client, in, cron)
}

// DeleteSchedule implements Runs.
func (t TemporalRuns) DeleteSchedule(ctx context.Context, model string) error {
	return starter.DeleteSchedule(ctx, t.Client, model)
}

// StartMonitor implements Runs.
func (t TemporalRuns) StartMonitor(ctx context.Context, in pipeline.MonitorInput) (string, error) {
	return starter.StartMonitor(ctx, t.Client, in)
}

// StopMonitor implements Runs.
func (t TemporalRuns) StopMonitor(ctx context.Context, model string) error {
	return starter.StopMonitor(ctx, t.Client, model)
}

// OpenReview implements Runs: the monitor's status query.
func (t TemporalRuns) OpenReview(ctx context.Context, model string) (*pipeline.FairnessReview, error) {
	st, err := starter.MonitorStatus(ctx, t.Client, model)
	if err != nil {
		return nil, err
	}
	return st.Review, nil
}

// Acknowledge implements Runs.
func (t TemporalRuns) Acknowledge(ctx context.Context, model string, ack pipeline.ReviewAck) (string, error) {
	return starter.Acknowledge(ctx, t.Client, model, ack)
}

// StartMaterialize implements Runs.
func (t TemporalRuns) StartMaterialize(ctx context.Context, in pipeline.MaterializeInput) (string, error) {
	return starter.StartMaterialize(ctx, t.Client, in)
}

// Status implements Runs.
func (t TemporalRuns) Status(ctx context.Context, model, runID string) (pipeline.Status, error) {
	return starter.Status(ctx, t.Client, model, runID)
}

// MonitorStatus implements Runs.
func (t TemporalRuns) MonitorStatus(ctx context.Context, model string) (pipeline.MonitorStatus, error) {
	return starter.MonitorStatus(ctx, t.Client, model)
}

// StartFleetRollout implements Runs.
func (t TemporalRuns) StartFleetRollout(ctx context.Context, in pipeline.FleetRolloutInput) (string, error) {
	id, err := starter.StartFleetRollout(ctx, t.Client, in)
	if errors.Is(err, starter.ErrRolloutUnderWay) {
		err = fmt.Errorf("%w: %v", errConflict, err)
	}
	return id, err
}

// StopFleetRollout implements Runs.
func (t TemporalRuns) StopFleetRollout(ctx context.Context, model, fleet string, stop pipeline.FleetStop) error {
	return starter.StopFleetRollout(ctx, t.Client, model, fleet, stop)
}
