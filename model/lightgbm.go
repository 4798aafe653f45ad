package model

import (
	"bufio"
	"bytes"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/driftline/driftline/model/hparams"
)

// LightGBM's text model (Booster.save_model("model.txt")): a header of key=value lines, then
// one block a tree, then "end of trees" and parts prediction does not need.

// lgZero is LightGBM's kZeroThreshold (1e-35f: a float's 1e-35 as a double): a value within
// it of zero is zero for a split whose missing type is Zero.
var lgZero = float64(float32(1e-35))

// Decision type bits of a LightGBM split.
const (
	lgCategorical = 1
	lgDefaultLeft = 2
	lgMissingMask = 3 << 2 // 0 None, 1 Zero, 2 NaN
	lgMissingZero = 1 << 2
	lgMissingNaN  = 2 << 2
)

// lgTree is one tree block as LightGBM wrote it.
type lgTree struct {
	index                   int
	leaves                  int
	feature, left, right    []int
	decision                []int
	threshold, leafValue    []float64
	leafWeight              []float64
	catBoundaries, catWords []uint32
}

// LoadLightGBM converts a LightGBM text model into a Driftline model that gives LightGBM's
// predictions: splits compared in float64 as LightGBM does (left when x <= threshold), its
// missing values handled per split as LightGBM does (NaN: the default way; Zero: NaN and
// values within 1e-35 of zero the default way; None: NaN taken as zero), categorical splits
// over categories 0-253 (NaN and negative values go right), leaves summed in float64 in tree
// order. Objectives: regression (and regression_l2, l2, mean_squared_error, mse),
// regression_l1 (l1, mae) and the other identity-output regressions (huber, fair, quantile,
// mape), and binary with sigmoid 1. Versions v2, v3 and v4 of the format; linear trees
// (v4's linear_tree) and multiclass models are refused with the reason. features names the
// inputs in column order; empty takes the model's own names.
func LoadLightGBM(data []byte, features []string, target string) (*Model, error) {
	return loadLightGBM(data, features, target, -1)
}

// loadLightGBM reads the model, or with class >= 0 the raw score of one class of a
// multiclass model (its trees only: for conformance tests of the splits).
func loadLightGBM(data []byte, features []string, target string, class int) (*Model, error) {
	head, trees, err := parseLightGBM(data)
	if err != nil {
		return nil, err
	}
	obj, objective, err := lgObjective(head, class)
	if err != nil {
		return nil, err
	}
	if head["average_output"] == "true" && obj == hparams.BinaryLogLoss {
		return nil, fmt.Errorf("%w: a LightGBM random forest (average_output) of objective %q: its output is the mean of its leaves, not their sum through a sigmoid; not supported (a regression forest is)",
			ErrBadArtifact, objective)
	}
	p, err := strconv.Atoi(head["max_feature_idx"])
	if err != nil {
		return nil, fmt.Errorf("%w: LightGBM max_feature_idx %q", ErrBadArtifact, head["max_feature_idx"])
	}
	p++
	if len(features) == 0 {
		features = strings.Fields(head["feature_names"])
	}
	if len(features) != p {
		return nil, fmt.Errorf("%w: LightGBM model has %d features, %d names given", ErrBadArtifact, p, len(features))
	}
	per := 1
	if class >= 0 {
		if per, err = strconv.Atoi(head["num_tree_per_iteration"]); err != nil || class >= per {
			return nil, fmt.Errorf("%w: LightGBM class %d of num_tree_per_iteration %q", ErrBadArtifact, class, head["num_tree_per_iteration"])
		}
	}
	e := &Ensemble{Objective: obj}
	cats := make([]bool, p)
	for _, lt := range trees {
		if class >= 0 && lt.index%per != class {
			continue
		}
		t, err := lt.convert(p, cats)
		if err != nil {
			return nil, err
		}
		e.Trees = append(e.Trees, t)
	}
	if len(e.Trees) == 0 {
		return nil, fmt.Errorf("%w: LightGBM model has no trees", ErrBadArtifact)
	}
	for _, c := range cats {
		if c {
			e.Bins = &Binner{Features: make([]FeatureBins, p)}
			for f := range cats {
				e.Bins.Features[f].Categorical = cats[f]
			}
			break
		}
	}
	if head["average_output"] == "true" { // a random forest: the mean of its trees
		for k := range e.Trees {
			for i := range e.Trees[k].Value {
				e.Trees[k].Value[i] /= float64(len(e.Trees))
			}
		}
	}
	e.BestIteration = len(e.Trees)
	m := &Model{Family: "gbdt", Trainer: "lightgbm", Objective: obj, Features: features, Inputs: NumericInputs(features), Target: target, GBDT: e,
		Settings: map[string]string{"source": "lightgbm-text", "lightgbm_version": head["version"], "lightgbm_objective": objective}}
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadArtifact, err)
	}
	return m, nil
}

// lgObjective maps the model's objective to Driftline's (the identity-output regressions and
// binary with sigmoid 1); with class >= 0, any objective's raw score.
func lgObjective(head map[string]string, class int) (string, string, error) {
	objective := head["objective"]
	fields := strings.Fields(objective)
	if len(fields) == 0 {
		return "", "", fmt.Errorf("%w: LightGBM model without an objective", ErrBadArtifact)
	}
	if class >= 0 {
		return hparams.SquaredError, objective, nil
	}
	if nc := head["num_class"]; nc != "" && nc != "1" {
		return "", "", fmt.Errorf("%w: LightGBM model with %s classes (%s); only regression and binary models are supported", ErrBadArtifact, nc, objective)
	}
	switch fields[0] {
	case "regression", "regression_l2", "l2", "mean_squared_error", "mse", "l2_root", "root_mean_squared_error", "rmse", "huber", "fair", "quantile", "mape", "mean_absolute_percentage_error":
		return hparams.SquaredError, objective, nil
	case "regression_l1", "l1", "mean_absolute_error", "mae":
		return hparams.AbsoluteError, objective, nil
	case "binary":
		for _, f := range fields[1:] {
			if v, ok := strings.CutPrefix(f, "sigmoid:"); ok && v != "1" {
				return "", "", fmt.Errorf("%w: LightGBM binary objective with %s; only sigmoid:1 is supported", ErrBadArtifact, f)
			}
		}
		return hparams.BinaryLogLoss, objective, nil
	}
	return "", "", fmt.Errorf("%w: LightGBM objective %q is not supported (regression, regression_l1, huber, fair, quantile, mape, binary)", ErrBadArtifact, objective)
}

// parseLightGBM reads the header and the tree blocks.
func parseLightGBM(data []byte) (map[string]string, []lgTree, error) {
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<16), 1<<30)
	head := map[string]string{}
	var trees []lgTree
	var block map[string]string
	line := 0
	flush := func() error {
		if block == nil {
			return nil
		}
		t, err := lgBlock(block, len(trees))
		if err != nil {
			return err
		}
		trees = append(trees, t)
		block = nil
		return nil
	}
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		switch {
		case line == 1 && text != "tree":
			return nil, nil, fmt.Errorf("%w: not a LightGBM text model: line 1 is %q, not \"tree\"", ErrBadArtifact, clipText(text))
		case text == "end of trees":
			if err := flush(); err != nil {
				return nil, nil, err
			}
			return checkHead(head, trees)
		case strings.HasPrefix(text, "Tree="):
			if err := flush(); err != nil {
				return nil, nil, err
			}
			block = map[string]string{"Tree": strings.TrimPrefix(text, "Tree=")}
		case text == "" || line == 1:
		default:
			k, v, ok := strings.Cut(text, "=")
			if !ok && block != nil {
				return nil, nil, fmt.Errorf("%w: LightGBM model line %d: %q is not key=value", ErrBadArtifact, line, clipText(text))
			}
			if !ok { // a flag of the header (average_output)
				v = "true"
			}
			if block != nil {
				block[k] = v
			} else {
				head[k] = v
			}
		}
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: LightGBM model: %v", ErrBadArtifact, err)
	}
	return nil, nil, fmt.Errorf("%w: LightGBM model ends at line %d without \"end of trees\" (truncated?)", ErrBadArtifact, line)
}

func checkHead(head map[string]string, trees []lgTree) (map[string]string, []lgTree, error) {
	switch head["version"] {
	case "v2", "v3", "v4":
	default:
		return nil, nil, fmt.Errorf("%w: LightGBM model format %q; v2, v3 and v4 are read", ErrBadArtifact, head["version"])
	}
	return head, trees, nil
}

func clipText(s string) string {
	if len(s) > 60 {
		return s[:60] + "..."
	}
	return s
}

// lgBlock reads one tree block.
func lgBlock(b map[string]string, k int) (lgTree, error) {
	t := lgTree{index: k}
	fail := func(format string, args ...any) (lgTree, error) {
		return lgTree{}, fmt.Errorf("%w: LightGBM tree %s: %s", ErrBadArtifact, b["Tree"], fmt.Sprintf(format, args...))
	}
	var err error
	if t.leaves, err = strconv.Atoi(b["num_leaves"]); err != nil || t.leaves < 1 {
		return fail("num_leaves %q", b["num_leaves"])
	}
	if b["is_linear"] == "1" {
		return fail("a linear tree (linear_tree=true): its leaves are linear models, which Driftline does not import; train with linear_tree=false")
	}
	n := t.leaves - 1
	if t.leafValue, err = lgFloats(b, "leaf_value", t.leaves); err != nil {
		return fail("%v", err)
	}
	switch {
	case b["leaf_weight"] != "":
		t.leafWeight, err = lgFloats(b, "leaf_weight", t.leaves)
	case b["leaf_count"] != "":
		t.leafWeight, err = lgFloats(b, "leaf_count", t.leaves)
	default:
		t.leafWeight = make([]float64, t.leaves)
		for i := range t.leafWeight {
			t.leafWeight[i] = 1
		}
	}
	if err != nil {
		return fail("%v", err)
	}
	if n == 0 {
		return t, nil
	}
	for _, f := range []struct {
		key string
		dst *[]int
	}{{"split_feature", &t.feature}, {"left_child", &t.left}, {"right_child", &t.right}, {"decision_type", &t.decision}} {
		if *f.dst, err = lgInts(b, f.key, n); err != nil {
			return fail("%v", err)
		}
	}
	if t.threshold, err = lgFloats(b, "threshold", n); err != nil {
		return fail("%v", err)
	}
	if err := t.readCategories(b); err != nil {
		return fail("%v", err)
	}
	return t, nil
}

// readCategories reads the category sets of a tree with categorical splits.
func (t *lgTree) readCategories(b map[string]string) error {
	cats, _ := strconv.Atoi(b["num_cat"])
	if cats <= 0 {
		return nil
	}
	bounds, err := lgInts(b, "cat_boundaries", cats+1)
	if err != nil {
		return err
	}
	words := strings.Fields(b["cat_threshold"])
	if len(words) != bounds[cats] {
		return fmt.Errorf("cat_threshold holds %d words, cat_boundaries says %d", len(words), bounds[cats])
	}
	for i, v := range bounds {
		if v < 0 || (i > 0 && v < bounds[i-1]) {
			return fmt.Errorf("cat_boundaries value %d: %d", i, v)
		}
		t.catBoundaries = append(t.catBoundaries, uint32(v))
	}
	for i, w := range words {
		v, err := strconv.ParseUint(w, 10, 32)
		if err != nil {
			return fmt.Errorf("cat_threshold word %d: %q", i, w)
		}
		t.catWords = append(t.catWords, uint32(v))
	}
	return nil
}

// lgInts reads want integers from the block's key.
func lgInts(b map[string]string, key string, want int) ([]int, error) {
	fs := strings.Fields(b[key])
	if len(fs) != want {
		return nil, fmt.Errorf("%s holds %d values, want %d", key, len(fs), want)
	}
	out := make([]int, want)
	for i, f := range fs {
		v, err := strconv.Atoi(f)
		if err != nil {
			return nil, fmt.Errorf("%s value %d: %q", key, i, f)
		}
		out[i] = v
	}
	return out, nil
}

// lgFloats reads want numbers from the block's key.
func lgFloats(b map[string]string, key string, want int) ([]float64, error) {
	fs := strings.Fields(b[key])
	if len(fs) != want {
		return nil, fmt.Errorf("%s holds %d values, want %d", key, len(fs), want)
	}
	out := make([]float64, want)
	for i, f := range fs {
		v, err := strconv.ParseFloat(f, 64)
		if err != nil {
			return nil, fmt.Errorf("%s value %d: %q", key, i, f)
		}
		out[i] = v
	}
	return out, nil
}

// convert makes the tree a Tree: internal node i stays node i (its children are LightGBM's,
// a leaf ~j becoming a node after the internal ones), except that a split whose missing type
// is Zero becomes the few splits that send the zero band and NaN the default way. cats
// records the features split categorically.
func (lt *lgTree) convert(p int, cats []bool) (Tree, error) {
	var t Tree
	if lt.leaves == 1 {
		t = Tree{Feature: []int32{0}, Threshold: []float64{0}, DefaultLeft: []bool{false}, Left: []int32{-1}, Right: []int32{-1},
			Value: []float64{lt.leafValue[0]}, Cover: []float64{positive(lt.leafWeight[0])}}
		return t, nil
	}
	b := &lgBuilder{lt: lt, p: p, cats: cats, t: &t}
	if _, err := b.emit(0, 0); err != nil {
		return Tree{}, fmt.Errorf("%w: LightGBM tree %d: %v", ErrBadArtifact, lt.index, err)
	}
	return t, nil
}

// lgBuilder emits a LightGBM tree's nodes in preorder.
type lgBuilder struct {
	lt    *lgTree
	p     int
	cats  []bool
	t     *Tree
	nodes int
}

func (b *lgBuilder) add(feature int32, thr float64, defLeft bool) int32 {
	return b.t.appendNode(feature, thr, defLeft)
}

// appendNode adds a node without children (a leaf until its children are set) to a tree being
// built in preorder by an importer, and returns its index.
func (t *Tree) appendNode(feature int32, thr float64, defLeft bool) int32 {
	t.Feature, t.Threshold, t.DefaultLeft = append(t.Feature, feature), append(t.Threshold, thr), append(t.DefaultLeft, defLeft)
	t.Left, t.Right, t.Value, t.Cover = append(t.Left, -1), append(t.Right, -1), append(t.Value, 0), append(t.Cover, 0)
	if t.CatLeft != nil {
		t.CatLeft = append(t.CatLeft, [4]uint64{})
	}
	return int32(len(t.Left) - 1)
}

// emit writes LightGBM node c (>= 0 internal, < 0 the leaf ~c) and returns its index; depth
// bounds the recursion.
func (b *lgBuilder) emit(c, depth int) (int32, error) {
	if b.nodes++; b.nodes > 64*(b.lt.leaves+1) || depth > 4*b.lt.leaves {
		return 0, fmt.Errorf("the tree does not reach its leaves (a cycle in its children, or too many Zero-missing splits)")
	}
	lt, t := b.lt, b.t
	if c < 0 {
		j := ^c
		if j >= lt.leaves {
			return 0, fmt.Errorf("leaf %d of %d", j, lt.leaves)
		}
		i := b.add(0, 0, false)
		t.Value[i], t.Cover[i] = lt.leafValue[j], positive(lt.leafWeight[j])
		return i, nil
	}
	if c >= lt.leaves-1 {
		return 0, fmt.Errorf("node %d of %d", c, lt.leaves-1)
	}
	f, dt, thr := lt.feature[c], lt.decision[c], lt.threshold[c]
	if f < 0 || f >= b.p {
		return 0, fmt.Errorf("node %d splits on feature %d of %d", c, f, b.p)
	}
	switch {
	case dt&lgCategorical != 0:
		return b.categorical(c, depth)
	case dt&lgMissingMask == lgMissingZero:
		return b.zero(c, depth)
	}
	// NaN: the default way; None: NaN is zero, so it goes where zero goes.
	defLeft := dt&lgDefaultLeft != 0
	if dt&lgMissingMask != lgMissingNaN {
		defLeft = 0 <= thr
	}
	i := b.add(int32(f), thr, defLeft)
	return i, b.children(i, lt.left[c], lt.right[c], depth)
}

// children emits the two subtrees of node i and sums their covers into it.
func (b *lgBuilder) children(i int32, left, right, depth int) error {
	l, err := b.emit(left, depth+1)
	if err != nil {
		return err
	}
	r, err := b.emit(right, depth+1)
	if err != nil {
		return err
	}
	t := b.t
	t.Left[i], t.Right[i], t.Cover[i] = l, r, t.Cover[l]+t.Cover[r]
	return nil
}

// categorical emits a categorical split: left for the categories in its set (bins c+1),
// right for the others, NaN and negative values.
func (b *lgBuilder) categorical(c, depth int) (int32, error) {
	lt, t := b.lt, b.t
	k := int(lt.threshold[c])
	if k < 0 || k+1 >= len(lt.catBoundaries) {
		return 0, fmt.Errorf("node %d names category set %d of %d", c, k, len(lt.catBoundaries)-1)
	}
	var set [4]uint64
	for w := lt.catBoundaries[k]; w < lt.catBoundaries[k+1]; w++ {
		for bit := range 32 {
			if lt.catWords[w]&(1<<bit) == 0 {
				continue
			}
			cat := int(w-lt.catBoundaries[k])*32 + bit
			if cat >= MaxCategories {
				return 0, fmt.Errorf("node %d sends category %d left; Driftline's categorical features hold categories 0-%d", c, cat, MaxCategories-1)
			}
			set[(cat+1)>>6] |= 1 << ((cat + 1) & 63)
		}
	}
	if t.CatLeft == nil {
		t.CatLeft = make([][4]uint64, len(t.Left))
	}
	b.cats[lt.feature[c]] = true
	i := b.add(int32(lt.feature[c]), 0, false)
	t.CatLeft[i] = set
	return i, b.children(i, lt.left[c], lt.right[c], depth)
}

// zero emits a split whose missing type is Zero: NaN and values in [-z, z] go the default
// way, the others by the threshold. Three splits at most: below the band, the band, above it;
// a side of the band that the threshold does not cut goes straight to its child (a child
// reached two ways is emitted twice).
func (b *lgBuilder) zero(c, depth int) (int32, error) {
	lt := b.lt
	f, thr := int32(lt.feature[c]), lt.threshold[c]
	def := lt.right[c]
	if lt.decision[c]&lgDefaultLeft != 0 {
		def = lt.left[c]
	}
	below := math.Nextafter(-lgZero, math.Inf(-1))
	// side emits the outcome for values on one side of the band: all left, all right, or cut
	// by the threshold.
	side := func(allLeft, allRight bool) (int32, error) {
		switch {
		case allLeft:
			return b.emit(lt.left[c], depth+1)
		case allRight:
			return b.emit(lt.right[c], depth+1)
		}
		i := b.add(f, thr, false)
		return i, b.children(i, lt.left[c], lt.right[c], depth)
	}
	n1 := b.add(f, below, false) // v < -z left; v >= -z and NaN right
	l1, err := side(thr >= below, false)
	if err != nil {
		return 0, err
	}
	n2 := b.add(f, lgZero, true) // the band and NaN left (the default way); v > z right
	band, err := b.emit(def, depth+1)
	if err != nil {
		return 0, err
	}
	r2, err := side(false, thr <= lgZero)
	if err != nil {
		return 0, err
	}
	t := b.t
	t.Left[n2], t.Right[n2], t.Cover[n2] = band, r2, t.Cover[band]+t.Cover[r2]
	t.Left[n1], t.Right[n1], t.Cover[n1] = l1, n2, t.Cover[l1]+t.Cover[n2]
	return n1, nil
}

// positive is a leaf's weight as a cover: explanations need a positive one, and LightGBM
// writes 0 for a leaf no row reached with weight.
func positive(w float64) float64 {
	if w > 0 && !math.IsInf(w, 0) {
		return w
	}
	return math.SmallestNonzeroFloat64
}
