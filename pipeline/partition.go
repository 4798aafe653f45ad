package pipeline

// PartitionInput is one partition of a run's one pass over its window: the window's pieces
// [FromFile, ToFile), which are its files unless the spec's dataset.partition_rows cuts large
// files into pieces of row groups (dataset.Snapshot.Pieces).
type PartitionInput struct {
	StepInput
	Partition int `json:"partition"`
	FromFile  int `json:"from_file"`
	ToFile    int `json:"to_file"`
	// RejectsKey names the rows of its split files whose key an earlier piece saw first
	// (CheckPartitionKeys): the partition passes again, rejecting them as one pass does.
	RejectsKey string `json:"rejects_key,omitempty"`
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
	// Rechecked: the summary of the partition's second pass, with the duplicates of keys
	// first seen in other partitions' pieces rejected.
	Rechecked bool `json:"rechecked,omitempty"`
}

// KeysInput is the partitions whose pieces' unique keys CheckPartitionKeys checks across
// pieces (the run's, or a batch's).
type KeysInput struct {
	StepInput
	Ranges []PartitionRange `json:"ranges"`
}

// KeysResult is the partitions that pass again, each with the rows it must reject.
type KeysResult struct {
	Recheck []Recheck `json:"recheck,omitempty"`
	// Duplicates is how many rows repeat a key an earlier piece of their file saw first.
	Duplicates int64 `json:"duplicates"`
}

// MergeInput is the run's partitions to merge, in any order: their summaries merged equal
// one pass over the window.
type MergeInput struct {
	StepInput
	Partitions []PartitionResult `json:"partitions"`
}

// EvaluatePartitionInput is one partition of the holdout's evaluation: the pass's partition
// of the same number and pieces (its holdout days only), scored by the staged candidate and
// the champion.
type EvaluatePartitionInput struct {
	PartitionInput
	ArtifactKey     string `json:"artifact_key"`
	ChampionVersion int    `json:"champion_version,omitempty"`
}

// EvaluateMergeInput is the evaluation's partitions to merge (their summaries, in any order:
// the merge puts them in partition order).
type EvaluateMergeInput struct {
	EvaluateInput
	Partitions []PartitionResult `json:"partitions"`
}

// Recheck is a partition to pass again, rejecting the rows stored at RejectsKey.
type Recheck struct {
	Partition  int    `json:"partition"`
	RejectsKey string `json:"rejects_key"`
	Rows       int64  `json:"rows"`
}

// PartitionsInput is a batch of a run's partitions for one PartitionsWorkflow: the run's
// step once and each partition's files, so a batch of 500 is about 25 KB in the parent's
// history, not 500 copies of the spec (1.5 MB). Partitions (each with its step) is the
// earlier shape, still read.
type PartitionsInput struct {
	Step *StepInput `json:"step,omitempty"`
	// CheckKeys: the batch holds pieces of split files, whose unique key is checked across
	// them before the summaries are combined.
	CheckKeys bool `json:"check_keys,omitempty"`
	// Evaluate: the batch is of the holdout's evaluation (EvaluatePartition, then
	// CombineEvaluations), not of the pass.
	Evaluate   *EvaluateInput   `json:"evaluate,omitempty"`
	Ranges     []PartitionRange `json:"ranges,omitempty"`
	Partitions []PartitionInput `json:"partitions,omitempty"`
}

// PartitionRange is a partition's files [FromFile, ToFile) of the step's snapshot.
type PartitionRange struct {
	Partition int `json:"partition"`
	FromFile  int `json:"from_file"`
	ToFile    int `json:"to_file"`
}

// Batch is a batch of partitions in the compact shape.
func Batch(parts []PartitionInput) PartitionsInput {
	if len(parts) == 0 {
		return PartitionsInput{}
	}
	in := PartitionsInput{Step: &parts[0].StepInput}
	for _, p := range parts {
		in.Ranges = append(in.Ranges, PartitionRange{Partition: p.Partition, FromFile: p.FromFile, ToFile: p.ToFile})
	}
	return in
}

// All is the batch's partitions, each with its step, whichever shape it came in.
func (in PartitionsInput) All() []PartitionInput {
	if in.Step == nil {
		return in.Partitions
	}
	out := make([]PartitionInput, len(in.Ranges))
	for i, r := range in.Ranges {
		out[i] = PartitionInput{StepInput: *in.Step, Partition: r.Partition, FromFile: r.FromFile, ToFile: r.ToFile}
	}
	return out
}
