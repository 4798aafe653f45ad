package workflows

import (
	"time"

	"go.temporal.io/sdk/temporal"
	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// MaterializeChunksPerRun is how many chunks a materialization takes before it continues as new.
const MaterializeChunksPerRun = 200

// MaterializeWorkflowFunc materializes a feature view into the online store one chunk at a
// time (workflow materialize/<repo>/<view>): each chunk writes, per entity, the row the offline
// join gives as of the chunk's end, reading only the source days that row can depend on (its
// lookback and windows: memory does not grow with the range). The watermark moves after each
// chunk, durably: a crash resumes at the next chunk, and a chunk retried writes the same rows
// (the store keeps the latest per key: idempotent). Running it again from an older watermark
// changes nothing.
func MaterializeWorkflowFunc(ctx workflow.Context, in pipeline.MaterializeInput) (pipeline.MaterializeInput, error) {
	st := in
	if st.Chunk <= 0 {
		st.Chunk = 24 * time.Hour
	}
	if err := workflow.SetQueryHandler(ctx, pipeline.QueryMaterialize, func() (pipeline.MaterializeInput, error) { return st, nil }); err != nil {
		return st, err
	}
	actx := workflow.WithActivityOptions(ctx, workflow.ActivityOptions{
		TaskQueue:           in.TaskQueue,
		StartToCloseTimeout: 30 * time.Minute,
		HeartbeatTimeout:    heartbeat,
		Summary:             "materialize " + in.Repo + "/" + in.View,
		RetryPolicy: &temporal.RetryPolicy{InitialInterval: time.Second, BackoffCoefficient: 2, MaximumInterval: time.Minute,
			MaximumAttempts: 10, NonRetryableErrorTypes: pipeline.NonRetryable},
	})
	for n := 0; st.Watermark.Before(st.Until); n++ {
		if n == MaterializeChunksPerRun {
			return st, workflow.NewContinueAsNewError(ctx, pipeline.MaterializeWorkflow, st)
		}
		end := st.Watermark.Add(st.Chunk)
		if end.After(st.Until) {
			end = st.Until
		}
		var res pipeline.MaterializeChunkResult
		if err := workflow.ExecuteActivity(actx, pipeline.ActMaterializeChunk, pipeline.MaterializeChunkInput{Repo: st.Repo, View: st.View,
			SpecYAML: st.SpecYAML, End: end}).Get(ctx, &res); err != nil {
			return st, err // the watermark stays: starting again resumes here
		}
		st.Watermark, st.Chunks = end, st.Chunks+1
	}
	return st, nil
}
