package workflows

import (
	"fmt"
	"slices"

	"go.temporal.io/sdk/workflow"

	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
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

// partitionShape is how many of the window's units (files, or pieces when the spec's
// partition_rows cut large files) a partition holds, and how many units there are.
func partitionShape(ds spec.Dataset, snap pipeline.SnapshotResult) (per, units int) {
	if snap.Pieces > 0 {
		return max(ds.PartitionFiles, 1), snap.Pieces
	}
	return ds.PartitionFiles, snap.Files
}

// partitions splits the window's units into partitions of perPartition.
func partitions(step pipeline.StepInput, units, perPartition int) []pipeline.PartitionInput {
	var out []pipeline.PartitionInput
	for from := 0; from < units; from += perPartition {
		out = append(out, pipeline.PartitionInput{StepInput: step, Partition: len(out), FromFile: from, ToFile: min(from+perPartition, units)})
	}
	return out
}

// partitionedPass is the one pass as partitions: each partition's summary (the unique key
// checked across the pieces of split files), then their merge (MergePartitions), whose result
// is the one pass's.
func (r *run) partitionedPass(step pipeline.StepInput, snap pipeline.SnapshotResult, perPartition int) (pipeline.InspectResult, error) {
	ctx := r.ctx
	_, units := partitionShape(step.Spec.Dataset, snap)
	parts := partitions(step, units, perPartition)
	keys := len(snap.Splits) > 0 && len(step.Spec.Contract.UniqueKey) > 0
	var summaries []pipeline.PartitionResult
	var err error
	if len(parts) <= partitionsDirect {
		summaries, err = inspectPartitions(ctx, parts)
		if err == nil && keys {
			summaries, err = recheckKeys(ctx, parts, summaries)
		}
	} else {
		summaries, err = r.partitionChildren(parts, splitSpans(snap.Splits, perPartition, keys))
	}
	if err != nil {
		return pipeline.InspectResult{}, err
	}
	var ins pipeline.InspectResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("merge the summaries of %d partitions (%d files)", len(parts), snap.Files)),
		pipeline.ActMergeParts, pipeline.MergeInput{StepInput: step, Partitions: summaries}).Get(ctx, &ins)
	if h := ins.HoldoutFrom; err == nil && h != nil && *h >= 0 && *h < len(parts) {
		r.evalParts = parts[*h:]
	}
	return ins, err
}

// partitionedEvaluation is the holdout's evaluation as partitions (the pass's partitions
// holding holdout days): each partition's summary, straight from the run or through child
// workflows in batches, then their merge (MergeEvaluations), whose result is Evaluate's.
func (r *run) partitionedEvaluation(in pipeline.EvaluateInput) (pipeline.EvaluateResult, error) {
	ctx, parts := r.ctx, r.evalParts
	var summaries []pipeline.PartitionResult
	var err error
	if len(parts) <= partitionsDirect {
		summaries, err = evaluatePartitions(ctx, in, parts)
	} else {
		summaries, err = r.evaluationChildren(in, parts)
	}
	if err != nil {
		return pipeline.EvaluateResult{}, err
	}
	var ev pipeline.EvaluateResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageEvaluate, fmt.Sprintf("merge the holdout MAE of candidate and production over %d partitions", len(parts))),
		pipeline.ActMergeEvals, pipeline.EvaluateMergeInput{EvaluateInput: in, Partitions: summaries}).Get(ctx, &ev)
	return ev, err
}

// evaluationChildren runs the evaluation's partitions in child workflows of
// partitionsPerChild each; each child's result is its batch's combined summary.
func (r *run) evaluationChildren(in pipeline.EvaluateInput, parts []pipeline.PartitionInput) ([]pipeline.PartitionResult, error) {
	ctx := r.ctx
	var futures []workflow.ChildWorkflowFuture
	for lo := 0; lo < len(parts); lo += partitionsPerChild {
		batch := parts[lo:min(lo+partitionsPerChild, len(parts))]
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:    fmt.Sprintf("%s/evaluation/%d", r.wfID, lo/partitionsPerChild),
			StaticSummary: fmt.Sprintf("partitions %d-%d of the holdout's evaluation", batch[0].Partition, batch[len(batch)-1].Partition),
		})
		b := pipeline.Batch(batch)
		b.Evaluate = &pipeline.EvaluateInput{ArtifactKey: in.ArtifactKey, ChampionVersion: in.ChampionVersion}
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, pipeline.PartitionsWorkflow, b))
	}
	out := make([]pipeline.PartitionResult, len(futures))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// evaluatePartitions runs the evaluation's partitions side by side and returns their
// summaries in partition order.
func evaluatePartitions(ctx workflow.Context, in pipeline.EvaluateInput, parts []pipeline.PartitionInput) ([]pipeline.PartitionResult, error) {
	futures := make([]workflow.Future, len(parts))
	for i, p := range parts {
		futures[i] = execute(withStep(ctx, pipeline.StageEvaluate, fmt.Sprintf("holdout of partition %d: candidate and production", p.Partition)),
			pipeline.ActEvalPart, pipeline.EvaluatePartitionInput{PartitionInput: p, ArtifactKey: in.ArtifactKey, ChampionVersion: in.ChampionVersion})
	}
	out := make([]pipeline.PartitionResult, len(parts))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// splitSpans is the partitions [From, To) holding split files' pieces, when their unique key
// is checked (nil otherwise): one span a file, joined with the next when they share a
// partition, so the spans are apart and in order.
func splitSpans(splits []pipeline.PieceSpan, perPartition int, keys bool) []pipeline.PieceSpan {
	if !keys {
		return nil
	}
	var out []pipeline.PieceSpan
	for _, s := range splits {
		ps := pipeline.PieceSpan{From: s.From / perPartition, To: (s.To-1)/perPartition + 1}
		if n := len(out); n > 0 && ps.From < out[n-1].To {
			out[n-1].To = max(out[n-1].To, ps.To)
			continue
		}
		out = append(out, ps)
	}
	return out
}

// batchEnd is where the batch starting at partition lo ends: after partitionsPerChild
// partitions, moved so no split file's partitions (spans) are cut between two batches (a
// file's pieces have their unique key checked in one batch).
func batchEnd(lo, n int, spans []pipeline.PieceSpan) (hi int, keys bool) {
	hi = min(lo+partitionsPerChild, n)
	for _, s := range spans {
		switch {
		case s.From < hi && s.To > hi && s.From > lo:
			hi = s.From
		case s.From < hi && s.To > hi:
			hi = s.To
		}
	}
	for _, s := range spans {
		keys = keys || s.From < hi && s.To > lo
	}
	return hi, keys
}

// partitionChildren runs the partitions in child workflows of about partitionsPerChild each;
// each child's result is its partitions' combined summary.
func (r *run) partitionChildren(parts []pipeline.PartitionInput, spans []pipeline.PieceSpan) ([]pipeline.PartitionResult, error) {
	ctx := r.ctx
	var futures []workflow.ChildWorkflowFuture
	for b, lo := 0, 0; lo < len(parts); b++ {
		hi, keys := batchEnd(lo, len(parts), spans)
		batch := parts[lo:hi]
		cctx := workflow.WithChildOptions(ctx, workflow.ChildWorkflowOptions{
			WorkflowID:    fmt.Sprintf("%s/partitions/%d", r.wfID, b),
			StaticSummary: fmt.Sprintf("partitions %d-%d of the one pass", batch[0].Partition, batch[len(batch)-1].Partition),
		})
		in := pipeline.Batch(batch)
		in.CheckKeys = keys
		futures = append(futures, workflow.ExecuteChildWorkflow(cctx, pipeline.PartitionsWorkflow, in))
		lo = hi
	}
	out := make([]pipeline.PartitionResult, len(futures))
	for i, f := range futures {
		if err := f.Get(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// recheckKeys checks the unique key across the pieces of the partitions' split files
// (CheckPartitionKeys) and passes again the partitions holding rows whose key an earlier
// piece saw first; their second summaries replace the first.
func recheckKeys(ctx workflow.Context, parts []pipeline.PartitionInput, summaries []pipeline.PartitionResult) ([]pipeline.PartitionResult, error) {
	var res pipeline.KeysResult
	in := pipeline.KeysInput{StepInput: parts[0].StepInput, Ranges: pipeline.Batch(parts).Ranges}
	if err := execute(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("check the unique key across the pieces of partitions %d-%d", parts[0].Partition, parts[len(parts)-1].Partition)),
		pipeline.ActCheckKeys, in).Get(ctx, &res); err != nil {
		return nil, err
	}
	futures := make([]workflow.Future, len(res.Recheck))
	at := make([]int, len(res.Recheck))
	for i, rc := range res.Recheck {
		at[i] = rc.Partition - parts[0].Partition
		if at[i] < 0 || at[i] >= len(parts) {
			return nil, fmt.Errorf("the key check named partition %d, not one of %d-%d", rc.Partition, parts[0].Partition, parts[len(parts)-1].Partition)
		}
		p := parts[at[i]]
		p.RejectsKey = rc.RejectsKey
		futures[i] = execute(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("partition %d again: %d rows repeat a key an earlier piece saw first", rc.Partition, rc.Rows)),
			pipeline.ActInspectPart, p)
	}
	out := slices.Clone(summaries)
	for i, f := range futures {
		if err := f.Get(ctx, &out[at[i]]); err != nil {
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
		futures[i] = execute(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("partition %d: files %d-%d", p.Partition, p.FromFile, p.ToFile-1)),
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
// into one (CombinePartitions), the result the run merges with its other batches'; with
// in.Evaluate, the batch is of the holdout's evaluation (EvaluatePartition,
// CombineEvaluations).
func PartitionsWorkflowFunc(ctx workflow.Context, in pipeline.PartitionsInput) (pipeline.PartitionResult, error) {
	parts := in.All()
	if len(parts) == 0 {
		return pipeline.PartitionResult{}, fmt.Errorf("no partitions")
	}
	if in.Evaluate != nil {
		return evaluationBatch(ctx, *in.Evaluate, parts)
	}
	summaries, err := inspectPartitions(ctx, parts)
	if err == nil && in.CheckKeys {
		summaries, err = recheckKeys(ctx, parts, summaries)
	}
	if err != nil {
		return pipeline.PartitionResult{}, err
	}
	first := parts[0]
	var out pipeline.PartitionResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageValidate, fmt.Sprintf("combine the summaries of partitions %d-%d", first.Partition, parts[len(parts)-1].Partition)),
		pipeline.ActCombineParts, pipeline.MergeInput{StepInput: first.StepInput, Partitions: summaries}).Get(ctx, &out)
	return out, err
}

// evaluationBatch is a child's batch of the evaluation's partitions, combined into one summary
// (CombineEvaluations).
func evaluationBatch(ctx workflow.Context, ev pipeline.EvaluateInput, parts []pipeline.PartitionInput) (pipeline.PartitionResult, error) {
	ev.StepInput = parts[0].StepInput
	summaries, err := evaluatePartitions(ctx, ev, parts)
	if err != nil {
		return pipeline.PartitionResult{}, err
	}
	var out pipeline.PartitionResult
	err = workflow.ExecuteActivity(withStep(ctx, pipeline.StageEvaluate, fmt.Sprintf("combine the evaluations of partitions %d-%d", parts[0].Partition, parts[len(parts)-1].Partition)),
		pipeline.ActCombineEvals, pipeline.EvaluateMergeInput{EvaluateInput: ev, Partitions: summaries}).Get(ctx, &out)
	return out, err
}
