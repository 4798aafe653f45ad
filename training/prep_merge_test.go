package training

import (
	"context"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
)

// The training preparations of a window's partitions (its day files, in any sets), merged in
// any order, give the same gbdt bins and the same reference profile (sample, edges, shares,
// counts, mean and standard deviation) as one pass, bit for bit.
func TestMergedPreparationsEqualOnePass(t *testing.T) {
	b, s, sp := window(t, 10)
	ctx := context.Background()
	var batches []*dataset.Batch
	require.NoError(t, dataset.ScanSource(ctx, b, s, sp.Contract, dataset.AllDays)(func(bt *dataset.Batch) error {
		batches = append(batches, bt)
		return nil
	}))
	add := func(p *Prep, bt *dataset.Batch) {
		for r := 0; r < bt.Rows; r++ {
			if bt.Accepted[r] {
				p.Add(bt, r)
			}
		}
	}
	one, err := NewPrep(sp, s.Rows)
	require.NoError(t, err)
	for _, bt := range batches {
		add(one, bt)
	}
	wantBins, err := one.Binner()
	require.NoError(t, err)
	want := one.Profile()
	rng := rand.New(rand.NewPCG(9, 9))
	for trial := range 10 {
		k := 1 + rng.IntN(5)
		parts := make([]*Prep, k)
		for i := range parts {
			parts[i], err = NewPrep(sp, s.Rows)
			require.NoError(t, err)
		}
		byFile := map[int]int{}
		for _, bt := range batches { // a day file goes whole to one partition
			p, ok := byFile[bt.FileIndex]
			if !ok {
				p = rng.IntN(k)
				byFile[bt.FileIndex] = p
			}
			add(parts[p], bt)
		}
		order := rng.Perm(k)
		merged := parts[order[0]]
		for _, i := range order[1:] {
			require.NoError(t, merged.Merge(parts[i]))
		}
		bins, err := merged.Binner()
		require.NoError(t, err)
		require.Equal(t, wantBins, bins, "trial %d", trial)
		got := merged.Profile()
		require.Equal(t, want, got, "trial %d: %d partitions merged in order %v", trial, k, order)
	}
}
