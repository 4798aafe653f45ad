package pipeline

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fill sets every exported field of the struct v points at to a value that is not zero.
func fill(t *testing.T, v reflect.Value, seed int) {
	t.Helper()
	switch v.Kind() {
	case reflect.String:
		v.SetString(fmt.Sprintf("s%d", seed))
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(seed + 1))
	case reflect.Uint64:
		v.SetUint(uint64(seed))
	case reflect.Float64:
		v.SetFloat(float64(seed) + 0.5)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), seed)
	case reflect.Map:
		v.Set(reflect.MakeMap(v.Type()))
		e := reflect.New(v.Type().Elem()).Elem()
		fill(t, e, seed)
		v.SetMapIndex(reflect.ValueOf(fmt.Sprintf("k%d", seed)), e)
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Struct:
		for i := range v.NumField() {
			if v.Type().Field(i).IsExported() {
				fill(t, v.Field(i), seed*31+i)
			}
		}
	default:
		t.Fatalf("fill: %s", v.Type())
	}
}

// untagged is t's shape as it was before the tags: the same fields, keyed by Go name.
func untagged(t reflect.Type) reflect.Type {
	fields := make([]reflect.StructField, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		if f.IsExported() {
			f.Tag = ""
			fields = append(fields, f)
		}
	}
	return reflect.StructOf(fields)
}

// Every result that Temporal carries has snake_case keys, and reads what earlier versions
// wrote (keys named by Go field) to the same value: a history recorded before the tags
// replays with the values it recorded.
func TestResultsReadTheirEarlierShape(t *testing.T) {
	for _, v := range []any{&SnapshotResult{}, &ValidateResult{}, &DriftResult{}, &TrainResult{}, &EvaluateResult{}, &PolicyResult{},
		&LiveMAE{}, &CanaryEvalResult{}, &MonitorWindowResult{}} {
		rv := reflect.ValueOf(v).Elem()
		name := rv.Type().Name()
		fill(t, rv, 1)
		cur, err := json.Marshal(v)
		require.NoError(t, err)
		var keys map[string]any
		require.NoError(t, json.Unmarshal(cur, &keys))
		for k := range keys {
			require.Equal(t, strings.ToLower(k), k, "%s: key %q is not snake_case", name, k)
		}
		old := reflect.New(untagged(rv.Type())).Elem()
		old.Set(rv.Convert(old.Type()))
		legacy, err := json.Marshal(old.Interface())
		require.NoError(t, err)
		for _, again := range [][]byte{cur, legacy} {
			got := reflect.New(rv.Type())
			require.NoError(t, json.Unmarshal(again, got.Interface()), name)
			require.Equal(t, v, got.Interface(), "%s from %s", name, again)
		}
	}
}

// A canary evaluation as a history recorded before the tags holds it (nested live MAE
// included), and an object with both keys: the tagged one wins.
func TestALegacyCanaryResultDecodes(t *testing.T) {
	var c CanaryEvalResult
	require.NoError(t, json.Unmarshal([]byte(`{"Decision":"rollback","Reason":"live MAE","Step":2,"Share":0.25,
		"Candidate":{"requests":10},"MAE":{"CandidateLabels":40,"ProductionLabels":38,"MinLabels":30,"Candidate":2.5,"Production":1.5,"PValue":0.01,"Decided":true},
		"EvidenceURI":"s3://b/reports/m/r/canary-2-0.json"}`), &c))
	require.Equal(t, CanaryDecision("rollback"), c.Decision)
	require.Equal(t, 2, c.Step)
	require.Equal(t, 40, c.MAE.CandidateLabels)
	require.True(t, c.MAE.Decided)
	require.Equal(t, 0.01, c.MAE.PValue)
	require.Equal(t, "s3://b/reports/m/r/canary-2-0.json", c.EvidenceURI)
	var d DriftResult
	require.NoError(t, json.Unmarshal([]byte(`{"ReferenceVersion":1,"reference_version":2}`), &d))
	require.Equal(t, 2, d.ReferenceVersion)
	require.Error(t, json.Unmarshal([]byte(`["not an object"]`), &d))
}
