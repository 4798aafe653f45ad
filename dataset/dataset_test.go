package dataset

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
)

func f64(v float64) *float64 { return &v }

func smallRetail() RetailConfig {
	c := DefaultRetail()
	c.Days, c.Stores, c.Items, c.ShiftDay = 6, 4, 5, 3
	c.BadRowShare = 0.05
	return c
}

// retailContract is the demo spec's contract.
func retailContract() contract.Contract {
	return contract.Contract{MaxBadRowShare: 0.1, UniqueKey: []string{"store_id", "item_id"}, Columns: []contract.Column{
		{Name: "date", Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: "store_id", Type: contract.TypeInt, Role: contract.RoleEntityKey, Min: f64(1)},
		{Name: "item_id", Type: contract.TypeInt, Role: contract.RoleEntityKey, Min: f64(1)},
		{Name: "region", Type: contract.TypeString, Role: contract.RoleProtected, Allowed: []string{"north", "south", "east", "west"}},
		{Name: "price", Type: contract.TypeDouble, Role: contract.RoleFeature, Min: f64(0), Max: f64(1000)},
		{Name: "promo", Type: contract.TypeInt, Role: contract.RoleFeature, Allowed: []string{"0", "1"}, Categorical: true},
		{Name: "weekday", Type: contract.TypeInt, Role: contract.RoleFeature, Min: f64(0), Max: f64(6)},
		{Name: "temperature", Type: contract.TypeDouble, Role: contract.RoleFeature},
		{Name: "item_popularity", Type: contract.TypeDouble, Role: contract.RoleFeature, Min: f64(0)},
		{Name: "units_sold", Type: contract.TypeDouble, Role: contract.RoleTarget, Min: f64(0)},
	}}
}

// scanAll scans a snapshot and tallies it.
func scanAll(t *testing.T, b objstore.Bucket, s Snapshot, c contract.Contract) (read, accepted int, issues []RowIssue, maxBatch int, err error) {
	t.Helper()
	err = Scan(context.Background(), b, s, c, func(bt *Batch) error {
		read += bt.Rows
		maxBatch = max(maxBatch, bt.Rows)
		for _, ok := range bt.Accepted {
			if ok {
				accepted++
			}
		}
		issues = append(issues, bt.Issues...)
		return nil
	})
	return
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

func snapshotAndScan(t *testing.T, b objstore.Bucket) {
	ctx := context.Background()
	c := writeSmall(t, b)
	s, err := TakeSnapshot(ctx, b, "retail", "snap-1", c.Start, c.Start.AddDate(0, 0, c.Days-1))
	require.NoError(t, err)
	require.Len(t, s.Files, c.Days)
	require.EqualValues(t, c.Days*c.Stores*c.Items, s.Rows)

	read, accepted, issues, _, err := scanAll(t, b, s, retailContract())
	require.NoError(t, err)
	require.EqualValues(t, s.Rows, read)
	require.Equal(t, read, accepted+len(issues), "nothing is dropped silently")
	require.NotEmpty(t, issues)
	for _, is := range issues {
		require.Equal(t, "temperature", is.Column)
		require.Equal(t, "NaN value", is.Reason)
		require.Equal(t, "NaN", is.Values["temperature"])
		require.NotEmpty(t, is.Values["region"], "the quarantine record keeps the whole row")
	}
}

func TestSnapshotAndScanMem(t *testing.T)   { snapshotAndScan(t, objstore.NewMem()) }
func TestSnapshotAndScanMinIO(t *testing.T) { snapshotAndScan(t, stack.NewMinIOBucket(t)) }

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
	type intPrice struct {
		Price int64 `parquet:"price"`
	}
	ints, err := EncodeParquet([]intPrice{{3}})
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
	put("ints.parquet", ints)

	price := contract.Contract{Columns: []contract.Column{{Name: "price", Type: contract.TypeDouble, Role: contract.RoleFeature}}}
	cases := []struct {
		key      string
		contract contract.Contract
		want     string
	}{
		{"good.parquet", contract.Contract{Columns: []contract.Column{{Name: "no_such_col", Type: contract.TypeDouble, Role: contract.RoleFeature}}}, "column not found"},
		{"good.parquet", contract.Contract{Columns: []contract.Column{{Name: "region", Type: contract.TypeInt, Role: contract.RoleOther}}}, "physical type BYTE_ARRAY does not hold the contract's type int"},
		{"good.parquet", contract.Contract{Columns: []contract.Column{{Name: "price", Type: contract.TypeString, Role: contract.RoleOther}}}, "does not hold the contract's type string"},
		{"truncated.parquet", price, "not a readable Parquet file"},
		{"garbage.parquet", price, "not a readable Parquet file"},
		{"empty.parquet", price, "empty file"},
		{"text.parquet", price, "does not hold the contract's type double"},
	}
	for _, c := range cases {
		t.Run(c.key+"/"+c.contract.Columns[0].Name, func(t *testing.T) {
			_, err := ScanFile(ctx, b, File{Key: c.key, Rows: -1}, 0, 0, c.contract, func(*Batch) error { return nil })
			require.Error(t, err)
			var de *DataError
			require.True(t, errors.As(err, &de), "want *DataError, got %T %v", err, err)
			require.Equal(t, c.key, de.File)
			require.Contains(t, err.Error(), c.want)
			require.Contains(t, err.Error(), c.key)
		})
	}
	// An integer column widens into a double contract column.
	n, err := ScanFile(ctx, b, File{Key: "ints.parquet", Rows: 1}, 0, 0, price, func(bt *Batch) error {
		require.Equal(t, []float64{3}, bt.Num("price"))
		return nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 1, n)
}

// Every row-level rule of the contract, one broken row each.
func TestRowChecks(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	rows := smallRetail().RetailDay(1)[:12]
	for i := range rows {
		rows[i].Temperature = 10
	}
	rows[1].Price = -1               // below min
	rows[2].Price = math.Inf(1)      // infinite
	rows[3].Weekday = 9              // above max
	rows[4].Promo = 2                // not allowed
	rows[5].Region = "atlantis"      // not allowed (string)
	rows[6].Temperature = math.NaN() // NaN
	rows[7].ItemID = rows[0].ItemID  // duplicate key with row 0 (same store)
	rows[7].StoreID = rows[0].StoreID
	data, err := EncodeParquet(rows)
	require.NoError(t, err)
	_, err = b.Put(ctx, "p.parquet", data, objstore.PutOptions{})
	require.NoError(t, err)
	var issues []RowIssue
	accepted := 0
	_, err = ScanFile(ctx, b, File{Key: "p.parquet", Rows: 12}, 0, 0, retailContract(), func(bt *Batch) error {
		issues = append(issues, bt.Issues...)
		for _, ok := range bt.Accepted {
			if ok {
				accepted++
			}
		}
		return nil
	})
	require.NoError(t, err)
	got := map[int64]string{}
	for _, is := range issues {
		got[is.Row] = is.Column + ": " + is.Reason
	}
	require.Equal(t, map[int64]string{
		1: "price: below min 0",
		2: "price: infinite value",
		3: "weekday: above max 6",
		4: "promo: not an allowed value",
		5: "region: not an allowed value",
		6: "temperature: NaN value",
		7: "store_id: duplicate key store_id=" + fmt.Sprint(rows[0].StoreID) + ",item_id=" + fmt.Sprint(rows[0].ItemID) + " (first at row 0)",
	}, got)
	require.Equal(t, 12-7, accepted)
}

// Reading is row group by row group: a batch never holds more than one row group.
func TestScanIsBoundedByRowGroup(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	var buf bytes.Buffer
	w := parquet.NewGenericWriter[RetailRow](&buf, parquet.MaxRowsPerRowGroup(100))
	rows := smallRetail().RetailDay(2)
	for len(rows) < 1000 {
		rows = append(rows, rows...)
	}
	rows = rows[:1000]
	for i := range rows {
		rows[i].StoreID = int32(i + 1)
		rows[i].Temperature = 10
	}
	_, err := w.Write(rows)
	require.NoError(t, err)
	require.NoError(t, w.Close())
	_, err = b.Put(ctx, "big.parquet", buf.Bytes(), objstore.PutOptions{})
	require.NoError(t, err)
	batches := 0
	n, err := ScanFile(ctx, b, File{Key: "big.parquet", Rows: 1000}, 0, 0, retailContract(), func(bt *Batch) error {
		batches++
		require.LessOrEqual(t, bt.Rows, 100)
		require.EqualValues(t, (batches-1)*100, bt.FirstRow)
		return nil
	})
	require.NoError(t, err)
	require.EqualValues(t, 1000, n)
	require.Equal(t, 10, batches)
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
	_, _, _, _, err = scanAll(t, b, s, retailContract())
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
	_, err = ScanFile(ctx, b, File{Key: "hostile.parquet", Rows: -1}, 0, 0, retailContract(), func(*Batch) error { return nil })
	runtime.ReadMemStats(&after)
	require.ErrorContains(t, err, "footer length")
	require.ErrorContains(t, err, "hostile.parquet")
	require.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(10<<20), "allocated more than 10 MB for a 16-byte file")
}

// A scan resumed after a batch visits exactly the batches a full scan visits after it, with
// the same row keys, row numbers and verdicts: files before the position are not read, and a
// duplicate of a key first seen in a skipped row group of the current file is still found.
func TestScanAfterResumesWhereItStopped(t *testing.T) {
	ctx := context.Background()
	mem := objstore.NewMem()
	b := objstore.WrapWithCounting(mem, nil)
	write := func(key string, dupOf int) File {
		var buf bytes.Buffer
		w := parquet.NewGenericWriter[RetailRow](&buf, parquet.MaxRowsPerRowGroup(100))
		rows := smallRetail().RetailDay(2)
		for len(rows) < 300 {
			rows = append(rows, rows...)
		}
		rows = rows[:300]
		for i := range rows {
			rows[i].StoreID, rows[i].ItemID, rows[i].Temperature = int32(i+1), 1, 10
		}
		if dupOf >= 0 {
			rows[250].StoreID = rows[dupOf].StoreID // row 250 repeats row dupOf's key
		}
		_, err := w.Write(rows)
		require.NoError(t, err)
		require.NoError(t, w.Close())
		obj, err := b.Put(ctx, key, buf.Bytes(), objstore.PutOptions{})
		require.NoError(t, err)
		return File{Key: key, Date: "2026-09-01", Rows: 300, ETag: obj.ETag}
	}
	s := Snapshot{ID: "s", Files: []File{write("a.parquet", -1), write("b.parquet", 10)}}
	type seen struct {
		File             string
		RowGroup         int
		FirstRow         int64
		RowKey0          uint64
		Accepted, Issues int
		Reasons          string
	}
	collect := func(after *Position) []seen {
		var out []seen
		require.NoError(t, ScanDaysAfter(ctx, b, s, retailContract(), AllDays, after, func(bt *Batch) error {
			acc := 0
			for _, ok := range bt.Accepted {
				if ok {
					acc++
				}
			}
			var reasons []string
			for _, is := range bt.Issues {
				reasons = append(reasons, fmt.Sprintf("row %d %s", is.Row, is.Reason))
			}
			out = append(out, seen{bt.File, bt.RowGroup, bt.FirstRow, bt.RowKey0, acc, len(bt.Issues), strings.Join(reasons, ";")})
			return nil
		}))
		return out
	}
	full := collect(nil)
	require.Len(t, full, 6)
	require.Contains(t, full[5].Reasons, "row 250 duplicate key store_id=11,item_id=1 (first at row 10)")
	b.Reset()
	resumed := collect(&Position{FileIndex: 1, RowGroup: 0})
	require.Equal(t, full[4:], resumed, "the batches after file 1 row group 0, found as the full scan found them")
	require.Zero(t, b.BytesRead()["a.parquet"], "a file before the position is not read")
	require.Equal(t, full[1:], collect(&Position{FileIndex: 0, RowGroup: 0}))
	require.Empty(t, collect(&Position{FileIndex: 1, RowGroup: 2}))
}

// An int column's value beyond ±2^53 cannot be held by the float64 every step computes with:
// the row is quarantined as inexact with its exact value in the words, never rounded.
func TestIntBeyond2p53IsQuarantinedNotRounded(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	type row struct {
		Date string `parquet:"date"`
		ID   int64  `parquet:"id"`
	}
	var buf bytes.Buffer
	require.NoError(t, parquet.Write(&buf, []row{{"2026-11-01", 1 << 53}, {"2026-11-01", 1<<53 + 1}, {"2026-11-01", -(1<<53 + 1)}, {"2026-11-01", 7}}))
	_, err := b.Put(ctx, "ids.parquet", buf.Bytes(), objstore.PutOptions{})
	require.NoError(t, err)
	c := contract.Contract{MaxBadRowShare: 1, Columns: []contract.Column{
		{Name: "date", Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: "id", Type: contract.TypeInt, Role: contract.RoleFeature},
	}}
	var issues []RowIssue
	var kept []float64
	_, err = ScanFile(ctx, b, File{Key: "ids.parquet", Rows: 4}, 0, 0, c, func(bt *Batch) error {
		issues = append(issues, bt.Issues...)
		for r, ok := range bt.Accepted {
			if ok {
				kept = append(kept, bt.Cols["id"].Num[r])
			}
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []float64{1 << 53, 7}, kept)
	require.Len(t, issues, 2)
	for i, v := range []string{"9007199254740993", "-9007199254740993"} {
		require.Equal(t, contract.ReasonInexact, issues[i].Kind)
		require.Equal(t, "id", issues[i].Column)
		require.Equal(t, "integer "+v+" beyond ±2^53: held as a float64 it would be rounded", issues[i].Reason)
	}
}

// A table's file: a column kept in the partition values (not in the file) is read as a
// constant of the contract's type (nil: null), and a column stored under a physical name
// (column mapping) is read under the contract's.
func TestPartitionValuesAndPhysicalNamesAreColumns(t *testing.T) {
	type stored struct {
		Mapped float64 `parquet:"col-5f1a"`
	}
	ctx := context.Background()
	b := objstore.NewMem()
	data, err := EncodeParquet([]stored{{1.5}, {2.5}, {3.5}})
	require.NoError(t, err)
	obj, err := b.Put(ctx, "t/date=2026-09-01/f.parquet", data, objstore.PutOptions{})
	require.NoError(t, err)
	day, store := "2026-09-01", "7"
	f := File{Key: "t/date=2026-09-01/f.parquet", ETag: obj.ETag, Rows: 3, Date: day, Size: int64(len(data)),
		Partition: map[string]*string{"date": &day, "store_id": &store, "region": nil}, Physical: map[string]string{"price": "col-5f1a"}}
	c := contract.Contract{Columns: []contract.Column{{Name: "date", Type: contract.TypeString, Role: contract.RoleEventTime},
		{Name: "store_id", Type: contract.TypeInt, Role: contract.RoleFeature}, {Name: "region", Type: contract.TypeString, Role: contract.RoleFeature, Nullable: true},
		{Name: "price", Type: contract.TypeDouble, Role: contract.RoleFeature}}}
	var got []string
	err = Scan(ctx, b, Snapshot{Files: []File{f}}, c, func(bt *Batch) error {
		for r := range bt.Rows {
			got = append(got, fmt.Sprintf("%s %v %v %v", bt.Cols["date"].Str[r], bt.Cols["store_id"].Num[r], bt.Cols["region"].Null[r], bt.Cols["price"].Num[r]))
			require.True(t, bt.Accepted[r])
		}
		return nil
	})
	require.NoError(t, err)
	require.Equal(t, []string{"2026-09-01 7 true 1.5", "2026-09-01 7 true 2.5", "2026-09-01 7 true 3.5"}, got)
	bad := "seven"
	f.Partition["store_id"] = &bad
	err = Scan(ctx, b, Snapshot{Files: []File{f}}, c, func(*Batch) error { return nil })
	require.ErrorContains(t, err, `column store_id`)
	require.ErrorContains(t, err, `"seven" is not a number`)
}
