package activities

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// units is the window cut as the run's partitioned pass cut it: its pieces and how many a
// partition holds (pieces are the files unless partition_rows split one; see the workflow's
// partitionShape), and whether a file is split.
func units(s dataset.Snapshot, ds spec.Dataset) (pieces []dataset.Piece, per int, split bool) {
	pieces = s.Pieces(ds.PartitionRows)
	if slices.ContainsFunc(pieces, dataset.Piece.Split) {
		return pieces, max(ds.PartitionFiles, 1), true
	}
	return s.Pieces(0), ds.PartitionFiles, false
}

// holdoutPartition is the first partition of the pass holding a holdout day (the days on or
// after cut, the window's last).
func holdoutPartition(s dataset.Snapshot, ds spec.Dataset, cut string) *int {
	pieces, per, _ := units(s, ds)
	if per <= 0 {
		return nil
	}
	for i, p := range pieces {
		if s.Files[p.File].Date >= cut {
			h := i / per
			return &h
		}
	}
	return nil
}

// EvaluatePartition scores the holdout rows of one partition of the pass (its pieces' holdout
// days, with the rows the key check made it reject) with the staged candidate and the
// champion, and stores the evaluation's mergeable summary in the bucket: scorers, fairness
// groups, prediction profile and the partition's first rows (for the importance, the int8
// variant and the loss estimator). MergeEvaluations merges them.
func (t *Training) EvaluatePartition(ctx context.Context, in pipeline.EvaluatePartitionInput) (pipeline.PartitionResult, error) {
	out := pipeline.PartitionResult{Partition: in.Partition, Files: in.ToFile - in.FromFile}
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return out, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return out, err
	}
	all, _, split := units(s, in.Spec.Dataset)
	if in.FromFile < 0 || in.ToFile > len(all) || in.FromFile >= in.ToFile {
		return out, invalid("evaluation partition %d: pieces [%d, %d) of a window cut into %d", in.Partition, in.FromFile, in.ToFile, len(all))
	}
	var pieces []dataset.Piece
	for _, p := range all[in.FromFile:in.ToFile] {
		if s.Files[p.File].Date >= cut {
			pieces = append(pieces, p)
		}
	}
	keys, err := t.passRejects(ctx, in.StepInput, in.Partition, split)
	if err != nil {
		return out, err
	}
	ev, err := t.evalInput(ctx, pipeline.EvaluateInput{StepInput: in.StepInput, ArtifactKey: in.ArtifactKey, ChampionVersion: in.ChampionVersion}, cut)
	if err != nil {
		return out, err
	}
	sum, err := evaluate.Start(ev)
	if err != nil {
		return out, classify("evaluate", err)
	}
	err = sum.Add(func(visit func(*dataset.Batch) error) error {
		return dataset.ScanPiecesAfter(ctx, t.Store, s, in.Spec.Contract, pieces, keys, nil, func(b *dataset.Batch) error {
			heartbeat(ctx)
			return visit(b)
		})
	})
	if err != nil {
		return out, classify("evaluate", err)
	}
	out.StateKey = reportKey(in.Model, in.RunID, fmt.Sprintf("evaluation/parts/%05d.gob", in.Partition))
	out.Bytes, err = t.storeSummary(ctx, out.StateKey, sum)
	return out, err
}

// passRejects is the rows the pass's key check made partition reject (nil: none, or no file
// is split), so the evaluation reads the rows the pass accepted.
func (t *Training) passRejects(ctx context.Context, in pipeline.StepInput, partition int, split bool) (*dataset.KeyCheck, error) {
	if !split || len(in.Spec.Contract.UniqueKey) == 0 {
		return nil, nil
	}
	keys := &dataset.KeyCheck{}
	key := rejectsKey(in, partition)
	if _, err := t.Store.Head(ctx, key); errors.Is(err, objstore.ErrNotFound) {
		return keys, nil // the check found no key of another piece in this partition
	} else if err != nil {
		return nil, classify("read "+key, err)
	}
	return keys, getGob(ctx, t.Store, key, &keys.Rejects)
}

// storeSummary stores an evaluation summary at key and returns its size.
func (t *Training) storeSummary(ctx context.Context, key string, sum *evaluate.Summary) (int, error) {
	raw, err := sum.MarshalBinary()
	if err != nil {
		return 0, err
	}
	if _, err := t.Store.Put(ctx, key, raw, objstore.PutOptions{}); err != nil {
		return 0, classify("store evaluation summary", err)
	}
	return len(raw), nil
}

// mergedEvaluation merges the partitions' evaluation summaries in partition order.
func (t *Training) mergedEvaluation(ctx context.Context, in pipeline.EvaluateMergeInput) (evaluate.Input, *evaluate.Summary, error) {
	if len(in.Partitions) == 0 {
		return evaluate.Input{}, nil, invalid("merge evaluations: no partitions")
	}
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return evaluate.Input{}, nil, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return evaluate.Input{}, nil, err
	}
	ev, err := t.evalInput(ctx, in.EvaluateInput, cut)
	if err != nil {
		return ev, nil, err
	}
	parts := slices.SortedFunc(slices.Values(in.Partitions), func(a, b pipeline.PartitionResult) int { return a.Partition - b.Partition })
	var merged *evaluate.Summary
	for i, p := range parts {
		if i > 0 && p.Partition == parts[i-1].Partition {
			return ev, nil, invalid("merge evaluations: partition %d is given twice", p.Partition)
		}
		raw, _, err := objstore.ReadAll(ctx, t.Store, p.StateKey)
		if err != nil {
			return ev, nil, classify("read "+p.StateKey, err)
		}
		sum, err := evaluate.UnmarshalSummary(ev, raw)
		if err != nil {
			return ev, nil, invalid("partition %d: %v", p.Partition, err)
		}
		if merged == nil {
			merged = sum
		} else if err := merged.Merge(sum); err != nil {
			return ev, nil, invalid("partition %d: %v", p.Partition, err)
		}
		activity.RecordHeartbeat(ctx, p.Partition)
	}
	return ev, merged, nil
}

// CombineEvaluations merges a batch's evaluation summaries into one summary (a child
// workflow's), which MergeEvaluations takes as it takes a partition's. Its partition number is
// the batch's first, so the batches merge in order.
func (t *Training) CombineEvaluations(ctx context.Context, in pipeline.EvaluateMergeInput) (pipeline.PartitionResult, error) {
	_, merged, err := t.mergedEvaluation(ctx, in)
	if err != nil {
		return pipeline.PartitionResult{}, err
	}
	out := pipeline.PartitionResult{Partition: in.Partitions[0].Partition}
	for _, p := range in.Partitions {
		out.Partition, out.Files = min(out.Partition, p.Partition), out.Files+p.Files
	}
	out.StateKey = reportKey(in.Model, in.RunID, fmt.Sprintf("evaluation/parts/combined-%05d.gob", out.Partition))
	out.Bytes, err = t.storeSummary(ctx, out.StateKey, merged)
	return out, err
}

// MergeEvaluations merges the holdout's evaluation summaries (in partition order, whatever
// order they are given in) and finishes the evaluation as Evaluate does: the same report,
// prediction profile, int8 variant and loss estimator as one pass over the holdout (the sums
// of errors within a relative 1e-12).
func (t *Training) MergeEvaluations(ctx context.Context, in pipeline.EvaluateMergeInput) (pipeline.EvaluateResult, error) {
	ev, merged, err := t.mergedEvaluation(ctx, in)
	if err != nil {
		return pipeline.EvaluateResult{}, err
	}
	r, err := evaluate.Finish(ev, merged)
	if err != nil {
		return pipeline.EvaluateResult{}, classify("evaluate", err)
	}
	return t.storeEvaluation(ctx, in.EvaluateInput, ev, r)
}
