package drift

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// mergeReference is a profile of two numeric features (one with repeated values) and a
// categorical one.
func mergeReference(rng *rand.Rand) Profile {
	b := NewProfileBuilder([]string{"price", "weekday", "region"}, []string{Numeric, Numeric, Categorical})
	for r := range 5000 {
		b.AddNumeric(0, 10+rng.NormFloat64()*2, uint64(r))
		b.AddNumeric(1, float64(rng.IntN(7)), uint64(r))
		b.AddCategory(2, []string{"north", "south", "east"}[rng.IntN(3)])
	}
	return b.Profile()
}

// currentRow is a drifted row: price shifted, new regions (several, so the report's order of
// them is tested), some nulls.
func currentRow(w *Window, rng *rand.Rand, key uint64) {
	price := 11 + rng.NormFloat64()*2
	if rng.IntN(20) == 0 {
		price = math.NaN()
	}
	w.AddNumeric(0, price, key)
	w.AddNumeric(1, float64(rng.IntN(8)), key)
	w.AddCategory(2, []string{"north", "south", "east", "west", "centre", "islands", "overseas"}[rng.IntN(7)])
}

// Drift windows over a window's partitions, merged in any order, report exactly what one
// window over every row reports (statistics, p-values, effect sizes, histograms, decisions),
// the current mean within a relative 1e-12.
func TestMergedWindowsEqualOneWindow(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 5))
	ref := mergeReference(rng)
	for trial := range 40 {
		rows := 1 + rng.IntN(3000)
		k := 1 + rng.IntN(6)
		one, parts := NewWindow(ref), make([]*Window, k)
		for p := range parts {
			parts[p] = NewWindow(ref)
		}
		for r := range rows { // rows go to partitions in runs, as files do
			seed := rng.Uint64()
			currentRow(one, rand.New(rand.NewPCG(seed, 1)), uint64(r))
			currentRow(parts[(r*k)/rows], rand.New(rand.NewPCG(seed, 1)), uint64(r))
		}
		order := rng.Perm(k)
		merged := parts[order[0]]
		for _, p := range order[1:] {
			require.NoError(t, merged.Merge(parts[p]))
		}
		want, got := one.Report(DefaultConfig()), merged.Report(DefaultConfig())
		for i := range want.Features {
			w, g := &want.Features[i], &got.Features[i]
			require.InEpsilon(t, w.CurMean+1, g.CurMean+1, 1e-12, "trial %d %s", trial, w.Name)
			g.CurMean = w.CurMean
		}
		require.Equal(t, want, got, fmt.Sprintf("trial %d: %d rows in %d partitions merged in order %v", trial, rows, k, order))
	}
	other := NewWindow(Profile{Features: ref.Features[:1]})
	require.ErrorContains(t, NewWindow(ref).Merge(other), "3 features and 1")
}
