package drift

import (
	"fmt"
	"math"
	"sort"
)

// CoarseEdges keeps at most bins-1 of a feature's reference edges (bins bins), evenly through
// them: a sketch of many features stays small. The result is a subset of edges, so the
// reference's shares over it are sums of its shares (BinnedReport).
func CoarseEdges(edges []float64, bins int) []float64 {
	if bins < 1 {
		bins = 1
	}
	if len(edges)+1 <= bins {
		return edges
	}
	out := make([]float64, 0, bins-1)
	for i := 1; i < bins; i++ {
		out = append(out, edges[i*(len(edges)+1)/bins-1])
	}
	return out
}

// Binned is one feature's current values counted in bins: len(Edges)+1 counts (bins
// (-inf, e0], (e0, e1], ..., (ek, inf)), and its missing values.
type Binned struct {
	Name   string
	Edges  []float64 // a subset of the reference's edges (CoarseEdges)
	Counts []uint64
	Nulls  uint64
}

// BinnedReport compares features counted in bins (a device's drift sketch, with no values)
// with the reference: per feature, PSI and the Jensen-Shannon distance of the shares, KS on
// the bins' cumulative shares (a lower bound of the KS of the values) and Pearson's
// chi-squared test of the counts against the reference shares; then the usual correction
// and decision (Report). A feature missing from the reference, or counted in bins that are
// not a subset of its edges, is an error naming it.
func BinnedReport(ref Profile, cur []Binned, cfg Config) (Report, error) {
	frs := make([]FeatureResult, 0, len(cur))
	for _, b := range cur {
		fp, ok := ref.Feature(b.Name)
		if !ok {
			return Report{}, fmt.Errorf("feature %s is not in the reference", b.Name)
		}
		if len(b.Counts) != len(b.Edges)+1 {
			return Report{}, fmt.Errorf("feature %s: %d counts for %d edges", b.Name, len(b.Counts), len(b.Edges))
		}
		refShares, err := mergeShares(fp, b.Edges)
		if err != nil {
			return Report{}, fmt.Errorf("feature %s: %v", b.Name, err)
		}
		frs = append(frs, binnedResult(fp, b, refShares))
	}
	return decideReport(cfg, frs), nil
}

// mergeShares are the reference's shares over a subset of its edges.
func mergeShares(fp FeatureProfile, edges []float64) ([]float64, error) {
	if len(fp.Props) != len(fp.Edges)+1 {
		return nil, fmt.Errorf("the reference has no bins")
	}
	for _, e := range edges {
		if i := sort.SearchFloat64s(fp.Edges, e); i == len(fp.Edges) || fp.Edges[i] != e {
			return nil, fmt.Errorf("edge %g is not one of the reference's", e)
		}
	}
	out := make([]float64, len(edges)+1)
	for j, p := range fp.Props {
		upper := math.Inf(1)
		if j < len(fp.Edges) {
			upper = fp.Edges[j]
		}
		out[sort.SearchFloat64s(edges, upper)] += p
	}
	return out, nil
}

func binnedResult(fp FeatureProfile, b Binned, refShares []float64) FeatureResult {
	fr := FeatureResult{Name: b.Name, Kind: Numeric, Reference: fp.Count, Test: "chi-squared (binned sketch)", RefMean: fp.Mean}
	var n float64
	for _, c := range b.Counts {
		n += float64(c)
	}
	fr.Current = int64(n)
	if total := n + float64(b.Nulls); total > 0 {
		fr.NullShare = float64(b.Nulls) / total
	}
	if refTotal := float64(fp.Count + fp.Nulls); refTotal > 0 {
		fr.ReferenceNullShare = float64(fp.Nulls) / refTotal
	}
	if n == 0 {
		fr.PValue = 1
		return fr
	}
	obs, cur := make([]float64, len(b.Counts)), make([]float64, len(b.Counts))
	expected := make([]float64, len(refShares))
	var cr, cc float64
	for i, c := range b.Counts {
		obs[i], cur[i] = float64(c), float64(c)/n
		expected[i] = math.Max(refShares[i], 1e-4) // an empty reference bin: the chi-squared stays finite
		cr += refShares[i]
		cc += cur[i]
		fr.KS = math.Max(fr.KS, math.Abs(cr-cc))
	}
	fr.PSI, fr.JS = PSI(refShares, cur), JSDistance(refShares, cur)
	if len(obs) > 1 {
		fr.Statistic, fr.PValue = ChiSquare(obs, expected)
	} else {
		fr.PValue = 1
	}
	fr.Histogram = &Histogram{Labels: binLabels(b.Edges), Reference: refShares, Current: cur}
	return fr
}
