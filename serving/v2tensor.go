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

// v2Input is one input tensor as the decoder reads it, whichever front end it came through
// (REST's JSON values or gRPC's typed contents).
type v2Input struct {
	name, datatype string
	shape          []int
	// values is how many values the tensor has; num reads value j of a numeric or BOOL tensor
	// (checked against the datatype), text value j of a BYTES one.
	values func() (int, error)
	num    func(j int) (float64, error)
	text   func(j int) (string, error)
}

// jsonInput reads a REST tensor: its data flat or nested.
func jsonInput(t v2Tensor) v2Input {
	var leaves []json.RawMessage
	in := v2Input{name: t.Name, datatype: t.Datatype, shape: t.Shape}
	in.values = func() (int, error) {
		if err := flattenV2(t.Data, &leaves, 0, 1<<24); err != nil {
			return 0, fmt.Errorf("data: %v", err)
		}
		return len(leaves), nil
	}
	in.num = func(j int) (float64, error) {
		dt := v2Datatypes[t.Datatype]
		return v2Value(leaves[j], t.Datatype, dt.min, dt.max)
	}
	in.text = func(j int) (string, error) {
		var s string
		if err := json.Unmarshal(leaves[j], &s); err != nil {
			return "", fmt.Errorf("want a string (BYTES), got %s", leaves[j])
		}
		return s, nil
	}
	return in
}

// v2Rows turns the input tensors into rows of features by name and the request's
// attributes; features is the model's feature order (for an [N, F] tensor). Every error
// names the input and, for a value, its index.
func v2Rows(inputs []v2Input, features []string, maxRows, maxValues int) ([]map[string]float64, map[string]string, error) {
	if len(inputs) == 0 {
		return nil, nil, fmt.Errorf("inputs: at least one input tensor is required")
	}
	n, first, total := -1, "", 0
	var rows []map[string]float64
	var attrs map[string]string
	from := map[string]int{} // which input gave a feature
	for i, in := range inputs {
		where := fmt.Sprintf("inputs[%d] (%s)", i, in.name)
		size, err := v2Size(where, in, len(features), total, maxRows, maxValues)
		if err != nil {
			return nil, nil, err
		}
		total += size
		isFeature := slices.Contains(features, in.name)
		cols, err := v2Columns(where, in, features, isFeature)
		if err != nil {
			return nil, nil, err
		}
		if rowsHere := in.shape[0]; n == -1 {
			n, first = rowsHere, in.name
			rows = make([]map[string]float64, n)
			for j := range rows {
				rows[j] = make(map[string]float64, len(features))
			}
		} else if rowsHere != n {
			return nil, nil, fmt.Errorf("%s: %d rows, %s has %d", where, rowsHere, first, n)
		}
		if in.datatype == "BYTES" && len(cols) == 1 {
			text, err := v2Text(where, in, size, isFeature, rows)
			if err != nil {
				return nil, nil, err
			}
			if text != nil {
				if attrs == nil {
					attrs = map[string]string{}
				}
				attrs[in.name] = *text
				continue
			}
		} else if err := v2Fill(where, in, size, cols, rows); err != nil {
			return nil, nil, err
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

// v2Size checks an input's datatype and shape against the limits (total: the values of the
// inputs before it) and that its data holds as many values as its shape; it returns that
// number.
func v2Size(where string, in v2Input, nFeatures, total, maxRows, maxValues int) (int, error) {
	if _, ok := v2Datatypes[in.datatype]; !ok {
		return 0, fmt.Errorf("%s: datatype %q: want %s", where, in.datatype, v2DatatypeList)
	}
	if len(in.shape) == 0 {
		return 0, fmt.Errorf("%s: shape []: want [N] (one feature, named by the input) or [N, %d] (the model's features in order)", where, nFeatures)
	}
	size := 1
	for _, d := range in.shape {
		if d < 0 {
			return 0, fmt.Errorf("%s: shape %v: a request's dimensions are sizes (no -1)", where, in.shape)
		}
		if d > maxValues {
			return 0, scoreErr(ErrTooLarge, "%s: shape %v: the request's tensors hold more than %d values (serve --max-values)", where, in.shape, maxValues)
		}
		size *= d // both at most maxValues: no overflow
		if total+size > maxValues {
			return 0, scoreErr(ErrTooLarge, "%s: shape %v: the request's tensors hold more than %d values (serve --max-values)", where, in.shape, maxValues)
		}
	}
	if in.shape[0] > maxRows {
		return 0, scoreErr(ErrTooLarge, "%s: shape %v: %d rows, a request holds at most %d (serve --max-rows)", where, in.shape, in.shape[0], maxRows)
	}
	got, err := in.values()
	if err != nil {
		return 0, fmt.Errorf("%s: %v", where, err)
	}
	if got != size {
		return 0, fmt.Errorf("%s: shape %v holds %d values, data has %d", where, in.shape, size, got)
	}
	return size, nil
}

// v2Columns is the feature of each of an input's columns: [N] or [N, 1] is the feature the
// input names, [N, F] the model's features in order.
func v2Columns(where string, in v2Input, features []string, isFeature bool) ([]string, error) {
	switch {
	case len(in.shape) == 1 || (len(in.shape) == 2 && in.shape[1] == 1 && (isFeature || len(features) != 1)):
		return []string{in.name}, nil
	case len(in.shape) == 2 && in.shape[1] == len(features):
		return features, nil
	case len(in.shape) == 2:
		return nil, fmt.Errorf("%s: shape %v: an [N, F] tensor holds the model's %d features in order (%s): want [N, %d]",
			where, in.shape, len(features), strings.Join(features, ", "), len(features))
	}
	return nil, fmt.Errorf("%s: shape %v: want [N] (one feature, named by the input) or [N, %d] (the model's features in order)",
		where, in.shape, len(features))
}

// v2Fill puts an input's numbers into the rows, row-major over its columns; an [N, F] tensor
// of text holds numbers only.
func v2Fill(where string, in v2Input, size int, cols []string, rows []map[string]float64) error {
	text := in.datatype == "BYTES"
	for j := range size {
		var v float64
		var err error
		if text {
			var s string
			if s, err = in.text(j); err == nil {
				if v, err = strconv.ParseFloat(strings.TrimSpace(s), 64); err != nil {
					err = fmt.Errorf("%q is not a number (an [N, F] tensor holds features)", s)
				}
			}
		} else {
			v, err = in.num(j)
		}
		if err != nil {
			return fmt.Errorf("%s data[%d]: %v", where, j, err)
		}
		rows[j/len(cols)][cols[j%len(cols)]] = v
	}
	return nil
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
			return fmt.Errorf("more than %d values", limit)
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
func v2Text(where string, in v2Input, size int, isFeature bool, rows []map[string]float64) (*string, error) {
	name := in.name
	vals := make([]string, size)
	numeric := true
	for j := range vals {
		var err error
		if vals[j], err = in.text(j); err != nil {
			return nil, fmt.Errorf("%s data[%d]: %v", where, j, err)
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
