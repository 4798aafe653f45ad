package cmdtrainer

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"

	"go.temporal.io/sdk/temporal"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
)

// maxModel is the largest model file taken (bytes).
const maxModel = 2 << 30

// extensions are the model file names the contract takes and the format each is read as
// ("": detected: XGBoost's JSON or a Driftline artifact).
var extensions = map[string]string{"model.onnx": model.FormatONNX, "model.txt": model.FormatLightGBM, "model.json": ""}

// objectNames are the names the model is stored under, by format.
var objectNames = map[string]string{model.FormatONNX: "model.onnx", model.FormatLightGBM: "model.txt",
	model.FormatXGBoostJSON: "model.xgboost.json", model.FormatDriftline: "model.json"}

func outputErr(format string, args ...any) error {
	return temporal.NewNonRetryableApplicationError(fmt.Sprintf(format, args...), ErrTypeOutput, nil)
}

// collect finds the model the command wrote in the output directory, checks it is a model of
// the spec's features, and stores it (and its metrics) under dir of the bucket: one key a
// run, so a retry replaces what an earlier attempt stored.
func (t *Trainer) collect(ctx context.Context, c Command, in pipeline.ExternalTrainInput, ws workspace, dir string) (pipeline.ExternalTrainOutput, error) {
	var found []string
	for name := range extensions {
		if _, err := os.Stat(filepath.Join(ws.output, name)); err == nil {
			found = append(found, name)
		}
	}
	slices.Sort(found)
	switch len(found) {
	case 0:
		return pipeline.ExternalTrainOutput{}, outputErr("command %s exited 0 but wrote no model in $DRIFTLINE_OUTPUT_DIR (%s): write model.onnx, model.txt (LightGBM) or model.json (XGBoost, Driftline)%s",
			c.Name, ws.output, elsewhere(ws))
	case 1:
	default:
		return pipeline.ExternalTrainOutput{}, outputErr("command %s wrote %s in $DRIFTLINE_OUTPUT_DIR; write one model", c.Name, strings.Join(found, " and "))
	}
	file := filepath.Join(ws.output, found[0])
	st, err := os.Stat(file)
	if err != nil || st.Size() == 0 || st.Size() > maxModel || !st.Mode().IsRegular() {
		return pipeline.ExternalTrainOutput{}, outputErr("command %s wrote %s: an empty, oversized (over %d bytes) or special file", c.Name, found[0], int64(maxModel))
	}
	data, err := os.ReadFile(file)
	if err != nil {
		return pipeline.ExternalTrainOutput{}, err
	}
	format := extensions[found[0]]
	if format == "" {
		format = model.DetectFormat(data)
	}
	if err := checkModel(format, data, in); err != nil {
		return pipeline.ExternalTrainOutput{}, outputErr("command %s wrote %s, which is not a model of this run: %v", c.Name, found[0], err)
	}
	metrics, err := readMetrics(ws)
	if err != nil {
		return pipeline.ExternalTrainOutput{}, outputErr("command %s: %v", c.Name, err)
	}
	key := path.Join(dir, objectNames[format])
	if _, err := t.Store.Put(ctx, key, data, objstore.PutOptions{}); err != nil {
		return pipeline.ExternalTrainOutput{}, fmt.Errorf("store the model: %w", err)
	}
	return pipeline.ExternalTrainOutput{ArtifactURI: t.Store.URI(key), Format: format, TrainRows: in.TrainRows, Metrics: metrics}, nil
}

// checkModel loads the model and compares its features with the spec's: by name when the
// format carries names, by count when it does not (ONNX).
func checkModel(format string, data []byte, in pipeline.ExternalTrainInput) error {
	if format == "" {
		return fmt.Errorf("its content is none of the formats %v", model.Formats)
	}
	if format != model.FormatONNX {
		if m, err := model.Import(format, data, nil, in.Target); err == nil {
			if !slices.Equal(m.Features, in.Features) {
				return fmt.Errorf("its features %v differ from the spec's %v (names and order must match)", m.Features, in.Features)
			}
			return nil
		}
	}
	_, err := model.Import(format, data, in.Features, in.Target)
	return err
}

// readMetrics reads the optional metrics.json: an object of numbers.
func readMetrics(ws workspace) (map[string]float64, error) {
	raw, err := os.ReadFile(filepath.Join(ws.output, "metrics.json"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var m map[string]float64
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("metrics.json is not an object of numbers: %v", err)
	}
	for k, v := range m {
		if math.IsNaN(v) || math.IsInf(v, 0) {
			return nil, fmt.Errorf("metrics.json: %s is %v", k, v)
		}
	}
	return m, nil
}

// elsewhere names model files the command left outside the output directory.
func elsewhere(ws workspace) string {
	var stray []string
	_ = filepath.WalkDir(ws.dir, func(p string, d fs.DirEntry, err error) error {
		switch {
		case err != nil:
			return nil
		case d.IsDir() && (p == ws.output || p == ws.input):
			return filepath.SkipDir
		case d.IsDir():
			return nil
		}
		if _, ok := extensions[d.Name()]; ok {
			rel, _ := filepath.Rel(ws.dir, p)
			stray = append(stray, rel)
		}
		return nil
	})
	if len(stray) == 0 {
		return ""
	}
	return fmt.Sprintf("; it wrote %s outside it (relative to its working directory %s)", strings.Join(stray, ", "), ws.dir)
}
