package config

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/worker"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/internal/telemetry"
)

func tracedWorkflow(ctx workflow.Context) (string, error) {
	if err := workflow.SetQueryHandler(ctx, "status", func() (string, error) { return "done", nil }); err != nil {
		return "", err
	}
	ctx = workflow.WithActivityOptions(ctx, workflow.ActivityOptions{StartToCloseTimeout: time.Minute})
	var out string
	err := workflow.ExecuteActivity(ctx, "TracedStep", "x").Get(ctx, &out)
	return out, err
}

// With the tracing interceptors on the client, a workflow started by a caller with a span is
// one trace: the start, the workflow, the activity's start and its run, each a child of the
// one before, one span each although the worker keeps no workflow cache (each workflow task
// replays the history from the start); and querying the finished workflow 10 times, which
// replays it each time, adds no spans (the replay trap of temporalio/sdk-go PR 2060).
func TestWorkflowIsOneTraceAndQueriesAddNoSpans(t *testing.T) {
	ctx := context.Background()
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(telemetry.DropReplayed(sr)), sdktrace.WithIDGenerator(telemetry.IDGenerator()))
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() { otel.SetTracerProvider(prevTP); otel.SetTextMapPropagator(prevProp) })

	tis, err := TracingInterceptors()
	require.NoError(t, err)
	c, err := client.Dial(client.Options{HostPort: stack.StartTemporal(t), Interceptors: tis})
	require.NoError(t, err)
	defer c.Close()
	worker.SetStickyWorkflowCacheSize(0) // every query replays the history
	w := worker.New(c, "traced", worker.Options{})
	w.RegisterWorkflowWithOptions(tracedWorkflow, workflow.RegisterOptions{Name: "Traced"})
	w.RegisterActivityWithOptions(func(_ context.Context, s string) (string, error) { return s + "!", nil }, activity.RegisterOptions{Name: "TracedStep"})
	require.NoError(t, w.Start())
	defer w.Stop()

	cctx, root := tp.Tracer("test").Start(ctx, "driftline run")
	run, err := c.ExecuteWorkflow(cctx, client.StartWorkflowOptions{ID: "traced-1", TaskQueue: "traced"}, "Traced")
	require.NoError(t, err)
	var out string
	require.NoError(t, run.Get(ctx, &out))
	root.End()
	require.Equal(t, "x!", out)
	require.Eventually(t, func() bool { return len(byName(sr.Ended())["RunActivity:TracedStep"]) == 1 }, 10*time.Second, 50*time.Millisecond)

	spans := byName(sr.Ended())
	chain := []string{"driftline run", "StartWorkflow:Traced", "RunWorkflow:Traced", "StartActivity:TracedStep", "RunActivity:TracedStep"}
	for i, name := range chain {
		require.Len(t, spans[name], 1, "%s: one span (%v)", name, keys(spans))
		sp := spans[name][0]
		require.Equal(t, root.SpanContext().TraceID(), sp.SpanContext().TraceID(), "%s in the caller's trace", name)
		if i > 0 {
			require.Equal(t, spans[chain[i-1]][0].SpanContext().SpanID(), sp.Parent().SpanID(), "%s is a child of %s", name, chain[i-1])
		}
	}
	before := len(sr.Ended())
	for range 10 {
		v, err := c.QueryWorkflow(ctx, "traced-1", "", "status")
		require.NoError(t, err)
		var st string
		require.NoError(t, v.Get(&st))
		require.Equal(t, "done", st)
	}
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, before, len(sr.Ended()), "10 queries of a finished workflow add no spans: %v", keys(byName(sr.Ended()[before:])))
}

func byName(spans []sdktrace.ReadOnlySpan) map[string][]sdktrace.ReadOnlySpan {
	out := map[string][]sdktrace.ReadOnlySpan{}
	for _, s := range spans {
		out[s.Name()] = append(out[s.Name()], s)
	}
	return out
}

func keys(m map[string][]sdktrace.ReadOnlySpan) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
