package dataset

import (
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/deprecated"
	"github.com/stretchr/testify/require"
)

// The event-time column's day from each type a table stores it as: DATE, TIMESTAMP in
// millis, micros and nanos (before 1970 too), INT96 as Spark writes it, and strings starting
// YYYY-MM-DD; a plain number or a boolean is refused by name.
func TestEventDaysFromEachType(t *testing.T) {
	at := time.Date(2026, 3, 2, 23, 59, 59, 999_000_000, time.UTC)
	before := time.Date(1969, 12, 31, 12, 0, 0, 0, time.UTC)
	day := func(t time.Time) int64 { return t.Unix() / 86400 }
	day0 := func(t time.Time) int64 { // floor, for times before 1970
		d := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, time.UTC)
		return d.Unix() / 86400
	}
	for _, c := range []struct {
		name string
		node parquet.Node
		v    parquet.Value
		want int64
	}{
		{"date", parquet.Date(), parquet.Int32Value(int32(day(at))), day(at)},
		{"millis", parquet.Timestamp(parquet.Millisecond), parquet.Int64Value(at.UnixMilli()), day(at)},
		{"micros", parquet.Timestamp(parquet.Microsecond), parquet.Int64Value(at.UnixMicro()), day(at)},
		{"nanos", parquet.Timestamp(parquet.Nanosecond), parquet.Int64Value(at.UnixNano()), day(at)},
		{"micros before 1970", parquet.Timestamp(parquet.Microsecond), parquet.Int64Value(before.UnixMicro()), day0(before)},
		{"int96", parquet.Leaf(parquet.Int96Type), parquet.Int96Value(deprecated.Int96{0, 0, uint32(day(at) + 2440588)}), day(at)},
		{"string date", parquet.String(), parquet.ByteArrayValue([]byte("2026-03-02")), day(at)},
		{"string timestamp", parquet.String(), parquet.ByteArrayValue([]byte("2026-03-02T23:00:00Z")), day(at)},
	} {
		dec, err := dayDecoderFor(c.node)
		require.NoError(t, err, c.name)
		got, ok := dec(c.v)
		require.True(t, ok, c.name)
		require.Equal(t, c.want, got, c.name)
	}
	require.Equal(t, int64(-1), day0(before), "the day before 1970-01-01")
	dec, _ := dayDecoderFor(parquet.String())
	_, ok := dec(parquet.ByteArrayValue([]byte("yesterday")))
	require.False(t, ok, "a string that is no date belongs to no day")
	_, ok = dec(parquet.NullValue())
	require.False(t, ok)
	for _, n := range []parquet.Node{parquet.Leaf(parquet.Int64Type), parquet.Leaf(parquet.BooleanType), parquet.Leaf(parquet.DoubleType)} {
		_, err := dayDecoderFor(n)
		require.ErrorContains(t, err, "a DATE, a TIMESTAMP or a YYYY-MM-DD string is needed")
	}
}
