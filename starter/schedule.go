package starter

import (
	"context"
	"errors"
	"fmt"

	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/workflows"
)

// ScheduleID is the id of a model's retraining schedule.
func ScheduleID(model string) string { return "ct-schedule/" + model }

// CreateSchedule makes a Temporal Schedule that starts the model's loop on a cron expression.
// Overlap policy skip: a firing while a run is still open is skipped. Each firing trains on
// the spec's window ending yesterday. An existing schedule is replaced (spec and cron). in is
// the run each firing starts (its spec, origin and spec version; RequestedBy is the schedule).
func CreateSchedule(ctx context.Context, c client.Client, in pipeline.RunInput, cron string) (string, error) {
	sp := in.Spec
	id := ScheduleID(sp.Model)
	in.RequestedBy, in.From, in.To, in.Force = "schedule:"+id, "", "", false
	opts := client.ScheduleOptions{
		ID:      id,
		Spec:    client.ScheduleSpec{CronExpressions: []string{cron}},
		Overlap: enumspb.SCHEDULE_OVERLAP_POLICY_SKIP,
		Action: &client.ScheduleWorkflowAction{
			ID:                    pipeline.WorkflowID(sp.Model),
			Workflow:              pipeline.ContinuousTraining,
			Args:                  []any{in},
			TaskQueue:             pipeline.TaskQueue,
			TypedSearchAttributes: temporal.NewSearchAttributes(workflows.AttrModel.ValueSet(sp.Model)),
			StaticDetails:         ConsoleDetails(sp.Model),
		},
		Note: fmt.Sprintf("retrain %s on cron %q (spec %s)", sp.Model, cron, sp.Hash[:12]),
	}
	sc := c.ScheduleClient()
	_, err := sc.Create(ctx, opts)
	if errors.Is(err, temporal.ErrScheduleAlreadyRunning) {
		h := sc.GetHandle(ctx, id)
		if err := h.Delete(ctx); err != nil {
			return "", fmt.Errorf("replace schedule %s: %w", id, err)
		}
		_, err = sc.Create(ctx, opts)
	}
	if err != nil {
		return "", fmt.Errorf("create schedule %s: %w", id, err)
	}
	return id, nil
}

// DeleteSchedule removes a model's schedule.
func DeleteSchedule(ctx context.Context, c client.Client, model string) error {
	return c.ScheduleClient().GetHandle(ctx, ScheduleID(model)).Delete(ctx)
}
