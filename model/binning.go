package model

import (
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"math/bits"
	"runtime"
	"slices"
	"sync"

	"github.com/driftline/driftline/model/hparams"
)

// MaxCategories is the most distinct category codes a categorical feature can carry
// (codes 0..MaxCategories-1); any other code falls in one shared "other" bin.
const MaxCategories = 254

// FeatureBins maps one feature's raw values to bins. Numeric: bin(x) = 1 + the number of
// cut points below x, so bin b <= t exactly when x <= Cuts[t-1]. Categorical: bin(code) =
// code + 1 for codes 0..MaxCategories-1 and MaxCategories+1 for any other value.
type FeatureBins struct {
	Categorical bool      `json:"categorical,omitempty"`
	Cuts        []float64 `json:"cuts,omitempty"`
	keys        []uint64  // orderKey of each cut (set by NewBinner and on decoding)
}

// numericBins holds cuts with their order keys.
func numericBins(cuts []float64) FeatureBins {
	keys := make([]uint64, len(cuts))
	for i, c := range cuts {
		keys[i] = orderKey(c)
	}
	return FeatureBins{Cuts: cuts, keys: keys}
}

// UnmarshalJSON decodes the bins and prepares their search keys.
func (f *FeatureBins) UnmarshalJSON(b []byte) error {
	type plain FeatureBins
	var v plain
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*f = FeatureBins{Categorical: v.Categorical}
	if !v.Categorical {
		*f = numericBins(v.Cuts)
	}
	return nil
}

// Bins is the number of bins, missing included.
func (f *FeatureBins) Bins() int {
	if f.Categorical {
		return MaxCategories + 2
	}
	return len(f.Cuts) + 2
}

// Bin maps a raw value to its bin.
func (f *FeatureBins) Bin(x float64) uint8 {
	if math.IsNaN(x) {
		return 0
	}
	if f.Categorical {
		if x >= 0 && x < MaxCategories && x == math.Trunc(x) {
			return uint8(x) + 1
		}
		return MaxCategories + 1
	}
	// Branch-free binary search for the number of cuts below x: the loop runs log2(n)
	// times whatever x is, and the compare is the borrow of an integer subtraction of order
	// keys, so there is no branch for random values to mispredict.
	keys := f.keys
	if len(keys) != len(f.Cuts) { // bins made by hand rather than by NewBinner or decoding
		keys = numericBins(f.Cuts).keys
	}
	kx := orderKey(x)
	base, n := 0, len(keys)
	for n > 1 {
		half := n >> 1
		_, below := bits.Sub64(keys[base+half-1], kx, 0) // 1 when the cut is below x
		base += half & -int(below)
		n -= half
	}
	if n == 1 && keys[base] < kx {
		base++
	}
	return uint8(base + 1)
}

// orderKey maps a non-NaN float to an integer with the same order: a < b exactly when
// orderKey(a) < orderKey(b). Negative zero is made positive first, since -0 == +0.
func orderKey(x float64) uint64 {
	b := math.Float64bits(x + 0)
	return b ^ (uint64(int64(b)>>63) | 1<<63)
}

// fromOrderKey inverts orderKey.
func fromOrderKey(k uint64) float64 {
	if k>>63 == 1 {
		return math.Float64frombits(k ^ 1<<63)
	}
	return math.Float64frombits(^k)
}

// Binner holds the bins of every feature, in feature order.
type Binner struct {
	Features []FeatureBins `json:"features"`
}

// NewBinner derives bins from a sample of each feature (NaNs ignored): up to maxBins
// quantile bins per numeric feature, cut between distinct values.
func NewBinner(samples [][]float64, categorical []bool, maxBins int) (*Binner, error) {
	if maxBins < 2 || maxBins > hparams.MaxBins {
		return nil, fmt.Errorf("max_bins must be in 2..%d, got %d", hparams.MaxBins, maxBins)
	}
	if len(categorical) != len(samples) {
		return nil, errors.New("binner: one categorical flag per feature")
	}
	b := &Binner{Features: make([]FeatureBins, len(samples))}
	// Features are independent: cut them on all cores.
	var wg sync.WaitGroup
	next := make(chan int, len(samples))
	for j := range samples {
		next <- j
	}
	close(next)
	for range min(runtime.GOMAXPROCS(0), max(len(samples), 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range next {
				if categorical[j] {
					b.Features[j] = FeatureBins{Categorical: true}
					continue
				}
				b.Features[j] = numericBins(quantileCuts(samples[j], maxBins))
			}
		}()
	}
	wg.Wait()
	return b, nil
}

// quantileCuts returns at most maxBins-1 cut points splitting the sample into bins of about
// equal weight. A cut lies halfway between two adjacent distinct values, so every sampled
// value lands in the bin its rank says; with few distinct values every value gets its own bin.
func quantileCuts(sample []float64, maxBins int) []float64 {
	v := sortedValues(sample)
	if len(v) == 0 {
		return nil
	}
	// Distinct values with their counts.
	vals, counts := []float64{v[0]}, []int{1}
	for _, x := range v[1:] {
		if x == vals[len(vals)-1] {
			counts[len(counts)-1]++
			continue
		}
		vals, counts = append(vals, x), append(counts, 1)
	}
	if len(vals) <= maxBins {
		cuts := make([]float64, len(vals)-1)
		for i := range cuts {
			cuts[i] = midpoint(vals[i], vals[i+1])
		}
		return finite(cuts)
	}
	// Greedy equal-frequency: close a bin once it holds its share of what remains.
	var cuts []float64
	n, acc := len(v), 0
	for i := 0; i < len(vals)-1 && len(cuts) < maxBins-1; i++ {
		acc += counts[i]
		remainingBins := maxBins - len(cuts)
		if float64(acc) >= float64(n)/float64(remainingBins) {
			cuts = append(cuts, midpoint(vals[i], vals[i+1]))
			n -= acc
			acc = 0
		}
	}
	return finite(cuts)
}

// finite drops a cut at -Inf (between -Inf and -MaxFloat64, the only one possible): cuts
// are stored as JSON numbers, and those two values then share a bin.
func finite(cuts []float64) []float64 {
	if len(cuts) > 0 && math.IsInf(cuts[0], -1) {
		return cuts[1:]
	}
	return cuts
}

// midpoint is a cut c with a <= c < b: a itself when there is no float strictly between
// (adjacent floats), -MaxFloat64 when a is -Inf.
func midpoint(a, b float64) float64 {
	if math.IsInf(a, -1) && b > -math.MaxFloat64 {
		return -math.MaxFloat64
	}
	m := a + (b-a)/2
	if !(m > a && m < b) {
		return a
	}
	return m
}

// sortedValues returns the sample's non-NaN values in ascending order (-0 as 0), by a
// least-significant-byte-first radix sort of their order keys: a few linear passes instead
// of a comparison sort's log n (bytes that every key shares are skipped).
func sortedValues(sample []float64) []float64 {
	keys := make([]uint64, 0, len(sample))
	for _, x := range sample {
		if !math.IsNaN(x) {
			keys = append(keys, orderKey(x))
		}
	}
	tmp := make([]uint64, len(keys))
	for shift := 0; shift < 64; shift += 8 {
		var count [256]int
		for _, k := range keys {
			count[k>>shift&0xff]++
		}
		if len(keys) == 0 || count[keys[0]>>shift&0xff] == len(keys) {
			continue
		}
		at := 0
		for b, c := range count {
			count[b] = at
			at += c
		}
		for _, k := range keys {
			d := k >> shift & 0xff
			tmp[count[d]] = k
			count[d]++
		}
		keys, tmp = tmp, keys
	}
	v := make([]float64, len(keys))
	for i, k := range keys {
		v[i] = fromOrderKey(k)
	}
	return v
}

// BinRow bins one row (feature order) into dst.
func (b *Binner) BinRow(x []float64, dst []uint8) {
	for j := range b.Features {
		dst[j] = b.Features[j].Bin(x[j])
	}
}

// Matrix is a binned dataset: one uint8 per feature per row, row-major, and the target. It
// grows as rows stream in, so a window never needs to be held as floats.
type Matrix struct {
	P    int
	Bins []uint8
	Y    []float32
	// Weight of each row is 1; kept implicit to save memory.
}

// NewMatrix prepares a matrix of p features with room for capacity rows.
func NewMatrix(p, capacity int) *Matrix {
	return &Matrix{P: p, Bins: make([]uint8, 0, p*capacity), Y: make([]float32, 0, capacity)}
}

// Rows is the number of rows.
func (m *Matrix) Rows() int { return len(m.Y) }

// Append bins and appends one row.
func (m *Matrix) Append(b *Binner, x []float64, y float64) {
	n := len(m.Bins)
	m.Bins = slices.Grow(m.Bins, m.P)[:n+m.P]
	b.BinRow(x, m.Bins[n:])
	m.Y = append(m.Y, float32(y))
}

// AppendRows bins and appends rows given row-major (P values per row), on all cores for
// large batches; the result is the same as appending them one by one.
func (m *Matrix) AppendRows(b *Binner, x, y []float64) {
	n0, rows := len(m.Y), len(y)
	m.Bins = slices.Grow(m.Bins, rows*m.P)[:(n0+rows)*m.P]
	const chunk = 4096
	nchunks := (rows + chunk - 1) / chunk
	var wg sync.WaitGroup
	next := make(chan int, nchunks)
	for c := range nchunks {
		next <- c
	}
	close(next)
	for range min(runtime.GOMAXPROCS(0), max(nchunks, 1)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for c := range next {
				for i := c * chunk; i < min((c+1)*chunk, rows); i++ {
					b.BinRow(x[i*m.P:i*m.P+m.P], m.Bins[(n0+i)*m.P:(n0+i+1)*m.P])
				}
			}
		}()
	}
	wg.Wait()
	for _, v := range y {
		m.Y = append(m.Y, float32(v))
	}
}

// Row returns the bins of row i.
func (m *Matrix) Row(i int) []uint8 { return m.Bins[i*m.P : i*m.P+m.P] }
