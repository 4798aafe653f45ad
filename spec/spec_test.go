package spec

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model/hparams"
)

func TestLoadExample(t *testing.T) {
	s, err := Load("../examples/demand.yaml")
	require.NoError(t, err)
	require.Equal(t, "demand", s.Model)
	require.Equal(t, []string{"price", "promo", "weekday", "temperature", "item_popularity"}, s.Features)
	require.Equal(t, 15*time.Second, s.Canary.Bake.Duration)
	require.Equal(t, []float64{0.1, 0.3, 0.5}, s.Canary.StepShares())
	require.Equal(t, "region", s.Canary.ProtectedAttribute)
	require.Equal(t, 24*time.Hour, s.Approval.Timeout.Duration)
	require.Len(t, s.Hash, 64)
}

func TestParseErrorsNameTheField(t *testing.T) {
	base, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	cases := []struct {
		name, from, to, want string
	}{
		{"unknown field", "target: units_sold", "target: units_sold\ntargett: x", "field targett not found"},
		{"bad version", "driftline.dev/v1", "driftline.dev/v9", "apiVersion"},
		{"target is feature", "target: units_sold", "target: price", "target: \"price\" is also a feature"},
		{"unknown trainer", "name: gbdt", "name: magic", "trainer.name"},
		{"unknown gbdt parameter", "max_depth: 6", "max_deep: 6", "trainer.params.max_deep: not a gbdt parameter"},
		{"bad gbdt value", "learning_rate: 0.1", "learning_rate: 2", "learning_rate: must be in (0, 1]"},
		{"fractional trees", "trees: 100", "trees: 10.5", "trainer.params.trees: must be a whole number"},
		{"bad objective", "objective: squared_error", "objective: poisson", "objective"},
		{"ridge takes alpha only", "name: gbdt", "name: ridge", "trainer.params.colsample_bytree: ridge takes only alpha"},
		{"quantization loss", "max_mae_loss: 0.01", "max_mae_loss: -1", "quantization.max_mae_loss"},
		{"bad duration", "bake: 15s", "bake: soon", "not a duration"},
		{"steps must rise", "steps: [0.1, 0.3, 0.5]", "steps: [0.3, 0.1]", "canary.steps[1]"},
		{"unknown mode", "mode: split ", "mode: mirror ", "canary.mode"},
		{"fairness attribute", "protected_attribute: region", "protected_attribute: price", "fairness.protected_attribute"},
		{"bad share", "share: 0.3", "share: 1.5", "canary.share"},
		{"feature not in contract", "features: [price,", "features: [prize,", `features[0]: "prize" is not a contract column`},
		{"feature with wrong role", "{name: competitor_price, type: double, role: other", "{name: competitor_price, type: double, role: boss", `role "boss" is not feature`},
		{"range upside down", "min: -50, max: 60", "min: 60, max: -50", "min 60 is above max -50"},
		{"unknown correction", "correction: bh", "correction: holm", "drift.correction"},
		{"critical is not a feature", "critical_features: []", "critical_features: [region]", "drift.critical_features[0]"},
		{"holdout too big", "holdout_days: 7", "holdout_days: 40", "dataset.holdout_days"},
		{"negative partition files", "holdout_days: 7", "holdout_days: 7\n  partition_files: -1", "dataset.partition_files: -1 must not be negative"},
		{"negative partition rows", "holdout_days: 7", "holdout_days: 7\n  partition_rows: -5", "dataset.partition_rows: -5 must not be negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			src := strings.Replace(string(base), c.from, c.to, 1)
			require.NotEqual(t, string(base), src, "replacement did not apply")
			_, err := Parse([]byte(src))
			require.Error(t, err)
			require.Contains(t, err.Error(), c.want)
		})
	}
}

func TestTrainerChoicesValidate(t *testing.T) {
	base, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	s, err := Parse(base)
	require.NoError(t, err)
	require.Equal(t, "gbdt", s.Trainer.Name)
	require.Equal(t, 0.1, s.Trainer.ValidationShare, "early stopping holds out 10% by default")
	require.Equal(t, "region", s.Evaluation.SegmentBy, "segments default to the protected attribute")
	require.Equal(t, 0.01, s.Quantization.MaxMAELoss)
	// A nullable feature: fine for gbdt (missing values), refused for linear trainers.
	src := strings.Replace(string(base), "{name: temperature, type: double, role: feature, min: -50, max: 60}",
		"{name: temperature, type: double, role: feature, min: -50, max: 60, nullable: true}", 1)
	_, err = Parse([]byte(src))
	require.NoError(t, err)
	i := strings.Index(src, "trainer:")
	j := strings.Index(src, "contract:")
	linear := src[:i] + "trainer:\n  name: logistic\n  params: {alpha: 1}\n" + src[j:]
	_, err = Parse([]byte(linear))
	require.ErrorContains(t, err, `"temperature" is nullable; trainer logistic cannot take missing values`)
	_, err = Parse([]byte(src[:i] + "trainer:\n  name: gbdt\n  task_queue: \"bad queue!\"\n" + src[j:]))
	require.ErrorContains(t, err, "trainer.task_queue")
	sampled, err := Parse([]byte(src[:i] + "trainer:\n  name: gbdt\n  max_rows: 20000000\n" + src[j:]))
	require.NoError(t, err)
	require.Equal(t, int64(20_000_000), sampled.Trainer.MaxRows)
	_, err = Parse([]byte(src[:i] + "trainer:\n  name: gbdt\n  max_rows: -1\n" + src[j:]))
	require.ErrorContains(t, err, "trainer.max_rows: must be 0 (the default bound) or more, got -1")
	_, err = Parse([]byte(src[:i] + "trainer:\n  name: ridge\n  max_rows: 10\n" + src[j:]))
	require.ErrorContains(t, err, "objective, growth and max_rows are gbdt settings")

	// A command trainer: a command's name, the queue of the trainer that runs it, free
	// numeric params; governance owns the command as it owns the queue.
	cmd, err := Parse([]byte(src[:i] + "trainer:\n  name: command\n  command: sklearn-gbr\n  task_queue: python\n  params: {n_estimators: 200, learning_rate: 0.05}\n" + src[j:]))
	require.NoError(t, err)
	require.Equal(t, "sklearn-gbr", cmd.Trainer.Command)
	other := cmd
	other.Trainer.Command = "xgboost"
	require.Equal(t, []string{"trainer_command"}, GovernanceChanges(&cmd, other))
	for body, want := range map[string]string{
		"  name: command\n  task_queue: python\n":                                "trainer.command: name the command",
		"  name: command\n  command: \"rm -rf /\"\n  task_queue: python\n":       "trainer.command: name the command",
		"  name: command\n  command: sklearn\n":                                  "a command trainer polls a task queue",
		"  name: gbdt\n  command: sklearn\n":                                     "trainer.command: only for trainer command",
		"  name: file\n":                                                         "trainer.model_file: the key",
		"  name: file\n  model_file: ../../etc/passwd\n":                         "trainer.model_file: the key",
		"  name: file\n  model_file: m.onnx\n  task_queue: q\n":                  "no task queue",
		"  name: command\n  command: a\n  task_queue: q\n  objective: poisson\n": "trainer.objective",
	} {
		_, err = Parse([]byte(src[:i] + "trainer:\n" + body + src[j:]))
		require.ErrorContains(t, err, want, body)
	}
	// A dataset that is a Delta table.
	k := strings.Index(src, "  window_days:")
	table, err := Parse([]byte(src[:k] + "  table: {format: delta, path: tables/retail, version: 3}\n" + src[k:]))
	require.NoError(t, err)
	require.EqualValues(t, 3, *table.Dataset.Table.Version)
	// An Iceberg table by path and by catalog.
	for _, body := range []string{"  table: {format: iceberg, path: lake/retail/sales}\n",
		"  table: {format: iceberg, catalog: lake, name: retail.sales, snapshot_id: 8797629078370162270}\n"} {
		_, err = Parse([]byte(src[:k] + body + src[k:]))
		require.NoError(t, err, body)
	}
	for body, want := range map[string]string{
		"  table: {format: hudi, path: t}\n":                                                     "delta or iceberg",
		"  table: {format: delta, path: ../x}\n":                                                 "dataset.table.path",
		"  table: {format: delta, path: t, version: 1, as_of: \"2026-01-01T00:00:00Z\"}\n":       "not both",
		"  table: {format: delta, path: t, as_of: yesterday}\n":                                  "is not an RFC 3339 time",
		"  table: {format: delta, path: t, snapshot_id: 4}\n":                                    "catalog, name and snapshot_id are an Iceberg table's",
		"  table: {format: iceberg}\n":                                                           "a path in the bucket or a catalog and a name, one of them",
		"  table: {format: iceberg, path: t, catalog: lake, name: a.b}\n":                        "one of them",
		"  table: {format: iceberg, catalog: lake, name: sales}\n":                               "(namespace.table)",
		"  table: {format: iceberg, catalog: \"Lake;drop\", name: a.b}\n":                        "--iceberg-catalog",
		"  table: {format: iceberg, path: t, version: 3}\n":                                      "pin an Iceberg snapshot with snapshot_id",
		"  table: {format: iceberg, path: t, snapshot_id: 3, as_of: \"2026-01-01T00:00:00Z\"}\n": "not both",
	} {
		_, err = Parse([]byte(src[:k] + body + src[k:]))
		require.ErrorContains(t, err, want, body)
	}
	file, err := Parse([]byte(src[:i] + "trainer:\n  name: file\n  model_file: models/demand/gbr.onnx\n  objective: absolute_error\n" + src[j:]))
	require.NoError(t, err)
	require.Equal(t, hparams.AbsoluteError, file.Trainer.ObjectiveName())
}

// FuzzParse: any bytes give a spec or an error naming what was wrong, never a panic; a spec
// that parses validates.
func FuzzParse(f *testing.F) {
	example, err := os.ReadFile("../examples/demand.yaml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(string(example))
	f.Add("apiVersion: driftline.dev/v1\nkind: ModelSpec\nmodel: m\n")
	f.Add("model: [")
	f.Add("trainer: {name: gbdt, params: {trees: -1}}")
	f.Fuzz(func(t *testing.T, text string) {
		sp, err := Parse([]byte(text))
		if err != nil {
			if err.Error() == "" {
				t.Fatal("empty error")
			}
			return
		}
		if err := sp.Validate(); err != nil {
			t.Fatalf("Parse accepted a spec Validate refuses: %v", err)
		}
	})
}

// The feature-store example: a feature service besides raw columns; WithFeatures adds its
// columns as nullable double features without touching the spec; a bad reference and a
// trainer that cannot take missing values are named.
func TestFeatureServiceSpec(t *testing.T) {
	s, err := Load("../examples/demand_features.yaml")
	require.NoError(t, err)
	require.Equal(t, &FeatureService{Repo: "retail", Name: "demand_forecast"}, s.FeatureService)
	w := s.WithFeatures([]string{"units_7d"})
	require.NoError(t, w.Validate())
	require.Equal(t, append(append([]string{}, s.Features...), "units_7d"), w.Features)
	col, ok := w.Contract.Column("units_7d")
	require.True(t, ok)
	require.True(t, col.Nullable)
	_, ok = s.Contract.Column("units_7d")
	require.False(t, ok, "the spec itself is unchanged")
	base, err := os.ReadFile("../examples/demand_features.yaml")
	require.NoError(t, err)
	for from, want := range map[string]string{
		"{repo: retail, name: demand_forecast}": `feature_service: give repo`,
		"name: gbdt":                            "feature_service: trainer ridge cannot take missing values",
	} {
		to := "{repo: Retail!, name: demand_forecast}"
		if from == "name: gbdt" {
			to = "name: ridge"
		}
		raw := strings.Replace(string(base), from, to, 1)
		raw = strings.Replace(raw, "    early_stopping_rounds: 10  # on a hash-chosen 10% of the training rows\n", "", 1)
		_, err := Parse([]byte(raw))
		require.ErrorContains(t, err, want)
	}
}
