package drift

import (
	"math/rand/v2"
	"sort"
	"testing"
)

func binnedOf(edges []float64, xs []float64) Binned {
	b := Binned{Name: "x", Edges: edges, Counts: make([]uint64, len(edges)+1)}
	for _, v := range xs {
		b.Counts[sort.SearchFloat64s(edges, v)]++
	}
	return b
}

// A sketch's counts decide as the values would: the same distribution does not drift, a
// shifted one does, over the reference's own bins and over thinned ones; the thinned bins'
// reference shares are sums of the reference's.
func TestBinnedSketchesDecideDrift(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	ref := make([]float64, 5000)
	for i := range ref {
		ref[i] = 10 * rng.Float64()
	}
	p, err := NewProfile([]string{"x"}, [][]float64{ref})
	if err != nil {
		t.Fatal(err)
	}
	fp := p.Features[0]
	same, shifted := make([]float64, 3000), make([]float64, 3000)
	for i := range same {
		same[i] = 10 * rng.Float64()
		shifted[i] = 3 + 10*rng.Float64()
	}
	for _, bins := range []int{len(fp.Edges) + 1, 4} {
		edges := CoarseEdges(fp.Edges, bins)
		if len(edges) > bins-1 {
			t.Fatalf("%d edges for %d bins", len(edges), bins)
		}
		shares, err := mergeShares(fp, edges)
		if err != nil {
			t.Fatal(err)
		}
		var sum float64
		for _, s := range shares {
			sum += s
		}
		if sum < 0.999 || sum > 1.001 {
			t.Fatalf("thinned shares sum to %g", sum)
		}
		rep, err := BinnedReport(p, []Binned{binnedOf(edges, same)}, DefaultConfig())
		if err != nil || rep.Drifted {
			t.Fatalf("%d bins, the same distribution: drifted %v (%s), %v", bins, rep.Drifted, rep.Why, err)
		}
		rep, err = BinnedReport(p, []Binned{binnedOf(edges, shifted)}, DefaultConfig())
		if err != nil || !rep.Drifted {
			t.Fatalf("%d bins, shifted by 3: drifted %v (%s), %v", bins, rep.Drifted, rep.Why, err)
		}
	}
	if _, err := BinnedReport(p, []Binned{{Name: "y", Counts: []uint64{1}}}, DefaultConfig()); err == nil {
		t.Fatal("a feature not in the reference is an error")
	}
	if _, err := BinnedReport(p, []Binned{binnedOf([]float64{5.5555}, same)}, DefaultConfig()); err == nil {
		t.Fatal("bins that are not the reference's are an error")
	}
}
