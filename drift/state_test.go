package drift

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// A window or profile builder checkpointed half way and restored into a new one ends exactly
// as one that took every row: the resumed pass of a worker that crashed reports what an
// uninterrupted pass reports.
func TestCheckpointedAccumulatorsEndAsUninterruptedOnes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := make([]float64, 20_000)
	for i := range ref {
		ref[i] = math.Round(rng.NormFloat64()*10) / 2
	}
	prof, err := NewProfile([]string{"x"}, [][]float64{ref})
	require.NoError(t, err)
	prof.Features = append(prof.Features, FeatureProfile{Name: "c", Kind: Categorical, Categories: []string{"a", "b"}, Shares: []float64{0.5, 0.5}})
	kinds := []string{Numeric, Categorical}
	const n = 50_000
	add := func(w *Window, b *ProfileBuilder, from, to int) {
		r := rand.New(rand.NewPCG(3, uint64(from)))
		for i := from; i < to; i++ {
			v := math.Round((r.NormFloat64()*10 + 1)) / 2
			if i%97 == 0 {
				v = math.NaN()
			}
			c := []string{"a", "b", "z"}[i%3]
			w.AddNumeric(0, v, uint64(i))
			w.AddCategory(1, c)
			b.AddNumeric(0, v, uint64(i))
			b.AddCategory(1, c)
		}
	}
	whole, wholeB := NewWindow(prof), NewProfileBuilder([]string{"x", "c"}, kinds)
	add(whole, wholeB, 0, n/2)
	add(whole, wholeB, n/2, n)

	half, halfB := NewWindow(prof), NewProfileBuilder([]string{"x", "c"}, kinds)
	add(half, halfB, 0, n/2)
	ws, err := half.MarshalBinary()
	require.NoError(t, err)
	bs, err := halfB.MarshalBinary()
	require.NoError(t, err)
	resumed, resumedB := NewWindow(prof), NewProfileBuilder([]string{"x", "c"}, kinds)
	require.NoError(t, resumed.UnmarshalBinary(ws))
	require.NoError(t, resumedB.UnmarshalBinary(bs))
	add(resumed, resumedB, n/2, n)

	require.Equal(t, whole.Report(DefaultConfig()), resumed.Report(DefaultConfig()))
	require.Equal(t, wholeB.Profile(), resumedB.Profile())

	// A state of another profile is refused, naming the feature.
	other := NewWindow(Profile{Features: prof.Features[1:]})
	require.ErrorContains(t, other.UnmarshalBinary(ws), "features")
	require.ErrorContains(t, NewProfileBuilder([]string{"y", "c"}, kinds).UnmarshalBinary(bs), "features")
}
