package features

import (
	"context"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

type entityFileRow struct {
	StoreID int32   `parquet:"store_id,optional"`
	ItemID  int32   `parquet:"item_id"`
	At      string  `parquet:"at"`
	Label   float64 `parquet:"label"`
	Note    *string `parquet:"note,optional"`
}

// Entity rows from a Parquet file (keys, a time of day, any other columns): the training set
// holds every row with its columns unchanged and the service's features bit for bit as the
// offline join gives them as of each row's time, in one Parquet object.
func TestRetrieveFromAnEntityFileOnMinIO(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, src := demoOnMinIO(t, 3, 5, 40)
	var rows []entityFileRow
	var ents []EntityRow
	for i := range 300 {
		at := cfg.Start.Add(time.Duration(i%40)*24*time.Hour + time.Duration(i%24)*time.Hour + 17*time.Minute)
		r := entityFileRow{StoreID: int32(1 + i%3), ItemID: int32(1 + i%5), At: at.Format(time.RFC3339), Label: float64(i)}
		if i%7 == 0 {
			note := fmt.Sprint("n", i)
			r.Note = &note
		}
		rows = append(rows, r)
		ents = append(ents, EntityRow{Key: fmt.Sprintf("%d|%d", r.StoreID, r.ItemID), At: at.UnixMicro()})
	}
	put := func(key string, rows []entityFileRow) {
		data, err := dataset.EncodeParquet(rows)
		require.NoError(t, err)
		_, err = store.Put(ctx, key, data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	put("entities/e.parquet", rows)
	srcs := map[string]dataset.Snapshot{"retail_demand": src}
	pin := func(ctx context.Context, ds string, from, to time.Time) (dataset.Snapshot, error) {
		return dataset.TakeSnapshot(ctx, store, ds, "entities-src", from, to)
	}
	out, err := RetrieveFile(ctx, store, repo, "demand_forecast", contracts, pin, "entities/e.parquet", "at", "out/e/", t.TempDir())
	require.NoError(t, err)
	require.Len(t, out.Snapshot.Files, 1)
	require.Equal(t, "out/e/part-0.parquet", out.Snapshot.Files[0].Key)
	require.Equal(t, int64(len(rows)), out.Snapshot.Rows)

	ts, err := Retrieve(ctx, store, repo, "demand_forecast", contracts, srcs, ents)
	require.NoError(t, err)
	c, _, err := EntityFileContract(ctx, store, "entities/e.parquet", []string{"store_id", "item_id"}, "at")
	require.NoError(t, err)
	for _, f := range out.Columns {
		c.Columns = append(c.Columns, contractDouble(f))
	}
	i, found := 0, 0
	require.NoError(t, dataset.ScanSource(ctx, store, out.Snapshot, c, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			want := rows[i]
			require.Equal(t, float64(want.StoreID), bt.Cols["store_id"].Num[r])
			require.Equal(t, want.At, bt.Cols["at"].Str[r])
			require.Equal(t, want.Label, bt.Cols["label"].Num[r])
			require.Equal(t, want.Note == nil, bt.Cols["note"].Null[r])
			for j, f := range out.Columns {
				d := bt.Cols[f]
				w := ts.Vectors[i][j]
				if math.IsNaN(w) {
					require.True(t, d.Null[r], "row %d %s: nothing known by %s", i, f, want.At)
					continue
				}
				found++
				require.False(t, d.Null[r])
				require.Equal(t, math.Float64bits(w), math.Float64bits(d.Num[r]), "row %d %s", i, f)
			}
			i++
		}
		return nil
	}))
	require.Equal(t, len(rows), i)
	require.Greater(t, found, 2*len(rows), "most rows have history")

	// Bad entity files are named: a row without its key, no time column, a TIMESTAMP time.
	bad := append([]entityFileRow{}, rows[:10]...)
	put("entities/nokey.parquet", bad)
	type nullable struct {
		StoreID *int32 `parquet:"store_id,optional"`
		ItemID  int32  `parquet:"item_id"`
		At      string `parquet:"at"`
	}
	one := int32(1)
	data, err := dataset.EncodeParquet([]nullable{{&one, 1, "2026-09-20"}, {nil, 2, "2026-09-20"}})
	require.NoError(t, err)
	_, err = store.Put(ctx, "entities/nullkey.parquet", data, objstore.PutOptions{})
	require.NoError(t, err)
	_, err = RetrieveFile(ctx, store, repo, "demand_forecast", contracts, pin, "entities/nullkey.parquet", "at", "out/x/", t.TempDir())
	require.ErrorContains(t, err, "entities/nullkey.parquet row 1 has no entity key store_id")
	require.ErrorIs(t, err, dataset.ErrInvalidData)
	_, err = RetrieveFile(ctx, store, repo, "demand_forecast", contracts, pin, "entities/nokey.parquet", "event_timestamp", "out/x/", t.TempDir())
	require.ErrorContains(t, err, "entity file entities/nokey.parquet has no column event_timestamp")
	type stamped struct {
		StoreID int32     `parquet:"store_id"`
		ItemID  int32     `parquet:"item_id"`
		At      time.Time `parquet:"at,timestamp(microsecond)"`
	}
	data, err = dataset.EncodeParquet([]stamped{{1, 1, cfg.Start}})
	require.NoError(t, err)
	_, err = store.Put(ctx, "entities/ts.parquet", data, objstore.PutOptions{})
	require.NoError(t, err)
	_, err = RetrieveFile(ctx, store, repo, "demand_forecast", contracts, pin, "entities/ts.parquet", "at", "out/x/", t.TempDir())
	require.ErrorContains(t, err, "time column at is a Parquet TIMESTAMP")
	objs, err := store.List(ctx, "out/x/")
	require.NoError(t, err)
	require.Empty(t, objs, "nothing written for a bad file")
}

func contractDouble(name string) contract.Column {
	return contract.Column{Name: name, Type: contract.TypeDouble, Role: contract.RoleFeature, Nullable: true}
}
