package tabletest

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// Rows reads a snapshot through the dataset scan with a contract of cols (every row accepted
// however bad): each row as its values joined by |, sorted.
func Rows(t testing.TB, b objstore.Bucket, s dataset.Snapshot, cols ...contract.Column) []string {
	t.Helper()
	var out []string
	c := contract.Contract{Columns: cols, MaxBadRowShare: 1}
	require.NoError(t, dataset.Scan(context.Background(), b, s, c, func(batch *dataset.Batch) error {
		for r := 0; r < batch.Rows; r++ {
			vals := make([]string, len(cols))
			for i, col := range cols {
				vals[i] = batch.Value(col, r)
			}
			out = append(out, strings.Join(vals, "|"))
		}
		return nil
	}))
	slices.Sort(out)
	return out
}
