package drift

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func normal(seed uint64, n int, mu, sigma float64) []float64 {
	r := rand.New(rand.NewPCG(seed, 7))
	out := make([]float64, n)
	for i := range out {
		out[i] = mu + sigma*r.NormFloat64()
	}
	return out
}

func TestKSKnownValues(t *testing.T) {
	// Disjoint samples: D = 1. Identical: D = 0, p = 1.
	d, p := KS([]float64{1, 2, 3}, []float64{4, 5, 6})
	require.Equal(t, 1.0, d)
	require.Less(t, p, 0.1)
	d, p = KS([]float64{1, 2, 3}, []float64{1, 2, 3})
	require.Equal(t, 0.0, d)
	require.Equal(t, 1.0, p)
	// Hand-computed: a={1,2,3,4}, b={3,4,5,6}: ECDF gap is 0.5 at x in [2,3).
	d, _ = KS([]float64{1, 2, 3, 4}, []float64{3, 4, 5, 6})
	require.InDelta(t, 0.5, d, 1e-12)
	// Kolmogorov survival function at well-known points: P(K > 1.36) ~ 0.049, P(K > 1.63) ~ 0.010.
	require.InDelta(t, 0.0494, kolmogorovSF(1.36), 5e-4)
	require.InDelta(t, 0.0098, kolmogorovSF(1.63), 5e-4)
	require.InDelta(t, 0.27, kolmogorovSF(1.0), 1e-2)
	require.InDelta(t, kolmogorovSF(1.1799), kolmogorovSF(1.1801), 1e-3, "both series agree at the switch")
}

func TestPSI(t *testing.T) {
	ref := NewFeatureProfile("x", normal(1, 20000, 0, 1))
	same := PSI(ref.Props, ref.Edges, normal(2, 20000, 0, 1))
	require.Less(t, same, 0.01)
	shifted := PSI(ref.Props, ref.Edges, normal(3, 20000, 1, 1))
	require.Greater(t, shifted, 0.5)
	require.Len(t, ref.Props, Bins)
	require.InDelta(t, 1.0, sum(ref.Props), 1e-12)
}

func sum(v []float64) float64 {
	s := 0.0
	for _, x := range v {
		s += x
	}
	return s
}

func TestCompareDecision(t *testing.T) {
	prof, err := NewProfile([]string{"a", "b"}, [][]float64{normal(1, 5000, 0, 1), normal(2, 5000, 5, 2)})
	require.NoError(t, err)
	th := Thresholds{PSI: 0.2, KS: 0.1, KSPValue: 0.01, DriftShare: 0.5}

	rep, err := Compare(prof, []string{"a", "b"}, [][]float64{normal(3, 3000, 0, 1), normal(4, 3000, 5, 2)}, th)
	require.NoError(t, err)
	require.False(t, rep.Drifted, rep.Why)
	require.Zero(t, rep.Share)

	rep, err = Compare(prof, []string{"a", "b"}, [][]float64{normal(5, 3000, 0.8, 1), normal(6, 3000, 5, 2)}, th)
	require.NoError(t, err)
	require.True(t, rep.Drifted, rep.Why)
	require.Equal(t, 0.5, rep.Share)
	require.True(t, rep.Features[0].Drifted)
	require.False(t, rep.Features[1].Drifted)
	require.Contains(t, rep.Why, "a")
	require.Greater(t, rep.Score, 0.2)

	_, err = Compare(prof, []string{"zzz"}, [][]float64{{1}}, th)
	require.ErrorContains(t, err, "zzz")
}

func TestProfileSampleIsBounded(t *testing.T) {
	fp := NewFeatureProfile("x", normal(9, 100000, 0, 1))
	require.Len(t, fp.Sample, SampleSize)
	require.InDelta(t, 0, fp.Mean, 0.02)
	require.InDelta(t, 1, fp.Std, 0.02)
	require.False(t, math.IsNaN(fp.Sample[0]))
}
