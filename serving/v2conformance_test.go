package serving

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// The Open Inference Protocol v2 as its clients use it, walked through the protocol's
// documented request shapes on a model of two features, x and z (prediction 2x + z):
// server metadata; the spec's infer example (one [2, 2] UINT32 tensor) and KServe's and
// MLServer's tabular request (one [1, F] FP32 tensor "input-0"), flat and nested; per-feature
// [N] and [N, 1] tensors; BYTES as categorical codes and as a request attribute; tensor and
// request parameters; requested outputs; version paths that pin the production or the canary
// version (logged as pinned, not as the canary's evidence); and the errors, each naming the
// input and the value.
func TestOpenInferenceProtocolV2Conformance(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	v1 := register(t, r, "r1", 2, true)
	v2 := register(t, r, "r2", 3, true) // 3x + z
	deploy(t, r, v1, v2, 0)             // a canary at share 0: only a pinned request reaches it
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	code, out := getJSON(t, ts.URL+"/v2")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "driftline", out["name"])
	require.NotEmpty(t, out["version"])
	require.Contains(t, out["extensions"], "version_routing")

	clientOf := map[string]string{} // the server's request id -> the protocol's id the client sent
	infer := func(path, body string) []float64 {
		t.Helper()
		code, out := post(t, ts.URL+path, body)
		require.Equal(t, http.StatusOK, code, "%s %s: %v", path, body, out)
		server := out["parameters"].(map[string]any)["request_id"].(string)
		require.Len(t, server, 32, "the server chooses the id its log and labels use")
		if id, ok := out["id"].(string); ok && id != server {
			clientOf[server] = id
		}
		var preds []float64
		for _, x := range out["outputs"].([]any)[0].(map[string]any)["data"].([]any) {
			preds = append(preds, float64(int(x.(float64)*1e6+0.5))/1e6)
		}
		return preds
	}
	const p = "/v2/models/demand/infer"
	// The protocol's example request: one tensor, shape [2, 2], the features in order.
	require.Equal(t, []float64{4, 10}, infer(p, `{"id": "42", "inputs": [{"name": "input0", "shape": [2, 2], "datatype": "UINT32", "data": [1, 2, 3, 4]}],
		"outputs": [{"name": "prediction"}]}`))
	// KServe's and MLServer's tabular clients: [1, F] FP32, flat or nested.
	require.Equal(t, []float64{20}, infer(p, `{"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP32", "data": [9.5, 1]}]}`))
	require.Equal(t, []float64{20, 4}, infer(p, `{"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64", "data": [[9.5, 1], [2, 0]]}]}`))
	// Per feature: [N] and [N, 1], integer and boolean types, tensor parameters.
	require.Equal(t, []float64{3, 4}, infer(p, `{"inputs": [{"name": "x", "shape": [2, 1], "datatype": "INT8", "data": [1, 2]},
		{"name": "z", "shape": [2], "datatype": "BOOL", "data": [true, false], "parameters": {"content_type": "np"}}]}`))
	// BYTES: a categorical code, and text that is a request attribute (logged with it).
	require.Equal(t, []float64{5}, infer(p, `{"id": "attr-1", "inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [2]},
		{"name": "z", "shape": [1], "datatype": "BYTES", "data": ["1"]}, {"name": "region", "shape": [1], "datatype": "BYTES", "data": ["north"]}],
		"parameters": {"content_type": "pd"}}`))

	// Version paths: the canary's version answers when named, production's likewise.
	require.Equal(t, []float64{7}, infer("/v2/models/demand/versions/2/infer", `{"id": "pin-2", "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [2, 1]}]}`))
	require.Equal(t, []float64{5}, infer("/v2/models/demand/versions/1/infer", `{"id": "pin-1", "inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [2, 1]}]}`))
	code, out = post(t, ts.URL+"/v2/models/demand/versions/2/infer", `{"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [2, 1]}]}`)
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, "2", out["model_version"])
	require.Equal(t, "pinned", out["parameters"].(map[string]any)["route"])
	code, out = getJSON(t, ts.URL+"/v2/models/demand/versions/2")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"2"}, out["versions"])
	require.Equal(t, []any{"x", "z"}, out["parameters"].(map[string]any)["feature_order"])
	code, _ = getJSON(t, ts.URL+"/v2/models/demand/versions/2/ready")
	require.Equal(t, http.StatusOK, code)
	for _, path := range []string{"/v2/models/demand/versions/9/infer", "/v2/models/nope/versions/1/infer"} {
		code, out = post(t, ts.URL+path, `{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}`)
		require.Equal(t, http.StatusNotFound, code, path)
	}
	require.Contains(t, out["error"], `unknown model "nope"`)
	code, out = getJSON(t, ts.URL+"/v2/models/demand/versions/9/ready")
	require.Equal(t, http.StatusNotFound, code)
	require.Contains(t, out["error"], "version 9 is not served here (production v1, canary v2)")

	for _, c := range []struct{ body, want string }{
		{`{"inputs": [{"name": "input-0", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}`, "holds the model's 2 features in order (x, z): want [N, 2]"},
		{`{"inputs": [{"name": "input-0", "shape": [1, 2, 1], "datatype": "FP32", "data": [1, 2]}]}`, "want [N] (one feature, named by the input) or [N, 2]"},
		{`{"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP32", "data": [[1, 2], [3]]}]}`, "shape [2 2] holds 4 values, data has 3"},
		{`{"inputs": [{"name": "x", "shape": [2], "datatype": "INT64", "data": [1, 1.5]}, {"name": "z", "shape": [2], "datatype": "INT64", "data": [0, 0]}]}`, "inputs[0] (x) data[1]: 1.5 is not an integer (INT64)"},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "UINT8", "data": [-1]}]}`, "inputs[0] (x) data[0]: -1 is out of the range of UINT8"},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [true]}]}`, "data[0]: true is not FP64"},
		{`{"inputs": [{"name": "x", "shape": [-1], "datatype": "FP64", "data": [1]}]}`, "a request's dimensions are sizes"},
		{`{"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1, 2]}, {"name": "z", "shape": [1], "datatype": "FP64", "data": [1]}]}`, `inputs[1] (z): feature "z" is given by inputs[0] already`},
		{`{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1, 2]}, {"name": "z", "shape": [2], "datatype": "FP64", "data": [0, 0]},
			{"name": "region", "shape": [2], "datatype": "BYTES", "data": ["north", "south"]}]}`, "text inputs are request attributes, one value per request"},
		{`{"inputs": [{"name": "x", "shape": [0], "datatype": "FP64", "data": []}]}`, "empty batch"},
	} {
		code, out := post(t, ts.URL+p, c.body)
		require.Equal(t, http.StatusBadRequest, code, c.body)
		require.Contains(t, out["error"], c.want, c.body)
	}

	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	got := map[string]string{}
	for _, rec := range recs {
		if id := clientOf[rec.RequestID]; strings.HasPrefix(id, "pin-") || id == "attr-1" {
			got[id] = rec.Route + " " + rec.Attributes
		}
	}
	require.Equal(t, map[string]string{"pin-2": "pinned ", "pin-1": "production ", "attr-1": `production {"content_type":"pd","region":"north"}`}, got)
}
