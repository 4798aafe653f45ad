package dataset

import (
	"context"
	"errors"
	"testing"

	"github.com/driftline/driftline/objstore"
)

// FuzzScanFile reads arbitrary bytes as Parquet with the demo contract: the result is data or a *DataError
// naming the file, never a panic.
func FuzzScanFile(f *testing.F) {
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
		_, err := ScanFile(ctx, b, File{Key: "f.parquet", Rows: -1}, 0, 0, retailContract(), func(bt *Batch) error {
			if len(bt.Accepted) != bt.Rows || len(bt.Issues) > bt.Rows {
				t.Fatalf("inconsistent batch: %d rows, %d flags, %d issues", bt.Rows, len(bt.Accepted), len(bt.Issues))
			}
			return nil
		})
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || de.File != "f.parquet" {
				t.Fatalf("want a *DataError naming the file, got %T: %v", err, err)
			}
		}
	})
}
