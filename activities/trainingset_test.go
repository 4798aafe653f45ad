package activities

import (
	"context"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/duckdbtest"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// A run of a spec naming a feature service, on MinIO: the training set is built from the
// window with the applied definitions, a retry returns the same set even after new
// definitions were applied (they are pinned on the first attempt), and the rest of the run
// validates, trains and evaluates on it with the service's features as model features.
func TestFeatureServiceRunOnMinIO(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	raw, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	_, _, err = features.Apply(ctx, e.store, "retail", raw, "", "dave", "test", "group:retail")
	require.NoError(t, err)
	sp := e.spec
	sp.Model = "demand_fs"
	sp.FeatureService = &spec.FeatureService{Repo: "retail", Name: "demand_forecast"}
	require.NoError(t, sp.Validate())

	run := func(id string) (pipeline.TrainingSetResult, pipeline.EvaluateResult, pipeline.EvaluateResult) {
		snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: sp.Model, RunID: id, Dataset: sp.Dataset.Name, From: "2026-10-03", To: "2026-10-30"})
		step := pipeline.StepInput{Model: sp.Model, RunID: id, Spec: sp, SnapshotKey: snap.Key}
		ts := must[pipeline.TrainingSetResult](e, d.TrainingSet, step)
		// Evaluate the same window with and without the service's features.
		eval := func(step pipeline.StepInput) pipeline.EvaluateResult {
			ins := must[pipeline.InspectResult](e, d.Inspect, step)
			require.Equal(t, ins.Validation.RowsRead, ins.Validation.RowsAccepted+ins.Validation.RowsQuarantined)
			require.Positive(t, ins.Validation.RowsQuarantined, "the rows the contract rejects are still quarantined")
			trr := must[pipeline.TrainResult](e, tr.Train, pipeline.TrainInput{StepInput: step, ProfileKey: ins.ProfileKey, BinsKey: ins.BinsKey})
			return must[pipeline.EvaluateResult](e, tr.Evaluate, pipeline.EvaluateInput{StepInput: step, ArtifactKey: trr.ArtifactKey})
		}
		with := step
		with.Spec, with.SnapshotKey = sp.WithFeatures(ts.Columns), ts.Key
		return ts, eval(with), eval(step)
	}
	ts, with, without := run("fs-1")
	require.Equal(t, []string{"units_yesterday", "units_7d", "units_28d_mean", "price_rel_28d"}, ts.Columns)
	require.Equal(t, 1, ts.DefinitionsVersion)
	require.Positive(t, ts.Rows)
	for i, m := range ts.Missing {
		require.Less(t, m, ts.Rows/10, "%s: 30 days of history before the window", ts.Columns[i])
	}
	require.Contains(t, with.Importance, "units_28d_mean")
	// DuckDB reads the training set: the contract's columns in their types, each feature a
	// nullable DOUBLE, a value unknown as of the row's time a NULL (docs/data.md).
	dir := duckdbtest.Fetch(t, e.store, fmt.Sprintf("trainingsets/%s/fs-1/", sp.Model), t.TempDir())
	// Rows the contract rejects are carried as they are (the validate step quarantines them
	// again) with their features NULL; among the others a NULL is a value unknown as of the row.
	q := duckdbtest.Query(t, fmt.Sprintf(`SELECT count(*) AS n,
		count(*) FILTER (WHERE NOT isnan(temperature) AND units_yesterday IS NULL) AS m0, count(*) FILTER (WHERE NOT isnan(temperature) AND units_7d IS NULL) AS m1,
		count(*) FILTER (WHERE NOT isnan(temperature) AND units_28d_mean IS NULL) AS m2, count(*) FILTER (WHERE NOT isnan(temperature) AND price_rel_28d IS NULL) AS m3,
		count(*) FILTER (WHERE isnan(temperature) AND units_7d IS NOT NULL) AS rejected_with_features
		FROM read_parquet('%s/**/*.parquet')`, dir))
	require.Equal(t, fmt.Sprint(ts.Rows), q.Get(0, "n"), "a BIGINT comes as a string in DuckDB's JSON")
	for i := range ts.Columns {
		require.Equal(t, fmt.Sprint(ts.Missing[i]), q.Get(0, fmt.Sprintf("m%d", i)), "%s: the missing values are NULLs", ts.Columns[i])
	}
	require.Equal(t, "0", q.Get(0, "rejected_with_features"))
	cols := duckdbtest.Query(t, fmt.Sprintf(`SELECT * FROM read_parquet('%s/**/*.parquet') LIMIT 1`, dir)).Types()
	for col, want := range map[string]string{"units_yesterday": "DOUBLE", "units_7d": "DOUBLE", "price": "DOUBLE", "store_id": "BIGINT", "region": "VARCHAR", "promo": "BIGINT"} {
		require.Equal(t, want, cols[col], "column %s: %v", col, cols)
	}
	t.Logf("holdout MAE with the service's features %.3f, raw columns only %.3f", with.CandidateMAE, without.CandidateMAE)
	// The generator's demand has no memory beyond item_popularity, so history adds little here;
	// the model must still meet the spec's bar.
	require.Less(t, with.CandidateMAE, sp.Evaluation.MaxMAE)
	require.Less(t, with.CandidateMAE, 1.2*without.CandidateMAE)

	// A retry after new definitions were applied builds with the ones pinned first.
	require.NoError(t, e.store.Delete(ctx, reportKey(sp.Model, "fs-1", "training_set.json")))
	next := strings.Replace(string(raw), "online_expiry: 48h", "online_expiry: 24h", 1)
	_, _, etag, _, err := features.Current(ctx, e.store, "retail")
	require.NoError(t, err)
	a2, _, err := features.Apply(ctx, e.store, "retail", []byte(next), etag, "dave", "test", "group:retail")
	require.NoError(t, err)
	require.Equal(t, 2, a2.Version)
	snap := must[pipeline.SnapshotResult](e, d.Snapshot, pipeline.SnapshotInput{Model: sp.Model, RunID: "fs-1", Dataset: sp.Dataset.Name, From: "2026-10-03", To: "2026-10-30"})
	again := must[pipeline.TrainingSetResult](e, d.TrainingSet, pipeline.StepInput{Model: sp.Model, RunID: "fs-1", Spec: sp, SnapshotKey: snap.Key})
	require.Equal(t, ts, again)

	// A spec whose repository has no definitions is refused, not retried.
	sp.FeatureService.Repo = "nothing-here"
	_, err = call[pipeline.TrainingSetResult](e, d.TrainingSet, pipeline.StepInput{Model: sp.Model, RunID: "fs-2", Spec: sp, SnapshotKey: snap.Key})
	require.ErrorContains(t, err, `feature repository "nothing-here" has no applied definitions`)
}
