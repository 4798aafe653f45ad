package dataset

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
)

// A step reading some days opens only their files, and its row keys are those of a scan of
// the whole window (so hash samples agree across steps).
func TestScanDaysOpensOnlyItsDays(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	cfg := DefaultRetail()
	cfg.Days, cfg.Stores, cfg.Items = 6, 3, 10
	_, _, err := WriteRetail(ctx, mem, "retail", cfg)
	require.NoError(t, err)
	s, err := TakeSnapshot(ctx, mem, "retail", "s", cfg.Start, cfg.Start.AddDate(0, 0, 5))
	require.NoError(t, err)
	c := retailContract()
	keys := map[string]uint64{}
	require.NoError(t, Scan(ctx, mem, s, c, func(b *Batch) error { keys[b.File] = b.RowKey0; return nil }))
	counted := objstore.WrapWithCounting(mem, nil)
	cut := cfg.Start.AddDate(0, 0, 4).Format(DateLayout)
	var days []string
	require.NoError(t, ScanSource(ctx, counted, s, c, From(cut))(func(b *Batch) error {
		days = append(days, b.Date)
		require.Equal(t, keys[b.File], b.RowKey0, "row keys as in the full scan")
		return nil
	}))
	require.Equal(t, []string{"2026-09-05", "2026-09-06"}, days)
	for key, n := range counted.BytesRead() {
		require.Contains(t, []string{s.Files[4].Key, s.Files[5].Key}, key, "read %d bytes of a day it does not need", n)
	}
	var before []string
	require.NoError(t, ScanSource(ctx, mem, s, c, Before(cut))(func(b *Batch) error { before = append(before, b.Date); return nil }))
	require.Len(t, before, 4)
	n := 0
	require.NoError(t, Batches(&Batch{}, &Batch{})(func(*Batch) error { n++; return nil }))
	require.Equal(t, 2, n)
}
