package activities

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// sameEvaluation evaluates the candidate (artifact, against champion) in one activity for
// run one and as the partitions of ranges from holdoutFrom for run parts (the last two
// combined first, as a child's batch would be, the rest in a random order): the reports
// agree bit for bit, and so do the int8 variants, loss estimators and prediction profiles.
func (e *env) sameEvaluation(one, parts pipeline.StepInput, artifact string, champion int, ranges []pipeline.PartitionRange, holdoutFrom int, rng *rand.Rand) {
	t := e.t
	t.Helper()
	want := must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: one, ArtifactKey: artifact, ChampionVersion: champion})
	in := pipeline.EvaluateInput{StepInput: parts, ArtifactKey: artifact, ChampionVersion: champion}
	var sums []pipeline.PartitionResult
	for _, r := range ranges[holdoutFrom:] {
		p := pipeline.PartitionInput{StepInput: parts, Partition: r.Partition, FromFile: r.FromFile, ToFile: r.ToFile}
		sums = append(sums, must[pipeline.PartitionResult](e, tr.EvaluatePartition, pipeline.EvaluatePartitionInput{PartitionInput: p, ArtifactKey: artifact, ChampionVersion: champion}))
	}
	if n := len(sums); n > 2 {
		combined := must[pipeline.PartitionResult](e, tr.CombineEvaluations, pipeline.EvaluateMergeInput{EvaluateInput: in, Partitions: sums[n-2:]})
		sums = append(sums[:n-2], combined)
	}
	rng.Shuffle(len(sums), func(i, j int) { sums[i], sums[j] = sums[j], sums[i] })
	got := must[pipeline.EvaluateResult](e, tr.MergeEvaluations, pipeline.EvaluateMergeInput{EvaluateInput: in, Partitions: sums})
	require.Equal(t, want.HoldoutRows, got.HoldoutRows)
	require.Equal(t, want.CandidateMAE, got.CandidateMAE)
	require.Equal(t, want.ChampionMAE, got.ChampionMAE)
	require.Equal(t, want.Fairness, got.Fairness)
	require.Equal(t, want.Importance, got.Importance)
	require.Equal(t, want.Quantization.MAE, got.Quantization.MAE)
	sameObject(t, e.store, want.Int8Key, got.Int8Key, "the int8 variant")
	sameObject(t, e.store, want.LossEstimatorKey, got.LossEstimatorKey, "the loss estimator")
	sameObject(t, e.store, want.PredictionProfileKey, got.PredictionProfileKey, "the prediction profile")
	require.Equal(t, want.Metrics, got.Metrics, "every metric of the candidate")
}

// readJSON decodes a stored report.
func readJSON(t *testing.T, b objstore.Bucket, key string, v any) {
	t.Helper()
	raw, _, err := objstore.ReadAll(context.Background(), b, key)
	require.NoError(t, err)
	require.NoError(t, json.Unmarshal(raw, v))
}

// sameObject checks two stored objects hold the same bytes.
func sameObject(t *testing.T, b objstore.Bucket, want, got, what string) {
	t.Helper()
	w, _, err := objstore.ReadAll(context.Background(), b, want)
	require.NoError(t, err)
	g, _, err := objstore.ReadAll(context.Background(), b, got)
	require.NoError(t, err)
	require.Equal(t, string(w), string(g), what)
}

// partitionedPass runs the window's partitions of per files (in a random order, part of them
// combined first as a child workflow's batch would be) and merges them for run.
func partitionedPass(e *env, step pipeline.StepInput, files, per int, rng *rand.Rand) (pipeline.InspectResult, error) {
	var parts []pipeline.PartitionResult
	for _, i := range rng.Perm((files + per - 1) / per) {
		in := pipeline.PartitionInput{StepInput: step, Partition: i, FromFile: i * per, ToFile: min(i*per+per, files)}
		parts = append(parts, must[pipeline.PartitionResult](e, d.InspectPartition, in))
	}
	if len(parts) > 2 { // a batch combined into one summary, merged with the rest
		combined := must[pipeline.PartitionResult](e, d.CombinePartitions, pipeline.MergeInput{StepInput: step, Partitions: parts[:2]})
		parts = append([]pipeline.PartitionResult{combined}, parts[2:]...)
	}
	return call[pipeline.InspectResult](e, d.MergePartitions, pipeline.MergeInput{StepInput: step, Partitions: parts})
}

// On MinIO, a window read as partitions (in any order, some combined first) stores what one
// pass stores: the same validation report, the same drift report against production, the
// same bins, the same reference profile, bit for bit.
func TestPartitionedPassEqualsOnePassOnMinIO(t *testing.T) {
	e := newEnv(t)
	e.cycle("run-1", "2026-09-01", "2026-09-28")
	must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "run-1", Version: 1})
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "pinned", Dataset: e.spec.Dataset.Name, From: "2026-10-03", To: "2026-10-30"})
	oneStep := pipeline.StepInput{Model: "demand", RunID: "one", Spec: e.spec, SnapshotKey: snap.Key}
	one := must[pipeline.InspectResult](e, d.Inspect, oneStep)
	require.Equal(t, 1, one.Drift.ReferenceVersion)
	cand := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: oneStep, ProfileKey: one.ProfileKey, BinsKey: one.BinsKey})
	for trial, per := range []int{1, 3, 28} {
		run := fmt.Sprintf("parts-%d", per)
		sp := e.spec
		sp.Dataset.PartitionFiles = per
		step := pipeline.StepInput{Model: "demand", RunID: run, Spec: sp, SnapshotKey: snap.Key}
		rng := rand.New(rand.NewPCG(uint64(trial), 1))
		got, err := partitionedPass(e, step, snap.Files, per, rng)
		require.NoError(t, err, run)
		var ranges []pipeline.PartitionRange
		for i := 0; i*per < snap.Files; i++ {
			ranges = append(ranges, pipeline.PartitionRange{Partition: i, FromFile: i * per, ToFile: min(i*per+per, snap.Files)})
		}
		require.NotNil(t, got.HoldoutFrom, run)
		require.Equal(t, 21/per, *got.HoldoutFrom, "the holdout's first day, the 22nd file, is in partition %d", 21/per)
		e.sameEvaluation(oneStep, step, cand.ArtifactKey, 1, ranges, *got.HoldoutFrom, rng)
		require.Equal(t, one.Validation.RowsRead, got.Validation.RowsRead)
		require.Equal(t, one.Drift.Drifted, got.Drift.Drifted)
		require.Equal(t, one.Drift.DriftedFeatures, got.Drift.DriftedFeatures)

		var wantVal, gotVal dataset.ValidationReport
		readJSON(t, e.store, "reports/demand/one/validation.json", &wantVal)
		readJSON(t, e.store, "reports/demand/"+run+"/validation.json", &gotVal)
		require.Equal(t, wantVal, gotVal, run)

		var wantDrift, gotDrift DriftReport
		readJSON(t, e.store, "reports/demand/one/drift.json", &wantDrift)
		readJSON(t, e.store, "reports/demand/"+run+"/drift.json", &gotDrift)
		require.Equal(t, "one", wantDrift.RunID)
		gotDrift.RunID = "one"
		require.Equal(t, wantDrift, gotDrift, run)

		sameObject(t, e.store, one.BinsKey, got.BinsKey, "the gbdt bins")

		var wantProf, gotProf drift.Profile
		readJSON(t, e.store, one.ProfileKey, &wantProf)
		readJSON(t, e.store, got.ProfileKey, &gotProf)
		require.Equal(t, wantProf, gotProf, run)
		sameObject(t, e.store, one.ProfileKey, got.ProfileKey, "the reference profile")
	}
}

// A file that breaks the contract's shape in one partition is kept aside with its reason,
// the other partitions are read, and the merge fails the run naming the file and column.
func TestAPartitionWithABadFileFailsTheMerge(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	badKey, bad := e.putBadFile()
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "r", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-28"})
	_, err := partitionedPass(e, pipeline.StepInput{Model: "demand", RunID: "r", Spec: e.spec, SnapshotKey: snap.Key}, snap.Files, 4, rand.New(rand.NewPCG(1, 1)))
	var appErr *temporal.ApplicationError
	require.True(t, errors.As(err, &appErr), "%v", err)
	require.Equal(t, pipeline.ErrTypeInvalidData, appErr.Type())
	require.Contains(t, err.Error(), badKey)
	q := "quarantine/retail_demand/r/files/" + strings.ReplaceAll(badKey, "/", "__")
	kept, _, err := objstore.ReadAll(ctx, e.store, q)
	require.NoError(t, err)
	require.Equal(t, bad, kept)
	var rep dataset.ValidationReport
	readJSON(t, e.store, "reports/demand/r/validation.json", &rep)
	require.False(t, rep.Passed)
	broken := slices.IndexFunc(rep.Files, func(f dataset.FileReport) bool { return f.File == badKey })
	require.GreaterOrEqual(t, broken, 0, "the broken file is in the report")
	require.Contains(t, rep.Files[broken].Error, "column price")
}

// A partition's range must be whole files of the window.
func TestAPartitionOutsideTheWindowIsRefused(t *testing.T) {
	e := newEnv(t)
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: "demand", RunID: "r", Dataset: e.spec.Dataset.Name, From: "2026-09-01", To: "2026-09-07"})
	step := pipeline.StepInput{Model: "demand", RunID: "r", Spec: e.spec, SnapshotKey: snap.Key}
	_, err := call[pipeline.PartitionResult](e, d.InspectPartition, pipeline.PartitionInput{StepInput: step, Partition: 3, FromFile: 5, ToFile: 9})
	require.ErrorContains(t, err, "partition 3: files [5, 9) of a window of 7 files")
}

// putRowGroupWindow writes dataset name: a file a day of the demo's rows plus eight rows
// repeating keys of the day's first rows, in row groups of 16 rows, so a file of about 130
// rows cut into pieces of 40 has keys repeated across its pieces.
func (e *env) putRowGroupWindow(name, from, to string) {
	e.t.Helper()
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items = 6, 20
	first, err := time.Parse(dataset.DateLayout, from)
	require.NoError(e.t, err)
	last, err := time.Parse(dataset.DateLayout, to)
	require.NoError(e.t, err)
	for day := first; !day.After(last); day = day.AddDate(0, 0, 1) {
		rows := cfg.RetailDay(int(day.Sub(cfg.Start).Hours() / 24))
		for i := range 8 {
			dup := rows[i*9]
			dup.UnitsSold += float64(i) // another value, the same key
			rows = append(rows, dup)
		}
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[dataset.RetailRow](&buf, parquet.MaxRowsPerRowGroup(16))
		_, err := w.Write(rows)
		require.NoError(e.t, err)
		require.NoError(e.t, w.Close())
		_, err = e.store.Put(context.Background(), dataset.PartitionPrefix(name, day)+"part-0000.parquet", buf.Bytes(), objstore.PutOptions{})
		require.NoError(e.t, err)
	}
}

// quarantined is every quarantined row of a snapshot, file by file, as stored.
func quarantined(t *testing.T, b objstore.Bucket, ds, snapshot string) map[string]string {
	t.Helper()
	ctx := context.Background()
	prefix := fmt.Sprintf("quarantine/%s/%s/rows/", ds, snapshot)
	objs, err := b.List(ctx, prefix)
	require.NoError(t, err)
	out := map[string]string{}
	for _, o := range objs {
		raw, _, err := objstore.ReadAll(ctx, b, o.Key)
		require.NoError(t, err)
		out[strings.TrimPrefix(o.Key, prefix)] = string(raw)
	}
	return out
}

// On MinIO, a window of large files cut into pieces of row groups (dataset.partition_rows),
// read as partitions of one, two or five pieces in any order, with the unique key checked
// across pieces (CheckPartitionKeys) and the partitions holding repeated keys passed again,
// stores what one pass stores: the same rows quarantined with the same reasons (the first row
// of a repeated key named as one pass names it), the same validation and drift reports, the
// same bins and profile.
func TestPiecesOfLargeFilesEqualOnePassOnMinIO(t *testing.T) {
	e := newEnv(t)
	e.cycle("run-1", "2026-09-01", "2026-09-28")
	must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "run-1", Version: 1})
	sp := e.spec
	sp.Dataset.Name, sp.Dataset.PartitionRows = "retail_rg", 40
	sp.Contract.MaxBadRowShare = 0.1 // the repeated keys are 6% of the rows
	e.putRowGroupWindow(sp.Dataset.Name, "2026-10-03", "2026-10-16")
	snapIn := pipeline.SnapshotInput{Model: "demand", Dataset: sp.Dataset.Name, From: "2026-10-03", To: "2026-10-16", PartitionRows: 40}
	snapIn.RunID = "whole"
	whole := must[pipeline.SnapshotResult](e, d.Snapshot, snapIn)
	oneStep := pipeline.StepInput{Model: "demand", RunID: "one", Spec: sp, SnapshotKey: whole.Key}
	one := must[pipeline.InspectResult](e, d.Inspect, oneStep)
	cand := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: oneStep, ProfileKey: one.ProfileKey, BinsKey: one.BinsKey})
	require.Equal(t, 14, whole.Files)
	require.Equal(t, 14*4, whole.Pieces, "a file of 128 rows in row groups of 16: 4 pieces of 40 rows or less")
	require.Len(t, whole.Splits, 14)
	wantQ := quarantined(t, e.store, sp.Dataset.Name, "whole")
	require.Contains(t, fmt.Sprint(wantQ), "duplicate key")

	for trial, per := range []int{1, 2, 5} {
		run := fmt.Sprintf("pieces-%d", per)
		snapIn.RunID = run
		snap := must[pipeline.SnapshotResult](e, d.Snapshot, snapIn)
		psp := sp
		psp.Dataset.PartitionFiles = per
		step := pipeline.StepInput{Model: "demand", RunID: run, Spec: psp, SnapshotKey: snap.Key}
		rng := rand.New(rand.NewPCG(uint64(trial), 2))
		var ranges []pipeline.PartitionRange
		results := map[int]pipeline.PartitionResult{}
		for i := 0; i*per < snap.Pieces; i++ {
			ranges = append(ranges, pipeline.PartitionRange{Partition: i, FromFile: i * per, ToFile: min(i*per+per, snap.Pieces)})
		}
		for _, i := range rng.Perm(len(ranges)) {
			r := ranges[i]
			results[i] = must[pipeline.PartitionResult](e, d.InspectPartition, pipeline.PartitionInput{StepInput: step, Partition: i, FromFile: r.FromFile, ToFile: r.ToFile})
		}
		keys := must[pipeline.KeysResult](e, d.CheckPartitionKeys, pipeline.KeysInput{StepInput: step, Ranges: ranges})
		require.Positive(t, keys.Duplicates, run)
		require.NotEmpty(t, keys.Recheck, run)
		for _, rc := range keys.Recheck {
			r := ranges[rc.Partition]
			res := must[pipeline.PartitionResult](e, d.InspectPartition, pipeline.PartitionInput{StepInput: step, Partition: rc.Partition, FromFile: r.FromFile, ToFile: r.ToFile, RejectsKey: rc.RejectsKey})
			require.True(t, res.Rechecked)
			results[rc.Partition] = res
		}
		var parts []pipeline.PartitionResult
		for _, i := range rng.Perm(len(ranges)) {
			parts = append(parts, results[i])
		}
		got := must[pipeline.InspectResult](e, d.MergePartitions, pipeline.MergeInput{StepInput: step, Partitions: parts})
		require.Equal(t, one.Validation.RowsQuarantined, got.Validation.RowsQuarantined, run)

		require.Equal(t, wantQ, quarantined(t, e.store, sp.Dataset.Name, run), run)
		var wantVal, gotVal dataset.ValidationReport
		readJSON(t, e.store, "reports/demand/one/validation.json", &wantVal)
		readJSON(t, e.store, "reports/demand/"+run+"/validation.json", &gotVal)
		gotVal.Snapshot, gotVal.Quarantine = wantVal.Snapshot, wantVal.Quarantine
		require.Equal(t, wantVal, gotVal, run)

		sameObject(t, e.store, one.BinsKey, got.BinsKey, "the gbdt bins")
		require.Equal(t, one.Drift.DriftedFeatures, got.Drift.DriftedFeatures, run)
		require.NotNil(t, got.HoldoutFrom)
		e.sameEvaluation(oneStep, step, cand.ArtifactKey, 1, ranges, *got.HoldoutFrom, rng)
	}
}
