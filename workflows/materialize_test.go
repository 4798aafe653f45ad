package workflows

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"
	"go.temporal.io/sdk/testsuite"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// Materialization walks its chunks from the watermark in order, each once (a failed attempt
// is retried, the watermark stays until it succeeds), the last chunk ends at Until, and after
// MaterializeChunksPerRun chunks it continues as new with its watermark.
func TestMaterializeWalksChunksFromTheWatermark(t *testing.T) {
	start := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	var ends []time.Time
	failed := false
	chunk := func(ctx context.Context, in pipeline.MaterializeChunkInput) (pipeline.MaterializeChunkResult, error) {
		mu.Lock()
		defer mu.Unlock()
		if len(ends) == 3 && !failed {
			failed = true
			return pipeline.MaterializeChunkResult{}, errors.New("redis: connection refused")
		}
		ends = append(ends, in.End)
		return pipeline.MaterializeChunkResult{Keys: 10}, nil
	}
	run := func(in pipeline.MaterializeInput) (pipeline.MaterializeInput, error) {
		var s testsuite.WorkflowTestSuite
		env := s.NewTestWorkflowEnvironment()
		env.RegisterWorkflowWithOptions(MaterializeWorkflowFunc, workflow.RegisterOptions{Name: pipeline.MaterializeWorkflow})
		env.RegisterActivityWithOptions(chunk, activity.RegisterOptions{Name: pipeline.ActMaterializeChunk})
		env.ExecuteWorkflow(pipeline.MaterializeWorkflow, in)
		require.True(t, env.IsWorkflowCompleted())
		var can *workflow.ContinueAsNewError
		if err := env.GetWorkflowError(); errors.As(err, &can) {
			var next pipeline.MaterializeInput
			require.NoError(t, converter.GetDefaultDataConverter().FromPayloads(can.Input, &next))
			return next, err
		} else if err != nil {
			return pipeline.MaterializeInput{}, err
		}
		var out pipeline.MaterializeInput
		require.NoError(t, env.GetWorkflowResult(&out))
		return out, nil
	}
	in := pipeline.MaterializeInput{Repo: "retail", View: "demand_history", Watermark: start, Until: start.Add(250*time.Hour + 30*time.Minute), Chunk: time.Hour}
	next, err := run(in)
	var can *workflow.ContinueAsNewError
	require.ErrorAs(t, err, &can, "continues as new after %d chunks", MaterializeChunksPerRun)
	require.Equal(t, start.Add(MaterializeChunksPerRun*time.Hour), next.Watermark)
	require.Equal(t, MaterializeChunksPerRun, next.Chunks)
	out, err := run(next)
	require.NoError(t, err)
	require.Equal(t, in.Until, out.Watermark)
	require.Len(t, ends, 251, "250 whole chunks and the last half one, each once")
	for i, e := range ends[:250] {
		require.Equal(t, start.Add(time.Duration(i+1)*time.Hour), e)
	}
	require.Equal(t, in.Until, ends[250])
	require.True(t, failed, "the failed attempt was retried")
}
