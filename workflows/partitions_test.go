package workflows

import (
	"context"
	"fmt"
	"sync"

	"github.com/stretchr/testify/mock"

	"github.com/driftline/driftline/pipeline"
)

// partitioned mocks a window of files read as partitions: each partition's summary, then
// their merge (which checks it got every partition once); with combine, the child workflows'
// combinations of their batches.
func (s *ctSuite) partitioned(files int, merged *[]pipeline.PartitionResult, inspected *[]pipeline.PartitionInput) {
	var mu sync.Mutex
	s.env.OnActivity(data.Snapshot, mock.Anything, mock.Anything).Return(pipeline.SnapshotResult{Key: "snapshots/d/r.json", Files: files, Rows: int64(files) * 1000}, nil)
	s.env.OnActivity(data.Inspect, mock.Anything, mock.Anything).Return(pipeline.InspectResult{}, nil).Never()
	s.env.OnActivity(data.InspectPartition, mock.Anything, mock.Anything).Return(func(_ context.Context, p pipeline.PartitionInput) (pipeline.PartitionResult, error) {
		mu.Lock()
		defer mu.Unlock()
		*inspected = append(*inspected, p)
		return pipeline.PartitionResult{Partition: p.Partition, StateKey: fmt.Sprintf("reports/demand/r/partitions/%05d.gob", p.Partition), Files: p.ToFile - p.FromFile}, nil
	})
	s.env.OnActivity(data.CombinePartitions, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.MergeInput) (pipeline.PartitionResult, error) {
		out := pipeline.PartitionResult{Partition: in.Partitions[0].Partition, StateKey: fmt.Sprintf("reports/demand/r/partitions/combined-%05d.gob", in.Partitions[0].Partition)}
		for _, p := range in.Partitions {
			out.Files += p.Files
		}
		return out, nil
	}).Maybe()
	s.env.OnActivity(data.MergePartitions, mock.Anything, mock.Anything).Return(func(_ context.Context, in pipeline.MergeInput) (pipeline.InspectResult, error) {
		*merged = in.Partitions
		return pipeline.InspectResult{Validation: pipeline.ValidateResult{ReportURI: "s3://b/v.json", RowsRead: int64(files) * 1000, RowsAccepted: int64(files) * 1000},
			Drift: pipeline.DriftResult{Why: "no production model yet"}, ProfileKey: "reports/p.json", BinsKey: "reports/b.json"}, nil
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
