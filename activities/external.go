package activities

import (
	"context"
	"fmt"
	"math"
	"slices"
	"strconv"
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
	out.Command = in.Spec.Trainer.Command
	if err := t.exportRows(ctx, in, &out); err != nil {
		return pipeline.ExternalTrainInput{}, err
	}
	return out, nil
}

// exportRows writes the accepted rows before the holdout as the trainer's CSV files: a
// header of the features and the target, numbers in Go's shortest round-trip form, a missing
// value empty; validation rows chosen by the hash gbdt's early stopping uses (share 0.1 unless
// the spec sets one). The same run writes the same bytes, so a retry overwrites in place.
func (t *Training) exportRows(ctx context.Context, in pipeline.StepInput, out *pipeline.ExternalTrainInput) error {
	_, _, src, err := t.source(ctx, in, dataset.Before)
	if err != nil {
		return err
	}
	fr, err := training.NewFeatures(in.Spec)
	if err != nil {
		return invalid("external trainer input: %v", err)
	}
	share := in.Spec.Trainer.ValidationShare
	if share == 0 {
		share = 0.1
	}
	limit := uint64(share * float64(math.MaxUint64))
	header := strings.Join(append(slices.Clone(in.Spec.Features), in.Spec.Target), ",") + "\n"
	train, valid := []byte(header), []byte(header)
	x := make([]float64, fr.Len())
	row := func(dst []byte, y float64) []byte {
		for _, v := range append(x, y) {
			if !math.IsNaN(v) {
				dst = strconv.AppendFloat(dst, v, 'g', -1, 64)
			}
			dst = append(dst, ',')
		}
		dst[len(dst)-1] = '\n'
		return dst
	}
	err = src(func(b *dataset.Batch) error {
		y := b.Num(in.Spec.Target)
		for r := 0; r < b.Rows; r++ {
			if !b.Accepted[r] {
				continue
			}
			fr.Vector(b, r, x)
			if training.RowHash(b.RowKey0+uint64(r), 2) < limit {
				valid, out.ValidationRows = row(valid, y[r]), out.ValidationRows+1
			} else {
				train, out.TrainRows = row(train, y[r]), out.TrainRows+1
			}
		}
		return nil
	})
	if err != nil {
		return classify("external trainer input", err)
	}
	for _, f := range []struct {
		name string
		data []byte
		uri  *string
	}{{"external/train.csv", train, &out.TrainURI}, {"external/validation.csv", valid, &out.ValidationURI}} {
		key := reportKey(in.Model, in.RunID, f.name)
		if _, err := t.Store.Put(ctx, key, f.data, objstore.PutOptions{ContentType: "text/csv"}); err != nil {
			return classify("external trainer input", err)
		}
		*f.uri = t.Store.URI(key)
	}
	out.ValidationShare = share
	return nil
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
	res := pipeline.TrainResult{TrainRows: in.Output.TrainRows}
	if v, ok := in.Output.Metrics["train_rmse"]; ok {
		res.TrainRMSE, res.TrainMetric, res.TrainLoss = v, "rmse", v
	}
	return t.adopt(ctx, in.StepInput, key, in.Output.Format, "external:"+in.TaskQueue, in.ProfileKey, res)
}

// adoptFile stages the spec's model file (trainer file) as the run's candidate.
func (t *Training) adoptFile(ctx context.Context, in pipeline.TrainInput) (pipeline.TrainResult, error) {
	key := in.Spec.Trainer.ModelFile
	if strings.Contains(key, "://") {
		var ok bool
		if key, ok = strings.CutPrefix(key, t.Store.URI("")); !ok || key == "" {
			return pipeline.TrainResult{}, invalid("trainer file: model file %q is not in %s", in.Spec.Trainer.ModelFile, t.Store.URI(""))
		}
	}
	return t.adopt(ctx, in.StepInput, key, "", "file:"+key, in.ProfileKey, pipeline.TrainResult{})
}

// adopt reads a model file of the bucket, checks it takes the spec's features in order, and
// stages it as the candidate (its reference profile from the window's first pass, or built
// here for a run from before it).
func (t *Training) adopt(ctx context.Context, in pipeline.StepInput, key, format, trainer, profileKey string, res pipeline.TrainResult) (pipeline.TrainResult, error) {
	data, _, err := objstore.ReadAll(ctx, t.Store, key)
	if err != nil {
		return pipeline.TrainResult{}, classify("model file "+key, err)
	}
	m, err := model.Import(format, data, in.Spec.Features, in.Spec.Target)
	if err != nil {
		return pipeline.TrainResult{}, invalid("%s: artifact %s: %v", trainer, t.Store.URI(key), err)
	}
	if !slices.Equal(m.Features, in.Spec.Features) {
		return pipeline.TrainResult{}, invalid("%s: artifact features %v, the spec has %v", trainer, m.Features, in.Spec.Features)
	}
	if profileKey == "" {
		// A run from before the one-pass shape: build the profile from the training days.
		s, _, src, err := t.source(ctx, in, dataset.Before)
		if err != nil {
			return pipeline.TrainResult{}, err
		}
		prep, err := training.NewPrep(in.Spec, s.Rows)
		if err != nil {
			return pipeline.TrainResult{}, classify("adopt profile", err)
		}
		if err := src(acceptedRows(prep.Add)); err != nil {
			return pipeline.TrainResult{}, classify("adopt profile", err)
		}
		profileKey = reportKey(in.Model, in.RunID, "candidate/profile.json")
		if err := putJSON(ctx, t.Store, profileKey, prep.Profile(), false); err != nil {
			return pipeline.TrainResult{}, classify("adopt profile", err)
		}
	}
	m.Trainer = trainer
	m.Inputs, m.Target = training.Inputs(in.Spec), in.Spec.Target
	if m.Objective == "" {
		m.Objective = in.Spec.Trainer.ObjectiveName()
	}
	if m.Params == nil {
		m.Params = in.Spec.Trainer.Params
	}
	m.TrainingFingerprint = fmt.Sprintf("%s:%d", in.RunID, res.TrainRows)
	return t.stage(ctx, in, m, profileKey, res)
}
