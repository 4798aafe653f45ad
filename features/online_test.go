package features

import (
	"context"
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
)

// stores opens each online store implementation for a test: the embedded one and Redis
// (Debian's redis-server, started for the test).
func stores(t *testing.T) map[string]Online {
	t.Helper()
	b, err := OpenBolt(filepath.Join(t.TempDir(), "online.db"))
	require.NoError(t, err)
	t.Cleanup(func() { b.Close() })
	r, err := OpenRedis(context.Background(), stack.StartRedis(t), "test:")
	require.NoError(t, err)
	t.Cleanup(func() { r.Close() })
	return map[string]Online{"bolt": b, "redis": r}
}

// The online store contract, against each implementation: values come back bit for bit
// (NaN, -0, infinities included); per key the row with the latest (event, created) is kept,
// so writing an older row or the same row again changes nothing; one read returns every
// view's row; an unknown key or view reads as no row.
func TestOnlineStoreContract(t *testing.T) {
	ctx := context.Background()
	for name, o := range stores(t) {
		t.Run(name, func(t *testing.T) {
			odd := []float64{math.NaN(), math.Copysign(0, -1), math.Inf(1), 1e-308, 3.14159}
			require.NoError(t, o.Put(ctx, "v1", []FeatureRow{{Key: "k1", Event: 100, Created: 150, Values: odd}, {Key: "k2", Event: 5, Created: 5, Values: []float64{2}}}))
			require.NoError(t, o.Put(ctx, "v2", []FeatureRow{{Key: "k1", Event: 90, Created: 90, Values: []float64{7, 8}}}))
			got, err := o.Get(ctx, []string{"v1", "v2", "none"}, "k1")
			require.NoError(t, err)
			require.Len(t, got, 3)
			require.True(t, got[0].Found)
			require.Equal(t, int64(100), got[0].Event)
			require.Equal(t, int64(150), got[0].Created)
			for i, v := range odd {
				require.Equal(t, math.Float64bits(v), math.Float64bits(got[0].Values[i]), "value %d bit for bit", i)
			}
			require.Equal(t, []float64{7, 8}, got[1].Values)
			require.False(t, got[2].Found, "an unknown view")
			// Older rows change nothing; a later one replaces; a correction of the same event
			// written later replaces too.
			require.NoError(t, o.Put(ctx, "v1", []FeatureRow{{Key: "k1", Event: 99, Created: 500, Values: []float64{-1}}}))
			require.NoError(t, o.Put(ctx, "v1", []FeatureRow{{Key: "k1", Event: 100, Created: 149, Values: []float64{-2}}}))
			got, err = o.Get(ctx, []string{"v1"}, "k1")
			require.NoError(t, err)
			require.Equal(t, int64(150), got[0].Created, "older rows were ignored")
			require.NoError(t, o.Put(ctx, "v1", []FeatureRow{{Key: "k1", Event: 100, Created: 160, Values: []float64{42}}}))
			got, _ = o.Get(ctx, []string{"v1"}, "k1")
			require.Equal(t, []float64{42}, got[0].Values, "the later write of the same event wins")
			require.NoError(t, o.Put(ctx, "v1", []FeatureRow{{Key: "k1", Event: 100, Created: 160, Values: []float64{42}}}))
			got, _ = o.Get(ctx, []string{"v1"}, "k1")
			require.Equal(t, []float64{42}, got[0].Values, "idempotent")
			got, err = o.Get(ctx, []string{"v1"}, "nobody")
			require.NoError(t, err)
			require.False(t, got[0].Found)
			// Negative times (before 1970) order too.
			require.NoError(t, o.Put(ctx, "v3", []FeatureRow{{Key: "k", Event: -10, Created: -10, Values: []float64{1}}}))
			require.NoError(t, o.Put(ctx, "v3", []FeatureRow{{Key: "k", Event: -20, Created: -20, Values: []float64{2}}}))
			got, _ = o.Get(ctx, []string{"v3"}, "k")
			require.Equal(t, []float64{1}, got[0].Values)
		})
	}
}

// Training and serving agree: after materializing the demo's view as of t into each online
// store, the vector served for a sample of store-items equals the offline training set's as
// of t bit for bit, and a value the online store withholds is one older than online_expiry.
func TestOnlineVectorEqualsTheOfflineOneOnMinIO(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, snap := demoOnMinIO(t, 5, 12, 40)
	v, _ := repo.View("demand_history")
	ent, _ := repo.Entity("store_item")
	src, err := ReadSource(ctx, store, v, ent, contracts["retail_demand"], snap)
	require.NoError(t, err)
	for name, o := range stores(t) {
		t.Run(name, func(t *testing.T) {
			for _, day := range []int{10, 25, 39} {
				at := cfg.Start.AddDate(0, 0, day).Add(13 * time.Hour) // mid-afternoon: yesterday's row is the latest known
				n, err := Materialize(ctx, o, v, append([]SourceRow(nil), src...), at)
				require.NoError(t, err)
				require.Equal(t, cfg.Stores*cfg.Items, n)
				var ents []EntityRow
				for s := 1; s <= cfg.Stores; s++ {
					for i := 1; i <= cfg.Items; i++ {
						ents = append(ents, EntityRow{Key: fmt.Sprintf("%d|%d", s, i), At: at.UnixMicro()})
					}
				}
				offline, err := Retrieve(ctx, store, repo, "demand_forecast", contracts, map[string]dataset.Snapshot{"retail_demand": snap}, ents)
				require.NoError(t, err)
				served, withheld := 0, 0
				for i, e := range ents {
					vec, err := ReadService(ctx, o, repo, "demand_forecast", e.Key, at)
					require.NoError(t, err)
					for j := range vec.Names {
						if vec.Missing[j] != "" {
							require.Contains(t, vec.Missing[j], "expired", "%s %s", e.Key, vec.Names[j])
							require.Greater(t, vec.Age[j], v.OnlineExpiry.Duration)
							withheld++
							continue
						}
						require.Equal(t, math.Float64bits(offline.Vectors[i][j]), math.Float64bits(vec.Values[j]), "%s %s as of %s", e.Key, vec.Names[j], at)
						require.Equal(t, offline.Events[i][0], vec.Event[j].UnixMicro())
						served++
					}
				}
				require.Positive(t, served)
				late, err := ReadService(ctx, o, repo, "demand_forecast", ents[0].Key, at.Add(72*time.Hour))
				require.NoError(t, err)
				for j := range late.Names {
					require.True(t, math.IsNaN(late.Values[j]), "three days later every value is past online_expiry (48h)")
					require.Contains(t, late.Missing[j], "expired")
				}
				t.Logf("day %d: %d values served equal to the training set's, %d withheld as expired", day, served, withheld)
			}
		})
	}
}
