package worker

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/interceptor"
	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/testsuite"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// quiet works for a while without heartbeating, like a training in its boosting rounds.
func quiet(ctx context.Context) error {
	select {
	case <-time.After(7 * time.Second):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func quietWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: 3 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 1}})
	return workflow.ExecuteActivity(ctx, quiet).Get(ctx, nil)
}

// The worker heartbeats for its activities: one that is quiet for longer than its heartbeat
// timeout still completes, so a short heartbeat timeout (a dead worker noticed in 30 s) costs
// live activities nothing. Without the interceptor the same activity times out.
func TestTheWorkerHeartbeatsForItsActivities(t *testing.T) {
	for _, withInterceptor := range []bool{true, false} {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.SetTestTimeout(30 * time.Second)
		if withInterceptor {
			env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{
				&stepTimer{metrics: activities.NewMetrics(prometheus.NewRegistry())}}})
		}
		env.RegisterWorkflow(quietWorkflow)
		env.RegisterActivity(quiet)
		env.ExecuteWorkflow(quietWorkflow)
		require.True(t, env.IsWorkflowCompleted())
		if withInterceptor {
			require.NoError(t, env.GetWorkflowError(), "heartbeats kept the activity alive")
		} else {
			require.ErrorContains(t, env.GetWorkflowError(), "Heartbeat", "no heartbeat: timed out")
		}
	}
}

// checkpointed records where it is once, then works on quietly and dies; its retry reads the
// details back.
func checkpointed(ctx context.Context) (string, error) {
	if activity.GetInfo(ctx).Attempt == 1 {
		activities.RecordProgress(ctx, "after row group 7")
		time.Sleep(5 * time.Second) // the worker heartbeats for it meanwhile
		return "", errors.New("worker lost")
	}
	var at string
	if !activity.HasHeartbeatDetails(ctx) {
		return "no details", nil
	}
	err := activity.GetHeartbeatDetails(ctx, &at)
	return at, err
}

func checkpointedWorkflow(ctx workflow.Context) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute, HeartbeatTimeout: 3 * time.Second,
		RetryPolicy: &temporal.RetryPolicy{MaximumAttempts: 2, InitialInterval: time.Millisecond}})
	var at string
	err := workflow.ExecuteActivity(ctx, checkpointed).Get(ctx, &at)
	return at, err
}

// The worker's own heartbeats repeat the activity's latest details: a retry finds the
// checkpoint the attempt recorded, not the empty details of a later heartbeat.
func TestTheWorkersHeartbeatsKeepTheActivitysDetails(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.SetTestTimeout(30 * time.Second)
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{
		&stepTimer{metrics: activities.NewMetrics(prometheus.NewRegistry())}}})
	env.RegisterWorkflow(checkpointedWorkflow)
	env.RegisterActivity(checkpointed)
	env.ExecuteWorkflow(checkpointedWorkflow)
	require.True(t, env.IsWorkflowCompleted())
	require.NoError(t, env.GetWorkflowError())
	var at string
	require.NoError(t, env.GetWorkflowResult(&at))
	require.Equal(t, "after row group 7", at)
}

// busy does a fixed amount of work (about 0.3 CPU-seconds here), whatever else runs.
func busy(ctx context.Context) (float64, error) {
	x := 0.0
	for i := range 300_000_000 {
		x += float64(i&7) * 1e-9
	}
	return x, nil
}

func busyWorkflow(ctx workflow.Context) error {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var x float64
	return workflow.ExecuteActivity(ctx, busy).Get(ctx, &x)
}

// The worker accounts the CPU each step used (the operational cost of a run).
func TestTheWorkerCountsEachStepsCPU(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	m := activities.NewMetrics(prometheus.NewRegistry())
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{&stepTimer{metrics: m}}})
	env.RegisterWorkflow(busyWorkflow)
	env.RegisterActivity(busy)
	env.ExecuteWorkflow(busyWorkflow)
	require.NoError(t, env.GetWorkflowError())
	cpu := testutil.ToFloat64(m.StepCPU.WithLabelValues("busy"))
	require.Greater(t, cpu, 0.1, "about 0.3 CPU-seconds of work")
	require.Less(t, cpu, 5.0)
}

// Each step attempt of a run is accounted in the store, and the run's cost adds them up.
func TestTheWorkerKeepsEachRunsStepCost(t *testing.T) {
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	store := objstore.NewMem()
	env.SetWorkerOptions(sdkworker.Options{Interceptors: []interceptor.WorkerInterceptor{
		&stepTimer{metrics: activities.NewMetrics(prometheus.NewRegistry()), store: store}}})
	env.SetStartWorkflowOptions(client.StartWorkflowOptions{ID: pipeline.WorkflowID("demand")})
	env.RegisterWorkflow(busyWorkflow)
	env.RegisterActivity(busy)
	env.ExecuteWorkflow(busyWorkflow)
	require.NoError(t, env.GetWorkflowError())
	cost, err := activities.SumCost(context.Background(), store, "demand", "default-test-run-id")
	require.NoError(t, err)
	require.Equal(t, 1, cost.Attempts)
	require.Greater(t, cost.CPUSeconds, 0.1, "about 0.3 CPU-seconds of work")
	require.Equal(t, cost.CPUSeconds, cost.Steps["busy"])
	require.Positive(t, cost.WallSeconds)
}
