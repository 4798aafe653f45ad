package serving

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The input tensors of an Open Inference Protocol v2 request, as KServe's, MLServer's and
// Triton's clients send them: one tensor per feature (shape [N] or [N, 1], named by the
// feature), or one [N, F] tensor holding the model's F features in its order (any name, data
// flat in row-major order or nested); numeric datatypes, BOOL, and BYTES (text: a number is a
// categorical code; other text is a request attribute, as the v1 API's "attributes").

// v2Datatypes are the datatypes taken, with the integer ranges.
var v2Datatypes = map[string]struct{ min, max float64 }{
	"FP64": {-math.MaxFloat64, math.MaxFloat64}, "FP32": {-math.MaxFloat32, math.MaxFloat32}, "FP16": {-65504, 65504},
	"INT8": {math.MinInt8, math.MaxInt8}, "INT16": {math.MinInt16, math.MaxInt16}, "INT32": {math.MinInt32, math.MaxInt32},
	"INT64": {math.MinInt64, math.MaxInt64}, "UINT8": {0, math.MaxUint8}, "UINT16": {0, math.MaxUint16},
	"UINT32": {0, math.MaxUint32}, "UINT64": {0, math.MaxUint64}, "BOOL": {0, 1}, "BYTES": {},
}

const v2DatatypeList = "FP64, FP32, FP16, INT8, INT16, INT32, INT64, UINT8, UINT16, UINT32, UINT64, BOOL or BYTES"

// v2Rows turns the input tensors into rows of features by name and the request's
// attributes; features is the model's feature order (for an [N, F] tensor). Every error
// names the input and, for a value, its index.
func v2Rows(inputs []v2Tensor, features []string) ([]map[string]float64, map[string]string, error) {
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("inputs: at least one input tensor is required")
	}
	n, first := -1, ""
	var rows []map[string]float64
	var attrs map[string]string
	from := map[string]int{} // which input gave a feature
	for i, in := range inputs {
		where := fmt.Sprintf("inputs[%d] (%s)", i, in.Name)
		dt, ok := v2Datatypes[in.Datatype]
		if !ok {
			return nil, nil, fmt.Errorf("%s: datatype %q: want %s", where, in.Datatype, v2DatatypeList)
		}
		size := 1
		for _, d := range in.Shape {
			if d < 0 {
				return nil, nil, fmt.Errorf("%s: shape %v: a request's dimensions are sizes (no -1)", where, in.Shape)
			}
			size *= d
			if size > 1<<24 {
				return nil, nil, fmt.Errorf("%s: shape %v: more than 16,777,216 values", where, in.Shape)
			}
		}
		var leaves []json.RawMessage
		if err := flattenV2(in.Data, &leaves, 0, size); err != nil {
			return nil, nil, fmt.Errorf("%s: data: %v", where, err)
		}
		if len(leaves) != size {
			return nil, nil, fmt.Errorf("%s: shape %v holds %d values, data has %d", where, in.Shape, size, len(leaves))
		}
		isFeature := slices.Contains(features, in.Name)
		var cols []string // the feature of each column
		switch {
		case len(in.Shape) == 1 || (len(in.Shape) == 2 && in.Shape[1] == 1 && (isFeature || len(features) != 1)):
			cols = []string{in.Name}
		case len(in.Shape) == 2 && in.Shape[1] == len(features):
			cols = features
		case len(in.Shape) == 2:
			return nil, nil, fmt.Errorf("%s: shape %v: an [N, F] tensor holds the model's %d features in order (%s): want [N, %d]",
				where, in.Shape, len(features), strings.Join(features, ", "), len(features))
		default:
			return nil, nil, fmt.Errorf("%s: shape %v: want [N] (one feature, named by the input) or [N, %d] (the model's features in order)",
				where, in.Shape, len(features))
		}
		rowsHere := in.Shape[0]
		if n == -1 {
			n, first = rowsHere, in.Name
			rows = make([]map[string]float64, n)
			for j := range rows {
				rows[j] = make(map[string]float64, len(features))
			}
		} else if rowsHere != n {
			return nil, nil, fmt.Errorf("%s: %d rows, %s has %d", where, rowsHere, first, n)
		}
		if len(cols) == 1 && in.Datatype == "BYTES" {
			text, err := v2Text(where, leaves, isFeature, rows, in.Name)
			if err != nil {
				return nil, nil, err
			}
			if text != nil {
				if attrs == nil {
					attrs = map[string]string{}
				}
				attrs[in.Name] = *text
				continue
			}
		} else {
			for j, raw := range leaves {
				v, err := v2Value(raw, in.Datatype, dt.min, dt.max)
				if err != nil {
					return nil, nil, fmt.Errorf("%s data[%d]: %v", where, j, err)
				}
				rows[j/len(cols)][cols[j%len(cols)]] = v
			}
		}
		for _, c := range cols {
			if k, dup := from[c]; dup {
				return nil, nil, fmt.Errorf("%s: feature %q is given by inputs[%d] already", where, c, k)
			}
			from[c] = i
		}
	}
	if n == 0 {
		return nil, nil, fmt.Errorf("inputs: empty batch (0 rows)")
	}
	return rows, attrs, nil
}

// flattenV2 appends a tensor's values in row-major order: data may be flat or nested.
func flattenV2(data []json.RawMessage, out *[]json.RawMessage, depth, limit int) error {
	if depth > 8 {
		return fmt.Errorf("nested deeper than 8 levels")
	}
	for _, raw := range data {
		raw = bytes.TrimSpace(raw)
		if len(raw) > 0 && raw[0] == '[' {
			var inner []json.RawMessage
			if err := json.Unmarshal(raw, &inner); err != nil {
				return err
			}
			if err := flattenV2(inner, out, depth+1, limit); err != nil {
				return err
			}
			continue
		}
		if len(*out) >= limit {
			*out = append(*out, raw)
			return nil // more values than the shape holds: the caller says so
		}
		*out = append(*out, raw)
	}
	return nil
}

// v2Value reads one value of a numeric or BOOL tensor.
func v2Value(raw json.RawMessage, datatype string, lo, hi float64) (float64, error) {
	switch string(raw) {
	case "true":
		if datatype == "BOOL" {
			return 1, nil
		}
		return 0, fmt.Errorf("true is not %s", datatype)
	case "false":
		if datatype == "BOOL" {
			return 0, nil
		}
		return 0, fmt.Errorf("false is not %s", datatype)
	}
	var v float64
	if len(raw) == 0 || (raw[0] != '-' && (raw[0] < '0' || raw[0] > '9')) || json.Unmarshal(raw, &v) != nil {
		return 0, fmt.Errorf("want a number, got %s", raw)
	}
	if datatype != "FP64" && datatype != "FP32" && datatype != "FP16" && v != math.Trunc(v) {
		return 0, fmt.Errorf("%s is not an integer (%s)", raw, datatype)
	}
	if v < lo || v > hi {
		return 0, fmt.Errorf("%s is out of the range of %s", raw, datatype)
	}
	return v, nil
}

// v2Text reads a one-column BYTES tensor: numbers (categorical codes) go into the rows as the
// feature; text is a request attribute (returned), the same for every row.
func v2Text(where string, leaves []json.RawMessage, isFeature bool, rows []map[string]float64, name string) (*string, error) {
	vals := make([]string, len(leaves))
	numeric := true
	for j, raw := range leaves {
		if err := json.Unmarshal(raw, &vals[j]); err != nil {
			return nil, fmt.Errorf("%s data[%d]: want a string (BYTES), got %s", where, j, raw)
		}
		if _, err := strconv.ParseFloat(strings.TrimSpace(vals[j]), 64); err != nil {
			numeric = false
		}
	}
	if numeric {
		for j, s := range vals {
			rows[j][name], _ = strconv.ParseFloat(strings.TrimSpace(s), 64)
		}
		return nil, nil
	}
	if isFeature {
		for j, s := range vals {
			if _, err := strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
				return nil, fmt.Errorf("%s data[%d]: %q is not a number: feature %s takes numbers (text inputs are request attributes)", where, j, s, name)
			}
		}
	}
	for j, s := range vals {
		if s != vals[0] {
			return nil, fmt.Errorf("%s data[%d]: text inputs are request attributes, one value per request: %q and %q in one batch", where, j, vals[0], s)
		}
	}
	return &vals[0], nil
}
