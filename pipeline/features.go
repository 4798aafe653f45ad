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

// TrainingSetResult is a run's training set built from its window and a feature service
// (spec feature_service): the window's rows with the service's features joined as of each
// row's time, pinned as a snapshot the rest of the run reads instead of the window's.
type TrainingSetResult struct {
	Key  string `json:"key"` // the training set's snapshot manifest
	URI  string `json:"uri"`
	Rows int64  `json:"rows"`
	// Columns are the features added, in the service's order (the model's names for them).
	Columns []string `json:"columns"`
	Repo    string   `json:"repo"`
	Service string   `json:"service"`
	// DefinitionsVersion is the version of the repository's definitions used (lineage).
	DefinitionsVersion int    `json:"definitions_version"`
	DefinitionsURI     string `json:"definitions_uri"`
	// Missing counts, per added column, the rows with no value known as of their time.
	Missing []int64 `json:"missing"`
	// ReportURI is the manifest: sources pinned, definitions, counts.
	ReportURI string `json:"report_uri"`
}
