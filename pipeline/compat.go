package pipeline

import (
	"bytes"
	"encoding/json"
	"reflect"
	"sync"
)

// The activity results below were Temporal payloads before they had json tags: their keys
// were the Go field names (CandidateMAE, not candidate_mae). Histories of runs still in flight
// and the recorded histories the replay tests check carry that shape, and an external trainer
// written to the first driftline.train.v1 contract may answer in it; each type reads both.

func (r *SnapshotResult) UnmarshalJSON(b []byte) error {
	type plain SnapshotResult
	return decodeEither(b, (*plain)(r))
}

func (r *ValidateResult) UnmarshalJSON(b []byte) error {
	type plain ValidateResult
	return decodeEither(b, (*plain)(r))
}

func (r *DriftResult) UnmarshalJSON(b []byte) error {
	type plain DriftResult
	return decodeEither(b, (*plain)(r))
}

func (r *TrainResult) UnmarshalJSON(b []byte) error {
	type plain TrainResult
	return decodeEither(b, (*plain)(r))
}

func (r *EvaluateResult) UnmarshalJSON(b []byte) error {
	type plain EvaluateResult
	return decodeEither(b, (*plain)(r))
}

func (r *PolicyResult) UnmarshalJSON(b []byte) error {
	type plain PolicyResult
	return decodeEither(b, (*plain)(r))
}

func (r *LiveMAE) UnmarshalJSON(b []byte) error {
	type plain LiveMAE
	return decodeEither(b, (*plain)(r))
}

func (r *CanaryEvalResult) UnmarshalJSON(b []byte) error {
	type plain CanaryEvalResult
	return decodeEither(b, (*plain)(r))
}

func (r *MonitorWindowResult) UnmarshalJSON(b []byte) error {
	type plain MonitorWindowResult
	return decodeEither(b, (*plain)(r))
}

// renamed is a field whose key was its Go name and is now its json tag's name.
type renamed struct{ goName, key string }

var renames sync.Map // reflect.Type -> []renamed

func renamesOf(t reflect.Type) []renamed {
	if r, ok := renames.Load(t); ok {
		return r.([]renamed)
	}
	var out []renamed
	for i := range t.NumField() {
		f := t.Field(i)
		tag, _, _ := bytes.Cut([]byte(f.Tag.Get("json")), []byte(","))
		if f.IsExported() && len(tag) > 0 && string(tag) != f.Name {
			out = append(out, renamed{f.Name, string(tag)})
		}
	}
	renames.Store(t, out)
	return out
}

// decodeEither decodes a JSON object into the struct v points at, reading a key that is a
// field's Go name as that field (the json tag's key wins when both are there). An object
// without such a key is decoded directly.
func decodeEither(data []byte, v any) error {
	fields := renamesOf(reflect.TypeOf(v).Elem())
	legacy := false
	for _, f := range fields {
		if bytes.Contains(data, []byte(`"`+f.goName+`"`)) {
			legacy = true
			break
		}
	}
	if !legacy {
		return json.Unmarshal(data, v)
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(data, &obj); err != nil {
		return json.Unmarshal(data, v) // not an object: the decoder's own error
	}
	for _, f := range fields {
		raw, ok := obj[f.goName]
		if !ok {
			continue
		}
		if _, tagged := obj[f.key]; !tagged {
			obj[f.key] = raw
		}
		delete(obj, f.goName)
	}
	data, err := json.Marshal(obj)
	if err != nil {
		return err
	}
	return json.Unmarshal(data, v)
}
