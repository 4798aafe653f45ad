package activities

import (
	"bytes"
	"context"
	"encoding/gob"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
)

// failingReads fails every read of a dataset file after the first n files: a storage fault
// (or a worker killed) in the middle of a pass.
type failingReads struct {
	objstore.Bucket
	n     int
	mu    sync.Mutex
	files map[string]bool
}

func (f *failingReads) Get(ctx context.Context, key string, opts objstore.GetOptions) (io.ReadCloser, objstore.Object, error) {
	if strings.HasPrefix(key, "datasets/") {
		f.mu.Lock()
		if f.files == nil {
			f.files = map[string]bool{}
		}
		if !f.files[key] && len(f.files) >= f.n {
			f.mu.Unlock()
			return nil, objstore.Object{}, errors.New("connection reset by peer")
		}
		f.files[key] = true
		f.mu.Unlock()
	}
	return f.Bucket.Get(ctx, key, opts)
}

// An Inspect retried after a failure in the middle of its pass restores its last checkpoint
// and reads on from the next row group: the validation, drift and preparation it stores are
// exactly those of a pass that never stopped, it reads fewer bytes, and it leaves no
// checkpoint behind.
func TestInspectResumesFromItsCheckpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// A production model, so the pass computes drift against its reference too.
	_, _, _, rr, _ := e.cycle("base", "2026-09-01", "2026-09-28")
	must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "base", Version: rr.Version})
	reg := registry.New(e.store)
	inspect := func(store objstore.Bucket, run string, details any) (pipeline.InspectResult, error) {
		var ts testsuite.WorkflowTestSuite
		te := ts.NewTestActivityEnvironment()
		dd := &Data{Store: store, Registry: reg, CheckpointEvery: time.Nanosecond}
		te.RegisterActivity(dd)
		if details != nil {
			te.SetHeartbeatDetails(details)
		}
		sr := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: run, Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
		v, err := te.ExecuteActivity(dd.Inspect, pipeline.StepInput{Model: "demand", RunID: run, Spec: e.spec, SnapshotKey: sr.Key})
		var out pipeline.InspectResult
		if err == nil {
			err = v.Get(&out)
		}
		return out, err
	}
	e.store.Reset()
	full, err := inspect(e.store, "full", nil)
	require.NoError(t, err)
	require.Empty(t, full.ResumedAfter)
	fullBytes := datasetBytes(e.store)

	// The first attempt fails after 10 files (of one row group each).
	_, err = inspect(&failingReads{Bucket: e.store, n: 10}, "crash", nil)
	require.ErrorContains(t, err, "connection reset by peer")
	cps, err := e.store.List(ctx, "reports/demand/crash/checkpoints/")
	require.NoError(t, err)
	require.NotEmpty(t, cps, "the failed attempt left its checkpoints")
	last := cps[len(cps)-1]
	raw, _, err := objstore.ReadAll(ctx, e.store, last.Key)
	require.NoError(t, err)
	var st checkpointState
	require.NoError(t, gob.NewDecoder(bytes.NewReader(raw)).Decode(&st))
	require.Equal(t, dataset.Position{FileIndex: 9, RowGroup: 0}, st.After, "the last checkpoint is after the 10th row group")

	// The retry gets the attempt's last heartbeat details (as Temporal gives them).
	e.store.Reset()
	resumed, err := inspect(e.store, "crash", PassProgress{Step: st.Step, After: st.After, Rows: st.Rows, Checkpoint: last.Key})
	require.NoError(t, err)
	require.Equal(t, "file 9 row group 0", resumed.ResumedAfter)
	require.Equal(t, st.Rows, resumed.ResumedRows)
	require.Less(t, datasetBytes(e.store), fullBytes*25/28, "the retry read on from the checkpoint")
	left, err := e.store.List(ctx, "reports/demand/crash/checkpoints/")
	require.NoError(t, err)
	require.Empty(t, left, "a finished pass clears its checkpoints")

	// Same results as the pass that never stopped.
	require.Equal(t, full.Validation.RowsRead, resumed.Validation.RowsRead)
	require.Equal(t, full.Validation.RowsQuarantined, resumed.Validation.RowsQuarantined)
	require.Equal(t, full.Drift.Score, resumed.Drift.Score)
	require.Equal(t, full.Drift.DriftedFeatures, resumed.Drift.DriftedFeatures)
	for _, name := range []string{"validation.json", "drift.json", "candidate/profile.json", "candidate/bins.json"} {
		a := reportJSON(t, e.store, "reports/demand/full/"+name)
		b := reportJSON(t, e.store, "reports/demand/crash/"+name)
		require.Equal(t, a, b, name)
	}

	// A checkpoint that does not fit (another step's, or gone) is not used: the pass starts over.
	again, err := inspect(e.store, "gone", PassProgress{Step: st.Step, After: st.After, Rows: st.Rows, Checkpoint: "reports/demand/gone/checkpoints/missing.gob"})
	require.NoError(t, err)
	require.Empty(t, again.ResumedAfter)
	require.Equal(t, full.Validation.RowsRead, again.Validation.RowsRead)
}

func datasetBytes(c *objstore.Counting) int64 {
	var n int64
	for k, v := range c.BytesRead() {
		if strings.HasPrefix(k, "datasets/") {
			n += v
		}
	}
	return n
}

// reportJSON reads a stored report with the fields that name the run taken out.
func reportJSON(t *testing.T, b objstore.Bucket, key string) map[string]any {
	t.Helper()
	raw, _, err := objstore.ReadAll(context.Background(), b, key)
	require.NoError(t, err)
	var m map[string]any
	require.NoError(t, json.Unmarshal(raw, &m))
	for _, k := range []string{"run_id", "snapshot", "quarantine"} {
		delete(m, k)
	}
	return m
}

// failingPut fails the writes of keys with the suffix: the attempt dies after its work.
type failingPut struct {
	objstore.Bucket
	suffix string
}

func (f *failingPut) Put(ctx context.Context, key string, body []byte, opts objstore.PutOptions) (objstore.Object, error) {
	if strings.HasSuffix(key, f.suffix) {
		return objstore.Object{}, errors.New("connection reset by peer")
	}
	return f.Bucket.Put(ctx, key, body, opts)
}

// A gbdt Train retried after its attempt died boosts on from the attempt's last checkpoint:
// the model is the one an uninterrupted training gives, and the retry reports the rounds it
// did not boost again.
func TestTrainResumesFromItsBoostingCheckpoint(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	reg := registry.New(e.store)
	train := func(store objstore.Bucket, run string, details any) (pipeline.TrainResult, error) {
		snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: run, Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
		step := pipeline.StepInput{Model: "demand", RunID: run, Spec: e.spec, SnapshotKey: snap.Key}
		ins := must[pipeline.InspectResult](e, d.Inspect, step)
		var ts testsuite.WorkflowTestSuite
		te := ts.NewTestActivityEnvironment()
		tt := &Training{Store: store, Registry: reg, CheckpointEvery: time.Nanosecond}
		te.RegisterActivity(tt)
		if details != nil {
			te.SetHeartbeatDetails(details)
		}
		v, err := te.ExecuteActivity(tt.Train, pipeline.TrainInput{StepInput: step, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
		var out pipeline.TrainResult
		if err == nil {
			err = v.Get(&out)
		}
		return out, err
	}
	full, err := train(e.store, "tfull", nil)
	require.NoError(t, err)
	require.Zero(t, full.ResumedRounds)
	require.Greater(t, full.Trees, 10)

	_, err = train(&failingPut{Bucket: e.store, suffix: "candidate/model.json"}, "tcrash", nil)
	require.ErrorContains(t, err, "connection reset by peer")
	cps, err := e.store.List(ctx, "reports/demand/tcrash/checkpoints/train-")
	require.NoError(t, err)
	require.Greater(t, len(cps), 10, "a checkpoint per round (CheckpointEvery 1 ns)")
	mid := cps[len(cps)/2]
	var rounds int
	_, err = fmt.Sscanf(mid.Key[strings.LastIndex(mid.Key, "-")+1:], "%05d.gob", &rounds)
	require.NoError(t, err)

	resumed, err := train(e.store, "tcrash", TrainProgress{Rounds: rounds, Checkpoint: mid.Key})
	require.NoError(t, err)
	require.Equal(t, rounds, resumed.ResumedRounds)
	require.Equal(t, full.Trees, resumed.Trees)
	require.Equal(t, full.TrainLoss, resumed.TrainLoss)
	a, err := loadArtifact(ctx, e.store, full.ArtifactKey)
	require.NoError(t, err)
	b, err := loadArtifact(ctx, e.store, resumed.ArtifactKey)
	require.NoError(t, err)
	ja, _ := json.Marshal(a.GBDT)
	jb, _ := json.Marshal(b.GBDT)
	require.Equal(t, string(ja), string(jb), "the resumed training's trees are the uninterrupted one's")
	left, err := e.store.List(ctx, "reports/demand/tcrash/checkpoints/")
	require.NoError(t, err)
	require.Empty(t, left)
}
