package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
)

// ExternalTrainActivity is the activity type an external trainer registers on its own task
// queue (spec trainer.task_queue). Its input is ExternalTrainInput and its output
// ExternalTrainOutput, both plain JSON, so a trainer can be written with any Temporal SDK
// (docs/models.md, "External trainers").
const ExternalTrainActivity = "driftline.train.v1"

// Artifact formats an external trainer may write.
const (
	FormatDriftline   = "driftline"    // a driftline.model/v2 envelope (model package)
	FormatXGBoostJSON = "xgboost-json" // Booster.save_model("model.json")
)

// ExternalTrainInput is what an external trainer receives.
type ExternalTrainInput struct {
	Model    string             `json:"model"`
	RunID    string             `json:"run_id"`
	Features []string           `json:"features"` // column order the artifact must use
	Schema   []model.Input      `json:"schema"`   // per feature: name, type (double, int, bool), kind (numeric, categorical)
	Target   string             `json:"target"`
	Trainer  string             `json:"trainer"` // the spec's trainer name (free for external trainers)
	Params   map[string]float64 `json:"params,omitempty"`
	// SnapshotURI is the pinned file list of the window (JSON: files with key, etag, rows);
	// Files are the Parquet files themselves. Rows whose EventTime column is on or after
	// HoldoutFrom are the evaluation holdout: train only on earlier rows.
	SnapshotURI string   `json:"snapshot_uri"`
	Files       []string `json:"files"`
	EventTime   string   `json:"event_time"`
	HoldoutFrom string   `json:"holdout_from"`
	// OutputURI is where the trainer writes its artifact (same bucket).
	OutputURI string `json:"output_uri"`
}

// ExternalTrainOutput is what an external trainer returns.
type ExternalTrainOutput struct {
	ArtifactURI string             `json:"artifact_uri"`
	Format      string             `json:"format"` // driftline or xgboost-json
	TrainRows   int                `json:"train_rows"`
	Metrics     map[string]float64 `json:"metrics,omitempty"`
}

// AdoptInput hands an external trainer's output to the built-in side.
type AdoptInput struct {
	StepInput
	TaskQueue string
	Output    ExternalTrainOutput
}

// ExternalInput builds the external trainer's input for a run.
func (t *Training) ExternalInput(ctx context.Context, in StepInput) (ExternalTrainInput, error) {
	s, cut, err := t.window(ctx, in)
	if err != nil {
		return ExternalTrainInput{}, err
	}
	out := ExternalTrainInput{Model: in.Model, RunID: in.RunID, Features: in.Spec.Features, Schema: modelInputs(in.Spec), Target: in.Spec.Target,
		Trainer: in.Spec.Trainer.Name, Params: in.Spec.Trainer.Params, SnapshotURI: t.Store.URI(in.SnapshotKey),
		EventTime: in.Spec.Dataset.EventTime, HoldoutFrom: cut,
		OutputURI: t.Store.URI(reportKey(in.Model, in.RunID, "external/model.json"))}
	for _, f := range s.Files {
		out.Files = append(out.Files, t.Store.URI(f.Key))
	}
	return out, nil
}

// AdoptExternal checks an external trainer's artifact and stages it like a built-in one:
// it must be in this bucket, load (checksum verified; XGBoost JSON converted) and use the
// spec's features in order. The reference profile is built from the training rows here.
func (t *Training) AdoptExternal(ctx context.Context, in AdoptInput) (TrainResult, error) {
	root := t.Store.URI("")
	key, ok := strings.CutPrefix(in.Output.ArtifactURI, root)
	if !ok || key == "" {
		return TrainResult{}, invalid("external trainer: artifact %q is not in %s", in.Output.ArtifactURI, root)
	}
	data, _, err := objstore.ReadAll(ctx, t.Store, key)
	if err != nil {
		return TrainResult{}, classify("external trainer artifact", err)
	}
	var m *model.Model
	switch in.Output.Format {
	case FormatXGBoostJSON:
		m, err = model.LoadXGBoostJSON(data, in.Spec.Features, in.Spec.Target)
	case FormatDriftline, "":
		m, err = model.Unmarshal(data)
	default:
		return TrainResult{}, invalid("external trainer: format %q is not %s or %s", in.Output.Format, FormatDriftline, FormatXGBoostJSON)
	}
	if err != nil {
		return TrainResult{}, invalid("external trainer: artifact %s: %v", in.Output.ArtifactURI, err)
	}
	if !slices.Equal(m.Features, in.Spec.Features) {
		return TrainResult{}, invalid("external trainer: artifact features %v, the spec has %v", m.Features, in.Spec.Features)
	}
	s, cut, err := t.window(ctx, in.StepInput)
	if err != nil {
		return TrainResult{}, err
	}
	fr, err := newFeatureReader(in.Spec)
	if err != nil {
		return TrainResult{}, err
	}
	prof, profile := newProfiler(in.Spec, fr)
	rows := 0
	err = t.trainScan(ctx, s, in.Spec, cut, fr, func(b *dataset.Batch, r int, x []float64, y float64) {
		rows++
		profile(b, r)
	})
	if err != nil {
		return TrainResult{}, classify("external trainer profile", err)
	}
	m.Trainer = "external:" + in.TaskQueue
	m.Inputs, m.Target = modelInputs(in.Spec), in.Spec.Target
	if m.Objective == "" {
		m.Objective = in.Spec.Trainer.ObjectiveName()
	}
	if m.Params == nil {
		m.Params = in.Spec.Trainer.Params
	}
	m.TrainingFingerprint = fmt.Sprintf("%s:%d", s.ID, rows)
	res := TrainResult{TrainRows: in.Output.TrainRows}
	if v, ok := in.Output.Metrics["train_rmse"]; ok {
		res.TrainRMSE, res.TrainMetric, res.TrainLoss = v, "rmse", v
	}
	return t.stage(ctx, in.StepInput, m, prof.Profile(), res)
}
