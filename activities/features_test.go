package activities

import (
	"context"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/features"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// A chunk of materialization on MinIO into Redis reads only the days its rows depend on and
// writes what materializing from the whole history writes; running it again, or an older
// chunk after it, changes nothing; a repository without definitions is refused, not retried.
func TestMaterializeChunkOnMinIOAndRedis(t *testing.T) {
	ctx := context.Background()
	store := stack.NewMinIOBucket(t)
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items, cfg.Days = 3, 8, 90
	_, _, err := dataset.WriteRetail(ctx, store, "retail_demand", cfg)
	require.NoError(t, err)
	specYAML, err := os.ReadFile("../examples/demand.yaml")
	require.NoError(t, err)
	sp, err := spec.Parse(specYAML)
	require.NoError(t, err)
	online, err := features.OpenRedis(ctx, stack.StartRedis(t), "m:")
	require.NoError(t, err)
	defer online.Close()
	act := &Features{Store: store, Online: online}
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	te.RegisterActivity(act)
	in := pipeline.MaterializeChunkInput{Repo: "retail", View: "demand_history", SpecYAML: string(specYAML), End: cfg.Start.AddDate(0, 0, 80).Add(12 * time.Hour)}
	_, err = te.ExecuteActivity(act.MaterializeChunk, in)
	require.ErrorContains(t, err, `feature repository "retail" has no applied definitions`)

	raw, err := os.ReadFile("../examples/features.yaml")
	require.NoError(t, err)
	_, _, err = features.Apply(ctx, store, "retail", raw, "", "dave", "test", "group:retail")
	require.NoError(t, err)
	chunk := func(end time.Time) pipeline.MaterializeChunkResult {
		in.End = end
		v, err := te.ExecuteActivity(act.MaterializeChunk, in)
		require.NoError(t, err)
		var res pipeline.MaterializeChunkResult
		require.NoError(t, v.Get(&res))
		return res
	}
	res := chunk(in.End)
	require.Equal(t, cfg.Stores*cfg.Items, res.Keys)
	require.Equal(t, 1, res.DefinitionsVersion)
	repo, _ := features.ParseRepo(raw)
	view, _ := repo.View("demand_history")
	days := int(features.History(view).Hours()/24) + 1
	require.LessOrEqual(t, res.SourceRows, days*cfg.Stores*cfg.Items, "only the days the rows depend on are read")
	require.Less(t, res.SourceRows, 80*cfg.Stores*cfg.Items)

	// The same as materializing from the whole history, into another store.
	ent, _ := repo.Entity("store_item")
	snap, err := dataset.TakeSnapshot(ctx, store, "retail_demand", "all", cfg.Start, cfg.Start.AddDate(0, 0, cfg.Days-1))
	require.NoError(t, err)
	src, err := features.ReadSource(ctx, store, view, ent, sp.Contract, snap)
	require.NoError(t, err)
	full, err := features.OpenBolt(t.TempDir() + "/full.db")
	require.NoError(t, err)
	defer full.Close()
	_, err = features.Materialize(ctx, full, view, src, in.End)
	require.NoError(t, err)
	keys := []string{"1|1", "2|5", "3|8"}
	read := func(o features.Online) [][]features.Match {
		var out [][]features.Match
		for _, k := range keys {
			m, err := o.Get(ctx, []string{"demand_history"}, k)
			require.NoError(t, err)
			out = append(out, m)
		}
		return out
	}
	want := read(full)
	require.Equal(t, want, read(online), "a chunk writes what the whole history gives")
	chunk(in.End)                       // again
	chunk(in.End.Add(-240 * time.Hour)) // an older chunk after it
	require.Equal(t, want, read(online), "idempotent, and older chunks never overwrite newer rows")
}
