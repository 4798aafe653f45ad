package features

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/s3store"
	"github.com/driftline/driftline/spec"
)

func demoContracts(t *testing.T) map[string]contract.Contract {
	t.Helper()
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	return map[string]contract.Contract{sp.Dataset.Name: sp.Contract}
}

// The demo's training set from the example definitions, on MinIO: every value equals the
// one computed straight from the generator's rows (days before the training row's day only:
// a day's sales are known at its end), rows the contract quarantines left out, and a
// store-item's first day has nothing to join.
// demoOnMinIO writes the demo's data (stores x items x days) to a fresh MinIO and returns it
// with the example definitions, the contracts and a snapshot of every day.
func demoOnMinIO(t *testing.T, stores, items, days int) (*s3store.S3, dataset.RetailConfig, Repo, map[string]contract.Contract, dataset.Snapshot) {
	t.Helper()
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = stores, items, days
	_, _, err := dataset.WriteRetail(ctx, store, "retail_demand", cfg)
	require.NoError(t, err)
	contracts := demoContracts(t)
	repo, _, err := LoadRepo("../examples/features.yaml", contracts)
	require.NoError(t, err)
	snap, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "fs-test", cfg.Start, cfg.Start.AddDate(0, 0, cfg.Days-1))
	require.NoError(t, err)
	return store, cfg, repo, contracts, snap
}

func TestRetrieveTheDemosTrainingSetOnMinIO(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, snap := demoOnMinIO(t, 4, 10, 45)

	// The generator's accepted rows by store-item and day (a missing temperature is quarantined).
	type cell struct{ units, price float64 }
	days := map[string]map[int]cell{}
	for d := range cfg.Days {
		for _, r := range cfg.RetailDay(d) {
			if math.IsNaN(r.Temperature) {
				continue
			}
			k := fmt.Sprintf("%d|%d", r.StoreID, r.ItemID)
			if days[k] == nil {
				days[k] = map[int]cell{}
			}
			days[k][d] = cell{r.UnitsSold, r.Price}
		}
	}
	var ents []EntityRow
	var want [][]float64
	for k := range days {
		for _, d := range []int{0, 1, 5, 20, 31, 44} {
			ents = append(ents, EntityRow{Key: k, At: cfg.Start.AddDate(0, 0, d).UnixMicro()})
			// Joined: the latest day before d with a row (within 30 days), its aggregates.
			last := -1
			for p := d - 1; p >= max(0, d-30); p-- {
				if _, ok := days[k][p]; ok {
					last = p
					break
				}
			}
			if last < 0 {
				want = append(want, []float64{math.NaN(), math.NaN(), math.NaN(), math.NaN()})
				continue
			}
			var s7, s28, p28 float64
			n28 := 0
			for p := last; p > last-28 && p >= 0; p-- {
				c, ok := days[k][p]
				if !ok {
					continue
				}
				if p > last-7 {
					s7 += c.units
				}
				s28, p28, n28 = s28+c.units, p28+c.price, n28+1
			}
			want = append(want, []float64{days[k][last].units, s7, s28 / float64(n28), days[k][last].price / (p28 / float64(n28))})
		}
	}
	ts, err := Retrieve(ctx, store, repo, "demand_forecast", contracts, map[string]dataset.Snapshot{"retail_demand": snap}, ents)
	require.NoError(t, err)
	require.Equal(t, []string{"demand_history:units_yesterday", "demand_history:units_7d", "demand_history:units_28d_mean", "demand_history:price_rel_28d"}, ts.Names)
	diffs, missing := 0, 0
	for i, e := range ents {
		for j := range want[i] {
			w, g := want[i][j], ts.Vectors[i][j]
			if (math.IsNaN(w) != math.IsNaN(g)) || (!math.IsNaN(w) && math.Abs(w-g) > 1e-9*max(1, math.Abs(w))) {
				if diffs < 5 {
					t.Errorf("%s at %s, %s: got %v, want %v", e.Key, time.UnixMicro(e.At).UTC().Format("2006-01-02"), ts.Names[j], g, w)
				}
				diffs++
			}
		}
		if math.IsNaN(ts.Vectors[i][0]) {
			missing++
			require.Zero(t, ts.Events[i][0])
		} else {
			require.Less(t, ts.Events[i][0], e.At, "the joined day is before the training row's day")
		}
	}
	require.Zero(t, diffs)
	require.GreaterOrEqual(t, missing, len(days), "each store-item's first day has no history")
}

// Bad definitions are refused with every problem named: a missing column, a string column
// where a number is needed, a cycle of derived features, an unknown op, a service naming a
// feature that does not exist, a view of an unknown entity.
func TestDefinitionsNameEveryProblem(t *testing.T) {
	bad := `apiVersion: driftline.dev/v1
kind: FeatureRepo
entities:
  - {name: store_item, keys: [store_id, item_id]}
views:
  - name: v
    entity: store_item
    source: {dataset: retail_demand, event_time: date}
    features:
      - {name: a, op: rolling_sum, column: no_such_column, window: 24h}
      - {name: b, op: rolling_mean, column: region, window: 24h}
      - {name: c, op: ratio, of: d, to: units_sold}
      - {name: d, op: ratio, of: c, to: price}
      - {name: e, op: median, column: price}
      - {name: f, op: rolling_count, column: price}
  - name: w
    entity: shop
    source: {dataset: retail_demand, event_time: date}
    features: [{name: x, op: value, column: price}]
services:
  - {name: s, features: ["v:a", "v:zzz", "nope"]}
`
	r, err := ParseRepo([]byte(bad))
	require.NoError(t, err)
	err = r.Validate(demoContracts(t))
	require.Error(t, err)
	for _, want := range []string{
		`view "v" feature "a": column "no_such_column" is not a column of dataset retail_demand`,
		`view "v" feature "b": column "region" is a string column of dataset retail_demand; the operation needs a number`,
		`view "v": the derived features form a cycle: c -> d -> c`,
		`view "v" feature "e": op "median" is not one of`,
		`view "v" feature "f": rolling_count needs a positive window`,
		`view "w": entity "shop" is not defined`,
		`service "s": "v:zzz" is not a view:feature of these definitions`,
		`service "s": "nope" is not a view:feature`,
	} {
		require.Contains(t, err.Error(), want)
	}
	require.False(t, strings.Contains(err.Error(), `"v:a"`), "a valid reference is not named")
	_, err = ParseRepo([]byte("apiVersion: driftline.dev/v1\nkind: FeatureRepo\nviews:\n  - name: v\n    lookbak: 24h\n"))
	require.ErrorContains(t, err, "line 5: field lookbak not found")
}

// The registry of definitions on MinIO: versions written once, the pointer moved by
// compare-and-swap (a stale apply is refused and changes nothing), the same content again
// changes nothing, and plan lists what differs.
func TestApplyDefinitionsOnMinIO(t *testing.T) {
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	_, raw, err := LoadRepo("../examples/features.yaml", demoContracts(t))
	require.NoError(t, err)
	a, changed, err := Apply(ctx, store, "retail", raw, "", "dave", "first", "group:retail")
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 1, a.Version)
	_, _, etag, ok, err := Current(ctx, store, "retail")
	require.NoError(t, err)
	require.True(t, ok)
	_, changed, err = Apply(ctx, store, "retail", raw, etag, "dave", "again", "group:retail")
	require.NoError(t, err)
	require.False(t, changed)
	next := []byte(strings.Replace(string(raw), "online_expiry: 48h", "online_expiry: 24h", 1))
	_, _, err = Apply(ctx, store, "retail", next, "stale-etag", "erin", "x", "group:retail")
	require.ErrorIs(t, err, ErrConflict)
	cur, curRepo, etag2, _, err := Current(ctx, store, "retail")
	require.NoError(t, err)
	require.Equal(t, 1, cur.Version, "the refused apply changed nothing")
	require.Equal(t, etag, etag2)
	nextRepo, err := ParseRepo(next)
	require.NoError(t, err)
	require.Equal(t, []Change{{"view", "demand_history", "change"}}, Plan(curRepo, nextRepo))
	a, changed, err = Apply(ctx, store, "retail", next, etag, "erin", "serve fresher values", "group:retail")
	require.NoError(t, err)
	require.True(t, changed)
	require.Equal(t, 2, a.Version)
	v, _ := func() (View, bool) { _, r, _, _, _ := Current(ctx, store, "retail"); return r.View("demand_history") }()
	require.Equal(t, 24*time.Hour, v.OnlineExpiry.Duration)
}

// A source file whose schema changed (a feature's column dropped) fails the retrieval with an
// error naming the file and the column; nothing is joined from it silently.
func TestRetrieveNamesASourceFileWhoseSchemaChanged(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, _ := demoOnMinIO(t, 2, 3, 10)
	type changed struct { // units_sold renamed
		Date           string  `parquet:"date"`
		StoreID        int32   `parquet:"store_id"`
		ItemID         int32   `parquet:"item_id"`
		Region         string  `parquet:"region"`
		Price          float64 `parquet:"price"`
		Promo          int32   `parquet:"promo"`
		Weekday        int32   `parquet:"weekday"`
		Temperature    float64 `parquet:"temperature"`
		ItemPopularity float64 `parquet:"item_popularity"`
		Competitor     float64 `parquet:"competitor_price"`
		Units          float64 `parquet:"units"`
	}
	day := cfg.Start.AddDate(0, 0, 4)
	body, err := dataset.EncodeParquet([]changed{{Date: day.Format("2006-01-02"), StoreID: 1, ItemID: 1, Region: "north", Price: 3, Units: 7}})
	require.NoError(t, err)
	key := dataset.PartitionPrefix("retail_demand", day) + "part-0001.parquet"
	_, err = store.Put(ctx, key, body, objstore.PutOptions{})
	require.NoError(t, err)
	snap, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "fs-changed", cfg.Start, cfg.Start.AddDate(0, 0, cfg.Days-1))
	require.NoError(t, err)
	_, err = Retrieve(ctx, store, repo, "demand_forecast", contracts, map[string]dataset.Snapshot{"retail_demand": snap},
		[]EntityRow{{Key: "1|1", At: cfg.Start.AddDate(0, 0, 8).UnixMicro()}})
	require.Error(t, err)
	require.Contains(t, err.Error(), key)
	require.Contains(t, err.Error(), "units_sold")
}
