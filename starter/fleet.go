package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/api/serviceerror"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/workflows"
)

// ErrRolloutUnderWay: the fleet has a rollout open (one at a time per fleet).
var ErrRolloutUnderWay = errors.New("a rollout of this fleet is under way")

// StartFleetRollout starts workflow fleet/<model>/<fleet> (FleetRolloutWorkflow).
func StartFleetRollout(ctx context.Context, c client.Client, in pipeline.FleetRolloutInput) (string, error) {
	opts := client.StartWorkflowOptions{
		ID:                       pipeline.FleetWorkflowID(in.Model, in.Fleet),
		TaskQueue:                pipeline.TaskQueue,
		WorkflowIDReusePolicy:    enumspb.WORKFLOW_ID_REUSE_POLICY_ALLOW_DUPLICATE,
		WorkflowIDConflictPolicy: enumspb.WORKFLOW_ID_CONFLICT_POLICY_FAIL,
		// Without it the SDK hands back the open run instead of the conflict.
		WorkflowExecutionErrorWhenAlreadyStarted: true,
		TypedSearchAttributes:                    temporal.NewSearchAttributes(workflows.AttrModel.ValueSet(in.Model)),
		StaticSummary:                            fmt.Sprintf("roll v%d of %s out to fleet %s (requested by %s)", in.Version, in.Model, in.Fleet, in.Requester),
	}
	run, err := c.ExecuteWorkflow(ctx, opts, pipeline.FleetWorkflow, in)
	if _, started := errors.AsType[*serviceerror.WorkflowExecutionAlreadyStarted](err); started {
		return "", fmt.Errorf("fleet %s of %s (%s): %w: stop it first", in.Fleet, in.Model, opts.ID, ErrRolloutUnderWay)
	}
	if err != nil {
		return "", err
	}
	return run.GetRunID(), nil
}

// StopFleetRollout signals the fleet's open rollout to stop: it rolls the fleet back.
func StopFleetRollout(ctx context.Context, c client.Client, model, fleet string, s pipeline.FleetStop) error {
	return c.SignalWorkflow(ctx, pipeline.FleetWorkflowID(model, fleet), "", pipeline.SignalFleetStop, s)
}
