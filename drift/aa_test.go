package drift

import (
	"fmt"
	"math/rand/v2"
	"os"
	"testing"

	"github.com/stretchr/testify/require"
)

// A/A: a window drawn from the same distribution as the reference must not drift, whatever its
// size: at most 1% of features flag, from 1,000 to 1,000,000 rows (10,000,000 with
// DRIFT_AA_10M set, as make chaos does) (larger samples make every
// p-value tiny; the effect-size thresholds keep the decision the same). The window's numeric
// features are normal, lognormal and uniform; the categorical ones have skewed shares.
func TestAAFlagsAtMostOnePercentOfFeaturesAtEverySize(t *testing.T) {
	const numeric, categorical = 30, 10
	names, kinds := make([]string, 0, numeric+categorical), make([]string, 0, numeric+categorical)
	for i := range numeric {
		names, kinds = append(names, fmt.Sprint("x", i)), append(kinds, Numeric)
	}
	for i := range categorical {
		names, kinds = append(names, fmt.Sprint("c", i)), append(kinds, Categorical)
	}
	draw := func(rng *rand.Rand, j int) float64 {
		switch j % 3 {
		case 0:
			return rng.NormFloat64()
		case 1:
			return rng.ExpFloat64() * rng.ExpFloat64()
		}
		return rng.Float64()
	}
	cats := []string{"a", "b", "c", "d", "e"}
	cat := func(rng *rand.Rand) string { // shares 0.4, 0.3, 0.15, 0.1, 0.05
		u := rng.Float64()
		for i, p := range []float64{0.4, 0.7, 0.85, 0.95} {
			if u < p {
				return cats[i]
			}
		}
		return cats[4]
	}
	rng := rand.New(rand.NewPCG(1, 2))
	ref := NewProfileBuilder(names, kinds)
	for r := range 200_000 {
		for j := range names {
			if j < numeric {
				ref.AddNumeric(j, draw(rng, j), uint64(r))
			} else {
				ref.AddCategory(j, cat(rng))
			}
		}
	}
	prof := ref.Profile()
	flagged, total := 0, 0
	sizes := []int{1_000, 10_000, 100_000, 1_000_000}
	if testing.Short() {
		sizes = sizes[:3]
	}
	if os.Getenv("DRIFT_AA_10M") != "" { // make chaos: the 10M-row window too (about 2 min)
		sizes = append(sizes, 10_000_000)
	}
	for _, n := range sizes {
		w := NewWindow(prof)
		for r := range n {
			for j := range names {
				if j < numeric {
					w.AddNumeric(j, draw(rng, j), uint64(1e9+r))
				} else {
					w.AddCategory(j, cat(rng))
				}
			}
		}
		rep := w.Report(DefaultConfig())
		for _, f := range rep.Features {
			total++
			if f.Drifted {
				flagged++
				t.Logf("n=%d: %s flagged: %s", n, f.Name, f.Why)
			}
		}
		require.False(t, rep.Drifted, "n=%d: the window drifted: %s", n, rep.Why)
	}
	require.LessOrEqual(t, float64(flagged), 0.01*float64(total), "%d of %d feature comparisons flagged", flagged, total)
}

// One unseen category in a million rows is not drift; a new category holding 5% of the rows
// is.
func TestAnUnseenCategoryNeedsAShareToDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	ref := NewProfileBuilder([]string{"c"}, []string{Categorical})
	for range 100_000 {
		ref.AddCategory(0, []string{"a", "b"}[rng.IntN(2)])
	}
	prof := ref.Profile()
	w := NewWindow(prof)
	for range 1_000_000 {
		w.AddCategory(0, []string{"a", "b"}[rng.IntN(2)])
	}
	w.AddCategory(0, "z")
	f := w.Report(DefaultConfig()).Features[0]
	require.Equal(t, []string{"z"}, f.NewCategories)
	require.False(t, f.Drifted, f.Why)
	w2 := NewWindow(prof)
	for i := range 100_000 {
		if i%20 == 0 {
			w2.AddCategory(0, "z")
		} else {
			w2.AddCategory(0, []string{"a", "b"}[rng.IntN(2)])
		}
	}
	f = w2.Report(DefaultConfig()).Features[0]
	require.True(t, f.Drifted, f.Why)
	require.Contains(t, f.Why, "new categories z (5.00% of rows)")
}
