package pipeline

import "time"

// Materialization of a feature view into the online store (docs/features.md).
const (
	MaterializeWorkflow = "Materialize"
	ActMaterializeChunk = "MaterializeChunk"
	// QueryMaterialize returns the workflow's MaterializeInput (its watermark).
	QueryMaterialize = "materialize"
)

// MaterializeWorkflowID is the id of a view's materialization.
func MaterializeWorkflowID(repo, view string) string { return "materialize/" + repo + "/" + view }

// MaterializeInput materializes a view chunk by chunk from its watermark up to Until.
type MaterializeInput struct {
	Repo, View string
	// Dataset is the view's source; Spec the contract it is read with (a model spec using it).
	SpecYAML string
	// Watermark: chunks ending at or before it are done; Until: the last chunk's end.
	Watermark, Until time.Time
	Chunk            time.Duration // 24h by default
	// TaskQueue runs the chunks where the online store is (empty: the pipeline's).
	TaskQueue string `json:",omitempty"`
	Chunks    int    // done so far, across continue-as-new
}

// MaterializeChunkInput materializes the view as of End.
type MaterializeChunkInput struct {
	Repo, View, SpecYAML string
	End                  time.Time
}

// MaterializeChunkResult says what a chunk wrote.
type MaterializeChunkResult struct {
	Keys, SourceRows   int
	DefinitionsVersion int
}
