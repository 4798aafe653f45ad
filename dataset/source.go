package dataset

import (
	"context"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/objstore"
)

// Source streams batches (row groups with the contract applied) to visit, in order, until
// visit fails or the rows run out. Domain code (training, evaluation, drift) consumes a
// Source, so it is tested on batches made in memory and runs on Parquet in S3 unchanged.
type Source func(visit func(*Batch) error) error

// Days selects which of a snapshot's partitions a step reads.
type Days func(date string) bool

// AllDays reads every partition.
func AllDays(string) bool { return true }

// Before selects the days before cut (YYYY-MM-DD): the training part of a window.
func Before(cut string) Days { return func(d string) bool { return d < cut } }

// From selects cut and the days after it: the holdout part of a window.
func From(cut string) Days { return func(d string) bool { return d >= cut } }

// ScanSource is a Source over the snapshot's files of the selected days: the other files are
// never opened (a step reads only the bytes of its own days). Row keys (Batch.RowKey0) are
// the same as in a scan of the whole snapshot, so hash samples agree across steps.
func ScanSource(ctx context.Context, b objstore.Bucket, s Snapshot, c contract.Contract, days Days) Source {
	return func(visit func(*Batch) error) error { return ScanDays(ctx, b, s, c, days, visit) }
}

// Batches is a Source over batches already in memory (tests, small windows).
func Batches(batches ...*Batch) Source {
	return func(visit func(*Batch) error) error {
		for _, b := range batches {
			if err := visit(b); err != nil {
				return err
			}
		}
		return nil
	}
}
