package workflows

import (
	"fmt"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
)

// The one pass over a large window runs as partitions, each a set of whole files, fanned out
// over the workers: the run starts up to partitionsDirect of them itself; more go to child
// workflows of partitionsPerChild each, which combine their partitions' summaries into one, so
// no history holds more than about 3 events a partition of one batch (10,000 partitions: 20
// children of 1,500 events, a parent of about 60 more).
const (
	partitionsDirect   = 500
	partitionsPerChild = 500
)

// partitions splits the snapshot's files into partitions of perPartition files.
func partitions(step pipeline.StepInput, files, perPartition int) []pipeline.PartitionInput {
	var out []pipeline.PartitionInput
	for from := 0; from < files; from += perPartition {
		out = append(out, pipeline.PartitionInput{StepInput: step, Partition: len(out), FromFile: from, ToFile: min(from+perPartition, files)})
	}
	return out
}

// partitionedPass is the one pass as partitions: each partition's summary, then their merge
// (MergePartitions), whose result is the one pass's.
func (r *run) partitionedPass(step pipeline.StepInput, snap pipeline.SnapshotResult, perPartition int) (pipeline.InspectResult, error) {
	ctx := r.ctx
	parts := partitions(step, snap.Files, perPartition)
	var summaries []pipeline.PartitionResult
	var err error
	if len(parts) <= partitionsDirect {
		summaries, err = inspectPartitions(ctx, parts)
	} else {
		summaries, err = r.partitionChildren(parts)
	}
	if err != nil {
		return pipeline.InspectResult{}, err
	}
	var ins pipeline.InspectResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("merge the summaries of %d partitions (%d files)", len(parts), snap.Files)),
		pipeline.ActMergeParts, pipeline.MergeInput{StepInput: step, Partitions: summaries}).Get(ctx, &ins)
	return ins, err
}

// partitionChildren runs the partitions in child workflows of partitionsPerChild each; each
// child's result is its partitions' combined summary.
func (r *run) partitionChildren(parts []pipeline.PartitionInput) ([]pipeline.PartitionResult, error) {
	ctx := r.ctx
	var futures []workflow.ChildWorkflowFuture
	for b, lo := 0, 0; lo < len(parts); b, lo = b+1, lo+partitionsPerChild {
		batch := parts[lo:min(lo+partitionsPerChild, len(parts))]
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:    fmt.Sprintf("%s/partitions/%d", r.wfID, b),
			StaticSummary: fmt.Sprintf("partitions %d-%d of the one pass", batch[0].Partition, batch[len(batch)-1].Partition),
		})
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, pipeline.PartitionsWorkflow, pipeline.Batch(batch)))
	}
	out := make([]pipeline.PartitionResult, len(futures))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// inspectPartitions runs the partitions' passes side by side (the workers' slots bound how
// many run at once) and returns their summaries in partition order.
func inspectPartitions(ctx workflow.Context, parts []pipeline.PartitionInput) ([]pipeline.PartitionResult, error) {
	futures := make([]workflow.Future, len(parts))
	for i, p := range parts {
		futures[i] = workflow.ExecuteActivity(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("partition %d: files %d-%d", p.Partition, p.FromFile, p.ToFile-1)),
			pipeline.ActInspectPart, p)
	}
	out := make([]pipeline.PartitionResult, len(parts))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// PartitionsWorkflowFunc runs a batch of a run's partitions and combines their summaries
// into one (CombinePartitions), the result the run merges with its other batches'.
func PartitionsWorkflowFunc(ctx workflow.Context, in pipeline.PartitionsInput) (pipeline.PartitionResult, error) {
	parts := in.All()
	if len(parts) == 0 {
		return pipeline.PartitionResult{}, fmt.Errorf("no partitions")
	}
	summaries, err := inspectPartitions(ctx, parts)
	if err != nil {
		return pipeline.PartitionResult{}, err
	}
	first := parts[0]
	var out pipeline.PartitionResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("combine the summaries of partitions %d-%d", first.Partition, parts[len(parts)-1].Partition)),
		pipeline.ActCombineParts, pipeline.MergeInput{StepInput: first.StepInput, Partitions: summaries}).Get(ctx, &out)
	return out, err
}
