package drift

import (
	"runtime"
	"sync"
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
	points  []float64
	refEnd  []int32 // reference sample values <= points[i]: its ECDF at the point is refEnd[i]/refN
	refN    float64
	between []int64 // values in (points[i-1], points[i]); index len(points) = above all
	index   pointIndex
	at      []int64 // values equal to points[i]
	bins    []int64
	mom     moments
	sample  *BottomK
	cats    map[string]int64
	nulls   int64
}

// NewWindow prepares an accumulator for the profile's features.
func NewWindow(ref Profile) *Window {
	w := &Window{ref: ref, index: map[string]int{}}
	for i, fp := range ref.Features {
		wf := &windowFeature{ref: fp}
		if fp.Kind == Categorical {
			wf.cats = map[string]int64{}
		} else {
			wf.refN = float64(len(fp.Sample))
			distinct := 0
			for j := range fp.Sample {
				if j == 0 || fp.Sample[j] != fp.Sample[j-1] {
					distinct++
				}
			}
			wf.points, wf.refEnd = make([]float64, 0, distinct), make([]int32, 0, distinct)
			for j := 0; j < len(fp.Sample); {
				k := j
				for k < len(fp.Sample) && fp.Sample[k] == fp.Sample[j] {
					k++
				}
				wf.points = append(wf.points, fp.Sample[j])
				wf.refEnd = append(wf.refEnd, int32(k))
				j = k
			}
			wf.index = newPointIndex(wf.points, fp.Edges)
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

// AddNumeric adds a current value of numeric feature i; NaN (a null) is counted as missing.
func (w *Window) AddNumeric(i int, v float64, rowKey uint64) {
	f := w.feats[i]
	if v != v {
		f.nulls++
		return
	}
	p := f.index.search(f.points, v)
	if p < len(f.points) && f.points[p] == v {
		f.at[p]++
		f.bins[f.index.binAt(p, v, true)]++
	} else {
		f.between[p]++
		f.bins[f.index.binAt(p, v, false)]++
	}
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
	refBelow := 0.0
	for i := range f.points {
		below += float64(f.between[i])
		d = max(d, abs(refBelow-below/n))
		refAt := float64(f.refEnd[i]) / f.refN
		below += float64(f.at[i])
		d = max(d, abs(refAt-below/n))
		refBelow = refAt
	}
	return d
}

func abs(x float64) float64 {
	if x < 0 {
		return -x
	}
	return x
}

// AddColumns adds whole numeric columns (in the profile's feature order), one goroutine per
// feature up to GOMAXPROCS; row keys start at rowKey0.
func (w *Window) AddColumns(cols [][]float64, rowKey0 uint64) {
	var wg sync.WaitGroup
	sem := make(chan struct{}, runtime.GOMAXPROCS(0))
	for i, col := range cols {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			w.feats[i].addColumn(col, rowKey0)
		}()
	}
	wg.Wait()
}

// addColumn is AddNumeric for a whole column, in one tight loop.
func (f *windowFeature) addColumn(col []float64, rowKey0 uint64) {
	points, idx := f.points, &f.index
	between, at, bins := f.between, f.at, f.bins
	sample := f.sample
	salt, threshold := sample.salt, sample.threshold
	mom := &f.mom
	for r, v := range col {
		p := idx.search(points, v)
		if p < len(points) && points[p] == v {
			at[p]++
			bins[idx.binAt(p, v, true)]++
		} else {
			between[p]++
			bins[idx.binAt(p, v, false)]++
		}
		mom.add(v)
		if h := splitmix64((rowKey0 + uint64(r)) ^ salt); h < threshold {
			sample.offer(prio{h, v})
			threshold = sample.threshold
		}
	}
}

// pointIndex finds where a value falls among the distinct reference points, and its PSI bin.
// Buckets split the points' range evenly; start[b] is the first point whose bucket (by the
// very computation applied to values) is at least b. Bucketing is monotone under rounding, so
// a value's place lies in [start[b], start[b+1]] exactly, and most buckets are empty.
type pointIndex struct {
	lo, scale float64
	start     []uint16
	// Per gap p (between points p-1 and p): binBase[p] counts the PSI edges <= points[p-1];
	// gapEdges[p] those strictly inside the gap, the first of which is edges[binBase[p]].
	binBase  []int32
	gapEdges []uint8
	edges    []float64
}

const indexBuckets = 1 << 13

func (x *pointIndex) bucket(v float64) int {
	fb := (v - x.lo) * x.scale
	switch {
	case !(fb > 0): // also NaN
		return 0
	case fb >= indexBuckets:
		return indexBuckets
	}
	return int(fb)
}

func newPointIndex(points, edges []float64) pointIndex {
	x := pointIndex{edges: edges, binBase: make([]int32, len(points)+1), gapEdges: make([]uint8, len(points)+1)}
	e := 0
	for p := 0; p <= len(points); p++ {
		if p > 0 {
			for e < len(edges) && edges[e] <= points[p-1] {
				e++
			}
		}
		x.binBase[p] = int32(e)
		k := e
		for k < len(edges) && (p == len(points) || edges[k] < points[p]) {
			k++
		}
		x.gapEdges[p] = uint8(min(k-e, 255))
	}
	if len(points) < 2 || len(points) >= 1<<16 {
		return x // binary search only
	}
	x.lo = points[0]
	x.scale = float64(indexBuckets) / (points[len(points)-1] - points[0])
	x.start = make([]uint16, indexBuckets+2)
	j := 0
	for b := 0; b <= indexBuckets+1; b++ {
		for j < len(points) && x.bucket(points[j]) < b {
			j++
		}
		x.start[b] = uint16(j)
	}
	return x
}

// search is the index of the first point >= v (len(points) when none).
func (x *pointIndex) search(points []float64, v float64) int {
	if x.start == nil || v != v {
		return lowerBound(points, 0, len(points), v)
	}
	b := x.bucket(v)
	p, end := int(x.start[b]), int(x.start[b+1])
	if end-p > 4 {
		return lowerBound(points, p, end, v)
	}
	for p < end && points[p] < v {
		p++
	}
	return p
}

// binAt is the PSI bin (the number of edges < v) of a value at position p; onPoint says
// v == points[p].
func (x *pointIndex) binAt(p int, v float64, onPoint bool) int {
	n := x.gapEdges[p]
	switch {
	case n == 0:
		return int(x.binBase[p])
	case onPoint:
		return int(x.binBase[p]) + int(n) // every edge inside the gap is below the point
	case n == 1:
		if x.edges[x.binBase[p]] < v {
			return int(x.binBase[p]) + 1
		}
		return int(x.binBase[p])
	}
	bin := 0
	for _, e := range x.edges {
		if e < v {
			bin++
		}
	}
	return bin
}

// lowerBound is the first index in [from, to) with a[i] >= v, or to.
func lowerBound(a []float64, from, to int, v float64) int {
	for from < to {
		mid := int(uint(from+to) >> 1)
		if a[mid] < v {
			from = mid + 1
		} else {
			to = mid
		}
	}
	return from
}
