package activities

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/training"
)

// ExternalInput builds the external trainer's input for a run.
func (t *Training) ExternalInput(ctx context.Context, in pipeline.StepInput) (pipeline.ExternalTrainInput, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return pipeline.ExternalTrainInput{}, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return pipeline.ExternalTrainInput{}, err
	}
	var schema []pipeline.Input
	for _, x := range training.Inputs(in.Spec) {
		schema = append(schema, pipeline.Input{Name: x.Name, Type: x.Type, Kind: x.Kind})
	}
	out := pipeline.ExternalTrainInput{Model: in.Model, RunID: in.RunID, Features: in.Spec.Features, Schema: schema, Target: in.Spec.Target,
		Trainer: in.Spec.Trainer.Name, Params: in.Spec.Trainer.Params, SnapshotURI: t.Store.URI(in.SnapshotKey),
		EventTime: in.Spec.Dataset.EventTime, HoldoutFrom: cut,
		OutputURI: t.Store.URI(reportKey(in.Model, in.RunID, "external/model.json"))}
	for _, f := range s.Files {
		out.Files = append(out.Files, t.Store.URI(f.Key))
	}
	return out, nil
}

// AdoptExternal checks an external trainer's artifact and stages it like a built-in one:
// it must be in this bucket, load (checksum verified; XGBoost JSON, LightGBM text and ONNX
// converted; the format detected when the trainer names none) and use the spec's features in
// order. The reference profile is built from the training rows here.
func (t *Training) AdoptExternal(ctx context.Context, in pipeline.AdoptInput) (pipeline.TrainResult, error) {
	root := t.Store.URI("")
	key, ok := strings.CutPrefix(in.Output.ArtifactURI, root)
	if !ok || key == "" {
		return pipeline.TrainResult{}, invalid("external trainer: artifact %q is not in %s", in.Output.ArtifactURI, root)
	}
	data, _, err := objstore.ReadAll(ctx, t.Store, key)
	if err != nil {
		return pipeline.TrainResult{}, classify("external trainer artifact", err)
	}
	m, err := model.Import(in.Output.Format, data, in.Spec.Features, in.Spec.Target)
	if err != nil {
		return pipeline.TrainResult{}, invalid("external trainer: artifact %s: %v", in.Output.ArtifactURI, err)
	}
	if !slices.Equal(m.Features, in.Spec.Features) {
		return pipeline.TrainResult{}, invalid("external trainer: artifact features %v, the spec has %v", m.Features, in.Spec.Features)
	}
	profileKey, rows := in.ProfileKey, in.Output.TrainRows
	if profileKey == "" {
		// A run from before the one-pass shape: build the profile from the training days.
		s, _, src, err := t.source(ctx, in.StepInput, dataset.Before)
		if err != nil {
			return pipeline.TrainResult{}, err
		}
		prep, err := training.NewPrep(in.Spec, s.Rows)
		if err != nil {
			return pipeline.TrainResult{}, classify("external trainer profile", err)
		}
		if err := src(acceptedRows(prep.Add)); err != nil {
			return pipeline.TrainResult{}, classify("external trainer profile", err)
		}
		profileKey = reportKey(in.Model, in.RunID, "candidate/profile.json")
		if err := putJSON(ctx, t.Store, profileKey, prep.Profile(), false); err != nil {
			return pipeline.TrainResult{}, classify("external trainer profile", err)
		}
	}
	m.Trainer = "external:" + in.TaskQueue
	m.Inputs, m.Target = training.Inputs(in.Spec), in.Spec.Target
	if m.Objective == "" {
		m.Objective = in.Spec.Trainer.ObjectiveName()
	}
	if m.Params == nil {
		m.Params = in.Spec.Trainer.Params
	}
	m.TrainingFingerprint = fmt.Sprintf("%s:%d", in.RunID, rows)
	res := pipeline.TrainResult{TrainRows: in.Output.TrainRows}
	if v, ok := in.Output.Metrics["train_rmse"]; ok {
		res.TrainRMSE, res.TrainMetric, res.TrainLoss = v, "rmse", v
	}
	return t.stage(ctx, in.StepInput, m, profileKey, res)
}
