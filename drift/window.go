package drift

import (
	"sort"
)

// Window accumulates the current window of one profile's features in bounded memory:
// for numeric features, counts of current values between and at the distinct points of the
// reference sample (enough to compute the KS statistic against every current value exactly),
// PSI bin counts, moments and a bottom-k sample for Wasserstein-1; for categorical features,
// category counts.
type Window struct {
	ref   Profile
	feats []*windowFeature
	index map[string]int
}

type windowFeature struct {
	ref FeatureProfile
	// distinct reference points, and the reference ECDF just below and at each
	points          []float64
	refBelow, refAt []float64
	between         []int64 // values in (points[i-1], points[i]); index len(points) = above all
	at              []int64 // values equal to points[i]
	bins            []int64
	mom             moments
	sample          *BottomK
	cats            map[string]int64
}

// NewWindow prepares an accumulator for the profile's features.
func NewWindow(ref Profile) *Window {
	w := &Window{ref: ref, index: map[string]int{}}
	for i, fp := range ref.Features {
		wf := &windowFeature{ref: fp}
		if fp.Kind == Categorical {
			wf.cats = map[string]int64{}
		} else {
			m := float64(len(fp.Sample))
			for j := 0; j < len(fp.Sample); {
				k := j
				for k < len(fp.Sample) && fp.Sample[k] == fp.Sample[j] {
					k++
				}
				wf.points = append(wf.points, fp.Sample[j])
				wf.refBelow = append(wf.refBelow, float64(j)/m)
				wf.refAt = append(wf.refAt, float64(k)/m)
				j = k
			}
			wf.between = make([]int64, len(wf.points)+1)
			wf.at = make([]int64, len(wf.points))
			wf.bins = make([]int64, len(fp.Edges)+1)
			wf.sample = NewBottomK(SampleSize, salt(fp.Name))
		}
		w.feats = append(w.feats, wf)
		w.index[fp.Name] = i
	}
	return w
}

// Index returns the position of a feature, or -1.
func (w *Window) Index(name string) int {
	if i, ok := w.index[name]; ok {
		return i
	}
	return -1
}

// AddNumeric adds a current value of numeric feature i.
func (w *Window) AddNumeric(i int, v float64, rowKey uint64) {
	f := w.feats[i]
	p := sort.SearchFloat64s(f.points, v)
	if p < len(f.points) && f.points[p] == v {
		f.at[p]++
	} else {
		f.between[p]++
	}
	f.bins[binOf(f.ref.Edges, v)]++
	f.mom.add(v)
	f.sample.Add(v, rowKey)
}

// AddCategory adds a current category of categorical feature i.
func (w *Window) AddCategory(i int, c string) {
	f := w.feats[i]
	f.mom.n++
	f.cats[c]++
}

// ks is the exact KS statistic between the reference sample and every current value: the
// reference ECDF is constant between its points and the current ECDF is monotone there, so
// the supremum is reached just below or at a reference point.
func (f *windowFeature) ks() float64 {
	n := float64(f.mom.n)
	var below, d float64
	for i := range f.points {
		below += float64(f.between[i])
		d = max(d, abs(f.refBelow[i]-below/n))
		below += float64(f.at[i])
		d = max(d, abs(f.refAt[i]-below/n))
	}
	return d
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}
