package dataset

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/parquet-go/parquet-go/format"

	"github.com/driftline/driftline/objstore"
)

// A table not partitioned by day on its event time has files that hold rows of several days.
// Such a file is pinned once per day of the window it holds rows of: each entry's Date is the
// day and its EventTime the column, and the scan keeps only the rows of that day (a row group
// whose statistics exclude the day is not read). Rows is the entry's own rows, counted when
// the snapshot is taken.

// dayDecoder is the day (days since 1970-01-01, UTC) of an event-time value; false for null.
type dayDecoder func(v parquet.Value) (int64, bool)

// dayDecoderFor reads the event-time column's type: a DATE, a TIMESTAMP (millis, micros or
// nanos; INT96 as Spark writes it) or a string that starts YYYY-MM-DD.
func dayDecoderFor(n parquet.Node) (dayDecoder, error) {
	t := n.Type()
	lt, ct := t.LogicalType(), t.ConvertedType()
	floorDiv := func(a, b int64) int64 {
		q := a / b
		if a%b != 0 && a < 0 {
			q--
		}
		return q
	}
	const day = int64(24 * time.Hour)
	switch k := t.Kind(); {
	case k == parquet.Int32 && isDateNode(n):
		return func(v parquet.Value) (int64, bool) { return int64(v.Int32()), !v.IsNull() }, nil
	case k == parquet.Int64 && (lt != nil && lt.Value != nil || ct != nil):
		unit := timestampUnit(lt, ct)
		if unit == 0 {
			break
		}
		return func(v parquet.Value) (int64, bool) { return floorDiv(v.Int64(), day/unit), !v.IsNull() }, nil
	case k == parquet.Int96:
		return func(v parquet.Value) (int64, bool) {
			i := v.Int96() // nanoseconds of the day, then the Julian day
			return int64(i[2]) - 2440588, !v.IsNull()
		}, nil
	case k == parquet.ByteArray:
		return func(v parquet.Value) (int64, bool) {
			b := v.ByteArray()
			if v.IsNull() || len(b) < 10 {
				return 0, false
			}
			d, err := time.Parse(DateLayout, string(b[:10]))
			if err != nil {
				return 0, false
			}
			return d.Unix() / 86400, true
		}, nil
	}
	return nil, fmt.Errorf("its type is %s: a DATE, a TIMESTAMP or a YYYY-MM-DD string is needed", t)
}

// isDateNode says whether a column is a DATE (the contract reads it as a YYYY-MM-DD string).
func isDateNode(n parquet.Node) bool { return isDateType(n.Type()) }

// isDateType says whether a column type is a DATE.
func isDateType(t parquet.Type) bool {
	lt, ct := t.LogicalType(), t.ConvertedType()
	return t.Kind() == parquet.Int32 && ((lt != nil && lt.Value != nil && isDate(lt)) || (ct != nil && *ct == deprecated.Date))
}

func isDate(lt *format.LogicalType) bool {
	_, ok := lt.Value.(*format.DateType)
	return ok
}

// timestampUnit is how many units a nanosecond-based day is divided by: 1e6 for millis, 1e3
// for micros, 1 for nanos; 0 when the column is no timestamp.
func timestampUnit(lt *format.LogicalType, ct *deprecated.ConvertedType) int64 {
	if lt != nil && lt.Value != nil {
		if ts, ok := lt.Value.(*format.TimestampType); ok {
			switch ts.Unit.Value.(type) {
			case *format.MilliSeconds:
				return int64(time.Millisecond)
			case *format.MicroSeconds:
				return int64(time.Microsecond)
			case *format.NanoSeconds:
				return 1
			}
		}
		return 0
	}
	switch *ct {
	case deprecated.TimestampMillis:
		return int64(time.Millisecond)
	case deprecated.TimestampMicros:
		return int64(time.Microsecond)
	}
	return 0
}

// eventLeaf finds a file's event-time column (under its physical name) and its decoder.
func eventLeaf(pf *parquet.File, f File) (int, dayDecoder, error) {
	name := f.EventTime
	if pn, ok := f.Physical[name]; ok {
		name = pn
	}
	leaf, ok := pf.Schema().Lookup(name)
	if !ok {
		return 0, nil, dataErr(f.Key, f.EventTime, -1, "the event time column is not in the file (it has: %v)", columnNames(pf.Schema()))
	}
	dec, err := dayDecoderFor(leaf.Node)
	if err != nil {
		return 0, nil, dataErr(f.Key, f.EventTime, -1, "the event time column: %v", err)
	}
	return leaf.ColumnIndex, dec, nil
}

// mayHold says whether a row group's statistics of the event time allow rows of days in
// [lo, hi]; without statistics it may.
func mayHold(cc parquet.ColumnChunk, dec dayDecoder, lo, hi int64) bool {
	fc, ok := cc.(*parquet.FileColumnChunk)
	if !ok {
		return true
	}
	minV, maxV, ok := fc.Bounds()
	if !ok {
		return true
	}
	a, okA := dec(minV)
	b, okB := dec(maxV)
	return !okA || !okB || (b >= lo && a <= hi)
}

// rowDays decodes one row group's event-time column into days (ok false: null or unreadable),
// reusing out and ok.
func rowDays(cc parquet.ColumnChunk, dec dayDecoder, out []int64, ok []bool) ([]int64, []bool, error) {
	days, valid := out[:0], ok[:0]
	err := eachValue(cc, func(v parquet.Value) {
		d, good := dec(v)
		days, valid = append(days, d), append(valid, good)
	})
	if err != nil {
		return nil, nil, err
	}
	return days, valid, nil
}

// SplitByDay pins a file of a table not partitioned by day once per day of [from, to] it holds
// rows of (f is the file pinned whole; eventTime its event-time column): each entry has the
// day as Date, EventTime set, and the day's rows as Rows. Row groups whose statistics fall
// outside the window are not read; rows with a null event time belong to no day.
func SplitByDay(ctx context.Context, b objstore.Bucket, f File, eventTime string, from, to time.Time) ([]File, error) {
	f.EventTime = eventTime
	pf, _, err := OpenParquet(ctx, b, f.Key)
	if err != nil {
		return nil, err
	}
	col, dec, err := eventLeaf(pf, f)
	if err != nil {
		return nil, err
	}
	lo, hi := from.Unix()/86400, to.Unix()/86400
	counts := map[int64]int64{}
	var days []int64
	var valid []bool
	for _, rg := range pf.RowGroups() {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		cc := rg.ColumnChunks()[col]
		if !mayHold(cc, dec, lo, hi) {
			continue
		}
		if days, valid, err = rowDays(cc, dec, days, valid); err != nil {
			return nil, dataErr(f.Key, eventTime, -1, "read the event time: %v", err)
		}
		for i, d := range days {
			if valid[i] && d >= lo && d <= hi {
				counts[d]++
			}
		}
	}
	var out []File
	for d := lo; d <= hi; d++ {
		if n := counts[d]; n > 0 {
			e := f
			e.Date, e.Rows = time.Unix(d*86400, 0).UTC().Format(DateLayout), n
			out = append(out, e)
		}
	}
	return out, nil
}

// keepDay keeps, of a batch, the rows whose event time is on day (cc: the row group's
// event-time column, rowGroupStart its first row's index in the file), each row's index in
// the file recorded.
func keepDay(b *Batch, cc parquet.ColumnChunk, dec dayDecoder, day, rowGroupStart int64) error {
	days, valid, err := rowDays(cc, dec, nil, nil)
	if err != nil {
		return dataErr(b.File, "", -1, "row group %d: read the event time: %v", b.RowGroup, err)
	}
	if len(days) != b.Rows {
		return dataErr(b.File, "", -1, "row group %d has %d rows, its event time %d values", b.RowGroup, b.Rows, len(days))
	}
	var keep []int
	for i, d := range days {
		if valid[i] && d == day {
			keep = append(keep, i)
		}
	}
	b.fileRows = make([]int64, len(keep))
	for j, i := range keep {
		b.fileRows[j] = rowGroupStart + int64(i)
	}
	for name, col := range b.Cols {
		b.Cols[name] = col.pick(keep)
	}
	b.Rows = len(keep)
	return nil
}

// dayRows counts a row group's rows of day.
func dayRows(cc parquet.ColumnChunk, dec dayDecoder, day int64) (int64, error) {
	days, valid, err := rowDays(cc, dec, nil, nil)
	if err != nil {
		return 0, err
	}
	var n int64
	for i, d := range days {
		if valid[i] && d == day {
			n++
		}
	}
	return n, nil
}

// pick is the column's rows at keep, in order.
func (d *ColumnData) pick(keep []int) *ColumnData {
	out := &ColumnData{Null: make([]bool, len(keep))}
	if d.Num != nil {
		out.Num = make([]float64, len(keep))
	}
	if d.Str != nil {
		out.Str = make([]string, len(keep))
	}
	for j, i := range keep {
		out.Null[j] = d.Null[i]
		if d.Num != nil {
			out.Num[j] = d.Num[i]
		}
		if d.Str != nil {
			out.Str[j] = d.Str[i]
		}
		if v, ok := d.inexact[i]; ok {
			if out.inexact == nil {
				out.inexact = map[int]int64{}
			}
			out.inexact[j] = v
		}
	}
	return out
}

// eachValue calls fn with every value of a column chunk, page by page; a chunk parquet-go
// panics on is an error. (readColumn keeps its own loop: a call per value costs the scan's
// hot path about 8%, measured with a 1M-row column.)
func eachValue(cc parquet.ColumnChunk, fn func(parquet.Value)) (err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("corrupt column chunk: %v", p)
		}
	}()
	pages := cc.Pages()
	defer pages.Close()
	buf := make([]parquet.Value, 1024)
	for {
		p, err := pages.ReadPage()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		vr := p.Values()
		for {
			n, err := vr.ReadValues(buf)
			for _, v := range buf[:n] {
				fn(v)
			}
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				parquet.Release(p)
				return err
			}
		}
		parquet.Release(p)
	}
}
