package monitor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/predlog"
)

// Inputs are read from the typed columns, or from an older part's JSON object as
// encoding/json reads it; what is neither is left out, not guessed.
func TestColumnsReadTypedAndOlderInputs(t *testing.T) {
	names := []string{"a", "b"}
	recs := []predlog.Record{
		{InputNames: []string{"a", "b", "c"}, InputValues: []float64{1, math.NaN(), 7}}, // b not sent; c not a model feature
		{InputNames: []string{"b"}, InputValues: []float64{2.5}},
		{Inputs: `{"a":1,"b":2.5}`},
		{Inputs: ` { "a" : -1e3 , "b" : null } `},
		{Inputs: `{"a":"1"}`},
		{Inputs: `{"a":NaN}`},
		{Inputs: `[1,2]`},
		{InputNames: []string{"a"}, InputValues: nil}, // names without values: unreadable
		{}, // no inputs at all: every feature missing
	}
	cols, ok := columns(recs, names)
	require.Equal(t, []bool{true, true, true, true, false, false, false, false, true}, ok)
	same := func(want, got float64) bool { return want == got || math.IsNaN(want) && math.IsNaN(got) }
	for i, want := range [][2]float64{{1, math.NaN()}, {math.NaN(), 2.5}, {1, 2.5}, {-1e3, math.NaN()}} {
		require.True(t, same(want[0], cols[0][i]) && same(want[1], cols[1][i]), "record %d: %v %v", i, cols[0][i], cols[1][i])
	}
	require.True(t, math.IsNaN(cols[0][8]) && math.IsNaN(cols[1][8]))
}

// The protected attribute is read as encoding/json reads it.
func TestGroupReadsWhatJSONReads(t *testing.T) {
	for s, want := range map[string]string{
		`{"region":"north"}`: "north", ` { "x" : "y" , "region" : "south" } `: "south", `{"region":"n\"o"}`: `n"o`,
		`{"region":3}`: "3", `{"other":"a"}`: "", `{"region":null}`: "", `not json`: "", `{"x":{"region":"a"},"region":"b"}`: "b",
	} {
		require.Equal(t, want, group(predlog.Record{Attributes: s}, "region"), "%q", s)
	}
}

// nDCG of a feature ranking against the reference attributions: 1 for the same order, less
// when the most important features fall down the ranking.
func TestNDCG(t *testing.T) {
	ref := map[string]float64{"a": 4, "b": 2, "c": 1}
	require.InDelta(t, 1, ndcg(ref, map[string]float64{"a": 40, "b": 3, "c": 2}), 1e-12)
	// live order c, b, a: DCG 1 + 2/log2(3) + 4/2 against 4 + 2/log2(3) + 1/2
	want := (1 + 2/math.Log2(3) + 4.0/2) / (4 + 2/math.Log2(3) + 1.0/2)
	require.InDelta(t, want, ndcg(ref, map[string]float64{"a": 1, "b": 2, "c": 3}), 1e-12)
	require.Less(t, want, NDCGThreshold)
}
