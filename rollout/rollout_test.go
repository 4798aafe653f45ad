package rollout

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/log"
	sdkworker "go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/worker"
)

const deployment = "driftline-rollout-test"

// Three builds of one pinned workflow, "Job", each answering with its build's name. A run
// asked to wait stops for an "approve" signal between two activities, as a run waits for
// its approval. Build b changed the workflow (a timer first) and renamed its activity, so a
// run of a replayed on b would fail as non-deterministic; build c is broken.
func jobA(ctx workflow.Context, wait bool) (string, error) { return job(ctx, "StepA", wait, "a") }

func jobB(ctx workflow.Context, wait bool) (string, error) {
	if err := workflow.Sleep(ctx, time.Millisecond); err != nil {
		return "", err
	}
	return job(ctx, "StepB", wait, "b")
}

func jobC(workflow.Context, bool) (string, error) { panic("build c is broken") }

func job(ctx workflow.Context, step string, wait bool, build string) (string, error) {
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: 10 * time.Second})
	if err := workflow.ExecuteActivity(ctx, step).Get(ctx, nil); err != nil {
		return "", err
	}
	if wait {
		workflow.GetSignalChannel(ctx, "approve").Receive(ctx, nil)
	}
	return build, workflow.ExecuteActivity(ctx, step).Get(ctx, nil)
}

// startBuild runs a versioned worker of build on the pipeline's task queue, as `driftline
// worker --deployment --build-id` does (the same identity).
func startBuild(t *testing.T, c client.Client, build string, fn any, step string) {
	w := sdkworker.New(c, pipeline.TaskQueue, sdkworker.Options{
		Identity: worker.Identity(deployment, build),
		DeploymentOptions: sdkworker.DeploymentOptions{UseVersioning: true,
			Version: sdkworker.WorkerDeploymentVersion{DeploymentName: deployment, BuildID: build}},
	})
	w.RegisterWorkflowWithOptions(fn, workflow.RegisterOptions{Name: "Job", VersioningBehavior: workflow.VersioningBehaviorPinned})
	w.RegisterActivityWithOptions(func(context.Context) error { return nil }, activity.RegisterOptions{Name: step})
	require.NoError(t, w.Start())
	t.Cleanup(w.Stop)
}

// The upgrade rehearsal on the dev server: build a is current and has runs waiting for
// approval; build b (a changed workflow, a renamed activity) is ramped 10% -> 50% -> 100% under
// the gate while new runs arrive, and becomes current; the waiting runs finish on a, new runs
// go to b, and no workflow task failed anywhere. Then a broken build c is ramped in: the runs
// it takes fail their workflow tasks, the gate fails at its first step, the ramp falls to 0%,
// b stays current, new runs go to b again; made current in one step, c is rolled back to b
// the same way; the runs c failed finish on b.
func TestTheRolloutRampsAGoodBuildAndRollsBackABadOne(t *testing.T) {
	addr := stack.StartTemporal(t)
	c, err := client.Dial(client.Options{HostPort: addr,
		Logger: log.NewStructuredLogger(slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))})
	require.NoError(t, err)
	t.Cleanup(c.Close) // after the workers stop (cleanups run last first)
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	h := c.WorkerDeploymentClient().GetHandle(deployment)

	startBuild(t, c, "a", jobA, "StepA")
	require.Eventually(t, func() bool {
		_, err := h.SetCurrentVersion(ctx, client.WorkerDeploymentSetCurrentVersionOptions{BuildID: "a"})
		return err == nil
	}, time.Minute, 500*time.Millisecond, "build a's workers are seen by the deployment")

	start := func(id string, wait bool) client.WorkflowRun {
		run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: id, TaskQueue: pipeline.TaskQueue}, "Job", wait)
		require.NoError(t, err)
		return run
	}
	var waiting []client.WorkflowRun
	for i := range 3 {
		waiting = append(waiting, start(fmt.Sprint("waiting-", i), true))
	}
	for _, run := range waiting { // each has run its first step on a
		require.Eventually(t, func() bool { return activitiesDone(ctx, t, c, run.GetID()) == 1 }, time.Minute, 200*time.Millisecond)
	}

	// New runs arrive throughout the rollout, one every 150 ms until the returned func is
	// called; it returns them.
	arrive := func(prefix string) func() []client.WorkflowRun {
		var runs []client.WorkflowRun
		stop, done := make(chan struct{}), make(chan struct{})
		go func() {
			defer close(done)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				case <-time.After(150 * time.Millisecond):
				}
				runs = append(runs, start(fmt.Sprint(prefix, i), false))
			}
		}()
		return func() []client.WorkflowRun { close(stop); <-done; return runs }
	}
	stopArrivals := arrive("arrival-")

	startBuild(t, c, "b", jobB, "StepB")
	var lines []string
	opts := Options{Deployment: deployment, BuildID: "b", Hold: 4 * time.Second, Poll: time.Second, Log: func(s string) { lines = append(lines, s) }}
	var res Result
	require.Eventually(t, func() bool { // b's workers must be seen before it can be ramped
		res, err = Run(ctx, c, opts)
		return err == nil
	}, time.Minute, time.Second, "rollout of b: %v", err)
	require.True(t, res.Promoted, "%+v %v", res, lines)
	t.Log(strings.Join(lines, "\n"))
	require.Equal(t, "a", res.Previous)
	require.Zero(t, res.Gate.TaskFailures)

	for _, run := range waiting { // approved after the upgrade: they finish on a
		require.NoError(t, c.SignalWorkflow(ctx, run.GetID(), "", "approve", nil))
		var got string
		require.NoError(t, run.Get(ctx, &got))
		require.Equal(t, "a", got, "run %s finished on the build that started it", run.GetID())
	}
	after := start("after-b", false)
	var got string
	require.NoError(t, after.Get(ctx, &got))
	require.Equal(t, "b", got, "a new run goes to the current build")
	builds := map[string]int{}
	for _, run := range stopArrivals() {
		require.NoError(t, run.Get(ctx, &got))
		builds[got]++
	}
	require.Positive(t, builds["a"], "arrivals during the ramp went to a %v", builds)
	require.Positive(t, builds["b"], "and to b %v", builds)
	g, err := Check(ctx, c, deployment, "a", time.Now().Add(-time.Hour), 3, time.Second)
	require.NoError(t, err)
	require.Zero(t, g.TaskFailures, "no workflow task failed on a")

	// The broken build c: ramped at 50% while runs arrive; the gate fails, c goes to 0%.
	startBuild(t, c, "c", jobC, "StepC")
	lines = nil
	stopArrivals = arrive("during-c-")
	opts = Options{Deployment: deployment, BuildID: "c", Steps: []int{50, 100}, Hold: 20 * time.Second, Poll: time.Second, Log: func(s string) { lines = append(lines, s) }}
	require.Eventually(t, func() bool {
		res, err = Run(ctx, c, opts)
		return err == nil
	}, time.Minute, time.Second, "rollout of c: %v", err)
	stopArrivals()
	require.False(t, res.Promoted, "%v", lines)
	t.Log(strings.Join(lines, "\n"))
	require.Equal(t, 50, res.Step, "rolled back at its first step")
	require.Contains(t, res.Reason, "workflow task failures on the new build")
	require.Contains(t, res.Reason, "build c is broken")
	require.NotEmpty(t, res.Gate.Failing)
	d, err := h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	require.NoError(t, err)
	require.Equal(t, "b", d.Info.RoutingConfig.CurrentVersion.BuildID, "b stays current")
	require.Zero(t, d.Info.RoutingConfig.RampingVersionPercentage, "c takes no new run")
	for i := range 5 {
		run := start(fmt.Sprint("after-c-", i), false)
		require.NoError(t, run.Get(ctx, &got))
		require.Equal(t, "b", got)
	}
	// Made current at once (a single step of 100%), c fails the gate there: b is current again.
	lines = nil
	stopArrivals = arrive("current-c-")
	res, err = Run(ctx, c, Options{Deployment: deployment, BuildID: "c", Steps: []int{100}, Hold: 20 * time.Second, Poll: time.Second,
		Log: func(s string) { lines = append(lines, s) }})
	stopArrivals()
	require.NoError(t, err)
	require.False(t, res.Promoted, "%v", lines)
	require.Equal(t, 100, res.Step)
	d, err = h.Describe(ctx, client.WorkerDeploymentDescribeOptions{})
	require.NoError(t, err)
	require.Equal(t, "b", d.Info.RoutingConfig.CurrentVersion.BuildID, "b is current again: %v", lines)
	run := start("after-current-c", false)
	require.NoError(t, run.Get(ctx, &got))
	require.Equal(t, "b", got)

	// The runs c failed never completed a workflow task on it, so nothing pinned them to c:
	// their next attempt went to the current build, b, and they finished there.
	for _, id := range res.Gate.Failing {
		require.NoError(t, c.GetWorkflow(ctx, id, "").Get(ctx, &got), id)
		require.Equal(t, "b", got, id)
	}
}

// activitiesDone counts a workflow's completed activities.
func activitiesDone(ctx context.Context, t *testing.T, c client.Client, id string) int {
	n := 0
	it := c.GetWorkflowHistory(ctx, id, "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		if ev.GetEventType() == enumspb.EVENT_TYPE_ACTIVITY_TASK_COMPLETED {
			n++
		}
	}
	return n
}
