// Package drift builds reference profiles of training data and compares a current window
// against them, feature by feature (Kolmogorov-Smirnov and Population Stability Index).
package drift

import (
	"fmt"
	"math"
	"slices"
)

// SampleSize caps the sorted sample a profile keeps per feature.
const SampleSize = 4096

// Bins is the number of reference-quantile bins used by PSI.
const Bins = 10

// FeatureProfile summarises one numeric feature of the training data.
type FeatureProfile struct {
	Name  string  `json:"name"`
	Count int     `json:"count"`
	Mean  float64 `json:"mean"`
	Std   float64 `json:"std"`
	// Sample is an evenly spaced sorted sample of the values (every order statistic when the
	// feature has at most SampleSize values).
	Sample []float64 `json:"sample"`
	// Edges are the inner quantile cut points of the PSI bins; Props the share per bin.
	Edges []float64 `json:"edges"`
	Props []float64 `json:"props"`
}

// Profile is a model version's reference profile, stored with the version.
type Profile struct {
	Features []FeatureProfile `json:"features"`
}

// Feature returns the named feature's profile.
func (p *Profile) Feature(name string) (FeatureProfile, bool) {
	for _, f := range p.Features {
		if f.Name == name {
			return f, true
		}
	}
	return FeatureProfile{}, false
}

// NewFeatureProfile profiles one column.
func NewFeatureProfile(name string, values []float64) FeatureProfile {
	sorted := slices.Clone(values)
	slices.Sort(sorted)
	fp := FeatureProfile{Name: name, Count: len(sorted)}
	if len(sorted) == 0 {
		return fp
	}
	var sum float64
	for _, v := range sorted {
		sum += v
	}
	fp.Mean = sum / float64(len(sorted))
	var ss float64
	for _, v := range sorted {
		ss += (v - fp.Mean) * (v - fp.Mean)
	}
	fp.Std = math.Sqrt(ss / float64(len(sorted)))
	fp.Sample = evenSample(sorted, SampleSize)
	for i := 1; i < Bins; i++ {
		e := quantile(sorted, float64(i)/Bins)
		if len(fp.Edges) == 0 || e > fp.Edges[len(fp.Edges)-1] {
			fp.Edges = append(fp.Edges, e)
		}
	}
	fp.Props = binShares(sorted, fp.Edges)
	return fp
}

// NewProfile profiles the named columns.
func NewProfile(names []string, cols [][]float64) (Profile, error) {
	if len(names) != len(cols) {
		return Profile{}, fmt.Errorf("profile: %d names for %d columns", len(names), len(cols))
	}
	p := Profile{}
	for i, n := range names {
		p.Features = append(p.Features, NewFeatureProfile(n, cols[i]))
	}
	return p, nil
}

func evenSample(sorted []float64, n int) []float64 {
	if len(sorted) <= n {
		return sorted
	}
	out := make([]float64, n)
	for i := range n {
		out[i] = sorted[int(float64(i)*float64(len(sorted)-1)/float64(n-1))]
	}
	return out
}

// quantile is the linear-interpolation quantile of sorted data (numpy's default).
func quantile(sorted []float64, q float64) float64 {
	pos := q * float64(len(sorted)-1)
	lo := int(math.Floor(pos))
	hi := min(lo+1, len(sorted)-1)
	return sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
}

// binShares counts sorted values into the bins (-inf, e0], (e0, e1], ..., (ek, inf).
func binShares(sorted []float64, edges []float64) []float64 {
	counts := make([]float64, len(edges)+1)
	for _, v := range sorted {
		i, _ := slices.BinarySearch(edges, v) // first edge >= v
		counts[i]++
	}
	for i := range counts {
		counts[i] /= float64(len(sorted))
	}
	return counts
}
