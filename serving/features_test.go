package serving

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// A request naming only its entity gets the feature service's values from the online store:
// the answer uses them and says where they came from and how old they were; a value past the
// view's online_expiry is not served (the feature's default is, said so; without a default the
// request is refused naming the feature); a request without the entity's attributes is
// refused naming the attribute; a store that fails gets the defaults, said so.
func TestServingReadsTheFeatureServiceFromTheOnlineStore(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)
	store, err := features.OpenBolt(filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, err)
	defer store.Close()
	ev := now.Add(-12 * time.Hour).UnixMicro()
	old := now.Add(-72 * time.Hour).UnixMicro()
	require.NoError(t, store.Put(ctx, "v", []features.FeatureRow{{Key: "1|2", Event: ev, Created: ev, Values: []float64{1, 9}},
		{Key: "3|4", Event: old, Created: old, Values: []float64{1, 9}}}))
	repo := features.Repo{Entities: []features.Entity{{Name: "e", Keys: []string{"store_id", "item_id"}}},
		Views: []features.View{{Name: "v", Entity: "e", OnlineExpiry: spec.Duration{Duration: 48 * time.Hour},
			Features: []features.Feature{{Name: "z", Op: features.OpValue, Column: "z"}, {Name: "w", Op: features.OpValue, Column: "w"}}}},
		Services: []features.Service{{Name: "svc", Features: []string{"v:z", "v:w"}}}} // the model uses z, not w
	b := objstore.NewMem()
	r := registry.New(b)
	ff := &FeatureFiller{Store: store, Repo: repo, Service: "svc", Keys: []string{"store_id", "item_id"}, Now: func() time.Time { return now }}
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Features: ff})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0) // y = 2x + z
	require.NoError(t, s.watchers["demand"].poll(ctx))
	ask := func(attrs string) (int, map[string]any) {
		return post(t, ts.URL+"/v1/models/demand:predict", fmt.Sprintf(`{"request_id": "f-%d", "features": {"x": 1}, "attributes": %s}`, time.Now().UnixNano(), attrs))
	}
	code, out := ask(`{"store_id": "1", "item_id": "2"}`)
	require.Equal(t, http.StatusOK, code, out)
	require.InDelta(t, 3, out["prediction"], 1e-6, "z from the online store")
	require.Nil(t, out["fallback"], "values from the store are provenance, not a fallback")
	require.Equal(t, map[string]any{"service": "svc", "served": 1.0, "fell_back": 0.0, "oldest_age_s": 43200.0}, out["features"], "w is not used by the model")
	code, out = post(t, ts.URL+"/v1/models/demand:predict", `{"features": {"x": 1, "z": 0}}`)
	require.Equal(t, http.StatusOK, code, out)
	require.InDelta(t, 2, out["prediction"], 1e-6, "a feature the request carries is not looked up")
	code, out = ask(`{"store_id": "3", "item_id": "4"}`)
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "feature z of 3|4: expired: 72h0m0s old, online_expiry 48h0m0s, and no default is configured")
	ff.Defaults = map[string]float64{"z": 0.5}
	code, out = ask(`{"store_id": "3", "item_id": "4"}`)
	require.Equal(t, http.StatusOK, code, out)
	require.InDelta(t, 2.5, out["prediction"], 1e-6, "the default, not the expired value")
	require.Contains(t, out["fallback"], "features svc of 3|4: z: expired: 72h0m0s old, online_expiry 48h0m0s; used the default 0.5")
	require.Equal(t, 1.0, out["features"].(map[string]any)["fell_back"])
	code, out = ask(`{"store_id": "1"}`)
	require.Equal(t, http.StatusBadRequest, code)
	require.Contains(t, out["error"], "attributes.item_id is needed to read the features of svc")
	require.NoError(t, store.Close()) // the store fails from now on
	code, out = ask(`{"store_id": "1", "item_id": "2"}`)
	require.Equal(t, http.StatusOK, code, out)
	require.True(t, strings.Contains(fmt.Sprint(out["fallback"]), "z: online store failed (error); used the default 0.5"), out)
	require.InDelta(t, 2.5, out["prediction"], 1e-6)
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.Enrichments.WithLabelValues("demand", "svc", "store_error")))
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.Enrichments.WithLabelValues("demand", "svc", "partial")), "the expired value")
	require.Equal(t, 1.0, testutil.ToFloat64(s.metrics.Enrichments.WithLabelValues("demand", "svc", "ok")))
	// The prediction log keeps the provenance apart from fallbacks.
	s.Close()
	recs, err := predlog.Read(ctx, b, "demand", time.Now().Add(-time.Hour), time.Now().Add(time.Hour))
	require.NoError(t, err)
	withFeatures := 0
	for _, r := range recs {
		if r.Features != "" {
			withFeatures++
			require.Contains(t, r.Features, `"service":"svc"`)
		}
	}
	require.Equal(t, 3, withFeatures, "the answers that read the store (served, expired with a default, store failed)")
}

// Serving may start before the definitions are applied: requests are taken as they come until
// Load finds them, then the service's features are read from the store; a new version applied
// later is picked up.
func TestServingLoadsTheDefinitionsWhenApplied(t *testing.T) {
	ctx := context.Background()
	now := time.Date(2026, 10, 15, 12, 0, 0, 0, time.UTC)
	store, err := features.OpenBolt(filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, err)
	defer store.Close()
	ev := now.Add(-time.Hour).UnixMicro()
	require.NoError(t, store.Put(ctx, "v", []features.FeatureRow{{Key: "1|2", Event: ev, Created: ev, Values: []float64{1}}}))
	require.NoError(t, store.Put(ctx, "v2", []features.FeatureRow{{Key: "1|2", Event: ev, Created: ev, Values: []float64{4}}}))
	repoOf := func(view string) features.Repo {
		return features.Repo{Entities: []features.Entity{{Name: "e", Keys: []string{"store_id", "item_id"}}},
			Views:    []features.View{{Name: view, Entity: "e", Features: []features.Feature{{Name: "z", Op: features.OpValue, Column: "z"}}}},
			Services: []features.Service{{Name: "svc", Features: []string{view + ":z"}}}}
	}
	var applied atomic.Pointer[features.Repo]
	ff := &FeatureFiller{Store: store, Service: "svc", Keys: []string{"store_id", "item_id"}, Now: func() time.Time { return now },
		ReloadEvery: 10 * time.Millisecond, Load: func(context.Context) (features.Repo, bool, error) {
			if r := applied.Load(); r != nil {
				return *r, true, nil
			}
			return features.Repo{}, false, nil
		}}
	b := objstore.NewMem()
	r := registry.New(b)
	s, err := New(Options{Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Features: ff})
	require.NoError(t, err, "no definitions yet is not an error")
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0) // y = 2x + z
	require.NoError(t, s.watchers["demand"].poll(ctx))
	ask := func() (int, map[string]any) {
		return post(t, ts.URL+"/v1/models/demand:predict", `{"features": {"x": 1}, "attributes": {"store_id": "1", "item_id": "2"}}`)
	}
	code, out := ask()
	require.Equal(t, http.StatusBadRequest, code, out)
	require.Contains(t, out["error"], "z", "without definitions the missing feature is named")
	first := repoOf("v")
	applied.Store(&first)
	require.Eventually(t, func() bool { code, out = ask(); return code == http.StatusOK }, 5*time.Second, 20*time.Millisecond)
	require.InDelta(t, 3, out["prediction"], 1e-6)
	second := repoOf("v2")
	applied.Store(&second)
	require.Eventually(t, func() bool { _, out = ask(); p, _ := out["prediction"].(float64); return math.Abs(p-6) < 1e-6 }, 5*time.Second, 20*time.Millisecond,
		"the new version reads view v2")
}
