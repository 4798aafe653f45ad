package serving

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/registry"
)

// Every response of v1 and v2 is counted once, by the code it had, with the model, version
// and route that answered; names of models not served here never become series.
func TestEveryResponseCodeIsCountedOnV1AndV2(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	count := func(version, route, code string) float64 {
		return testutil.ToFloat64(s.metrics.Requests.WithLabelValues("demand", version, route, code))
	}
	for _, c := range []struct {
		path, body string
		code       int
	}{
		{"/v1/models/demand:predict", `{"features":{"x":1}}`, 200},
		{"/v1/models/demand:predict", `{"features":{"x":"one"}}`, 400},
		{"/v1/models/demand:predict", `{"features":{"y":1}}`, 400},
		{"/v1/models/nope:predict", `{}`, 404},
		{"/v2/models/demand/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}]}`, 200},
		{"/v2/models/demand/infer", `{"inputs":[{"name":"x","shape":[2],"datatype":"FP64","data":[1]}]}`, 400},
		{"/v2/models/demand/infer", `{"inputs":[{"name":"y","shape":[1],"datatype":"FP64","data":[1]}]}`, 400},
		{"/v2/models/nope/infer", `{}`, 404},
	} {
		code, out := post(t, ts.URL+c.path, c.body)
		require.Equal(t, c.code, code, "%s %s: %v", c.path, c.body, out)
	}
	require.Equal(t, 2.0, count("1", "production", "200"), "one v1 and one v2 answer")
	require.Equal(t, 2.0, count("", "", "400"), "malformed before a model answered")
	require.Equal(t, 2.0, count("1", "production", "400"), "refused by the model: missing feature")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.Requests.WithLabelValues("", "", "", "404")), "unknown models counted without their name")
	require.Equal(t, 2, testutil.CollectAndCount(s.metrics.Latency), "latency of answers, per route (production + canary pre-initialised)")
}

// The scoring core: typed errors for each kind, and enrichment under the request's context.
func TestScoreTypedErrorsAndRequestContext(t *testing.T) {
	var calls atomic.Int64
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	}))
	defer slow.Close()
	b := objstore.NewMem()
	r := registry.New(b)
	en := &Enricher{Feature: "z", URL: slow.URL + "/?region={region}", Timeout: 5 * time.Second, Default: 0.5}
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Enrich: []*Enricher{en}})
	require.NoError(t, err)
	t.Cleanup(s.Close)
	_, err = s.Score(context.Background(), ScoreRequest{Model: "nope"})
	require.Equal(t, http.StatusNotFound, httpStatus(err))
	_, err = s.Score(context.Background(), ScoreRequest{Model: "demand"})
	require.Equal(t, http.StatusServiceUnavailable, httpStatus(err), "nothing loaded yet")
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	_, err = s.Score(context.Background(), ScoreRequest{Model: "demand", Rows: []map[string]float64{{"x": 1, "z": 1, "w": 1}}, Start: time.Now()})
	require.NoError(t, err, "extra features are ignored")
	_, err = s.Score(context.Background(), ScoreRequest{Model: "demand", Rows: []map[string]float64{{"z": 1}}, Start: time.Now()})
	var se *ScoreError
	require.ErrorAs(t, err, &se)
	require.Equal(t, ErrBadInput, se.Kind)
	// A client that gives up cancels the enrichment call at once (the source would take 5 s).
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	t0 := time.Now()
	res, err := s.Score(ctx, ScoreRequest{Model: "demand", Rows: []map[string]float64{{"x": 1}}, Attributes: map[string]string{"region": "north"}, Start: time.Now()})
	require.NoError(t, err)
	require.Less(t, time.Since(t0), 2*time.Second)
	require.Contains(t, res.Fallback, "z: source failed (timeout); used the default 0.5")
	require.Equal(t, int64(1), calls.Load())
}

// OIP v2 requests carry attributes in parameters: enrichment and the prediction log see them.
func TestV2AttributesReachEnrichment(t *testing.T) {
	weather := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, `{"z": %s}`, map[string]string{"north": "1", "south": "0"}[r.URL.Query().Get("region")])
	}))
	defer weather.Close()
	b := objstore.NewMem()
	r := registry.New(b)
	en := &Enricher{Feature: "z", URL: weather.URL + "/?region={region}", Timeout: time.Second}
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Enrich: []*Enricher{en}})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0) // y = 2x + z
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	for _, params := range []string{`{"region":"north"}`, `{"attributes":{"region":"north"}}`} {
		code, out := post(t, ts.URL+"/v2/models/demand/infer", `{"inputs":[{"name":"x","shape":[1],"datatype":"FP64","data":[1]}],"parameters":`+params+`}`)
		require.Equal(t, http.StatusOK, code, out)
		outputs := out["outputs"].([]any)
		require.InDelta(t, 3, outputs[0].(map[string]any)["data"].([]any)[0], 1e-9, "z filled from the source for %s", params)
	}
	require.Equal(t, map[string]string{"region": "north", "note": "x"}, v2Attributes(map[string]any{"region": "north", "note": "x", "routing_key": "k", "explain": true}))
	require.Nil(t, v2Attributes(nil))
}
