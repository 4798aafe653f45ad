package drift

import (
	"fmt"
	"github.com/driftline/driftline/internal/exactsum"
	"hash/fnv"
	"math"
	"sort"
)

// SampleSize is how many values a profile (and a window accumulator) keeps per numeric
// feature. The KS test compares the reference sample with every current value.
const SampleSize = 10000

// Bins is the number of reference-quantile bins used by PSI and JS for numeric features.
const Bins = 10

// Kinds of features.
const (
	Numeric     = "numeric"
	Categorical = "categorical"
)

// FeatureProfile summarises one feature of the training data.
type FeatureProfile struct {
	Name  string `json:"name"`
	Kind  string `json:"kind"`
	Count int64  `json:"count"`
	// Nulls counts the rows without a value (null, or NaN for numbers): they are not in
	// Count, the moments or the sample.
	Nulls int64   `json:"nulls,omitempty"`
	Mean  float64 `json:"mean,omitempty"`
	Std   float64 `json:"std,omitempty"`
	// Sample is a sorted uniform sample of at most SampleSize values (all values when fewer).
	Sample []float64 `json:"sample,omitempty"`
	// Edges are the inner cut points of the reference-quantile bins; Props the reference
	// share per bin.
	Edges []float64 `json:"edges,omitempty"`
	Props []float64 `json:"props,omitempty"`
	// Categories (sorted) and their reference shares, for categorical features.
	Categories []string  `json:"categories,omitempty"`
	Shares     []float64 `json:"shares,omitempty"`
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

// salt gives each feature its own sampling hash.
func salt(name string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(name))
	return h.Sum64()
}

// moments accumulates the count, and the sums of values and of their squares exactly
// (exactsum), so the mean and standard deviation of a window merged from partitions equal one
// pass's bit for bit, and the variance keeps every digit however large the mean.
type moments struct {
	n int64
	exactsum.Moments
}

func (m *moments) add(v float64) {
	m.n++
	m.Add(v)
}

func (m *moments) mean() float64 {
	s, _ := m.Sums()
	return s.Quo(m.n)
}

func (m *moments) std() float64 {
	s, sq := m.Sums()
	return math.Sqrt(exactsum.Variance(s, sq, m.n))
}

// ProfileBuilder builds a profile from streamed rows in bounded memory.
type ProfileBuilder struct {
	names   []string
	kinds   []string
	mom     []moments
	samples []*BottomK
	cats    []map[string]int64
	nulls   []int64
}

// NewProfileBuilder profiles the named features; kinds[i] is Numeric or Categorical.
func NewProfileBuilder(names, kinds []string) *ProfileBuilder {
	b := &ProfileBuilder{names: names, kinds: kinds, mom: make([]moments, len(names)),
		samples: make([]*BottomK, len(names)), cats: make([]map[string]int64, len(names)), nulls: make([]int64, len(names))}
	for i, n := range names {
		if kinds[i] == Categorical {
			b.cats[i] = map[string]int64{}
		} else {
			b.samples[i] = NewBottomK(SampleSize, salt(n))
		}
	}
	return b
}

// AddNumeric adds a value of numeric feature i for the row with the given key; NaN (a null)
// is counted as missing and kept out of the statistics.
func (b *ProfileBuilder) AddNumeric(i int, v float64, rowKey uint64) {
	if v != v {
		b.nulls[i]++
		return
	}
	b.mom[i].add(v)
	b.samples[i].Add(v, rowKey)
}

// AddCategory adds a category of categorical feature i.
func (b *ProfileBuilder) AddCategory(i int, c string) {
	b.mom[i].n++
	b.cats[i][c]++
}

// Profile finishes the profile.
func (b *ProfileBuilder) Profile() Profile {
	var p Profile
	for i, name := range b.names {
		fp := FeatureProfile{Name: name, Kind: b.kinds[i], Count: b.mom[i].n, Nulls: b.nulls[i]}
		if b.kinds[i] == Categorical {
			fp.Categories, fp.Shares = shares(b.cats[i])
		} else {
			fp.Mean, fp.Std = b.mom[i].mean(), b.mom[i].std()
			fp.Sample = b.samples[i].Sorted()
			fp.Edges = quantileEdges(fp.Sample, Bins)
			counts := make([]float64, len(fp.Edges)+1)
			for _, v := range fp.Sample {
				counts[binOf(fp.Edges, v)]++
			}
			fp.Props = normalise(counts)
		}
		p.Features = append(p.Features, fp)
	}
	return p
}

// NewProfile profiles in-memory numeric columns (row keys are the row indexes).
func NewProfile(names []string, cols [][]float64) (Profile, error) {
	if len(names) != len(cols) {
		return Profile{}, fmt.Errorf("profile: %d names for %d columns", len(names), len(cols))
	}
	kinds := make([]string, len(names))
	for i := range kinds {
		kinds[i] = Numeric
	}
	b := NewProfileBuilder(names, kinds)
	for i, c := range cols {
		for r, v := range c {
			b.AddNumeric(i, v, uint64(r))
		}
	}
	return b.Profile(), nil
}

func shares(counts map[string]int64) ([]string, []float64) {
	cats := make([]string, 0, len(counts))
	for c := range counts {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	out := make([]float64, len(cats))
	for i, c := range cats {
		out[i] = float64(counts[c])
	}
	return cats, normalise(out)
}

func normalise(v []float64) []float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	out := make([]float64, len(v))
	if s == 0 {
		return out
	}
	for i, x := range v {
		out[i] = x / s
	}
	return out
}

// quantileEdges are the distinct inner quantile cut points (linear interpolation).
func quantileEdges(sorted []float64, bins int) []float64 {
	var edges []float64
	if len(sorted) == 0 {
		return edges
	}
	for i := 1; i < bins; i++ {
		pos := float64(i) / float64(bins) * float64(len(sorted)-1)
		lo := int(math.Floor(pos))
		hi := min(lo+1, len(sorted)-1)
		e := sorted[lo] + (pos-float64(lo))*(sorted[hi]-sorted[lo])
		if len(edges) == 0 || e > edges[len(edges)-1] {
			edges = append(edges, e)
		}
	}
	return edges
}

// binOf is the bin of v: (-inf, e0], (e0, e1], ..., (ek, inf).
func binOf(edges []float64, v float64) int {
	return sort.SearchFloat64s(edges, v)
}

// PredictionFeature names the model output in prediction profiles (prediction drift).
const PredictionFeature = "prediction"
