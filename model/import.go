package model

import (
	"bytes"
	"fmt"
)

// Formats a model file may be in (an external or command trainer's output, or a file a spec
// names).
const (
	FormatDriftline   = "driftline"     // a driftline.model envelope (Marshal)
	FormatXGBoostJSON = "xgboost-json"  // XGBoost's Booster.save_model("model.json")
	FormatLightGBM    = "lightgbm-text" // LightGBM's Booster.save_model("model.txt")
	FormatONNX        = "onnx"          // an ONNX tree ensemble
)

// Formats lists the formats Import reads.
var Formats = []string{FormatDriftline, FormatXGBoostJSON, FormatLightGBM, FormatONNX}

// Import reads a model file in one of Formats; an empty format is detected from the content.
// features names the inputs in column order (required for ONNX, which carries no names);
// target names the prediction.
func Import(format string, data []byte, features []string, target string) (*Model, error) {
	if format == "" {
		format = DetectFormat(data)
	}
	switch format {
	case FormatXGBoostJSON:
		return LoadXGBoostJSON(data, features, target)
	case FormatLightGBM:
		return LoadLightGBM(data, features, target)
	case FormatONNX:
		return LoadONNX(data, features, target)
	case FormatDriftline:
		return Unmarshal(data)
	case "":
		return nil, fmt.Errorf("%w: a file of %d bytes in none of the formats %v (its first bytes: %q)", ErrBadArtifact, len(data), Formats, clipText(string(data[:min(len(data), 24)])))
	}
	return nil, fmt.Errorf("%w: format %q is not one of %v", ErrBadArtifact, format, Formats)
}

// DetectFormat names the format of a model file from its content, or "" when none fits.
func DetectFormat(data []byte) string {
	trimmed := bytes.TrimLeft(data, " \t\r\n")
	switch {
	case IsXGBoostJSON(data):
		return FormatXGBoostJSON
	case bytes.HasPrefix(trimmed, []byte("{")) && bytes.Contains(data[:min(len(data), 256)], []byte(`"driftline.model/`)):
		return FormatDriftline
	case bytes.HasPrefix(trimmed, []byte("tree\n")) || bytes.HasPrefix(trimmed, []byte("tree\r\n")):
		return FormatLightGBM
	case IsONNX(data):
		return FormatONNX
	}
	return ""
}
