package pipeline

// PartitionInput is one partition of a run's one pass over its window: the snapshot's files
// [FromFile, ToFile) (a partition is a set of whole files).
type PartitionInput struct {
	StepInput
	Partition int `json:"partition"`
	FromFile  int `json:"from_file"`
	ToFile    int `json:"to_file"`
}

// PartitionResult is a partition's mergeable summary: the validation counts, the drift window
// and the training preparation of its rows, stored in the bucket at StateKey (its size in
// Bytes); never rows.
type PartitionResult struct {
	Partition int    `json:"partition"`
	StateKey  string `json:"state_key"`
	Files     int    `json:"files"`
	Bytes     int    `json:"bytes"`
	// ResumedAfter names the batch a retry resumed after (empty: from the start).
	ResumedAfter string `json:"resumed_after,omitempty"`
}

// MergeInput is the run's partitions to merge, in any order: their summaries merged equal
// one pass over the window.
type MergeInput struct {
	StepInput
	Partitions []PartitionResult `json:"partitions"`
}

// PartitionsInput is a batch of a run's partitions for one PartitionsWorkflow.
type PartitionsInput struct {
	Partitions []PartitionInput `json:"partitions"`
}
