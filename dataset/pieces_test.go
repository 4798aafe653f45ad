package dataset

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
)

// putRows writes rows as one Parquet file of row groups of rowGroup rows.
func putRows(t *testing.T, b objstore.Bucket, key string, rows []RetailRow, rowGroup int64) {
	t.Helper()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[RetailRow](&buf, parquet.MaxRowsPerRowGroup(rowGroup))
	_, err := w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = b.Put(context.Background(), key, buf.Bytes(), objstore.PutOptions{})
	require.NoError(t, err)
}

// keyedWindow is a window of two days: a large file of 1,000 rows in 20 row groups and a
// small one, keys drawn from a few hundred so many repeat across row groups, some rows
// broken (a repeated key first seen on a broken row is not a duplicate of it).
func keyedWindow(t *testing.T, seed uint64) (objstore.Bucket, Snapshot) {
	t.Helper()
	rng := rand.New(rand.NewPCG(seed, 7))
	b := objstore.NewMem()
	base := smallRetail().RetailDay(1)
	day := func(n int, date string) []RetailRow {
		rows := make([]RetailRow, n)
		for i := range rows {
			rows[i] = base[i%len(base)]
			rows[i].Date = date
			rows[i].StoreID, rows[i].ItemID = int32(1+rng.IntN(20)), int32(1+rng.IntN(25))
			rows[i].Temperature, rows[i].Price, rows[i].Weekday = 10, 5, 3
			if rng.IntN(10) == 0 {
				rows[i].Price = -1
			}
		}
		return rows
	}
	d0 := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	putRows(t, b, PartitionPrefix("k", d0)+"big.parquet", day(1000, "2026-03-01"), 50)
	putRows(t, b, PartitionPrefix("k", d0.AddDate(0, 0, 1))+"small.parquet", day(120, "2026-03-02"), 40)
	s, err := TakeSnapshot(context.Background(), b, "k", "s1", d0, d0.AddDate(0, 0, 1))
	require.NoError(t, err)
	require.Len(t, s.Files[0].RowGroups, 20)
	return b, s
}

// outcome is what a scan decided of every row: accepted with its row key, or the issue.
type outcome map[string]string

func (o outcome) add(b *Batch) {
	j := 0
	for r := 0; r < b.Rows; r++ {
		id := fmt.Sprintf("%d/%d", b.FileIndex, b.FirstRow+int64(r))
		if b.Accepted[r] {
			o[id] = fmt.Sprintf("accepted key %d", b.RowKey0+uint64(r))
			continue
		}
		o[id] = b.Issues[j].Column + ": " + b.Issues[j].Reason
		j++
	}
}

// The unique key across the pieces of a file split by row groups: the pieces' first passes,
// the merge of their spills and the second pass of the pieces holding duplicates decide every
// row exactly as one pass over the files does (same rows rejected, same first rows named,
// same row keys), whatever the cut, the grouping of pieces into partitions and the order the
// spills are merged in.
func TestPiecesCheckTheUniqueKeyAsOnePass(t *testing.T) {
	ctx := context.Background()
	c := retailContract()
	for seed := uint64(1); seed <= 12; seed++ {
		b, s := keyedWindow(t, seed)
		one := outcome{}
		require.NoError(t, ScanFilesAfter(ctx, b, s, c, func(int) bool { return true }, nil, func(bt *Batch) error { one.add(bt); return nil }))
		require.Contains(t, fmt.Sprint(one), "duplicate key")

		rng := rand.New(rand.NewPCG(seed, 11))
		maxRows := []int64{50, 60, 120, 333, 999}[rng.IntN(5)]
		pieces := s.Pieces(maxRows)
		require.Greater(t, len(pieces), 2, "the large file is split")
		var parts [][]Piece // consecutive pieces, one to three a partition
		for lo := 0; lo < len(pieces); {
			hi := min(lo+1+rng.IntN(3), len(pieces))
			parts = append(parts, pieces[lo:hi])
			lo = hi
		}
		got := make([]outcome, len(parts))
		spills := make([][]byte, len(parts))
		for i, p := range parts {
			kc := &KeyCheck{}
			got[i] = outcome{}
			require.NoError(t, ScanPiecesAfter(ctx, b, s, c, p, kc, nil, func(bt *Batch) error { got[i].add(bt); return nil }))
			spills[i] = EncodeSpill(kc.Spill)
		}
		order := rng.Perm(len(parts))
		ids := make([]int, len(parts))
		readers := make([]io.Reader, len(parts))
		for j, i := range order {
			ids[j], readers[j] = i, bytes.NewReader(spills[i])
		}
		rejects := map[int]map[int]map[int64]int64{}
		require.NoError(t, MergeKeySpills(ids, readers, func(part, file int, row, first int64) {
			if rejects[part] == nil {
				rejects[part] = map[int]map[int64]int64{}
			}
			if rejects[part][file] == nil {
				rejects[part][file] = map[int64]int64{}
			}
			rejects[part][file][row] = first
		}))
		require.NotEmpty(t, rejects, "seed %d: keys repeat across row groups", seed)
		for i, rj := range rejects {
			got[i] = outcome{}
			require.NoError(t, ScanPiecesAfter(ctx, b, s, c, parts[i], &KeyCheck{Rejects: rj}, nil, func(bt *Batch) error { got[i].add(bt); return nil }))
		}
		merged := outcome{}
		for _, o := range got {
			for k, v := range o {
				require.NotContains(t, merged, k)
				merged[k] = v
			}
		}
		require.Equal(t, one, merged, "seed %d, pieces of %d rows, %d partitions", seed, maxRows, len(parts))
	}
}

// A resumed piece reads its earlier row groups again for their keys: the spill and the rows
// it decides after the checkpoint are those of an undisturbed pass.
func TestAResumedPieceKeepsItsKeys(t *testing.T) {
	ctx := context.Background()
	c := retailContract()
	b, s := keyedWindow(t, 3)
	pieces := s.Pieces(300)
	whole := &KeyCheck{}
	all := outcome{}
	require.NoError(t, ScanPiecesAfter(ctx, b, s, c, pieces[:2], whole, nil, func(bt *Batch) error { all.add(bt); return nil }))
	after := &Position{FileIndex: 0, RowGroup: pieces[1].FromRowGroup + 1}
	resumed := &KeyCheck{}
	rest := outcome{}
	require.NoError(t, ScanPiecesAfter(ctx, b, s, c, pieces[:2], resumed, after, func(bt *Batch) error {
		require.False(t, after.covers(bt.FileIndex, bt.RowGroup))
		rest.add(bt)
		return nil
	}))
	require.Equal(t, EncodeSpill(whole.Spill), EncodeSpill(resumed.Spill))
	for k, v := range rest {
		require.Equal(t, all[k], v, k)
	}
	require.Less(t, len(rest), len(all))
}

// The cut: files over the size are split at row-group boundaries into pieces of at most
// maxRows rows (a larger row group alone), every row group in exactly one piece.
func TestPiecesCoverEveryRowGroupOnce(t *testing.T) {
	s := Snapshot{Files: []File{
		{Key: "a", Rows: 10, RowGroups: []int64{10}},
		{Key: "b", Rows: 700, RowGroups: []int64{100, 100, 300, 100, 50, 50}},
		{Key: "c", Rows: 500},
	}}
	require.Equal(t, []Piece{{0, 0, -1}, {1, 0, 2}, {1, 2, 3}, {1, 3, 6}, {2, 0, -1}}, s.Pieces(200))
	require.Equal(t, []Piece{{0, 0, -1}, {1, 0, -1}, {2, 0, -1}}, s.Pieces(0))
	require.Equal(t, []Piece{{0, 0, -1}, {1, 0, -1}, {2, 0, -1}}, s.Pieces(700))
}

// A spill that is not sorted, or cut short, is refused with the partition named.
func TestABrokenSpillIsRefused(t *testing.T) {
	good := EncodeSpill([]KeyRow{{0, 5, 1}, {0, 9, 2}})
	bad := append(append([]byte{}, good[keyRowSize:]...), good[:keyRowSize]...)
	err := MergeKeySpills([]int{4}, []io.Reader{bytes.NewReader(bad)}, func(int, int, int64, int64) {})
	require.ErrorContains(t, err, "key spill of partition 4 is not sorted")
	err = MergeKeySpills([]int{7}, []io.Reader{bytes.NewReader(good[:keyRowSize+3])}, func(int, int, int64, int64) {})
	require.ErrorContains(t, err, "key spill of partition 7")
}
