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
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

func TestEnrichmentWithCircuitBreakerAndFallbacks(t *testing.T) {
	var down atomic.Bool
	var calls atomic.Int64
	weather := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		if down.Load() {
			http.Error(w, "down", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, `{"z": %s}`, map[string]string{"north": "1", "south": "0"}[r.URL.Query().Get("region")])
	}))
	defer weather.Close()
	s, ts := enrichedServer(t, weather.URL)

	ask := func(region string) (int, map[string]any) {
		return post(t, ts.URL+"/v1/models/demand:predict", fmt.Sprintf(`{"request_id": "q-%s-%d", "features": {"x": 1}, "attributes": {"region": %q}}`, region, time.Now().UnixNano(), region))
	}
	code, out := ask("north")
	require.Equal(t, http.StatusOK, code, out)
	require.InDelta(t, 3, out["prediction"], 1e-6, "z filled from the source")
	require.Nil(t, out["fallback"])
	// A feature the request carries is not looked up.
	before := calls.Load()
	code, out = post(t, ts.URL+"/v1/models/demand:predict", `{"features": {"x": 1, "z": 0}}`)
	require.Equal(t, http.StatusOK, code)
	require.InDelta(t, 2, out["prediction"], 1e-6)
	require.Equal(t, before, calls.Load())

	down.Store(true)
	code, out = ask("north")
	require.Equal(t, http.StatusOK, code)
	require.InDelta(t, 3, out["prediction"], 1e-6, "last known value")
	require.Contains(t, out["fallback"], "z: source failed (error); used the last known value 1")
	code, out = ask("south") // never seen: the default
	require.Equal(t, http.StatusOK, code)
	require.InDelta(t, 2.5, out["prediction"], 1e-6)
	require.Contains(t, out["fallback"], "used the default 0.5")
	for range 5 {
		ask("north")
	}
	n := calls.Load()
	code, out = ask("north")
	require.Equal(t, http.StatusOK, code)
	require.Contains(t, out["fallback"], "circuit_open")
	require.Equal(t, n, calls.Load(), "an open breaker does not call the source")
	require.Equal(t, 2.0, testutil.ToFloat64(s.metrics.BreakerState.WithLabelValues("z")))
	require.Positive(t, testutil.ToFloat64(s.metrics.Enrichments.WithLabelValues("demand", "z", "fallback_last_known")))

	code, out = post(t, ts.URL+"/v1/models/demand:predict", `{"features": {"x": 1}}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "attributes.region is needed to look up z")

	s.Close()
	recs, err := predlog.Read(context.Background(), s.opts.Store, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	fallbacks := 0
	for _, rec := range recs {
		if rec.Fallback != "" {
			fallbacks++
		}
	}
	require.GreaterOrEqual(t, fallbacks, 8, "the prediction log says which answers used a fallback")
}

// Requests naming keys the source does not know (404) cannot open the breaker for everyone:
// each gets the default, and the next request with a known key is still looked up.
func TestUnknownKeysDoNotOpenTheBreaker(t *testing.T) {
	weather := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("region") != "north" {
			http.Error(w, "no such region", http.StatusNotFound)
			return
		}
		fmt.Fprint(w, `{"z": 1}`)
	}))
	defer weather.Close()
	s, ts := enrichedServer(t, weather.URL)
	for i := range 50 {
		code, out := post(t, ts.URL+"/v1/models/demand:predict", fmt.Sprintf(`{"features": {"x": 1}, "attributes": {"region": "nowhere-%d"}}`, i))
		require.Equal(t, http.StatusOK, code)
		require.Contains(t, out["fallback"], "used the default 0.5")
		require.NotContains(t, out["fallback"], "circuit_open")
	}
	require.Zero(t, testutil.ToFloat64(s.metrics.BreakerState.WithLabelValues("z")), "the breaker is closed")
	code, out := post(t, ts.URL+"/v1/models/demand:predict", `{"features": {"x": 1}, "attributes": {"region": "north"}}`)
	require.Equal(t, http.StatusOK, code)
	require.InDelta(t, 3, out["prediction"], 1e-6, "a known key is still looked up")
	require.Nil(t, out["fallback"])
}

// enrichedServer serves y = 2x + z with z filled from the weather source at url (default 0.5).
func enrichedServer(t *testing.T, url string) (*Server, *httptest.Server) {
	t.Helper()
	b := objstore.NewMem()
	r := registry.New(b)
	en := &Enricher{Feature: "z", URL: url + "/v1/weather?region={region}", Timeout: time.Second, Default: 0.5}
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Enrich: []*Enricher{en}})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	t.Cleanup(ts.Close)
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	return s, ts
}
