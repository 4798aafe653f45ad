package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// stepOptions are each step's timeouts and retry policy. Faults (storage, network) retry with
// backoff; the typed errors in pipeline.NonRetryable never do.
type stepOptions struct {
	startToClose time.Duration
	heartbeat    time.Duration
	attempts     int32
}

var steps = map[pipeline.Stage]stepOptions{
	pipeline.StageSnapshot: {startToClose: 5 * time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageFeatures: {startToClose: 30 * time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageValidate: {startToClose: 30 * time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageDrift:    {startToClose: 30 * time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageTrain:    {startToClose: 2 * time.Hour, heartbeat: heartbeat, attempts: 3},
	pipeline.StageEvaluate: {startToClose: 30 * time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageRegister: {startToClose: 5 * time.Minute, heartbeat: heartbeat, attempts: 10},
	pipeline.StagePolicy:   {startToClose: time.Minute, heartbeat: heartbeat, attempts: 5},
	pipeline.StageCanary:   {startToClose: 5 * time.Minute, heartbeat: heartbeat, attempts: 10},
	pipeline.StagePromote:  {startToClose: time.Minute, heartbeat: heartbeat, attempts: 20},
	pipeline.StageDone:     {startToClose: time.Minute, heartbeat: heartbeat, attempts: 20},
}

// heartbeat is every step's heartbeat timeout: the pipeline worker heartbeats for every
// activity it runs (worker.stepTimer, every third of it), so a worker that dies is noticed
// within it and the step retried elsewhere, instead of after its start-to-close: a run resumes
// within 20 s + the first retry's 1 s backoff of a SIGKILL, whatever step it was in (measured
// by the fault campaign, docs/testing.md). An external trainer must heartbeat at least this
// often (docs/models.md).
const heartbeat = 20 * time.Second

// withStep returns a context whose activity options fit the step, with a readable summary
// that the Temporal UI shows next to the activity.
func withStep(ctx workflow.Context, step pipeline.Stage, summary string) workflow.Context {
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
			NonRetryableErrorTypes: pipeline.NonRetryable,
		},
	})
}

// execute schedules an activity on the task queue of its weight (pipeline.QueueOf): the passes
// over data and the training leave the orchestration queue for their own workers. The queue
// is not part of a command's identity in replay (the SDK matches an activity by its ID and
// type), so histories from before the split replay as they are (decision 0034).
func execute(ctx workflow.Context, activity string, args ...any) workflow.Future {
	if q := pipeline.QueueOf(activity); q != pipeline.TaskQueue {
		ctx = workflow.WithTaskQueue(ctx, q)
	}
	return workflow.ExecuteActivity(ctx, activity, args...)
}
