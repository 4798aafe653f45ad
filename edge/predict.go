package edge

import (
	"fmt"
	"math"
)

// Features is the model's inputs in order, with their contract ranges.
func (m *Model) Features() []Feature { return m.features }

// BodyBytes is the size of the model's encoded body.
func (m *Model) BodyBytes() int { return m.bodyBytes }

// Predict scores one row (one value a feature, in the bundle's order). It allocates nothing.
func (m *Model) Predict(x []float64) (float64, error) {
	if len(x) != len(m.features) {
		return math.NaN(), fmt.Errorf("edge: a row of %d values for %d features", len(x), len(m.features))
	}
	return m.predict(x), nil
}

// PredictBatch scores rows stored one after the other (len(features) values each) into out.
// It allocates nothing.
func (m *Model) PredictBatch(rows []float64, out []float64) error {
	p := len(m.features)
	if len(rows) != p*len(out) {
		return fmt.Errorf("edge: %d values for %d rows of %d features", len(rows), len(out), p)
	}
	for i := range out {
		out[i] = m.predict(rows[i*p : (i+1)*p])
	}
	return nil
}

func (m *Model) predict(x []float64) float64 {
	if m.kind == KindLinear {
		margin := LinearMargin(m.base, m.scale, m.weights, m.means, m.scales, x)
		if m.logistic {
			return Sigmoid(margin)
		}
		return margin
	}
	var sum int32
	for _, root := range m.roots {
		sum += int32(m.walk(x, root))
	}
	return Finish(m.base, m.scale, sum, m.logistic)
}

// walk follows one tree from its root to a leaf, as the server's int8 variant does over bin
// indices: a numeric value's bin is 0 when missing, else 1 + the thresholds below it; a node
// with threshold index k sends bin b left when b <= k, which for a present value is "the
// value is at most the k-th threshold" (thresholds are sorted and distinct): one comparison.
func (m *Model) walk(x []float64, i int32) int8 {
	for {
		nd := &m.nodes[i]
		switch nd.kind {
		case kindLeaf:
			return nd.leaf
		case kindNumeric:
			if v := x[nd.feat]; v <= nd.thr || (v != v && nd.flags&flagDefaultLeft != 0) {
				i++
			} else {
				i = nd.right
			}
		default:
			if m.otherLeft(nd, x[nd.feat]) {
				i++
			} else {
				i = nd.right
			}
		}
	}
}

// otherLeft decides a split that is not a plain numeric one by the value's bin.
func (m *Model) otherLeft(nd *node, v float64) bool {
	b := m.bin(int(nd.feat), v)
	if nd.flags&flagCategorical != 0 {
		return m.cats[nd.aux][b>>6]&(1<<(b&63)) != 0
	}
	if b == 0 {
		return nd.flags&flagDefaultLeft != 0
	}
	return uint32(b) <= nd.aux
}

// MaxCategories is how many integer categories a categorical feature has (0..253): any other
// value is the "unseen" bin.
const MaxCategories = 254

// bin is the value's bin index, as the server's: 0 missing; categorical: category+1, or 255
// for an unseen one; numeric: 1 + the number of thresholds below it.
func (m *Model) bin(f int, v float64) uint8 {
	switch {
	case v != v:
		return 0
	case m.catBins[f]:
		if v >= 0 && v < MaxCategories && v == math.Trunc(v) {
			return uint8(v) + 1
		}
		return MaxCategories + 1
	}
	cuts := m.features[f].Cuts
	lo, hi := 0, len(cuts)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if cuts[mid] < v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return uint8(lo + 1)
}
