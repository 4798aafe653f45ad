package starter_test

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/driftline/driftline/ingest"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/starter"
)

// A closed day starts the model's loop on the window ending that day, on a real Temporal dev
// server, requested by the ingest group; while that run is open a second closed day is
// ErrBusy, not a second run.
func TestRunOnClosedDayStartsTheLoop(t *testing.T) {
	ctx := context.Background()
	c, sp := devServer(t)
	trigger := starter.RunOnClosedDay(c, sp, "driftline-ingest-retail", "retail_demand")
	require.NoError(t, trigger(ctx, "2026-10-30"))
	desc, err := c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID("demand"), "")
	require.NoError(t, err)
	hist := c.GetWorkflowHistory(ctx, pipeline.WorkflowID("demand"), desc.GetWorkflowExecutionInfo().GetExecution().GetRunId(), false, 0)
	ev, err := hist.Next()
	require.NoError(t, err)
	var in pipeline.RunInput
	require.NoError(t, converter.GetDefaultDataConverter().FromPayload(ev.GetWorkflowExecutionStartedEventAttributes().GetInput().GetPayloads()[0], &in))
	require.Equal(t, "2026-10-03", in.From, "window_days 28 ending on the closed day")
	require.Equal(t, "2026-10-30", in.To)
	require.Equal(t, "ingest:driftline-ingest-retail", in.RequestedBy)
	require.Contains(t, in.Reason, "datasets/retail_demand/dt=2026-10-30 closed")
	err = trigger(ctx, "2026-10-31")
	require.True(t, errors.Is(err, ingest.ErrBusy), "%v", err)
}

// Action monitor: a closed day signals the model's monitor (the signal is in its history with
// the dataset, day and group); with no monitor running the trigger fails naming it.
func TestMonitorOnClosedDaySignalsTheMonitor(t *testing.T) {
	ctx := context.Background()
	c, sp := devServer(t)
	trigger := starter.MonitorOnClosedDay(c, "demand", "driftline-ingest-retail", "retail_demand")
	require.ErrorContains(t, trigger(ctx, "2026-10-30"), "model demand has no monitor running (monitor/demand)")
	runID, err := starter.StartMonitor(ctx, c, pipeline.MonitorInput{Spec: sp})
	require.NoError(t, err)
	require.NoError(t, trigger(ctx, "2026-10-30"))
	hist := c.GetWorkflowHistory(ctx, pipeline.MonitorWorkflowID("demand"), runID, false, 0)
	var got []pipeline.NewPartition
	for hist.HasNext() {
		ev, err := hist.Next()
		require.NoError(t, err)
		if a := ev.GetWorkflowExecutionSignaledEventAttributes(); a != nil {
			require.Equal(t, pipeline.SignalNewPartition, a.GetSignalName())
			var p pipeline.NewPartition
			require.NoError(t, converter.GetDefaultDataConverter().FromPayload(a.GetInput().GetPayloads()[0], &p))
			got = append(got, p)
		}
	}
	require.Len(t, got, 1)
	require.Equal(t, "retail_demand", got[0].Dataset)
	require.Equal(t, "2026-10-30", got[0].Day)
	require.Equal(t, "driftline-ingest-retail", got[0].By)
}

// Starting a model's monitor while one runs is refused naming it (the SDK would otherwise hand
// back the open run as if it had been started).
func TestStartMonitorTwiceIsRefused(t *testing.T) {
	ctx := context.Background()
	c, sp := devServer(t)
	_, err := starter.StartMonitor(ctx, c, pipeline.MonitorInput{Spec: sp})
	require.NoError(t, err)
	_, err = starter.StartMonitor(ctx, c, pipeline.MonitorInput{Spec: sp})
	require.ErrorContains(t, err, "model demand already has a monitor (monitor/demand): stop it first")
	_, err = starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28"})
	require.NoError(t, err)
	_, err = starter.StartRun(ctx, c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28"})
	require.ErrorContains(t, err, "model demand already has a run in progress (ct/demand)")
	require.ErrorIs(t, err, pipeline.ErrRunInProgress, "a kind, not a text to parse")
}

// devServer starts a Temporal dev server with Driftline's search attributes and returns a
// client of it and the demo's spec.
func devServer(t *testing.T) (client.Client, spec.Spec) {
	t.Helper()
	c, err := client.Dial(client.Options{HostPort: stack.StartTemporal(t)})
	require.NoError(t, err)
	t.Cleanup(c.Close)
	require.NoError(t, starter.Setup(context.Background(), c, "default"))
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	return c, sp
}
