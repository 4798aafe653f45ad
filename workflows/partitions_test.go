package workflows

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/stretchr/testify/mock"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/activity"
	"go.temporal.io/sdk/converter"

	"github.com/driftline/driftline/pipeline"
)

// partitioned mocks a window of files read as partitions: each partition's summary, then
// their merge (which checks it got every partition once); with combine, the child workflows'
// combinations of their batches.
func (s *ctSuite) partitioned(files int, merged *[]pipeline.PartitionResult, inspected *[]pipeline.PartitionInput) {
	s.partitionedSnapshot(pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: files, Rows: int64(files) * 1000}, nil, merged, inspected)
}

// partitionedSnapshot is partitioned over the snapshot snap (whose pieces, if any, are the
// units); a rechecked partition's summary is named -keys; the merge names holdoutFrom as the
// first partition holding holdout days.
func (s *ctSuite) partitionedSnapshot(snap pipeline.SnapshotResult, holdoutFrom *int, merged *[]pipeline.PartitionResult, inspected *[]pipeline.PartitionInput) {
	var mu sync.Mutex
	files := snap.Files
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(snap, nil)
	s.env.OnActivity(data.Inspect, mock.Anything, mock.Anything).Return(pipeline.InspectResult{}, nil).Never()
	s.env.OnActivity(data.InspectPartition, mock.Anything, mock.Anything).Return(func(_ context.Context, p pipeline.PartitionInput) (pipeline.PartitionResult, error) {
		mu.Lock()
		defer mu.Unlock()
		*inspected = append(*inspected, p)
		key := fmt.Sprintf("reports/demand/r/partitions/%05d.gob", p.Partition)
		if p.RejectsKey != "" {
			key = fmt.Sprintf("reports/demand/r/partitions/%05d-keys.gob", p.Partition)
		}
		return pipeline.PartitionResult{Partition: p.Partition, StateKey: key, Files: p.ToFile - p.FromFile, Rechecked: p.RejectsKey != ""}, nil
	})
	s.env.OnActivity(data.CombinePartitions, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.MergeInput) (pipeline.PartitionResult, error) {
		out := pipeline.PartitionResult{Partition: in.Partitions[0].Partition, StateKey: fmt.Sprintf("reports/demand/r/partitions/combined-%05d.gob", in.Partitions[0].Partition)}
		for _, p := range in.Partitions {
			out.Files += p.Files
			if p.Rechecked {
				out.ResumedAfter += fmt.Sprintf("%d,", p.Partition) // which rechecked summaries were combined
			}
		}
		return out, nil
	}).Maybe()
	s.env.OnActivity(data.MergePartitions, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.MergeInput) (pipeline.InspectResult, error) {
		*merged = in.Partitions
		return pipeline.InspectResult{Validation: pipeline.ValidateResult{ReportURI: "s3://b/v.json", RowsRead: int64(files) * 1000, RowsAccepted: int64(files) * 1000},
			Drift: pipeline.DriftResult{Why: "no production model yet"}, ProfileKey: "reports/p.json", BinsKey: "reports/b.json", HoldoutFrom: holdoutFrom}, nil
	}).Once()
	s.trainedAndRegistered(1)
	s.allow(false)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
}

// A window of more files than the spec's partition size is read as partitions of whole files,
// every file in exactly one, fanned out by the run; one activity merges their summaries, and
// the run goes on as after the one pass.
func (s *ctSuite) TestAWindowIsReadAsPartitions() {
	var merged []pipeline.PartitionResult
	var inspected []pipeline.PartitionInput
	s.partitioned(28, &merged, &inspected)
	in := input(false)
	in.Spec.Dataset.PartitionFiles = 3
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Len(inspected, 10, "28 files in partitions of 3")
	covered := make([]int, 28)
	for _, p := range inspected {
		s.Equal("snapshots/d/r.json", p.SnapshotKey)
		for f := p.FromFile; f < p.ToFile; f++ {
			covered[f]++
		}
	}
	for f, n := range covered {
		s.Equal(1, n, "file %d", f)
	}
	s.Len(merged, 10)
}

// A window of more partitions than the run starts itself goes to child workflows of batches,
// each combining its batch's summaries: the merge gets one summary a child, and no history
// holds every partition.
func (s *ctSuite) TestALargeWindowGoesToChildWorkflowsInBatches() {
	var merged []pipeline.PartitionResult
	var inspected []pipeline.PartitionInput
	s.partitioned(1200, &merged, &inspected)
	in := input(false)
	in.Spec.Dataset.PartitionFiles = 1
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Len(inspected, 1200)
	s.Len(merged, 3, "1,200 partitions in child workflows of 500")
	files := 0
	for _, m := range merged {
		files += m.Files
	}
	s.Equal(1200, files)
}

// A window no larger than one partition (and a spec without partitions) is read in one pass.
func (s *ctSuite) TestASmallWindowIsOnePass() {
	s.happyPath(0, false)
	s.trainedAndRegistered(1)
	s.allow(false)
	s.env.OnActivity(reg.Promote, mock.Anything, mock.Anything).Return(pipeline.DeployResult{Production: 1}, nil).Once()
	s.env.OnActivity(data.InspectPartition, mock.Anything, mock.Anything).Return(pipeline.PartitionResult{}, nil).Never()
	in := input(false)
	in.Spec.Dataset.PartitionFiles = 28 // the happy path's snapshot has 28 files
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
}

// Files cut into pieces of row groups: the batches of child workflows are cut so each split
// file's pieces are in one batch, whose unique key is checked across them
// (CheckPartitionKeys); the partitions holding repeated keys pass again with their rejects,
// and their second summaries are the ones combined.
func (s *ctSuite) TestSplitFilesHaveTheirKeysCheckedInOneBatch() {
	var merged []pipeline.PartitionResult
	var inspected []pipeline.PartitionInput
	snap := pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: 700, Rows: 1_100_000, Pieces: 1100,
		Splits: []pipeline.PieceSpan{{From: 480, To: 530}, {From: 990, To: 1100}}}
	s.partitionedSnapshot(snap, nil, &merged, &inspected)
	var checked []pipeline.KeysInput
	s.env.OnActivity(data.CheckPartitionKeys, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.KeysInput) (pipeline.KeysResult, error) {
		checked = append(checked, in)
		p := in.Ranges[len(in.Ranges)-1].Partition
		return pipeline.KeysResult{Duplicates: 3, Recheck: []pipeline.Recheck{{Partition: p, RejectsKey: fmt.Sprintf("rejects/%d", p), Rows: 3}}}, nil
	}).Times(2)
	in := input(false)
	in.Spec.Dataset.PartitionRows = 1000 // partition_files unset: a piece a partition
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	s.Require().Len(checked, 2, "the batches holding split files")
	slices.SortFunc(checked, func(a, b pipeline.KeysInput) int { return a.Ranges[0].FromFile - b.Ranges[0].FromFile })
	s.Equal(480, checked[0].Ranges[0].FromFile, "the first batch ends before the split file it would cut")
	s.Equal(980, checked[0].Ranges[len(checked[0].Ranges)-1].ToFile)
	s.Equal(980, checked[1].Ranges[0].FromFile)
	s.Equal(1100, checked[1].Ranges[len(checked[1].Ranges)-1].ToFile)
	s.Len(inspected, 1102, "every piece once, two partitions again")
	var again []int
	for _, p := range inspected {
		if p.RejectsKey != "" {
			s.Equal(fmt.Sprintf("rejects/%d", p.Partition), p.RejectsKey)
			again = append(again, p.Partition)
		}
	}
	slices.Sort(again)
	s.Equal([]int{979, 1099}, again)
	s.Require().Len(merged, 3)
	s.Equal([]string{"", "979,", "1099,"}, []string{merged[0].ResumedAfter, merged[1].ResumedAfter, merged[2].ResumedAfter}, "the second summaries are combined")
}

// Split files' partition spans: one a file, joined when two files share a partition; a
// batch never cuts one.
func TestBatchesDoNotCutASplitFile(t *testing.T) {
	spans := splitSpans([]pipeline.PieceSpan{{From: 0, To: 3}, {From: 3, To: 6}, {From: 9, To: 10}}, 2, true)
	require.Equal(t, []pipeline.PieceSpan{{From: 0, To: 3}, {From: 4, To: 5}}, spans)
	require.Nil(t, splitSpans([]pipeline.PieceSpan{{From: 0, To: 3}}, 2, false))
	for _, c := range []struct {
		lo, n int
		spans []pipeline.PieceSpan
		hi    int
		keys  bool
	}{
		{0, 1200, nil, 500, false},
		{0, 1200, []pipeline.PieceSpan{{From: 480, To: 530}}, 480, false},
		{480, 1200, []pipeline.PieceSpan{{From: 480, To: 530}}, 980, true},
		{0, 1200, []pipeline.PieceSpan{{From: 0, To: 700}}, 700, true},
		{700, 1200, []pipeline.PieceSpan{{From: 0, To: 700}, {From: 1190, To: 1200}}, 1200, true},
		{700, 2000, []pipeline.PieceSpan{{From: 0, To: 700}, {From: 1190, To: 1300}}, 1190, false},
	} {
		hi, keys := batchEnd(c.lo, c.n, c.spans)
		require.Equal(t, c.hi, hi, "%+v", c)
		require.Equal(t, c.keys, keys, "%+v", c)
	}
}

// A small window with a split file: the run checks the keys across all its partitions and
// passes again the one holding repeated keys; the merge gets its second summary.
func (s *ctSuite) TestASplitFileInASmallWindowIsRechecked() {
	var merged []pipeline.PartitionResult
	var inspected []pipeline.PartitionInput
	snap := pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: 5, Rows: 9000, Pieces: 12, Splits: []pipeline.PieceSpan{{From: 2, To: 10}}}
	s.partitionedSnapshot(snap, nil, &merged, &inspected)
	s.env.OnActivity(data.CheckPartitionKeys, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.KeysInput) (pipeline.KeysResult, error) {
		s.Len(in.Ranges, 4, "12 pieces in partitions of 3")
		return pipeline.KeysResult{Duplicates: 1, Recheck: []pipeline.Recheck{{Partition: 2, RejectsKey: "rejects/2", Rows: 1}}}, nil
	}).Once()
	in := input(false)
	in.Spec.Dataset.PartitionFiles, in.Spec.Dataset.PartitionRows = 3, 500
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	s.Len(inspected, 5)
	s.Equal("rejects/2", inspected[4].RejectsKey)
	s.Require().Len(merged, 4)
	s.True(merged[2].Rechecked)
	s.Equal("reports/demand/r/partitions/00002-keys.gob", merged[2].StateKey)
}

// evaluated mocks the holdout's evaluation as partitions: each partition's summary, the
// children's combinations, then the merge.
func (s *ctSuite) evaluated(evaluated *[]pipeline.EvaluatePartitionInput, mergedEval *[]pipeline.PartitionResult) {
	var mu sync.Mutex
	s.env.OnActivity(train.EvaluatePartition, mock.Anything, mock.Anything).Return(func(_ context.Context, p pipeline.EvaluatePartitionInput) (pipeline.PartitionResult, error) {
		mu.Lock()
		defer mu.Unlock()
		*evaluated = append(*evaluated, p)
		return pipeline.PartitionResult{Partition: p.Partition, StateKey: fmt.Sprintf("reports/demand/r/evaluation/parts/%05d.gob", p.Partition), Files: p.ToFile - p.FromFile}, nil
	})
	s.env.OnActivity(train.CombineEvaluations, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.EvaluateMergeInput) (pipeline.PartitionResult, error) {
		out := pipeline.PartitionResult{Partition: in.Partitions[0].Partition}
		for _, p := range in.Partitions {
			out.Files += p.Files
		}
		s.Equal("a", in.ArtifactKey, "a child's evaluation has the run's candidate")
		s.NotEmpty(in.SnapshotKey)
		return out, nil
	}).Maybe()
	s.env.OnActivity(train.MergeEvaluations, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.EvaluateMergeInput) (pipeline.EvaluateResult, error) {
		*mergedEval = in.Partitions
		return pipeline.EvaluateResult{CandidateMAE: 2.1, HoldoutRows: 7000, ReportURI: "s3://b/evaluation.json"}, nil
	}).Once()
}

// A window read as partitions is evaluated as partitions: the pass's partitions from the
// first holding holdout days (the merge says which), each one activity, then one merge whose
// result is the evaluation's.
func (s *ctSuite) TestTheHoldoutIsEvaluatedAsPartitions() { s.evaluatedAsPartitions(28, 3, 0) }

// More than 500 evaluation partitions go to child workflows of 500, each combining its batch.
func (s *ctSuite) TestALargeHoldoutIsEvaluatedInChildWorkflows() {
	s.evaluatedAsPartitions(1400, 200, 3)
}

func (s *ctSuite) evaluatedAsPartitions(files, holdoutFrom, children int) {
	var merged []pipeline.PartitionResult
	var inspected []pipeline.PartitionInput
	s.partitionedSnapshot(pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: files, Rows: int64(files) * 1000}, &holdoutFrom, &merged, &inspected)
	var evaluated []pipeline.EvaluatePartitionInput
	var mergedEval []pipeline.PartitionResult
	s.evaluated(&evaluated, &mergedEval)
	started := map[string]int{}
	s.env.SetOnActivityStartedListener(func(info *activity.Info, _ context.Context, _ converter.EncodedValues) {
		started[info.ActivityType.Name]++
	})
	in := input(false)
	in.Spec.Dataset.PartitionFiles = 1
	s.env.ExecuteWorkflow(ContinuousTrainingWorkflow, in)
	s.NoError(s.env.GetWorkflowError())
	res, _ := s.result()
	s.Equal(pipeline.OutcomePromoted, res.Outcome)
	s.Zero(started[pipeline.ActEvaluate], "no evaluation in one activity")
	s.Equal(1, started[pipeline.ActMergeEvals])
	s.Len(evaluated, files-holdoutFrom, "the partitions from the first holding holdout days")
	for _, e := range evaluated {
		s.GreaterOrEqual(e.Partition, holdoutFrom)
		s.Equal(e.Partition, e.FromFile)
		s.Equal("a", e.ArtifactKey)
	}
	if children == 0 {
		s.Len(mergedEval, files-holdoutFrom)
	} else {
		s.Len(mergedEval, children, "one combined summary a child")
	}
}
