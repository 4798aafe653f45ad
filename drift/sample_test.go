package drift

import (
	"math"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"

	"github.com/stretchr/testify/require"
)

// The quantiles a profile keeps come from a bottom-k sample (k = SampleSize, 10,000 values):
// a uniform sample without replacement, so by the Dvoretzky-Kiefer-Wolfowitz inequality its
// empirical distribution is within eps = sqrt(ln(2/alpha) / 2k) of the data's everywhere with
// probability 1 - alpha: 1.63% in rank at alpha = 0.01. Over 1,000,000 values of three shapes
// (normal, heavy-tailed, a few repeated values) the sample's largest rank error is under it,
// and the samples of four parts merged equal the whole's sample.
func TestBottomKQuantilesWithinTheDKWBound(t *testing.T) {
	eps := math.Sqrt(math.Log(2/0.01) / (2 * SampleSize))
	rng := rand.New(rand.NewPCG(11, 12))
	shapes := map[string]func() float64{
		"normal":    rng.NormFloat64,
		"lognormal": func() float64 { return math.Exp(2 * rng.NormFloat64()) },
		"repeated":  func() float64 { return float64(rng.IntN(7)) },
	}
	for _, name := range []string{"normal", "lognormal", "repeated"} {
		const n = 1_000_000
		values := make([]float64, n)
		whole, parts := NewBottomK(SampleSize, 5), []*BottomK{NewBottomK(SampleSize, 5), NewBottomK(SampleSize, 5), NewBottomK(SampleSize, 5), NewBottomK(SampleSize, 5)}
		for i := range values {
			values[i] = shapes[name]()
			whole.Add(values[i], uint64(i))
			parts[i*4/n].Add(values[i], uint64(i))
		}
		for _, p := range parts[1:] {
			parts[0].Merge(p)
		}
		sample := whole.Sorted()
		require.Len(t, sample, SampleSize)
		require.Equal(t, sample, parts[0].Sorted(), "%s: the merged sample is the whole's", name)
		slices.Sort(values)
		// The largest gap between the two empirical CDFs, at every sampled value (just below
		// and at it), is the KS distance of the sample from the data.
		var worst float64
		for _, v := range sample {
			below := float64(sort.SearchFloat64s(values, v)) / n
			at := float64(sort.Search(n, func(i int) bool { return values[i] > v })) / n
			lo := float64(sort.SearchFloat64s(sample, v)) / SampleSize
			hi := float64(sort.Search(SampleSize, func(i int) bool { return sample[i] > v })) / SampleSize
			worst = max(worst, math.Abs(below-lo), math.Abs(at-hi))
		}
		t.Logf("%s: largest rank error of the sample %.4f (DKW bound at 99%%: %.4f)", name, worst, eps)
		require.Less(t, worst, eps, name)
	}
}
