package serving

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
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

// The forged label: whoever reaches the serving port tries to push labels. Only
// the label token of a real answer, unaltered, unexpired and once, gets a label in; every
// refusal is a 4xx with the reason and is counted.
func TestForgedLabelsAreRefused(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	code, out := post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":1}}`)
	require.Equal(t, 200, code)
	id, tok := out["request_id"].(string), out["label_token"].(string)
	require.Len(t, id, 32, "request ids are 128 random bits")
	code, other := post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":2}}`)
	require.Equal(t, 200, code)
	require.NotEqual(t, id, other["request_id"])
	label := func(rid, token string) (int, map[string]any) {
		return post(t, ts.URL+"/v1/models/demand/feedback", fmt.Sprintf(`{"request_id":%q,"label":99,"label_token":%q}`, rid, token))
	}
	stale := predlog.LabelToken(testLabelKey, "demand", 1, id, time.Now().Add(-8*24*time.Hour))
	forgedKey := predlog.LabelToken([]byte("not-the-serving-key-not-the-serving-key"), "demand", 1, id, time.Now())
	for _, c := range []struct {
		name, rid, token string
		code             int
		reason, want     string
	}{
		{"no token", id, "", 400, predlog.RefusedMissing, "label_token is required"},
		{"garbage", id, "x.y", 400, predlog.RefusedMalformed, "not a label token"},
		{"another request's token", other["request_id"].(string), tok, 403, predlog.RefusedAltered, "does not match"},
		{"a guessed request id", "c42b75f43cf2-1", tok, 403, predlog.RefusedAltered, "does not match"},
		{"altered version", id, "2" + tok[1:], 403, predlog.RefusedAltered, "does not match"},
		{"signed with another key", id, forgedKey, 403, predlog.RefusedAltered, "does not match"},
		{"expired", id, stale, 403, predlog.RefusedExpired, "labels are taken for"},
	} {
		code, out := label(c.rid, c.token)
		require.Equal(t, c.code, code, "%s: %v", c.name, out)
		require.Contains(t, out["error"], c.want, c.name)
	}
	// The same token spelled otherwise ("01.", "+1.", a zero-padded time) would verify with the
	// same MAC and pass the duplicate check as another string: refused as malformed.
	parts := strings.SplitN(tok, ".", 3)
	for _, variant := range []string{"0" + tok, "+" + tok, parts[0] + ".0" + parts[1] + "." + parts[2], parts[0] + ".+" + parts[1] + "." + parts[2]} {
		code, out := label(id, variant)
		require.Equal(t, http.StatusBadRequest, code, "%s: %v", variant, out)
		require.Contains(t, out["error"], "not a label token")
	}
	code, out = label(id, tok)
	require.Equal(t, http.StatusAccepted, code, out)
	code, out = label(id, tok)
	require.Equal(t, http.StatusConflict, code, "the same label twice: %v", out)
	for reason, n := range map[string]float64{predlog.RefusedMissing: 1, predlog.RefusedMalformed: 5, predlog.RefusedAltered: 4,
		predlog.RefusedExpired: 1, predlog.RefusedDuplicate: 1} {
		require.Equal(t, n, testutil.ToFloat64(s.metrics.LabelsRefused.WithLabelValues("demand", reason)), reason)
	}
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.LabelsAccepted.WithLabelValues("demand")))
	s.Close()
	labels, err := predlog.ReadLabels(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, labels, 1, "only the real label is in the log")
	require.Equal(t, tok, labels[0].Token)
}

// Labels outside the target's range in the model's registered contract (or not finite) are
// refused and counted: one client cannot feed the canary an absurd label.
func TestLabelsOutsideTheTargetRangeAreRefused(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	for i, c := range sp.Contract.Columns {
		if c.Name == sp.Target {
			top := 1000.0
			sp.Contract.Columns[i].Max = &top
		}
	}
	raw, err := yaml.Marshal(sp)
	require.NoError(t, err)
	sp, err = spec.Parse(raw)
	require.NoError(t, err)
	_, _, err = r.ApplySpec(context.Background(), sp, raw, "", "grace", "x", nil)
	require.NoError(t, err)
	s, ts := newServer(t, b)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	label := func(v string) (int, map[string]any) {
		_, out := post(t, ts.URL+"/v1/models/demand:predict", `{"features":{"x":1}}`)
		return post(t, ts.URL+"/v1/models/demand/feedback", fmt.Sprintf(`{"request_id":%q,"label":%s,"label_token":%q}`, out["request_id"], v, out["label_token"]))
	}
	for _, v := range []string{"10000", "-1", "1e308"} {
		code, out := label(v)
		require.Equal(t, http.StatusUnprocessableEntity, code, "%s: %v", v, out)
		require.Contains(t, out["error"], "registered contract")
	}
	code, out := label("999.5")
	require.Equal(t, http.StatusAccepted, code, out)
	require.Equal(t, 3.0, testutil.ToFloat64(s.metrics.LabelsRefused.WithLabelValues("demand", predlog.RefusedOutOfRange)))
}

// The duplicate set is shared by replicas and survives a restart: a label taken by one
// serving replica is refused (409) by another, and by a new process on the same bucket.
func TestALabelIsTakenOnceAcrossReplicasAndRestarts(t *testing.T) {
	b := objstore.NewMem()
	r := registry.New(b)
	deploy(t, r, register(t, r, "r1", 2, false), 0, 0)
	replica := func() (*Server, string) {
		s, ts := newServer(t, b)
		require.NoError(t, s.watchers["demand"].poll(context.Background()))
		return s, ts.URL
	}
	a, aURL := replica()
	_, bURL := replica()
	_, out := post(t, aURL+"/v1/models/demand:predict", `{"features":{"x":1}}`)
	body := fmt.Sprintf(`{"request_id":%q,"label":3,"label_token":%q}`, out["request_id"], out["label_token"])
	code, res := post(t, aURL+"/v1/models/demand/feedback", body)
	require.Equal(t, http.StatusAccepted, code, res)
	code, res = post(t, bURL+"/v1/models/demand/feedback", body)
	require.Equal(t, http.StatusConflict, code, "another replica: %v", res)
	require.Contains(t, res["error"], "labelled already")
	a.Close()
	_, cURL := replica() // a restart
	code, _ = post(t, cURL+"/v1/models/demand/feedback", body)
	require.Equal(t, http.StatusConflict, code, "after a restart")
}
