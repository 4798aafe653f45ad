package activities

import (
	"context"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// A worker parses a window's manifest once: a second load is a conditional GET answered "not
// modified"; a manifest that changed under its key is read again; what a caller does with
// the loaded value does not reach the next caller.
func TestAManifestIsParsedOncePerWorker(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	b := objstore.WrapWithCounting(mem, nil)
	put := func(rows int64) {
		raw, err := json.Marshal(dataset.Snapshot{ID: "s", Files: []dataset.File{{Key: "datasets/d/dt=2026-09-01/part-0000.parquet", Rows: rows}}, Rows: rows})
		require.NoError(t, err)
		_, err = mem.Put(ctx, "snapshots/d/s.json", raw, objstore.PutOptions{})
		require.NoError(t, err)
	}
	put(10)
	s, err := loadSnapshot(ctx, b, "snapshots/d/s.json")
	require.NoError(t, err)
	read := b.Stats()[objstore.OpGet].Bytes
	require.Positive(t, read)
	s.Files[0].Rows = 999 // a caller's change stays its own
	again, err := loadSnapshot(ctx, b, "snapshots/d/s.json")
	require.NoError(t, err)
	require.Equal(t, int64(10), again.Files[0].Rows)
	require.Equal(t, read, b.Stats()[objstore.OpGet].Bytes, "not modified: nothing downloaded")
	put(20)
	changed, err := loadSnapshot(ctx, b, "snapshots/d/s.json")
	require.NoError(t, err)
	require.Equal(t, int64(20), changed.Files[0].Rows, "a manifest that changed is read again")
}
