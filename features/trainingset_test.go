package features

import (
	"context"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/spec"
)

// The training set a run builds from its window, on MinIO: every row of the window is there
// with its columns unchanged, an accepted row's features are bit for bit what Retrieve (the
// offline as-of join, checked against the generator by TestRetrieveTheDemosTrainingSetOnMinIO)
// gives for its key at its day, a row the contract rejects carries no features and is still
// rejected when the set is read with the model's contract, and the files are one per day.
func TestBuildTrainingSetOnMinIO(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, src := demoOnMinIO(t, 3, 8, 40)
	c := contracts["retail_demand"]
	from := cfg.Start.AddDate(0, 0, 30)
	base, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "ts-window", from, from.AddDate(0, 0, 9))
	require.NoError(t, err)
	var days []string
	out, err := BuildTrainingSet(ctx, store, TrainingSetInput{Repo: repo, Service: "demand_forecast", Base: base, BaseContract: c,
		EventTime: "date", Sources: map[string]dataset.Snapshot{"retail_demand": src}, Contracts: contracts,
		Prefix: "trainingsets/demand_fs/r1/", Progress: func(day string, _ int64) { days = append(days, day) }})
	require.NoError(t, err)
	require.Equal(t, []string{"units_yesterday", "units_7d", "units_28d_mean", "price_rel_28d"}, out.Columns)
	require.Equal(t, base.Rows, out.Snapshot.Rows, "every row of the window, accepted or not")
	require.Len(t, out.Snapshot.Files, 10)
	require.Len(t, days, 10)
	for _, f := range out.Snapshot.Files {
		require.True(t, strings.HasPrefix(f.Key, "trainingsets/demand_fs/r1/dt="+f.Date+"/"), f.Key)
	}

	// The window's rows as read from the source, in order.
	type row struct {
		key, date string
		cells     []string
		accepted  bool
	}
	read := func(s dataset.Snapshot, sc spec.Spec, extra []string) ([]row, [][]float64) {
		var rows []row
		var feats [][]float64
		require.NoError(t, dataset.ScanSource(ctx, store, s, sc.Contract, dataset.AllDays)(func(bt *dataset.Batch) error {
			for r := 0; r < bt.Rows; r++ {
				x := row{date: bt.Date, accepted: bt.Accepted[r]}
				for _, col := range c.Columns {
					x.cells = append(x.cells, bt.Value(col, r))
				}
				x.key = bt.Value(c.Columns[1], r) + "|" + bt.Value(c.Columns[2], r)
				rows = append(rows, x)
				var f []float64
				for _, e := range extra {
					v := math.NaN()
					if d := bt.Cols[e]; !d.Null[r] {
						v = d.Num[r]
					}
					f = append(f, v)
				}
				feats = append(feats, f)
			}
			return nil
		}))
		return rows, feats
	}
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	want, _ := read(base, sp, nil)
	got, feats := read(out.Snapshot, sp.WithFeatures(out.Columns), out.Columns)
	require.Len(t, got, len(want))
	var ents []EntityRow
	rejected := 0
	for i := range want {
		require.Equal(t, want[i], got[i], "row %d unchanged, and accepted or rejected as before", i)
		if !want[i].accepted {
			rejected++
			for j := range out.Columns {
				require.True(t, math.IsNaN(feats[i][j]), "a rejected row has no features")
			}
			continue
		}
		at, err := time.Parse("2006-01-02", want[i].date)
		require.NoError(t, err)
		ents = append(ents, EntityRow{Key: want[i].key, At: at.UnixMicro()})
	}
	require.Positive(t, rejected, "the generator leaves some temperatures out")
	ts, err := Retrieve(ctx, store, repo, "demand_forecast", contracts, map[string]dataset.Snapshot{"retail_demand": src}, ents)
	require.NoError(t, err)
	k, found := 0, 0
	for i := range want {
		if !want[i].accepted {
			continue
		}
		for j := range out.Columns {
			g, w := feats[i][j], ts.Vectors[k][j]
			require.True(t, math.Float64bits(g) == math.Float64bits(w) || (math.IsNaN(g) && math.IsNaN(w)),
				"%s at %s, %s: training set %v, offline join %v", want[i].key, want[i].date, out.Columns[j], g, w)
			if !math.IsNaN(g) {
				found++
			}
		}
		k++
	}
	require.Greater(t, found, 3*len(ents), "most rows have history 30 days into the data")
	tmp := t.TempDir()
	// Partitioned in 40 or so (the bound on memory): the same set, value for value.
	small, err := BuildTrainingSet(ctx, store, TrainingSetInput{Repo: repo, Service: "demand_forecast", Base: base, BaseContract: c,
		EventTime: "date", Sources: map[string]dataset.Snapshot{"retail_demand": src}, Contracts: contracts,
		Prefix: "trainingsets/demand_fs/r2/", RowsPerPartition: 50, RowsPerFile: 10, TempDir: tmp})
	require.NoError(t, err)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Empty(t, left, "the spilled partitions are removed")
	require.Equal(t, 1, out.Partitions)
	require.Greater(t, small.Partitions, 20)
	require.Len(t, small.Snapshot.Files, 30, "files cut at 10 rows: a day of 24 rows in three")
	require.Equal(t, out.Snapshot.Rows, small.Snapshot.Rows)
	require.Equal(t, out.Missing, small.Missing)
	got2, feats2 := read(small.Snapshot, sp.WithFeatures(out.Columns), out.Columns)
	require.Equal(t, got, got2)
	for i := range feats {
		for j := range feats[i] {
			require.Equal(t, math.Float64bits(feats[i][j]), math.Float64bits(feats2[i][j]), "row %d %s", i, out.Columns[j])
		}
	}
	var missing int64
	for _, m := range out.Missing {
		missing += m
	}
	require.Equal(t, int64(4*len(ents)-found), missing)
}

// A window whose rows lack an entity key column, or a service of an unknown view, is refused
// naming the column or the view; nothing is written.
func TestBuildTrainingSetNamesWhatIsMissing(t *testing.T) {
	ctx := context.Background()
	store, cfg, repo, contracts, src := demoOnMinIO(t, 1, 2, 3)
	c := contracts["retail_demand"]
	base, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "w", cfg.Start, cfg.Start.AddDate(0, 0, 2))
	require.NoError(t, err)
	noKey := c
	noKey.Columns = nil
	for _, col := range c.Columns {
		if col.Name != "item_id" {
			noKey.Columns = append(noKey.Columns, col)
		}
	}
	in := TrainingSetInput{Repo: repo, Service: "demand_forecast", Base: base, BaseContract: noKey, EventTime: "date",
		Sources: map[string]dataset.Snapshot{"retail_demand": src}, Contracts: contracts, Prefix: "ts/"}
	_, err = BuildTrainingSet(ctx, store, in)
	require.ErrorContains(t, err, `view "demand_history": entity store_item key "item_id" is not a column of dataset retail_demand`)
	require.ErrorIs(t, err, dataset.ErrInvalidData)
	in.BaseContract, in.Service = c, "nope"
	_, err = BuildTrainingSet(ctx, store, in)
	require.ErrorContains(t, err, `feature service "nope" is not defined`)
	objs, err := store.List(ctx, "ts/")
	require.NoError(t, err)
	require.Empty(t, objs)
}
