package drift

import (
	"fmt"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/driftline/driftline/internal/exactsum"
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
// window over every row reports (statistics, p-values, effect sizes, histograms, decisions,
// the current mean), bit for bit.
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
		require.Equal(t, want, got, fmt.Sprintf("trial %d: %d rows in %d partitions merged in order %v", trial, rows, k, order))
	}
	other := NewWindow(Profile{Features: ref.Features[:1]})
	require.ErrorContains(t, NewWindow(ref).Merge(other), "3 features and 1")
}

// Profile builders over a window's partitions, passed through their encoding as partition
// summaries are and merged in any order, build the profile one builder over every row builds,
// bit for bit: counts, sample, edges, shares, mean and standard deviation. The values have a
// large mean and a small spread, where sums in floating point lose the last digits.
func TestMergedProfilesEqualOneProfile(t *testing.T) {
	rng := rand.New(rand.NewPCG(9, 4))
	names, kinds := []string{"ts", "price", "region"}, []string{Numeric, Numeric, Categorical}
	for trial := range 30 {
		rows := 1 + rng.IntN(4000)
		k := 1 + rng.IntN(8)
		one, parts := NewProfileBuilder(names, kinds), make([]*ProfileBuilder, k)
		for p := range parts {
			parts[p] = NewProfileBuilder(names, kinds)
		}
		for r := range rows {
			ts, price := 1.7e9+rng.NormFloat64()*1e3, rng.NormFloat64()*math.Pow(10, float64(rng.IntN(12)-6))
			if rng.IntN(30) == 0 {
				price = math.NaN()
			}
			region := []string{"north", "south", "east"}[rng.IntN(3)]
			p := parts[rng.IntN(k)] // rows scattered, not in runs
			for _, b := range []*ProfileBuilder{one, p} {
				b.AddNumeric(0, ts, uint64(r))
				b.AddNumeric(1, price, uint64(r))
				b.AddCategory(2, region)
			}
		}
		merged := NewProfileBuilder(names, kinds)
		for _, p := range rng.Perm(k) {
			data, err := parts[p].MarshalBinary()
			require.NoError(t, err)
			back := NewProfileBuilder(names, kinds)
			require.NoError(t, back.UnmarshalBinary(data))
			require.NoError(t, merged.Merge(back))
		}
		want, got := one.Profile(), merged.Profile()
		for i := range want.Features {
			require.Equal(t, math.Float64bits(want.Features[i].Mean), math.Float64bits(got.Features[i].Mean), "trial %d %s", trial, names[i])
			require.Equal(t, math.Float64bits(want.Features[i].Std), math.Float64bits(got.Features[i].Std), "trial %d %s", trial, names[i])
		}
		require.Equal(t, want, got, "trial %d: %d rows in %d partitions", trial, rows, k)
	}
}

// A summary stored by a worker before the sums were exact (a count, a shift and shifted sums)
// is still merged, its mean and standard deviation within a relative 1e-12, as they were.
func TestAStateOfShiftedSumsIsStillRead(t *testing.T) {
	vs := []float64{101.5, 99.25, 100.75, 98.5, 102}
	shift := vs[0]
	legacy := momentsState{N: int64(len(vs)), Shift: shift}
	var exact moments
	for _, v := range vs {
		d := v - shift
		legacy.S1 += d
		legacy.S2 += d * d
		exact.add(v)
	}
	m, err := legacy.moments()
	require.NoError(t, err)
	require.InEpsilon(t, exact.mean(), m.mean(), 1e-12)
	require.InEpsilon(t, exact.std(), m.std(), 1e-12)
	_, err = momentsState{N: 1, Exact: true, Sum: exactsum.State{Int: []byte{1}, Shift: 1 << 20}}.moments()
	require.ErrorContains(t, err, "more than a sum holds")
}
