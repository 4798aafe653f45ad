package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	historypb "go.temporal.io/api/history/v1"
	"go.temporal.io/sdk/client"
	sdktest "go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/activities"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/benchutil"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// fanOutPartitions is how many partitions (a day file each, 100,000 rows) the fan-out test
// reads, over two worker processes that run two activities each.
const fanOutPartitions = 8

// A worker killed while a window's partitions are fanned out over two worker processes loses
// nothing: the partitions it held are retried on the other worker, and the merged reports
// (validation, drift against production, the candidate's profile and bins) equal, byte for
// byte, those of the same partitions read with no worker killed. Each worker runs at most
// --concurrency activities at once. The two are data workers (--kinds data): the workflows
// and the merges run on a third, orchestration-only worker, the partitions only on the data
// queue's workers, which time how long each waited in its queue.
func TestWorkerKilledDuringFanOut(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-fanout")
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = 200, 500, fanOutPartitions
	_, _, err = dataset.WriteRetail(ctx, st.Store, sp.Dataset.Name, cfg)
	require.NoError(t, err)
	from, to := cfg.Start.Format(dataset.DateLayout), cfg.Start.AddDate(0, 0, fanOutPartitions-1).Format(dataset.DateLayout)
	snap, err := benchutil.Production(ctx, st.Store, sp, from, to)
	require.NoError(t, err)
	require.Equal(t, fanOutPartitions, snap.Files)

	bin := stack.BuildDriftline(t)
	st.SetEnv("GOMAXPROCS=1")
	var workers []*stack.Service
	metrics := make([]string, 2)
	for i := range 2 {
		metrics[i] = fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t))
		workers = append(workers, st.Driftline(fmt.Sprintf("worker-%d", i), bin, "worker", "--metrics", metrics[i], "--kinds", "data",
			"--attestation-keys", "http://127.0.0.1:1/unused", "--checkpoint-every", "200ms", "--concurrency", "data=2"))
	}
	orchestrator := st.Driftline("orchestrator", bin, "worker", "--metrics", fmt.Sprintf("127.0.0.1:%d", stack.FreePort(t)), "--kinds", "orchestration",
		"--attestation-keys", "http://127.0.0.1:1/unused")
	c := st.Dial(ctx, client.Options{})

	calm := fanOut(ctx, t, c, sp, snap, "calm")
	require.NoError(t, calm.Get(ctx, new(pipeline.PartitionResult)))
	calmHistory := history(ctx, t, c, calm)
	for id, n := range mostAtOnce(t, calmHistory) {
		require.LessOrEqual(t, n, 2, "worker %s ran more InspectPartition activities at once than its --concurrency", id)
	}
	requireKindsRanTheirWork(t, calmHistory, orchestrator, workers)
	for _, m := range metrics {
		require.Contains(t, scrape(ctx, t, m), `driftline_pipeline_schedule_to_start_seconds_count{step="InspectPartition",task_queue="driftline-pipeline-data"}`)
	}

	killed := fanOut(ctx, t, c, sp, snap, "killed")
	lost := killOnePartway(ctx, t, c, killed, workers[0])
	require.NoError(t, killed.Get(ctx, new(pipeline.PartitionResult)), "the fan-out finishes without the killed worker")
	survivor, activityID, retried := fmt.Sprintf("%d@", workers[1].Pid()), map[int64]string{}, 0
	for _, ev := range history(ctx, t, c, killed) {
		if s := ev.GetActivityTaskScheduledEventAttributes(); s != nil {
			activityID[ev.GetEventId()] = s.GetActivityId()
		}
		a := ev.GetActivityTaskStartedEventAttributes()
		if a == nil || !lost[activityID[a.GetScheduledEventId()]] {
			continue
		}
		retried++
		require.GreaterOrEqual(t, a.GetAttempt(), int32(2), "a partition the killed worker held is retried")
		require.True(t, strings.HasPrefix(a.GetIdentity(), survivor), "and retried on the other worker: %s", a.GetIdentity())
	}
	require.Equal(t, len(lost), retried, "every partition the killed worker held finished elsewhere")
	requireSameReports(ctx, t, st.Store, sp, snap, "calm", "killed")
}

// requireKindsRanTheirWork requires every partition's pass scheduled on the data queue and
// run by a data worker, and every other activity (the merges) on the orchestration queue and
// run by the orchestrator.
func requireKindsRanTheirWork(t *testing.T, events []*historypb.HistoryEvent, orchestrator *stack.Service, data []*stack.Service) {
	scheduled := map[int64]*historypb.ActivityTaskScheduledEventAttributes{}
	ran := map[string]int{}
	for _, ev := range events {
		if s := ev.GetActivityTaskScheduledEventAttributes(); s != nil {
			scheduled[ev.GetEventId()] = s
		}
		a := ev.GetActivityTaskStartedEventAttributes()
		if a == nil {
			continue
		}
		s := scheduled[a.GetScheduledEventId()]
		name, who := s.GetActivityType().GetName(), a.GetIdentity()
		if name == pipeline.ActInspectPart {
			require.Equal(t, pipeline.DataQueue, s.GetTaskQueue().GetName(), "a partition's pass goes to the data queue")
			require.True(t, strings.HasPrefix(who, fmt.Sprintf("%d@", data[0].Pid())) || strings.HasPrefix(who, fmt.Sprintf("%d@", data[1].Pid())),
				"and runs on a data worker, not %s", who)
		} else {
			require.Equal(t, pipeline.TaskQueue, s.GetTaskQueue().GetName(), "%s stays on the orchestration queue", name)
			require.True(t, strings.HasPrefix(who, fmt.Sprintf("%d@", orchestrator.Pid())), "%s runs on the orchestrator, not %s", name, who)
		}
		ran[name]++
	}
	require.Equal(t, fanOutPartitions, ran[pipeline.ActInspectPart])
	require.Positive(t, ran[pipeline.ActCombineParts], "the batch's merge ran")
}

// scrape is the text of a worker's /metrics.
func scrape(ctx context.Context, t *testing.T, addr string) string {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/metrics", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return string(body)
}

// fanOut starts the Partitions workflow over the snapshot's files, one partition a file, as
// the run runID.
func fanOut(ctx context.Context, t *testing.T, c client.Client, sp spec.Spec, snap pipeline.SnapshotResult, runID string) client.WorkflowRun {
	step := pipeline.StepInput{Model: sp.Model, RunID: runID, Spec: sp, SnapshotKey: snap.Key}
	var parts []pipeline.PartitionInput
	for f := range snap.Files {
		parts = append(parts, pipeline.PartitionInput{StepInput: step, Partition: f, FromFile: f, ToFile: f + 1})
	}
	run, err := c.ExecuteWorkflow(ctx, client.StartWorkflowOptions{ID: "fanout-" + runID, TaskQueue: pipeline.TaskQueue},
		pipeline.PartitionsWorkflow, pipeline.Batch(parts))
	require.NoError(t, err)
	return run
}

// killOnePartway SIGKILLs worker w as soon as it holds a started InspectPartition, and returns
// the activity ids of the partitions it held.
func killOnePartway(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun, w *stack.Service) map[string]bool {
	prefix := fmt.Sprintf("%d@", w.Pid())
	for deadline := time.Now().Add(2 * time.Minute); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		d, err := c.DescribeWorkflowExecution(ctx, run.GetID(), run.GetRunID())
		require.NoError(t, err)
		held := map[string]bool{}
		for _, a := range d.GetPendingActivities() {
			if a.GetActivityType().GetName() == pipeline.ActInspectPart && a.GetState() == enumspb.PENDING_ACTIVITY_STATE_STARTED &&
				strings.HasPrefix(a.GetLastWorkerIdentity(), prefix) {
				held[a.GetActivityId()] = true
			}
		}
		if len(held) > 0 {
			w.Kill()
			t.Logf("killed worker %s holding %d partition(s) of %d still pending", prefix, len(held), len(d.GetPendingActivities()))
			return held
		}
	}
	t.Fatal("worker 0 never held a partition")
	return nil
}

// history is the run's whole history.
func history(ctx context.Context, t *testing.T, c client.Client, run client.WorkflowRun) []*historypb.HistoryEvent {
	var out []*historypb.HistoryEvent
	it := c.GetWorkflowHistory(ctx, run.GetID(), run.GetRunID(), false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
	for it.HasNext() {
		ev, err := it.Next()
		require.NoError(t, err)
		out = append(out, ev)
	}
	return out
}

// mostAtOnce is, per worker identity, the most InspectPartition activities it ran at once.
func mostAtOnce(t *testing.T, events []*historypb.HistoryEvent) map[string]int {
	type span struct {
		who        string
		start, end time.Time
	}
	partition, spans := map[int64]bool{}, map[int64]*span{}
	for _, ev := range events {
		switch {
		case ev.GetActivityTaskScheduledEventAttributes() != nil:
			partition[ev.GetEventId()] = ev.GetActivityTaskScheduledEventAttributes().GetActivityType().GetName() == pipeline.ActInspectPart
		case ev.GetActivityTaskStartedEventAttributes() != nil:
			a := ev.GetActivityTaskStartedEventAttributes()
			if partition[a.GetScheduledEventId()] {
				spans[a.GetScheduledEventId()] = &span{who: a.GetIdentity(), start: ev.GetEventTime().AsTime()}
			}
		case ev.GetActivityTaskCompletedEventAttributes() != nil:
			if sp := spans[ev.GetActivityTaskCompletedEventAttributes().GetScheduledEventId()]; sp != nil {
				sp.end = ev.GetEventTime().AsTime()
			}
		}
	}
	most := map[string]int{}
	for _, a := range spans {
		n := 0
		for _, b := range spans {
			if b.who == a.who && !b.start.After(a.start) && b.end.After(a.start) {
				n++
			}
		}
		most[a.who] = max(most[a.who], n)
	}
	require.Len(t, spans, fanOutPartitions, "every partition ran")
	return most
}

// requireSameReports merges each run's combined summary (MergePartitions, in this process)
// and requires the stored reports to be equal but for the run's id.
func requireSameReports(ctx context.Context, t *testing.T, b objstore.Bucket, sp spec.Spec, snap pipeline.SnapshotResult, runs ...string) {
	var suite sdktest.WorkflowTestSuite
	te := suite.NewTestActivityEnvironment()
	d := &activities.Data{Store: b, Registry: registry.New(b)}
	te.RegisterActivity(d)
	var stored []map[string]string
	for _, run := range runs {
		step := pipeline.StepInput{Model: sp.Model, RunID: run, Spec: sp, SnapshotKey: snap.Key}
		combined := pipeline.PartitionResult{Partition: 0, Files: snap.Files, StateKey: fmt.Sprintf("reports/%s/%s/partitions/combined-00000.gob", sp.Model, run)}
		v, err := te.ExecuteActivity(d.MergePartitions, pipeline.MergeInput{StepInput: step, Partitions: []pipeline.PartitionResult{combined}})
		require.NoError(t, err, run)
		var ins pipeline.InspectResult
		require.NoError(t, v.Get(&ins))
		require.Equal(t, snap.Rows, ins.Validation.RowsRead, run)
		files := map[string]string{}
		for name, key := range map[string]string{"validation": "reports/" + sp.Model + "/" + run + "/validation.json",
			"drift": "reports/" + sp.Model + "/" + run + "/drift.json", "profile": ins.ProfileKey, "bins": ins.BinsKey} {
			raw, _, err := objstore.ReadAll(ctx, b, key)
			require.NoError(t, err, key)
			files[name] = withoutRunID(t, raw, run)
		}
		stored = append(stored, files)
	}
	for name, want := range stored[0] {
		require.Equal(t, want, stored[1][name], "the %s report of the disturbed fan-out equals the undisturbed one", name)
	}
}

// withoutRunID is a stored report with its run's id taken out (a JSON report's "run_id", and
// the run's id in any key it names).
func withoutRunID(t *testing.T, raw []byte, run string) string {
	var v map[string]any
	if json.Unmarshal(raw, &v) == nil {
		delete(v, "run_id")
		var err error
		raw, err = json.Marshal(v)
		require.NoError(t, err)
	}
	return strings.ReplaceAll(string(raw), "/"+run+"/", "/RUN/")
}
