package serving

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// register trains a tiny model y = k*x (+ z when withZ) and registers it.
func register(t testing.TB, r *registry.Registry, run string, k float64, withZ bool) int {
	t.Helper()
	feats := []string{"x"}
	cols := [][]float64{{1, 2, 3, 4}}
	y := []float64{k, 2 * k, 3 * k, 4 * k}
	if withZ {
		feats = append(feats, "z")
		cols = append(cols, []float64{0, 1, 0, 1})
		for i := range y {
			y[i] += cols[1][i]
		}
	}
	lin, err := model.TrainRidge(cols, y, 0)
	require.NoError(t, err)
	art, err := (&model.Model{Family: "linear", Trainer: "ridge", Features: feats, Target: "y", Linear: lin}).Marshal()
	require.NoError(t, err)
	v, err := r.Register(context.Background(), registry.Version{Model: "demand", Lineage: registry.Lineage{RunID: run}}, art, drift.Profile{}, nil)
	require.NoError(t, err)
	return v.Version
}

func deploy(t testing.TB, r *registry.Registry, prod, canary int, share float64) {
	t.Helper()
	_, err := r.UpdateDeployment(context.Background(), "demand", registry.Change{Action: "test", Key: fmt.Sprint(time.Now().UnixNano())}, func(d *registry.Deployment) (bool, error) {
		d.Production, d.Canary, d.CanaryShare = prod, canary, share
		return true, nil
	})
	require.NoError(t, err)
}

func newServer(t *testing.T, b objstore.Bucket) (*Server, *httptest.Server) {
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, LabelKey: testLabelKey})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	return s, ts
}

var testLabelKey = []byte("serving-test-label-key-serving-test-label-key")

func post(t *testing.T, url, body string) (int, map[string]any) {
	t.Helper()
	resp, err := http.Post(url, "application/json", strings.NewReader(body))
	require.NoError(t, err)
	defer resp.Body.Close()
	var out map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

func TestServeLifecycle(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	ctx := context.Background()
	require.Error(t, s.watchers["demand"].poll(ctx))

	resp, err := http.Get(ts.URL + "/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, "not ready before a production version is loaded")
	code, _ := post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":1}}`)
	require.Equal(t, http.StatusServiceUnavailable, code)

	v1 := register(t, r, "r1", 2, false)
	deploy(t, r, v1, 0, 0)
	require.NoError(t, s.watchers["demand"].poll(ctx))
	resp, err = http.Get(ts.URL + "/readyz")
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)

	code, out := post(t, ts.URL+"/v1/models/demand:predict", `{"routing_key":"a","features":{"x":5},"explain":true}`)
	require.Equal(t, http.StatusOK, code, out)
	require.EqualValues(t, v1, out["version"])
	require.Equal(t, "production", out["route"])
	require.InDelta(t, 10, out["prediction"], 1e-9)
	expl := out["explanation"].(map[string]any)
	require.InDelta(t, out["prediction"].(float64), expl["base_value"].(float64)+expl["contributions"].(map[string]any)["x"].(float64), 1e-9)

	// Hot swap: a new production version is picked up by the next poll.
	v2 := register(t, r, "r2", 3, false)
	deploy(t, r, v2, 0, 0)
	require.NoError(t, s.watchers["demand"].poll(ctx))
	_, out = post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":5}}`)
	require.EqualValues(t, v2, out["version"])
	require.InDelta(t, 15, out["prediction"], 1e-9)
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.Requests.WithLabelValues("demand", "1", "production", "200")))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.Requests.WithLabelValues("demand", "2", "production", "200")))
	require.Equal(t, float64(v2), testutil.ToFloat64(s.metrics.Version.WithLabelValues("demand", "production")))
	require.Positive(t, testutil.ToFloat64(s.metrics.Busy.WithLabelValues("demand", "1")), "each version's time is accounted apart (cost per version)")
	require.Positive(t, testutil.ToFloat64(s.metrics.Busy.WithLabelValues("demand", "2")))

	// A broken deployment (missing version) keeps the previous models serving.
	deploy(t, r, 99, 0, 0)
	require.Error(t, s.watchers["demand"].poll(ctx))
	_, out = post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":5}}`)
	require.EqualValues(t, v2, out["version"])
	resp, err = http.Get(ts.URL + "/readyz")
	require.NoError(t, err)
	var ready map[string]map[string]any
	require.NoError(t, json.NewDecoder(resp.Body).Decode(&ready))
	require.Contains(t, ready["demand"]["error"], "v99")
}

func TestBadRequests(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	cases := []struct {
		name, path, body string
		code             int
		want             string
	}{
		{"unknown model", "/v1/models/nope:predict", `{}`, 404, "unknown model"},
		{"unknown field", "/v1/models/demand:predict", `{"featurez":{"x":1}}`, 400, "featurez"},
		{"wrong type", "/v1/models/demand:predict", `{"features":{"x":"one"}}`, 400, "features.x"},
		{"missing feature", "/v1/models/demand:predict", `{"features":{"y":1}}`, 400, `missing feature "x"`},
		{"not json", "/v1/models/demand:predict", `{"features":`, 400, "invalid JSON"},
		{"empty", "/v1/models/demand:predict", ``, 400, "empty request body"},
		{"trailing", "/v1/models/demand:predict", `{"features":{"x":1}} {}`, 400, "data after"},
		{"too large", "/v1/models/demand:predict", `{"request_id":"` + strings.Repeat("a", MaxBodyBytes) + `"}`, 413, "over"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out := post(t, ts.URL+c.path, c.body)
			require.Equal(t, c.code, code, out)
			require.Contains(t, out["error"], c.want)
		})
	}
}

func TestCanaryRoutingAndFallback(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	v1 := register(t, r, "r1", 2, false)
	v2 := register(t, r, "r2", 3, true) // needs feature z, which clients do not send
	deploy(t, r, v1, v2, 0.3)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	canary := 0
	for i := range 1000 {
		key := fmt.Sprintf("store-%d", i)
		in := InCanary(key, 0.3)
		require.Equal(t, in, InCanary(key, 0.3), "stable for a key")
		if in {
			canary++
		}
	}
	require.InDelta(t, 300, canary, 60, "about the configured share")

	var key string
	for i := 0; ; i++ {
		if key = fmt.Sprintf("k%d", i); InCanary(key, 0.3) {
			break
		}
	}
	code, out := post(t, ts.URL+"/v1/models/demand:predict", fmt.Sprintf(`{"routing_key":%q,"features":{"x":1,"z":1}}`, key))
	require.Equal(t, 200, code)
	require.Equal(t, "canary", out["route"])
	require.EqualValues(t, v2, out["version"])
	// Without z the candidate fails: production answers, the response says why, the log
	// records the candidate's error for the canary comparison.
	code, out = post(t, ts.URL+"/v1/models/demand:predict", fmt.Sprintf(`{"request_id":"fb","routing_key":%q,"features":{"x":1}}`, key))
	require.Equal(t, 200, code)
	fb := out["request_id"].(string)
	require.Equal(t, "production", out["route"])
	require.EqualValues(t, v1, out["version"])
	require.Contains(t, out["fallback"], `missing feature "z"`)
	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	var found bool
	for _, rec := range recs {
		if rec.RequestID == fb {
			found = true
			require.Equal(t, "canary", rec.Route)
			require.Contains(t, rec.Error, "missing feature")
		}
	}
	require.True(t, found, "the failed canary request is in the prediction log")
}

// A row's features are logged as typed columns: the model's features in its order (NaN: not
// sent), then what else the request sent, sorted; the model's own names slice when nothing else
// was sent.
func TestInputsAreLoggedAsTypedColumns(t *testing.T) {
	order := []string{"b", "zz"}
	k := newInputKeys(order)
	names, values := k.typed(map[string]float64{"b": 1.5, "a": -2, "c\"q": 1e-9})
	require.Equal(t, []string{"b", "zz", "a", "c\"q"}, names)
	require.Equal(t, 1.5, values[0])
	require.True(t, math.IsNaN(values[1]))
	require.Equal(t, []float64{-2, 1e-9}, values[2:])
	require.Equal(t, []string{"b", "zz"}, order, "the model's names are not changed")
	names, values = k.typed(map[string]float64{"b": 1, "zz": 2})
	require.Equal(t, []float64{1, 2}, values)
	require.Same(t, &order[0], &names[0], "no copy of the names on the common path")
	back, ok := predlog.Record{InputNames: names, InputValues: values}.InputMap()
	require.True(t, ok)
	require.Equal(t, map[string]float64{"b": 1, "zz": 2}, back)
}

func TestFastPathsAgreeWithEncodingJSON(t *testing.T) {
	req, ok := fastDecodePredict([]byte(`{"request_id":"r1","routing_key":"k","features":{"price":9.5,"promo":1},"explain":false,"attributes":{"region":"north"}}`))
	require.True(t, ok)
	require.Equal(t, PredictRequest{RequestID: "r1", RoutingKey: "k", Features: map[string]any{"price": 9.5, "promo": 1.0}, Attributes: map[string]string{"region": "north"}}, asDecoded(req))
	for _, body := range []string{`{"features":{"x":1},"instances":[]}`, `{"features":{"x":"1"}}`, `{"features":{"x":1e400}}`,
		`{"request_id":"\u0041","features":{}}`, `{"features":{"x":1},"features":{"x":1}}`, `{"features":{"x":1}}{}`, `{"explain":true}`} {
		_, ok := fastDecodePredict([]byte(body))
		require.False(t, ok, "the strict decoder handles %s", body)
	}
	resp := PredictResponse{RequestID: "r1", Model: "demand", Version: 3, Route: "canary", Prediction: 12.25, Fallback: "temperature: source failed"}
	b, ok := appendPredictResponse(nil, resp)
	require.True(t, ok)
	var back PredictResponse
	require.NoError(t, json.Unmarshal(b, &back))
	require.Equal(t, resp, back)
	_, ok = appendPredictResponse(nil, PredictResponse{Model: "a\"b"})
	require.False(t, ok, "escapes go through encoding/json")
}
