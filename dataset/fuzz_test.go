package dataset

import (
	"context"
	"errors"
	"testing"

	"github.com/driftline/driftline/objstore"
)

// FuzzReadNumeric reads arbitrary bytes as Parquet: the result is data or a *DataError
// naming the file, never a panic.
func FuzzReadNumeric(f *testing.F) {
	good, err := EncodeParquet(smallRetail().RetailDay(0))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add(good[len(good)/3:])
	f.Add([]byte("PAR1"))
	f.Add([]byte("PAR1\x00\x00\x00\x00PAR1"))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx := context.Background()
		b := objstore.NewMem()
		if _, err := b.Put(ctx, "f.parquet", data, objstore.PutOptions{}); err != nil {
			t.Fatal(err)
		}
		c, err := ReadNumeric(ctx, b, "f.parquet", []string{"price", "units_sold"})
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || de.File != "f.parquet" {
				t.Fatalf("want a *DataError naming the file, got %T: %v", err, err)
			}
			return
		}
		if len(c.Data) != 2 || len(c.Data[0]) != c.Rows || len(c.Data[1]) != c.Rows {
			t.Fatalf("inconsistent columns: rows %d, lens %d %d", c.Rows, len(c.Data[0]), len(c.Data[1]))
		}
	})
}
