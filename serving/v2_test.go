package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

func getJSON(t *testing.T, url string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Get(url)
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestOpenInferenceProtocolV2(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	code, _ := getJSON(t, ts.URL+"/v2/health/ready")
	require.Equal(t, http.StatusServiceUnavailable, code)
	code, _ = getJSON(t, ts.URL+"/v2/health/live")
	require.Equal(t, http.StatusOK, code)
	v1 := register(t, r, "r1", 2, true)
	deploy(t, r, v1, 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	code, _ = getJSON(t, ts.URL+"/v2/health/ready")
	require.Equal(t, http.StatusOK, code)
	code, out := getJSON(t, ts.URL+"/v2/models/demand/ready")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, true, out["ready"])
	code, out = getJSON(t, ts.URL+"/v2/models/demand")
	require.Equal(t, http.StatusOK, code)
	require.Equal(t, []any{"1"}, out["versions"])
	require.Len(t, out["inputs"], 2)
	code, _ = getJSON(t, ts.URL+"/v2/models/nope")
	require.Equal(t, http.StatusNotFound, code)

	body := `{"id": "batch-1", "inputs": [
		{"name": "x", "shape": [3], "datatype": "FP64", "data": [1, 2, 3]},
		{"name": "z", "shape": [3], "datatype": "INT64", "data": [0, 1, 0]}],
		"parameters": {"routing_key": "k", "explain": true}}`
	code, out = post(t, ts.URL+"/v2/models/demand/infer", body)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "1", out["model_version"])
	require.Equal(t, "production", out["parameters"].(map[string]any)["route"])
	outputs := out["outputs"].([]any)
	pred := outputs[0].(map[string]any)
	require.Equal(t, "prediction", pred["name"])
	data := pred["data"].([]any)
	require.Len(t, data, 3)
	require.InDelta(t, 2, data[0], 1e-6)
	require.InDelta(t, 5, data[1], 1e-6) // 2*2 + 1
	// base + contributions = prediction for every row
	base := outputs[1].(map[string]any)["data"].([]any)
	sx := outputs[2].(map[string]any)["data"].([]any)
	sz := outputs[3].(map[string]any)["data"].([]any)
	for i := range 3 {
		require.InDelta(t, data[i].(float64), base[i].(float64)+sx[i].(float64)+sz[i].(float64), 1e-9)
	}

	for _, c := range []struct{ body, want string }{
		{`{"inputs": []}`, "at least one input"},
		{`{"inputs": [{"name": "x", "shape": [2], "datatype": "FP64", "data": [1]}]}`, "shape [2] holds 2 values, data has 1"},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["a"]}]}`, `"a" is not a number: feature x takes numbers`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "STRING", "data": ["a"]}]}`, `datatype "STRING": want FP64, FP32`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": ["a"]}]}`, "data[0]: want a number"},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}]}`, `missing feature "z"`},
		{`{"inputs": [{"name": "x", "shape": [1], "datatype": "FP64", "data": [1]}, {"name": "z", "shape": [2], "datatype": "FP64", "data": [1, 2]}]}`, "2 rows, x has 1"},
	} {
		code, out := post(t, ts.URL+"/v2/models/demand/infer", c.body)
		require.Equal(t, http.StatusBadRequest, code, c.body)
		require.Contains(t, out["error"], c.want)
	}
}

func TestBatchShadowAndFeedback(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	v1 := register(t, r, "r1", 2, false)
	v2 := register(t, r, "r2", 3, false)
	_, err := r.UpdateDeployment(context.Background(), "demand", registry.Change{Action: "test", Key: "shadow"}, func(d *registry.Deployment) (bool, error) {
		d.Production, d.Canary, d.CanaryShare, d.CanaryMode = v1, v2, 1, "shadow"
		return true, nil
	})
	require.NoError(t, err)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	code, out := post(t, ts.URL+"/v1/models/demand:predict", `{"request_id": "b", "routing_key": "k", "instances": [{"x": 1}, {"x": 2}], "attributes": {"region": "north"}}`)
	require.Equal(t, http.StatusOK, code, out)
	require.Equal(t, "production", out["route"], "in shadow mode production answers")
	require.EqualValues(t, v1, out["version"])
	require.Equal(t, []any{2.0, 4.0}, roundAll(out["predictions"].([]any)))
	toks := out["label_tokens"].([]any)
	require.Len(t, toks, 2, "one label token per instance")
	batch := out["request_id"].(string)
	require.NotEqual(t, "b", batch, "the server chooses the id its labels name")
	require.Equal(t, "b", out["client_request_id"])
	code, out = post(t, ts.URL+"/v1/models/demand:predict", `{"instances": [{"x": 1}, {"x": "two"}]}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "instances[1].x")

	code, out = post(t, ts.URL+"/v1/models/demand/feedback", fmt.Sprintf(`{"labels": [{"request_id": "%s/0", "label": 2.5, "label_token": %q}, {"request_id": "%s/1", "label": 4.5, "label_token": %q}]}`, batch, toks[0], batch, toks[1]))
	require.Equal(t, http.StatusAccepted, code, out)
	code, _ = post(t, ts.URL+"/v1/models/demand/feedback", `{"request_id": "b/0"}`)
	require.Equal(t, http.StatusBadRequest, code)
	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	routes := map[string]int{}
	for _, rec := range recs {
		routes[fmt.Sprintf("%s v%d %s", rec.Route, rec.Version, strings.Replace(rec.RequestID, batch, "b", 1))]++
		require.Equal(t, `{"region":"north"}`, rec.Attributes)
	}
	require.Equal(t, map[string]int{"shadow v2 b/0": 1, "shadow v2 b/1": 1, "production v1 b/0": 1, "production v1 b/1": 1}, routes)
	labels, err := predlog.ReadLabels(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, labels, 2)
}

func roundAll(v []any) []any {
	out := make([]any, len(v))
	for i, x := range v {
		out[i] = float64(int(x.(float64)*1e6+0.5)) / 1e6
	}
	return out
}

// Hot swap under load: requests run continuously while the deployment changes 20 times; no
// request fails, and each answer names a version that was live during that request.
func TestHotSwapUnderLoad(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	var versions []int
	for i := range 4 {
		versions = append(versions, register(t, r, fmt.Sprint("r", i), float64(i+1), false))
	}
	deploy(t, r, versions[0], 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	// live[e] is the production version of epoch e; epochs advance after each swap.
	var mu sync.Mutex
	live := []int{versions[0]}
	var epoch atomic.Int64
	stop := make(chan struct{})
	var failures, checked atomic.Int64
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				e0 := epoch.Load()
				resp, err := client.Post(ts.URL+"/v1/models/demand:predict", "application/json",
					strings.NewReader(fmt.Sprintf(`{"routing_key": "w%d-%d", "features": {"x": 1}}`, w, i)))
				if err != nil {
					failures.Add(1)
					continue
				}
				// Versions appended from here on were swapped in after this answer was made.
				mu.Lock()
				n1 := len(live)
				mu.Unlock()
				var out PredictResponse
				err = json.NewDecoder(resp.Body).Decode(&out)
				resp.Body.Close()
				if err != nil || resp.StatusCode != http.StatusOK {
					failures.Add(1)
					continue
				}
				mu.Lock()
				ok := false
				for e := int(e0); e < n1; e++ {
					ok = ok || live[e] == out.Version
				}
				mu.Unlock()
				if !ok {
					t.Errorf("answer from v%d, not live between epoch %d and version %d", out.Version, e0, n1-1)
				}
				checked.Add(1)
			}
		}()
	}
	for i := 1; i <= 20; i++ {
		time.Sleep(15 * time.Millisecond)
		next := versions[i%len(versions)]
		mu.Lock()
		live = append(live, next) // the new version may answer from now on
		mu.Unlock()
		deploy(t, r, next, 0, 0)
		require.NoError(t, s.watchers["demand"].poll(context.Background()))
		epoch.Add(1)
	}
	time.Sleep(15 * time.Millisecond)
	close(stop)
	wg.Wait()
	require.Zero(t, failures.Load(), "no request failed during 20 swaps")
	require.Greater(t, checked.Load(), int64(100))
}
