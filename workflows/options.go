package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/activities"
)

// stepOptions are each step's timeouts and retry policy. Faults (storage, network) retry with
// backoff; the typed errors in activities.NonRetryable never do.
type stepOptions struct {
	startToClose time.Duration
	heartbeat    time.Duration
	attempts     int32
}

var steps = map[string]stepOptions{
	StageSnapshot: {startToClose: 5 * time.Minute, attempts: 5},
	StageValidate: {startToClose: 30 * time.Minute, heartbeat: 2 * time.Minute, attempts: 5},
	StageDrift:    {startToClose: 30 * time.Minute, attempts: 5},
	StageTrain:    {startToClose: 2 * time.Hour, heartbeat: 5 * time.Minute, attempts: 3},
	StageEvaluate: {startToClose: 30 * time.Minute, attempts: 5},
	StageRegister: {startToClose: 5 * time.Minute, attempts: 10},
	StagePolicy:   {startToClose: time.Minute, attempts: 5},
	StageCanary:   {startToClose: 5 * time.Minute, attempts: 10},
	StagePromote:  {startToClose: time.Minute, attempts: 20},
	StageDone:     {startToClose: time.Minute, attempts: 20},
}

// withStep returns a context whose activity options fit the step, with a readable summary
// that the Temporal UI shows next to the activity.
func withStep(ctx workflow.Context, step, summary string) workflow.Context {
	o := steps[step]
	return workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		StartToCloseTimeout: o.startToClose,
		HeartbeatTimeout:    o.heartbeat,
		Summary:             summary,
		RetryPolicy: &temporal.RetryPolicy{
			InitialInterval:        time.Second,
			BackoffCoefficient:     2,
			MaximumInterval:        time.Minute,
			MaximumAttempts:        o.attempts,
			NonRetryableErrorTypes: activities.NonRetryable,
		},
	})
}
