package model

import (
	"errors"
	"fmt"
	"math"

	"github.com/driftline/driftline/model/hparams"
)

// Tree is one regression tree as parallel node arrays; node 0 is the root and a node is a
// leaf when Left is -1. A numeric split sends x left when x <= Threshold, a missing value
// (NaN) the DefaultLeft way. A categorical split sends x left when the bit of its bin is set
// in CatLeft (bin 0 = missing, code c = bin c+1, MaxCategories+1 = any other code).
type Tree struct {
	Feature     []int32     `json:"feature"`
	Threshold   []float64   `json:"threshold"`
	DefaultLeft []bool      `json:"default_left"`
	Left        []int32     `json:"left"`
	Right       []int32     `json:"right"`
	Value       []float64   `json:"value"` // leaf output; 0 on internal nodes
	Cover       []float64   `json:"cover"` // sum of training hessians reaching the node
	CatLeft     [][4]uint64 `json:"cat_left,omitempty"`
	// SplitBin is the numeric split in bin space (left when bin <= SplitBin); 0 for
	// categorical splits and for trees not trained here (XGBoost imports).
	SplitBin []uint8 `json:"split_bin,omitempty"`
}

// Nodes is the number of nodes.
func (t *Tree) Nodes() int { return len(t.Left) }

func (t *Tree) isCat(i int) bool { return t.CatLeft != nil && t.CatLeft[i] != [4]uint64{} }

// leaf returns the leaf a row (feature order) reaches.
func (t *Tree) leaf(x []float64, cats []FeatureBins) int {
	i := 0
	for t.Left[i] >= 0 {
		if t.goesLeft(i, x, cats) {
			i = int(t.Left[i])
		} else {
			i = int(t.Right[i])
		}
	}
	return i
}

func (t *Tree) goesLeft(i int, x []float64, cats []FeatureBins) bool {
	f := t.Feature[i]
	v := x[f]
	if t.isCat(i) {
		b := cats[f].Bin(v)
		return t.CatLeft[i][b>>6]&(1<<(b&63)) != 0
	}
	if math.IsNaN(v) {
		return t.DefaultLeft[i]
	}
	return v <= t.Threshold[i]
}

// depth is the length of the longest root-to-leaf path.
func (t *Tree) depth() int {
	var walk func(i, d int) int
	walk = func(i, d int) int {
		if t.Left[i] < 0 {
			return d
		}
		return max(walk(int(t.Left[i]), d+1), walk(int(t.Right[i]), d+1))
	}
	return walk(0, 0)
}

func (t *Tree) check(p int) error {
	n := len(t.Left)
	if n == 0 {
		return errors.New("empty tree")
	}
	if len(t.Right) != n || len(t.Feature) != n || len(t.Threshold) != n || len(t.DefaultLeft) != n || len(t.Value) != n || len(t.Cover) != n {
		return errors.New("node arrays of different lengths")
	}
	if t.CatLeft != nil && len(t.CatLeft) != n {
		return errors.New("cat_left does not cover every node")
	}
	if t.SplitBin != nil && len(t.SplitBin) != n {
		return errors.New("split_bin does not cover every node")
	}
	// Children must come after their parent (no cycles) and every node is reached once.
	seen := make([]bool, n)
	seen[0] = true
	for i := 0; i < n; i++ {
		if t.Left[i] < 0 {
			if math.IsNaN(t.Value[i]) || math.IsInf(t.Value[i], 0) {
				return fmt.Errorf("leaf %d has a non-finite value", i)
			}
			continue
		}
		if t.Feature[i] < 0 || int(t.Feature[i]) >= p {
			return fmt.Errorf("node %d splits on feature %d of %d", i, t.Feature[i], p)
		}
		for _, c := range []int32{t.Left[i], t.Right[i]} {
			if int(c) <= i || int(c) >= n || seen[c] {
				return fmt.Errorf("node %d has a bad child %d", i, c)
			}
			seen[c] = true
		}
	}
	return nil
}

// Ensemble is a gradient-boosted tree model: margin = BaseScore + the sum of the trees'
// leaf values; the prediction is the margin (regression) or its sigmoid (binary log loss).
type Ensemble struct {
	Objective string  `json:"objective"`
	BaseScore float64 `json:"base_score"`
	Trees     []Tree  `json:"trees"`
	// Bins are the training bins: they map categorical codes to bins and back the int8
	// variant's bin-indexed thresholds.
	Bins *Binner `json:"bins,omitempty"`
	// Float32Inputs makes prediction round inputs to float32 first, as XGBoost does.
	Float32Inputs bool `json:"float32_inputs,omitempty"`
	// BestIteration is the number of trees kept by early stopping.
	BestIteration int `json:"best_iteration"`

	fast     *compiled
	prepared bool // checked() ran: fast, expected and the SHAP tables are set
	lin      []*linearTree
	expected float64
	maxDepth int
}

// check validates the ensemble for p features (and records its depth); it prepares nothing.
func (e *Ensemble) check(p int) error {
	switch e.Objective {
	case hparams.SquaredError, hparams.AbsoluteError, hparams.BinaryLogLoss:
	default:
		return fmt.Errorf("gbdt: unknown objective %q", e.Objective)
	}
	if e.Bins != nil && len(e.Bins.Features) != p {
		return fmt.Errorf("gbdt: bins for %d features, model has %d", len(e.Bins.Features), p)
	}
	for k := range e.Trees {
		t := &e.Trees[k]
		if err := t.check(p); err != nil {
			return fmt.Errorf("gbdt: tree %d: %v", k, err)
		}
		d := t.depth()
		if d >= maxPath {
			return fmt.Errorf("gbdt: tree %d is %d levels deep; at most %d are supported", k, d, maxPath-1)
		}
		e.maxDepth = max(e.maxDepth, d)
		for i, c := range t.Cover {
			if !(c > 0) || math.IsInf(c, 0) {
				return fmt.Errorf("gbdt: tree %d node %d has cover %g; explanations need positive covers", k, i, c)
			}
		}
		if t.CatLeft != nil && e.Bins == nil {
			return fmt.Errorf("gbdt: tree %d has categorical splits but the model has no bins", k)
		}
	}
	return nil
}

// checked validates the ensemble for p features and prepares it for scoring: the compiled
// fast path, the expected margin and the TreeSHAP tables (check itself changes nothing).
func (e *Ensemble) checked(p int) error {
	if err := e.check(p); err != nil {
		return err
	}
	e.fast = compile(e)
	e.expected, e.prepared = e.expectedMargin(), true
	e.prepareLinearShap()
	return nil
}

func (e *Ensemble) cats() []FeatureBins {
	if e.Bins == nil {
		return nil
	}
	return e.Bins.Features
}

// Margin is the raw score of one row: BaseScore + the sum of the leaves it reaches.
func (e *Ensemble) Margin(x []float64) float64 {
	if e.Float32Inputs {
		return e.float32Margin(roundFloat32(x))
	}
	if e.fast != nil {
		if s, ok := e.fast.margin(x); ok {
			return e.BaseScore + s
		}
	}
	s := 0.0
	cats := e.cats()
	for k := range e.Trees {
		t := &e.Trees[k]
		s += t.Value[t.leaf(x, cats)]
	}
	return e.BaseScore + s
}

func roundFloat32(x []float64) []float64 {
	y := make([]float64, len(x))
	for i, v := range x {
		y[i] = float64(float32(v))
	}
	return y
}

// Predict is the model's output for one row: the margin, or its sigmoid for log loss.
func (e *Ensemble) Predict(x []float64) float64 { return e.link(e.Margin(x)) }

func (e *Ensemble) link(m float64) float64 {
	if e.Objective == hparams.BinaryLogLoss {
		return sigmoid(m)
	}
	return m
}

func sigmoid(m float64) float64 { return 1 / (1 + math.Exp(-m)) }

// PredictBatch scores rows stored row-major (p values per row) into out.
func (e *Ensemble) PredictBatch(rows []float64, p int, out []float64) {
	n := len(out)
	if e.fast != nil && !e.Float32Inputs {
		e.fast.batch(rows, p, out)
		for i := range out {
			if math.IsNaN(out[i]) { // a row with a missing value: the general path
				out[i] = e.Predict(rows[i*p : i*p+p])
				continue
			}
			out[i] = e.link(e.BaseScore + out[i])
		}
		return
	}
	for i := 0; i < n; i++ {
		out[i] = e.Predict(rows[i*p : i*p+p])
	}
}
