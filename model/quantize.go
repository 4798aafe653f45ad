package model

import (
	"errors"
	"fmt"
	"math"
	"slices"

	"github.com/driftline/driftline/edge"
	"github.com/driftline/driftline/model/hparams"
)

// Int8 is the 8-bit variant of a model. Linear: weights quantised to int8 with one scale.
// Trees: every numeric threshold replaced by its index in the feature's sorted list of the
// thresholds the trees use (so a row is compared as bin indices: uint8, or uint16 when a
// feature has more than 255 thresholds), and leaf values by int8 with one scale. Categorical
// splits keep their bin sets.
type Int8 struct {
	Objective string `json:"objective"`
	// Linear.
	Intercept float64   `json:"intercept,omitempty"`
	Weights   []int8    `json:"weights,omitempty"`
	Means     []float64 `json:"means,omitempty"`
	Scales    []float64 `json:"scales,omitempty"`
	// Trees.
	BaseScore  float64     `json:"base_score,omitempty"`
	Thresholds [][]float64 `json:"thresholds,omitempty"`
	Trees      []Int8Tree  `json:"trees,omitempty"`
	Bins       *Binner     `json:"bins,omitempty"`
	// Scale multiplies every int8 weight or leaf.
	Scale float64 `json:"scale"`

	dequantised *Ensemble
	wide        bool // a feature has more than 255 thresholds: rows are uint16 bin indices
}

// Int8Tree is a tree with bin-indexed thresholds and int8 leaves; Cover keeps explanations.
type Int8Tree struct {
	Feature []uint16 `json:"feature"`
	Index   []uint8  `json:"index"` // left when bin index <= Index (index 0 = missing): its low byte
	// IndexHigh is the high byte of every index, when a feature has more than 255 thresholds
	// (absent otherwise, so an artifact of a narrow variant is as before).
	IndexHigh   []uint8     `json:"index_high,omitempty"`
	DefaultLeft []bool      `json:"default_left"`
	Left        []int32     `json:"left"`
	Right       []int32     `json:"right"`
	Leaf        []int8      `json:"leaf"`
	Cover       []float64   `json:"cover"`
	CatLeft     [][4]uint64 `json:"cat_left,omitempty"`

	wideIndex []uint16 // Index and IndexHigh together, for a wide variant's walk
}

// index is node i's threshold index.
func (t *Int8Tree) index(i int) int {
	if t.IndexHigh != nil {
		return int(t.Index[i]) | int(t.IndexHigh[i])<<8
	}
	return int(t.Index[i])
}

// MaxInt8Thresholds is the most distinct thresholds a feature of the int8 variant holds (a
// 16-bit bin index; the edge bundle's index is 16 bits wide for such a feature).
const MaxInt8Thresholds = 65535

func quantise(v, scale float64) int8 {
	if scale == 0 {
		return 0
	}
	return int8(math.Max(-127, math.Min(127, math.Round(v/scale))))
}

// QuantiseLinear makes the int8 variant of a linear model.
func QuantiseLinear(l *Linear, objective string) *Int8 {
	q := &Int8{Objective: objective, Intercept: l.Intercept, Means: l.Means, Scales: l.Scales, Weights: make([]int8, len(l.Coef))}
	biggest := 0.0
	for _, w := range l.Coef {
		biggest = math.Max(biggest, math.Abs(w))
	}
	q.Scale = biggest / 127
	for j, w := range l.Coef {
		q.Weights[j] = quantise(w, q.Scale)
	}
	return q
}

// QuantiseTrees makes the int8 variant of an ensemble. It fails when a feature has more
// than MaxInt8Thresholds distinct thresholds.
func QuantiseTrees(e *Ensemble, p int) (*Int8, error) {
	q := &Int8{Objective: e.Objective, BaseScore: e.BaseScore, Thresholds: make([][]float64, p), Bins: e.Bins}
	biggest := 0.0
	for k := range e.Trees {
		t := &e.Trees[k]
		for i := range t.Left {
			if t.Left[i] < 0 {
				biggest = math.Max(biggest, math.Abs(t.Value[i]))
			} else if !t.isCat(i) {
				f := t.Feature[i]
				q.Thresholds[f] = append(q.Thresholds[f], t.Threshold[i])
			}
		}
	}
	for f, th := range q.Thresholds {
		slices.Sort(th)
		q.Thresholds[f] = slices.Compact(th)
		if len(q.Thresholds[f]) > MaxInt8Thresholds {
			return nil, fmt.Errorf("int8: feature %d uses %d distinct thresholds; bin indices hold %d", f, len(q.Thresholds[f]), MaxInt8Thresholds)
		}
		q.wide = q.wide || len(q.Thresholds[f]) > 255
	}
	q.Scale = biggest / 127
	for k := range e.Trees {
		t := &e.Trees[k]
		qt := Int8Tree{Left: t.Left, Right: t.Right, DefaultLeft: t.DefaultLeft, Cover: t.Cover, CatLeft: t.CatLeft,
			Feature: make([]uint16, len(t.Left)), Index: make([]uint8, len(t.Left)), Leaf: make([]int8, len(t.Left))}
		for i := range t.Left {
			if t.Left[i] < 0 {
				qt.Leaf[i] = quantise(t.Value[i], q.Scale)
				continue
			}
			qt.Feature[i] = uint16(t.Feature[i])
			if !t.isCat(i) {
				th := q.Thresholds[t.Feature[i]]
				k, _ := slices.BinarySearch(th, t.Threshold[i])
				qt.Index[i] = uint8(k + 1)
				if q.wide {
					if qt.IndexHigh == nil {
						qt.IndexHigh = make([]uint8, len(t.Left))
					}
					qt.IndexHigh[i] = uint8((k + 1) >> 8)
				}
			}
		}
		q.Trees = append(q.Trees, qt)
	}
	return q, q.prepare(p)
}

// prepare checks the variant and builds the dequantised trees its explanations use.
func (q *Int8) prepare(p int) error {
	if !(q.Scale >= 0) || math.IsInf(q.Scale, 0) {
		return errors.New("int8: bad scale")
	}
	if q.Weights != nil {
		if len(q.Weights) != p || len(q.Means) != p || len(q.Scales) != p {
			return fmt.Errorf("int8: %d weights for %d features", len(q.Weights), p)
		}
		return nil
	}
	if len(q.Thresholds) != p {
		return fmt.Errorf("int8: thresholds for %d features, model has %d", len(q.Thresholds), p)
	}
	e := &Ensemble{Objective: q.Objective, BaseScore: q.BaseScore, Bins: q.Bins}
	for k := range q.Trees {
		qt := &q.Trees[k]
		n := len(qt.Left)
		if len(qt.Right) != n || len(qt.Feature) != n || len(qt.Index) != n || len(qt.Leaf) != n || len(qt.DefaultLeft) != n || len(qt.Cover) != n ||
			(qt.IndexHigh != nil && len(qt.IndexHigh) != n) {
			return fmt.Errorf("int8: tree %d: node arrays of different lengths", k)
		}
		t := Tree{Feature: make([]int32, n), Threshold: make([]float64, n), DefaultLeft: qt.DefaultLeft, Left: qt.Left, Right: qt.Right,
			Value: make([]float64, n), Cover: qt.Cover, CatLeft: qt.CatLeft}
		for i := range n {
			if qt.Left[i] < 0 {
				t.Value[i] = float64(qt.Leaf[i]) * q.Scale
				continue
			}
			f := int(qt.Feature[i])
			if f >= p {
				return fmt.Errorf("int8: tree %d node %d splits on feature %d of %d", k, i, f, p)
			}
			t.Feature[i] = int32(f)
			if t.CatLeft == nil || t.CatLeft[i] == [4]uint64{} {
				ix := qt.index(i)
				if ix < 1 || ix > len(q.Thresholds[f]) {
					return fmt.Errorf("int8: tree %d node %d has threshold index %d of %d", k, i, ix, len(q.Thresholds[f]))
				}
				t.Threshold[i] = q.Thresholds[f][ix-1]
			}
		}
		e.Trees = append(e.Trees, t)
	}
	if err := e.checked(p); err != nil {
		return err
	}
	q.dequantised = e
	for f := range q.Thresholds {
		q.wide = q.wide || len(q.Thresholds[f]) > 255
	}
	for k := range q.Trees {
		qt := &q.Trees[k]
		if q.wide {
			qt.wideIndex = make([]uint16, len(qt.Index))
			for i := range qt.Index {
				qt.wideIndex[i] = uint16(qt.index(i))
			}
		}
	}
	return nil
}

// binIndex maps x to bin indices: 0 for missing, else 1 + the number of thresholds below it.
func binIndex[B uint8 | uint16](q *Int8, x []float64, dst []B) {
	for f, v := range x {
		switch {
		case math.IsNaN(v):
			dst[f] = 0
		case q.Bins != nil && q.Bins.Features[f].Categorical:
			dst[f] = B(q.Bins.Features[f].Bin(v))
		default:
			th := q.Thresholds[f]
			lo, hi := 0, len(th)
			for lo < hi {
				m := int(uint(lo+hi) >> 1)
				if th[m] < v {
					lo = m + 1
				} else {
					hi = m
				}
			}
			dst[f] = B(lo + 1)
		}
	}
}

// Margin scores one row: for trees, integer sums of int8 leaves over uint8 comparisons
// (uint16 for a wide variant).
func (q *Int8) Margin(x []float64) float64 {
	if q.Weights != nil {
		return edge.LinearMargin(q.Intercept, q.Scale, q.Weights, q.Means, q.Scales, x)
	}
	var sum int32
	if q.wide {
		var buf [64]uint16
		idx := rowBuffer(buf[:], len(x))
		binIndex(q, x, idx)
		for k := range q.Trees {
			t := &q.Trees[k]
			sum += int32(t.Leaf[binWalk(t.Feature, t.Left, t.Right, t.DefaultLeft, t.CatLeft, t.wideIndex, idx)])
		}
	} else {
		var buf [64]uint8
		idx := rowBuffer(buf[:], len(x))
		binIndex(q, x, idx)
		for k := range q.Trees {
			t := &q.Trees[k]
			sum += int32(t.Leaf[binWalk(t.Feature, t.Left, t.Right, t.DefaultLeft, t.CatLeft, t.Index, idx)])
		}
	}
	return edge.Finish(q.BaseScore, q.Scale, sum, false)
}

// rowBuffer is buf[:n], or a new slice when buf is too short.
func rowBuffer[B uint8 | uint16](buf []B, n int) []B {
	if n <= len(buf) {
		return buf[:n]
	}
	return make([]B, n)
}

// Predict is the variant's output: the margin, or its sigmoid for binary_logloss.
// ExpectedMargin is the explanations' base value.
func (q *Int8) ExpectedMargin() float64 {
	if q.dequantised != nil {
		return q.dequantised.ExpectedMargin()
	}
	return q.Intercept
}

// The final scaling and the logistic function are the edge runtime's (package edge), so a
// device's prediction is this one bit for bit whatever its CPU.
func (q *Int8) Predict(x []float64) float64 {
	m := q.Margin(x)
	if q.Objective == hparams.BinaryLogLoss {
		return edge.Sigmoid(m)
	}
	return m
}

// EdgeBody is the variant in the edge bundle's terms: its features (names, categorical or
// numeric, thresholds, the contract's range from ranges, NaN where none) and trees or weights.
func (q *Int8) EdgeBody(features []string, ranges map[string][2]float64) edge.Body {
	b := edge.Body{Kind: edge.KindTrees, Base: q.BaseScore, Scale: q.Scale}
	if q.Objective == hparams.BinaryLogLoss {
		b.Objective = edge.ObjectiveLogistic
	}
	for f, name := range features {
		ft := edge.Feature{Name: name, Min: math.NaN(), Max: math.NaN()}
		if r, ok := ranges[name]; ok {
			ft.Min, ft.Max = r[0], r[1]
		}
		if q.Bins != nil && q.Bins.Features[f].Categorical {
			ft.Categorical = true
		} else if q.Thresholds != nil {
			ft.Cuts = q.Thresholds[f]
		}
		b.Features = append(b.Features, ft)
	}
	if q.Weights != nil {
		b.Kind, b.Base, b.Weights, b.Means, b.Scales = edge.KindLinear, q.Intercept, q.Weights, q.Means, q.Scales
		return b
	}
	for _, t := range q.Trees {
		et := edge.Tree{Feature: t.Feature, Index: make([]uint16, len(t.Index)), DefaultLeft: t.DefaultLeft, Left: t.Left, Right: t.Right,
			Leaf: t.Leaf, CatLeft: t.CatLeft}
		for i := range t.Index {
			et.Index[i] = uint16(t.index(i))
		}
		b.Trees = append(b.Trees, et)
	}
	return b
}

// Explain: exact SHAP values of the variant (the dequantised model it computes).
func (q *Int8) Explain(x []float64) (float64, []float64) {
	if q.Weights != nil {
		c := make([]float64, len(q.Weights))
		for j, w := range q.Weights {
			c[j] = q.Scale * float64(w) * (x[j] - q.Means[j]) / q.Scales[j]
		}
		return q.Intercept, c
	}
	return q.dequantised.Explain(x)
}

// Quantise returns the int8 variant of a model as a model of family int8.
func (m *Model) Quantise() (*Model, error) {
	var q *Int8
	switch {
	case m.GBDT != nil:
		var err error
		if q, err = QuantiseTrees(m.GBDT, len(m.Features)); err != nil {
			return nil, err
		}
	case m.Linear != nil:
		q = QuantiseLinear(m.Linear, m.Objective)
		if err := q.prepare(len(m.Features)); err != nil {
			return nil, err
		}
	default:
		return nil, errors.New("int8: nothing to quantise")
	}
	out := *m
	out.Family, out.Linear, out.GBDT, out.Int8 = "int8", nil, nil, q
	return &out, nil
}
