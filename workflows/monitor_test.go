package workflows

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// The monitor's decisions over 100 windows (the window results scripted: what they hold is
// the activity's, tested on MinIO in activities.TestMonitorWindowOnMinIO): one drifted window
// starts nothing, two in a row start the loop once (forced, by the monitor, with the reason
// and the report in its memo), a trigger while that run is in progress starts no second one,
// a live MAE breach and an estimated one (before labels) are reasons too; the marks each window returns are the next one's input,
// and after 100 windows the monitor continues as new with its state.
func TestMonitorStartsTheLoopOnSustainedDriftOrLiveMAE(t *testing.T) {
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Monitoring.Interval.Duration = time.Minute
	var mu sync.Mutex
	var inputs []pipeline.MonitorWindowInput
	window := func(ctx context.Context, in pipeline.MonitorWindowInput) (pipeline.MonitorWindowResult, error) {
		mu.Lock()
		defer mu.Unlock()
		inputs = append(inputs, in)
		n := len(inputs)
		res := pipeline.MonitorWindowResult{Version: 1, Requests: 500, ReportURI: "s3://b/reports/demand/monitor/w.json",
			Predictions: pipeline.LogMark{WrittenNanos: int64(n), Key: "p"}, Labels: pipeline.LogMark{WrittenNanos: int64(n), Key: "l"}}
		switch n {
		case 2, 4, 5, 6, 7: // 2 alone; 4-5 start the loop; 6-7 find it running
			res.Drifted, res.DriftScore, res.Why = true, 0.4, "price drifted"
		case 60:
			res.MAEBreach, res.LiveMAE, res.Labelled = true, 4.2, 300
		case 95: // no labels yet: the loss estimator's estimate breaches
			res.EstimateBreach, res.EstimatedMAE = true, 5.1
		}
		return res, nil
	}
	var runs []pipeline.RunInput
	var memos []string
	loop := func(ctx workflow.Context, in pipeline.RunInput) error {
		runs = append(runs, in)
		memos = append(memos, in.Reason)
		return workflow.Sleep(ctx, 30*time.Minute) // in progress for 30 windows
	}
	var s testsuite.WorkflowTestSuite
	env := s.NewTestWorkflowEnvironment()
	env.RegisterWorkflowWithOptions(MonitorWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MonitorWorkflow})
	env.RegisterWorkflowWithOptions(loop, workflow.RegisterOptions{Name: pipeline.ContinuousTraining})
	env.RegisterActivityWithOptions(window, activity.RegisterOptions{Name: pipeline.ActMonitorWindow})
	env.ExecuteWorkflow(pipeline.MonitorWorkflow, pipeline.MonitorInput{Spec: sp, RunFrom: "2026-10-03", RunTo: "2026-10-30", RequestedBy: "ops"})
	require.True(t, env.IsWorkflowCompleted())
	var can *workflow.ContinueAsNewError
	require.True(t, errors.As(env.GetWorkflowError(), &can), "continues as new: %v", env.GetWorkflowError())

	require.Len(t, inputs, MonitorWindowsPerRun)
	for i := 1; i < len(inputs); i++ {
		require.Equal(t, int64(i), inputs[i].Predictions.WrittenNanos, "window %d starts at the marks window %d returned", i+1, i)
		require.Equal(t, int64(i), inputs[i].Labels.WrittenNanos)
	}
	require.Len(t, runs, 3, "one run for the drift (not a second while it ran), one for the live MAE, one for the estimate")
	for _, r := range runs {
		require.True(t, r.Force)
		require.Equal(t, "monitor/demand", r.RequestedBy)
		require.Equal(t, "2026-10-03", r.From)
	}
	var state pipeline.MonitorInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &state))
	require.Equal(t, MonitorWindowsPerRun, state.Windows)
	require.Equal(t, int64(MonitorWindowsPerRun), state.Predictions.WrittenNanos, "the marks carry over")
	require.Len(t, state.Runs, 4)
	require.True(t, state.Runs[0].Started)
	require.Contains(t, state.Runs[0].Reason, "live input drift in 2 windows in a row")
	require.False(t, state.Runs[1].Started)
	require.Contains(t, state.Runs[1].Reason, "already in progress")
	require.True(t, state.Runs[2].Started)
	require.Contains(t, state.Runs[2].Reason, "live MAE 4.200")
	require.True(t, state.Runs[3].Started)
	require.Contains(t, state.Runs[3].Reason, "estimated MAE 5.100 (loss estimator, before labels)")
	require.Equal(t, state.Runs[0].Reason+" (report s3://b/reports/demand/monitor/w.json)", memos[0], "the run says why it was started, with the evidence")
	require.True(t, strings.HasPrefix(memos[1], "live MAE"))
}
