package monitor

import (
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/predlog"
)

// The allocation-free scan reads exactly what encoding/json reads, and leaves to it (or to
// rejection) whatever is not a flat object of numbers.
func TestColumnsReadWhatJSONReads(t *testing.T) {
	names := []string{"a", "b"}
	index := map[string]int{"a": 0, "b": 1}
	for _, s := range []string{
		`{"a":1,"b":2.5}`, ` { "a" : -1e3 , "b" : null } `, `{"b":0.125}`, `{}`, `{"c":1,"a":2}`, `{"a":1,"a":3}`,
		`{"a\u0041":1,"b":2}`, `{"a":{"x":1}}`, `{"a":"1"}`, `{"a":Infinity}`, `{"a":NaN}`, `{"a":1_0}`, `{"a":0x10}`,
		`{"a":01}`, `{"a":1.}`, `{"a":.5}`, `{"a":1}x`, `{"a":1,}`, `{"a" 1}`, `[1,2]`, `null`, ``, `{"a":1e400}`, `{"a":-0}`,
	} {
		fast := []float64{math.NaN(), math.NaN()}
		slow := []float64{math.NaN(), math.NaN()}
		okSlow := decodeSlow(s, index, slow)
		cols, ok := columns([]string{s}, names)
		require.Equal(t, okSlow, ok[0], "%q", s)
		if okSlow {
			fast[0], fast[1] = cols[0][0], cols[1][0]
			for j := range fast {
				require.True(t, fast[j] == slow[j] || math.IsNaN(fast[j]) && math.IsNaN(slow[j]), "%q feature %s: %v vs %v", s, names[j], fast[j], slow[j])
			}
		}
	}
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
