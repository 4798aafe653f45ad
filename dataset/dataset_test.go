package dataset

import (
	"context"
	"errors"
	"math"
	"runtime"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/testsuite"
)

var modelCols = []string{"price", "promo", "weekday", "temperature", "item_popularity", "units_sold"}

func smallRetail() RetailConfig {
	c := DefaultRetail()
	c.Days, c.Stores, c.Items, c.ShiftDay = 6, 4, 5, 3
	c.BadRowShare = 0.05
	return c
}

func TestRetailIsDeterministicAndShifts(t *testing.T) {
	c := DefaultRetail()
	a, b := c.RetailDay(3), c.RetailDay(3)
	require.Equal(t, len(a), c.Stores*c.Items)
	for i := range a {
		require.Equal(t, a[i].UnitsSold, b[i].UnitsSold)
	}
	mean := func(rows []RetailRow, f func(RetailRow) float64) float64 {
		s := 0.0
		for _, r := range rows {
			s += f(r)
		}
		return s / float64(len(rows))
	}
	before, after := c.RetailDay(c.ShiftDay-1), c.RetailDay(c.ShiftDay)
	price := func(r RetailRow) float64 { return r.Price }
	require.Greater(t, mean(after, price), 1.05*mean(before, price), "holiday price change")
	units := func(r RetailRow) float64 { return r.UnitsSold }
	require.Greater(t, mean(after, units), mean(before, units)+4, "holiday demand")
}

func writeSmall(t *testing.T, b objstore.Bucket) RetailConfig {
	t.Helper()
	c := smallRetail()
	w, e, err := WriteRetail(context.Background(), b, "retail", c)
	require.NoError(t, err)
	require.Equal(t, c.Days, w)
	require.Zero(t, e)
	w, e, err = WriteRetail(context.Background(), b, "retail", c)
	require.NoError(t, err)
	require.Equal(t, 0, w, "partitions are immutable: a second write creates nothing")
	require.Equal(t, c.Days, e)
	return c
}

func snapshotAndLoad(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	c := writeSmall(t, b)
	s, err := TakeSnapshot(ctx, b, "retail", "snap-1", c.Start, c.Start.AddDate(0, 0, c.Days-1))
	require.NoError(t, err)
	require.Len(t, s.Files, c.Days)
	require.EqualValues(t, c.Days*c.Stores*c.Items, s.Rows)

	var read, accepted, quarantined int
	tbl, err := Load(ctx, b, s, modelCols, func(fc FileCheck) {
		read += fc.Read
		accepted += fc.Accepted
		quarantined += len(fc.Issues)
		for _, is := range fc.Issues {
			require.Equal(t, "temperature", is.Column)
			require.Equal(t, "NaN value", is.Reason)
		}
	})
	require.NoError(t, err)
	require.EqualValues(t, s.Rows, read)
	require.Equal(t, read, accepted+quarantined, "nothing is dropped silently")
	require.Positive(t, quarantined)
	require.Equal(t, accepted, tbl.Rows())
	for _, v := range tbl.Col("temperature") {
		require.False(t, math.IsNaN(v))
	}
	before, after := tbl.Split(c.ShiftDate().Format(DateLayout))
	require.Equal(t, tbl.Rows(), before.Rows()+after.Rows())
	require.Positive(t, before.Rows())
	require.Positive(t, after.Rows())
}

func TestSnapshotAndLoadMem(t *testing.T)   { snapshotAndLoad(t, objstore.NewMem()) }
func TestSnapshotAndLoadMinIO(t *testing.T) { snapshotAndLoad(t, testsuite.NewMinIOBucket(t)) }

func TestEmptyWindow(t *testing.T) {
	b := objstore.NewMem()
	day := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	_, err := TakeSnapshot(context.Background(), b, "retail", "s", day, day.AddDate(0, 0, 3))
	require.ErrorIs(t, err, ErrEmptyWindow)
	require.ErrorIs(t, err, ErrInvalidData)
	require.Contains(t, err.Error(), "2030-01-01")
}

func TestBadFilesNameFileAndColumn(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	good, err := EncodeParquet(smallRetail().RetailDay(0))
	require.NoError(t, err)
	type textPrice struct {
		Price string `parquet:"price"`
	}
	text, err := EncodeParquet([]textPrice{{"1.0"}})
	require.NoError(t, err)
	put := func(key string, data []byte) {
		_, err := b.Put(ctx, key, data, objstore.PutOptions{})
		require.NoError(t, err)
	}
	put("good.parquet", good)
	put("truncated.parquet", good[:len(good)/2])
	put("garbage.parquet", []byte("this is not parquet at all, just text"))
	put("empty.parquet", nil)
	put("text.parquet", text)

	cases := []struct {
		key, col, want string
	}{
		{"good.parquet", "no_such_col", "column not found"},
		{"truncated.parquet", "price", "not a readable Parquet file"},
		{"garbage.parquet", "price", "not a readable Parquet file"},
		{"empty.parquet", "price", "empty file"},
		{"text.parquet", "price", "is not numeric"},
	}
	for _, c := range cases {
		t.Run(c.key, func(t *testing.T) {
			_, err := ReadNumeric(ctx, b, c.key, []string{c.col})
			require.Error(t, err)
			var de *DataError
			require.True(t, errors.As(err, &de), "want *DataError, got %T %v", err, err)
			require.Equal(t, c.key, de.File)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), c.key)
		})
	}
}

func TestPinnedFileChangedIsRejected(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	c := writeSmall(t, b)
	s, err := TakeSnapshot(ctx, b, "retail", "s", c.Start, c.Start)
	require.NoError(t, err)
	other, err := EncodeParquet(c.RetailDay(2))
	require.NoError(t, err)
	_, err = b.Put(ctx, s.Files[0].Key, other, objstore.PutOptions{})
	require.NoError(t, err)
	_, err = Load(ctx, b, s, modelCols, nil)
	require.ErrorIs(t, err, ErrInvalidData)
	require.Contains(t, err.Error(), "changed since snapshot")
}

// A hostile 8-byte file whose trailer claims an 827 MB footer must be refused without
// allocating it (parquet-go would allocate whatever the trailer says).
func TestHostileFooterLengthIsRefusedCheaply(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	_, err := b.Put(ctx, "hostile.parquet", []byte("PAR1\x00\x00\x00\x00PAR1PAR1"), objstore.PutOptions{})
	require.NoError(t, err)
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	_, err = ReadNumeric(ctx, b, "hostile.parquet", []string{"price"})
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "footer length")
	require.ErrorContains(t, err, "hostile.parquet")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(10<<20), "allocated more than 10 MB for a 16-byte file")
}
