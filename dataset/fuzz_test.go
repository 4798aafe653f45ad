package dataset

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/driftline/driftline/objstore"
)

// scanBudget bounds one fuzz input's scan: inputs are at most a few KB, a real scan of them
// takes microseconds.
const scanBudget = 2 * time.Second

// FuzzScanFile reads arbitrary bytes as Parquet with the demo contract: the result is data or a *DataError
// naming the file, never a panic and never a hang.
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
		// A scan that does not end within the budget is a hang: the fuzzer reports the input.
		var err error
		done := make(chan struct{})
		go func() {
			defer close(done)
			_, err = ScanFile(ctx, b, File{Key: "f.parquet", Rows: -1}, 0, 0, retailContract(), func(bt *Batch) error {
				if len(bt.Accepted) != bt.Rows || len(bt.Issues) > bt.Rows {
					return fmt.Errorf("inconsistent batch: %d rows, %d flags, %d issues", bt.Rows, len(bt.Accepted), len(bt.Issues))
				}
				return nil
			})
		}()
		select {
		case <-done:
		case <-time.After(scanBudget):
			t.Fatalf("scanning %d bytes did not finish within %s (a hang)", len(data), scanBudget)
		}
		if err != nil && strings.HasPrefix(err.Error(), "inconsistent batch") {
			t.Fatal(err)
		}
		if err != nil {
			var de *DataError
			if !errors.As(err, &de) || de.File != "f.parquet" {
				t.Fatalf("want a *DataError naming the file, got %T: %v", err, err)
			}
		}
	})
}
