package model

import (
	"fmt"
	"math"
	"slices"
	"strings"

	"github.com/driftline/driftline/model/hparams"
)

// ONNX tree ensembles: ai.onnx.ml's TreeEnsembleRegressor and TreeEnsembleClassifier
// (opsets 1 and 3; 3 adds the double *_as_tensor attributes) and TreeEnsemble (opset 5),
// converted to a Driftline ensemble that computes what ONNX Runtime computes.

// Node modes, as TreeEnsemble numbers them; teLeaf marks a leaf.
const (
	teLEQ = iota
	teLT
	teGTE
	teGT
	teEQ
	teNEQ
	teMember
	teLeaf
)

var teModes = map[string]int{"BRANCH_LEQ": teLEQ, "BRANCH_LT": teLT, "BRANCH_GTE": teGTE, "BRANCH_GT": teGT,
	"BRANCH_EQ": teEQ, "BRANCH_NEQ": teNEQ, "LEAF": teLeaf}

// onnxMaxOpset is the newest ai.onnx.ml opset this build reads.
const onnxMaxOpset = 5

// teNode is a node of any of the three operators.
type teNode struct {
	mode       int
	feature    int
	split      float64
	tracksTrue bool
	t, f       int // children: indices into the ensemble's nodes
	members    []float64
	hit        float64
	w          [2]float64 // a leaf's weights for score columns 0 and 1
	used       [2]bool
}

// teEnsemble is a tree ensemble node read from the graph.
type teEnsemble struct {
	op           string
	nodes        []teNode
	roots        []int
	doubleSplits bool
	hits         bool // every leaf has a positive hit rate
	aggregate    string
	post         string
	base         []float64
	columns      int // score columns: 1, or 2 for a binary classifier
}

// LoadONNX converts an ONNX model whose graph is one tree ensemble (ZipMap, Identity and
// Cast nodes on its outputs are allowed) into a Driftline model that gives ONNX Runtime's
// prediction: for a regressor its one target; for a binary classifier the positive class's
// score (the second column of its probabilities). Splits are compared as ONNX Runtime
// compares them: a graph whose input and split values are float is computed in float32 (inputs
// rounded, leaves summed in float32); double split values (*_as_tensor, or a double
// TreeEnsemble) are compared in float64, against the input rounded to float32 when the input is
// float. features names the input's columns in order (ONNX graphs carry no names).
func LoadONNX(data []byte, features []string, target string) (*Model, error) {
	om, err := parseONNX(data)
	if err != nil {
		return nil, fmt.Errorf("%w: ONNX: %v (truncated, or not an ONNX model)", ErrBadArtifact, err)
	}
	node, in, err := om.treeNode()
	if err != nil {
		return nil, fmt.Errorf("%w: ONNX: %v", ErrBadArtifact, err)
	}
	te, err := readEnsemble(node)
	if err != nil {
		return nil, fmt.Errorf("%w: ONNX %s: %v", ErrBadArtifact, node.opType, err)
	}
	m, err := te.model(in, features, target)
	if err != nil {
		return nil, fmt.Errorf("%w: ONNX %s: %v", ErrBadArtifact, node.opType, err)
	}
	m.Settings["onnx_ml_opset"] = fmt.Sprint(om.opsets["ai.onnx.ml"])
	return m, nil
}

// treeNode finds the graph's tree ensemble node and the graph input it reads.
func (om *onnxModel) treeNode() (*onnxNode, onnxValue, error) {
	ml, ok := om.opsets["ai.onnx.ml"]
	if !ok {
		return nil, onnxValue{}, fmt.Errorf("the model imports no ai.onnx.ml opset; a tree ensemble needs one")
	}
	if ml < 1 || ml > onnxMaxOpset {
		return nil, onnxValue{}, fmt.Errorf("ai.onnx.ml opset %d; this build reads opsets 1 to %d", ml, onnxMaxOpset)
	}
	var tree *onnxNode
	for i := range om.graph.nodes {
		n := &om.graph.nodes[i]
		switch {
		case n.domain == "ai.onnx.ml" && (n.opType == "TreeEnsembleRegressor" || n.opType == "TreeEnsembleClassifier" || n.opType == "TreeEnsemble"):
			if tree != nil {
				return nil, onnxValue{}, fmt.Errorf("the graph has more than one tree ensemble (%q and %q); one is supported", tree.name, n.name)
			}
			if n.opType == "TreeEnsemble" && ml < 5 {
				return nil, onnxValue{}, fmt.Errorf("node %q is TreeEnsemble, which needs ai.onnx.ml opset 5, but the model imports opset %d", n.name, ml)
			}
			tree = n
		case n.domain == "ai.onnx.ml" && n.opType == "ZipMap", (n.domain == "" || n.domain == "ai.onnx") && (n.opType == "Identity" || n.opType == "Cast"):
		default:
			domain := n.domain
			if domain == "" {
				domain = "ai.onnx"
			}
			return nil, onnxValue{}, fmt.Errorf("unsupported operator %s.%s (node %q): the graph may hold one tree ensemble, with ZipMap, Identity or Cast on its outputs", domain, n.opType, n.name)
		}
	}
	if tree == nil {
		return nil, onnxValue{}, fmt.Errorf("the graph has no TreeEnsembleRegressor, TreeEnsembleClassifier or TreeEnsemble node")
	}
	if len(tree.inputs) != 1 {
		return nil, onnxValue{}, fmt.Errorf("node %q has %d inputs, want 1", tree.name, len(tree.inputs))
	}
	for _, in := range om.graph.inputs {
		if in.name == tree.inputs[0] {
			return tree, in, nil
		}
	}
	return nil, onnxValue{}, fmt.Errorf("node %q reads %q, which is not a graph input (only a graph whose tree ensemble reads its input directly is supported)", tree.name, tree.inputs[0])
}

// numbers is an attribute's float list, or its *_as_tensor double version; double reports
// which.
func (n *onnxNode) numbers(name string) (vals []float64, double, ok bool) {
	if a := n.attrs[name+"_as_tensor"]; a != nil && a.t != nil {
		return a.t.values, a.t.dataType == onnxDouble, true
	}
	if a := n.attrs[name]; a != nil {
		if a.t != nil {
			return a.t.values, a.t.dataType == onnxDouble, true
		}
		return a.floats, false, true
	}
	return nil, false, false
}

func (n *onnxNode) ints(name string) []int64 {
	if a := n.attrs[name]; a != nil {
		return a.ints
	}
	return nil
}

func (n *onnxNode) str(name, def string) string {
	if a := n.attrs[name]; a != nil && a.s != "" {
		return a.s
	}
	return def
}

func (n *onnxNode) integer(name string, def int64) int64 {
	if a := n.attrs[name]; a != nil && a.hasI {
		return a.i
	}
	return def
}

func readEnsemble(n *onnxNode) (*teEnsemble, error) {
	if n.opType == "TreeEnsemble" {
		return readEnsembleV5(n)
	}
	return readEnsembleV3(n)
}

// sameLength checks that the named lists have want entries (optional ones may be empty).
func sameLength(want int, lists map[string]int, optional ...string) error {
	keys := make([]string, 0, len(lists))
	for k := range lists {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if lists[k] == 0 && slices.Contains(optional, k) {
			continue
		}
		if lists[k] != want {
			return fmt.Errorf("%s has %d entries, the nodes are %d", k, lists[k], want)
		}
	}
	return nil
}

// readEnsembleV3 reads TreeEnsembleRegressor or TreeEnsembleClassifier (opsets 1 and 3).
func readEnsembleV3(n *onnxNode) (*teEnsemble, error) {
	te := &teEnsemble{op: n.opType, aggregate: n.str("aggregate_function", "SUM"), post: n.str("post_transform", "NONE"), columns: 1}
	treeIDs, nodeIDs, feats := n.ints("nodes_treeids"), n.ints("nodes_nodeids"), n.ints("nodes_featureids")
	trueIDs, falseIDs, tracks := n.ints("nodes_truenodeids"), n.ints("nodes_falsenodeids"), n.ints("nodes_missing_value_tracks_true")
	var modes []string
	if a := n.attrs["nodes_modes"]; a != nil {
		modes = a.strings
	}
	splits, double, _ := n.numbers("nodes_values")
	hits, _, _ := n.numbers("nodes_hitrates")
	te.doubleSplits = double
	count := len(nodeIDs)
	if count == 0 {
		return nil, fmt.Errorf("no nodes")
	}
	if err := sameLength(count, map[string]int{"nodes_treeids": len(treeIDs), "nodes_featureids": len(feats), "nodes_modes": len(modes),
		"nodes_values": len(splits), "nodes_truenodeids": len(trueIDs), "nodes_falsenodeids": len(falseIDs),
		"nodes_missing_value_tracks_true": len(tracks), "nodes_hitrates": len(hits)}, "nodes_missing_value_tracks_true", "nodes_hitrates"); err != nil {
		return nil, err
	}
	index := make(map[teKey]int, count)
	for i := range count {
		k := teKey{treeIDs[i], nodeIDs[i]}
		if _, dup := index[k]; dup {
			return nil, fmt.Errorf("tree %d has node %d twice", k.tree, k.node)
		}
		index[k] = i
	}
	te.nodes = make([]teNode, count)
	child := make([]bool, count)
	for i := range count {
		mode, ok := teModes[modes[i]]
		if !ok {
			return nil, fmt.Errorf("node %d of tree %d has mode %q (BRANCH_LEQ, BRANCH_LT, BRANCH_GTE, BRANCH_GT, BRANCH_EQ, BRANCH_NEQ, LEAF)", nodeIDs[i], treeIDs[i], modes[i])
		}
		nd := teNode{mode: mode, feature: int(feats[i]), split: splits[i], hit: 1}
		if len(tracks) > 0 {
			nd.tracksTrue = tracks[i] != 0
		}
		if len(hits) > 0 {
			nd.hit = hits[i]
		}
		if mode != teLeaf {
			t, okT := index[teKey{treeIDs[i], trueIDs[i]}]
			f, okF := index[teKey{treeIDs[i], falseIDs[i]}]
			if !okT || !okF {
				return nil, fmt.Errorf("node %d of tree %d has children %d and %d, not both in the tree", nodeIDs[i], treeIDs[i], trueIDs[i], falseIDs[i])
			}
			nd.t, nd.f = t, f
			child[t], child[f] = true, true
		}
		te.nodes[i] = nd
	}
	// Roots: the nodes no node names as a child, in the order of their tree ids.
	for i := range count {
		if !child[i] {
			te.roots = append(te.roots, i)
		}
	}
	slices.SortStableFunc(te.roots, func(a, b int) int { return int(treeIDs[a] - treeIDs[b]) })
	for k := 1; k < len(te.roots); k++ {
		if treeIDs[te.roots[k]] == treeIDs[te.roots[k-1]] {
			return nil, fmt.Errorf("tree %d has more than one root", treeIDs[te.roots[k]])
		}
	}
	if err := te.v3Weights(n, treeIDs, nodeIDs, index); err != nil {
		return nil, err
	}
	return te, nil
}

// teKey names a node of TreeEnsembleRegressor/Classifier: its tree and its id there.
type teKey struct{ tree, node int64 }

// v3Weights adds the leaves' weights (target_* or class_*) to the nodes, and reads the base
// values.
func (te *teEnsemble) v3Weights(n *onnxNode, treeIDs, nodeIDs []int64, index map[teKey]int) error {
	prefix, err := te.v3Columns(n)
	if err != nil {
		return err
	}
	wTree, wNode, wIDs := n.ints(prefix+"_treeids"), n.ints(prefix+"_nodeids"), n.ints(prefix+"_ids")
	weights, _, _ := n.numbers(prefix + "_weights")
	if len(wTree) != len(weights) || len(wNode) != len(weights) || len(wIDs) != len(weights) {
		return fmt.Errorf("%s_treeids, _nodeids, _ids and _weights have %d, %d, %d and %d entries", prefix, len(wTree), len(wNode), len(wIDs), len(weights))
	}
	for j, w := range weights {
		i, ok := index[teKey{wTree[j], wNode[j]}]
		switch {
		case !ok:
			return fmt.Errorf("weight %d is for node %d of tree %d, which does not exist", j, wNode[j], wTree[j])
		case te.nodes[i].mode != teLeaf:
			return fmt.Errorf("weight %d is for node %d of tree %d, which is not a leaf", j, wNode[j], wTree[j])
		case wIDs[j] < 0 || int(wIDs[j]) >= te.columns:
			return fmt.Errorf("weight %d is for %s %d of %d", j, prefix, wIDs[j], te.columns)
		}
		te.nodes[i].w[wIDs[j]] += w
		te.nodes[i].used[wIDs[j]] = true
	}
	te.base, _, _ = n.numbers("base_values")
	return nil
}

// v3Columns reads how many score columns the node has and names its weight attributes.
func (te *teEnsemble) v3Columns(n *onnxNode) (string, error) {
	if te.op == "TreeEnsembleRegressor" {
		if k := n.integer("n_targets", 1); k != 1 {
			return "", fmt.Errorf("%d targets; one is supported", k)
		}
		return "target", nil
	}
	labels := len(n.ints("classlabels_int64s"))
	if a := n.attrs["classlabels_strings"]; a != nil {
		labels += len(a.strings)
	}
	if labels != 2 {
		return "", fmt.Errorf("%d classes; only binary classifiers are supported", labels)
	}
	te.columns = 2
	return "class", nil
}

// readEnsembleV5 reads TreeEnsemble (opset 5): interior nodes in nodes_*, leaves in leaf_*,
// a child a leaf when its *leafs flag says so.
func readEnsembleV5(n *onnxNode) (*teEnsemble, error) {
	aggregates := []string{"AVERAGE", "SUM", "MIN", "MAX"}
	posts := []string{"NONE", "SOFTMAX", "LOGISTIC", "SOFTMAX_ZERO", "PROBIT"}
	agg, post := n.integer("aggregate_function", 1), n.integer("post_transform", 0)
	if agg < 0 || int(agg) >= len(aggregates) || post < 0 || int(post) >= len(posts) {
		return nil, fmt.Errorf("aggregate_function %d or post_transform %d out of range", agg, post)
	}
	te := &teEnsemble{op: n.opType, aggregate: aggregates[agg], post: posts[post]}
	targets := n.integer("n_targets", 1)
	if targets != 1 && targets != 2 {
		return nil, fmt.Errorf("%d targets; one (a regressor) or two (the scores of a binary classifier) are supported", targets)
	}
	te.columns = int(targets)
	feats, trueIDs, falseIDs := n.ints("nodes_featureids"), n.ints("nodes_truenodeids"), n.ints("nodes_falsenodeids")
	trueLeaf, falseLeaf, tracks := n.ints("nodes_trueleafs"), n.ints("nodes_falseleafs"), n.ints("nodes_missing_value_tracks_true")
	modes, _, _ := n.numbers("nodes_modes")
	splits, double, _ := n.numbers("nodes_splits")
	hits, _, _ := n.numbers("nodes_hitrates")
	members, _, _ := n.numbers("membership_values")
	leafTargets := n.ints("leaf_targetids")
	weights, _, _ := n.numbers("leaf_weights")
	te.doubleSplits = double
	inner := len(feats)
	if inner == 0 {
		return nil, fmt.Errorf("no nodes")
	}
	if err := sameLength(inner, map[string]int{"nodes_modes": len(modes), "nodes_splits": len(splits), "nodes_truenodeids": len(trueIDs),
		"nodes_falsenodeids": len(falseIDs), "nodes_trueleafs": len(trueLeaf), "nodes_falseleafs": len(falseLeaf),
		"nodes_missing_value_tracks_true": len(tracks), "nodes_hitrates": len(hits)}, "nodes_missing_value_tracks_true", "nodes_hitrates"); err != nil {
		return nil, err
	}
	if len(leafTargets) != len(weights) || len(weights) == 0 {
		return nil, fmt.Errorf("leaf_targetids has %d entries and leaf_weights %d", len(leafTargets), len(weights))
	}
	te.nodes = make([]teNode, inner+len(weights))
	childOf := func(i int, id, leaf int64) (int, error) {
		if leaf != 0 {
			if id < 0 || int(id) >= len(weights) {
				return 0, fmt.Errorf("node %d names leaf %d of %d", i, id, len(weights))
			}
			return inner + int(id), nil
		}
		if id < 0 || int(id) >= inner {
			return 0, fmt.Errorf("node %d names node %d of %d", i, id, inner)
		}
		return int(id), nil
	}
	for i := range inner {
		nd := teNode{mode: int(modes[i]), feature: int(feats[i]), split: splits[i], hit: 1}
		if modes[i] < teLEQ || modes[i] > teMember {
			return nil, fmt.Errorf("node %d has mode %v (0-6)", i, modes[i])
		}
		if len(tracks) > 0 {
			nd.tracksTrue = tracks[i] != 0
		}
		var err error
		if nd.t, err = childOf(i, trueIDs[i], trueLeaf[i]); err != nil {
			return nil, err
		}
		if nd.f, err = childOf(i, falseIDs[i], falseLeaf[i]); err != nil {
			return nil, err
		}
		if nd.mode == teMember {
			end := slices.IndexFunc(members, math.IsNaN)
			if end < 0 {
				end = len(members)
			}
			nd.members, members = members[:end], members[min(end+1, len(members)):]
		}
		te.nodes[i] = nd
	}
	return te, te.v5Leaves(n, inner, weights, leafTargets)
}

// v5Leaves fills the leaves (after the inner nodes) and the roots.
func (te *teEnsemble) v5Leaves(n *onnxNode, inner int, weights []float64, leafTargets []int64) error {
	for j, w := range weights {
		k := leafTargets[j]
		if k < 0 || int(k) >= te.columns {
			return fmt.Errorf("leaf %d is for target %d of %d", j, k, te.columns)
		}
		nd := teNode{mode: teLeaf, hit: 1}
		nd.w[k], nd.used[k] = w, true
		te.nodes[inner+j] = nd
	}
	for _, r := range n.ints("tree_roots") {
		if r < 0 || int(r) >= inner {
			return fmt.Errorf("tree root %d of %d nodes", r, inner)
		}
		te.roots = append(te.roots, int(r))
	}
	if len(te.roots) == 0 {
		return fmt.Errorf("no tree_roots")
	}
	return nil
}

// output decides how the scores become the prediction: a leaf's margin from its weights,
// the base margin, and whether a sigmoid follows.
func (te *teEnsemble) output() (leaf func(*teNode) float64, base float64, sigmoid bool, err error) {
	switch te.post {
	case "NONE", "LOGISTIC", "SOFTMAX":
	default:
		return nil, 0, false, fmt.Errorf("post_transform %s is not supported (NONE, LOGISTIC, and SOFTMAX for two classes)", te.post)
	}
	sigmoid = te.post != "NONE"
	used := [2]bool{}
	for i := range te.nodes {
		used[0], used[1] = used[0] || te.nodes[i].used[0], used[1] || te.nodes[i].used[1]
	}
	if te.columns == 1 || !used[0] || !used[1] {
		// One score column: ONNX Runtime's binary case, the score's transform is the
		// positive class's.
		col := 0
		if te.columns == 2 && used[1] {
			col = 1
		}
		if te.post == "SOFTMAX" {
			return nil, 0, false, fmt.Errorf("post_transform SOFTMAX of a single score column is not supported")
		}
		switch len(te.base) {
		case 0:
		case 1:
			base = te.base[0]
		default:
			if te.columns == 1 || te.base[0] != te.base[1] {
				return nil, 0, false, fmt.Errorf("%d base_values for one score column", len(te.base))
			}
			base = te.base[0]
		}
		return func(n *teNode) float64 { return n.w[col] }, base, sigmoid, nil
	}
	b := [2]float64{}
	switch len(te.base) {
	case 0:
	case 2:
		b = [2]float64{te.base[0], te.base[1]}
	default:
		return nil, 0, false, fmt.Errorf("%d base_values for two classes", len(te.base))
	}
	if te.post == "SOFTMAX" { // p1 = e^s1 / (e^s0 + e^s1) = sigmoid(s1 - s0)
		return func(n *teNode) float64 { return n.w[1] - n.w[0] }, b[1] - b[0], true, nil
	}
	return func(n *teNode) float64 { return n.w[1] }, b[1], sigmoid, nil
}

// model builds the Driftline model reading input in.
func (te *teEnsemble) model(in onnxValue, features []string, target string) (*Model, error) {
	leafValue, base, sigmoid, err := te.output()
	if err != nil {
		return nil, err
	}
	if te.aggregate != "SUM" && te.aggregate != "AVERAGE" {
		return nil, fmt.Errorf("aggregate_function %s is not supported (SUM, AVERAGE)", te.aggregate)
	}
	p := 0
	if len(in.dims) == 2 && in.dims[1] > 0 {
		p = int(in.dims[1])
	}
	maxFeature := -1
	for i := range te.nodes {
		if te.nodes[i].mode != teLeaf {
			maxFeature = max(maxFeature, te.nodes[i].feature)
		}
	}
	if p == 0 {
		p = maxFeature + 1
	}
	switch {
	case len(features) == 0:
		return nil, fmt.Errorf("ONNX graphs carry no feature names: pass the %d names of the input's columns (the spec's features)", p)
	case len(features) != p:
		return nil, fmt.Errorf("the input %q has %d features, %d names given", in.name, p, len(features))
	case maxFeature >= p:
		return nil, fmt.Errorf("a split reads feature %d of the input's %d", maxFeature, p)
	}
	c := &teConv{te: te, p: p, leafValue: leafValue, cats: make([]int8, p)}
	switch in.elemType {
	case onnxFloat:
		c.float32Model, c.roundInputs = !te.doubleSplits, te.doubleSplits
	case onnxDouble, onnxInt32, onnxInt64:
	default:
		return nil, fmt.Errorf("input %q has element type %d; float, double, int32 and int64 are read", in.name, in.elemType)
	}
	te.hits = true
	for i := range te.nodes {
		if n := &te.nodes[i]; n.mode == teLeaf && !(n.hit > 0 && !math.IsInf(n.hit, 0)) {
			te.hits = false
		}
	}
	obj := hparams.SquaredError
	if sigmoid {
		obj = hparams.BinaryLogLoss
	}
	e := &Ensemble{Objective: obj, BaseScore: base, Float32Inputs: c.float32Model}
	for k, r := range te.roots {
		t, err := c.tree(r)
		if err != nil {
			return nil, fmt.Errorf("tree %d: %v", k, err)
		}
		if te.aggregate == "AVERAGE" {
			for i := range t.Value {
				t.Value[i] /= float64(len(te.roots))
			}
		}
		e.Trees = append(e.Trees, t)
	}
	if slices.Contains(c.cats, 1) {
		e.Bins = &Binner{Features: make([]FeatureBins, p)}
		for f := range c.cats {
			e.Bins.Features[f].Categorical = c.cats[f] == 1
		}
	}
	e.BestIteration = len(e.Trees)
	m := &Model{Family: "gbdt", Trainer: "onnx", Objective: obj, Features: features, Inputs: NumericInputs(features), Target: target, GBDT: e,
		Settings: map[string]string{"source": "onnx", "onnx_operator": te.op, "onnx_post_transform": te.post, "onnx_aggregate": te.aggregate,
			"onnx_precision": c.precision()}}
	if err := m.check(); err != nil {
		return nil, err
	}
	return m, nil
}

// teConv turns the ensemble's trees into Trees.
type teConv struct {
	te           *teEnsemble
	p            int
	leafValue    func(*teNode) float64
	float32Model bool   // float inputs and float splits: compare and sum in float32
	roundInputs  bool   // float inputs against double splits
	cats         []int8 // per feature: 1 split by membership, -1 by comparison
	t            *Tree
	emitted      int
}

func (c *teConv) precision() string {
	switch {
	case c.float32Model:
		return "float32"
	case c.roundInputs:
		return "float32 inputs, float64 splits and sums"
	}
	return "float64"
}

func (c *teConv) tree(root int) (Tree, error) {
	var t Tree
	c.t, c.emitted = &t, 0
	if _, err := c.emit(root, 0); err != nil {
		return Tree{}, err
	}
	return t, nil
}

func (c *teConv) add(feature int, thr float64, defLeft bool) int32 {
	return c.t.appendNode(int32(feature), thr, defLeft)
}

// link sets node i's children (each a new subtree) and sums their covers into it.
func (c *teConv) link(i int32, left, right int, depth int) error {
	l, err := c.emit(left, depth+1)
	if err != nil {
		return err
	}
	r, err := c.emit(right, depth+1)
	if err != nil {
		return err
	}
	t := c.t
	t.Left[i], t.Right[i], t.Cover[i] = l, r, t.Cover[l]+t.Cover[r]
	return nil
}

// emit writes ensemble node k and its subtree in preorder; an equality split becomes two
// comparisons (its false subtree written twice).
func (c *teConv) emit(k, depth int) (int32, error) {
	if c.emitted++; depth >= maxPath || c.emitted > 4*len(c.te.nodes)+64 {
		return 0, fmt.Errorf("the tree does not reach its leaves within %d levels (a cycle in its children?)", maxPath)
	}
	n := &c.te.nodes[k]
	if n.mode == teLeaf {
		i := c.add(0, 0, false)
		c.t.Value[i], c.t.Cover[i] = c.leafValue(n), 1
		if c.te.hits {
			c.t.Cover[i] = n.hit
		}
		return i, nil
	}
	if n.feature < 0 || n.feature >= c.p {
		return 0, fmt.Errorf("a node splits on feature %d of %d", n.feature, c.p)
	}
	if math.IsNaN(n.split) && n.mode != teMember {
		return 0, fmt.Errorf("a node splits feature %d at NaN", n.feature)
	}
	if err := c.kind(n); err != nil {
		return 0, err
	}
	switch n.mode {
	case teLEQ, teLT, teGTE, teGT:
		swap := n.mode == teGTE || n.mode == teGT // x >= s is not x < s; x > s is not x <= s
		left, right := n.t, n.f
		if swap {
			left, right = n.f, n.t
		}
		i := c.add(n.feature, c.threshold(n.split, n.mode == teLT || n.mode == teGTE), n.tracksTrue != swap)
		return i, c.link(i, left, right, depth)
	case teEQ, teNEQ:
		eq, ne := n.t, n.f // x == s: x <= s and not x < s
		if n.mode == teNEQ {
			eq, ne = n.f, n.t
		}
		nanTrue := n.tracksTrue || n.mode == teNEQ // NaN != s holds
		i := c.add(n.feature, c.threshold(n.split, false), nanTrue && n.mode == teEQ)
		j := c.add(n.feature, c.threshold(n.split, true), false)
		lj, err := c.emit(ne, depth+2)
		if err != nil {
			return 0, err
		}
		rj, err := c.emit(eq, depth+2)
		if err != nil {
			return 0, err
		}
		ri, err := c.emit(ne, depth+1)
		if err != nil {
			return 0, err
		}
		t := c.t
		t.Left[j], t.Right[j], t.Cover[j] = lj, rj, t.Cover[lj]+t.Cover[rj]
		t.Left[i], t.Right[i], t.Cover[i] = j, ri, t.Cover[j]+t.Cover[ri]
		return i, nil
	}
	return c.member(n, depth)
}

// kind records how a feature is split; one feature split both ways is refused.
func (c *teConv) kind(n *teNode) error {
	k := int8(-1)
	if n.mode == teMember {
		k = 1
	}
	if c.cats[n.feature] == -k {
		return fmt.Errorf("feature %d is split both by set membership and by comparison; not supported", n.feature)
	}
	c.cats[n.feature] = k
	return nil
}

// member writes a set membership split as a categorical one: categories 0-253.
func (c *teConv) member(n *teNode, depth int) (int32, error) {
	if n.tracksTrue {
		return 0, fmt.Errorf("a BRANCH_MEMBER split on feature %d sends missing values to its true branch; not supported", n.feature)
	}
	if len(n.members) == 0 {
		return 0, fmt.Errorf("a BRANCH_MEMBER split on feature %d has an empty set", n.feature)
	}
	var set [4]uint64
	for _, v := range n.members {
		if v < 0 || v >= MaxCategories || v != math.Trunc(v) {
			return 0, fmt.Errorf("a BRANCH_MEMBER split on feature %d holds %v; Driftline's categorical features hold integers 0-%d", n.feature, v, MaxCategories-1)
		}
		b := int(v) + 1
		set[b>>6] |= 1 << (b & 63)
	}
	t := c.t
	if t.CatLeft == nil {
		t.CatLeft = make([][4]uint64, len(t.Left))
	}
	i := c.add(n.feature, 0, false)
	t.CatLeft[i] = set
	return i, c.link(i, n.t, n.f, depth)
}

// threshold is the inclusive threshold (left when x <= it) of a split "x <= s" or, strict,
// "x < s", in the precision the graph computes in.
func (c *teConv) threshold(s float64, strict bool) float64 {
	switch {
	case c.float32Model:
		f := float32(s)
		if strict {
			f = math.Nextafter32(f, float32(math.Inf(-1)))
		}
		return float64(f)
	case c.roundInputs:
		return float32Cut(s, strict)
	case strict:
		return math.Nextafter(s, math.Inf(-1))
	}
	return s
}

// float32Cut is the largest float64 x for which float32(x) <= s (strict: float32(x) < s), so
// that comparing a float64 input with it decides as comparing the input rounded to float32
// with s does. Go rounds to nearest, ties to even, as the C++ conversion does.
func float32Cut(s float64, strict bool) float64 {
	f := float32(s)
	if float64(f) > s || (strict && float64(f) == s) {
		f = math.Nextafter32(f, float32(math.Inf(-1)))
	}
	const halfULPOfMax = 0x1p103 // the inputs above MaxFloat32 + this round to +Inf
	switch {
	case math.IsInf(float64(f), 1):
		return math.Inf(1)
	case math.IsInf(s, -1) && strict: // nothing is below -Inf
		return math.Inf(-1)
	case math.IsInf(float64(f), -1):
		return -(math.MaxFloat32 + halfULPOfMax) // -MaxFloat32's mantissa is odd: the tie rounds to -Inf
	}
	var mid float64
	if next := math.Nextafter32(f, float32(math.Inf(1))); math.IsInf(float64(next), 1) {
		mid = float64(f) + halfULPOfMax
	} else {
		mid = (float64(f) + float64(next)) / 2 // exact: both are float32s
	}
	if math.Float32bits(f)&1 == 0 { // the tie rounds to f
		return mid
	}
	return math.Nextafter(mid, math.Inf(-1))
}

// IsONNX reports whether data parses as an ONNX model with a graph.
func IsONNX(data []byte) bool {
	m, err := parseONNX(data)
	return err == nil && len(m.graph.nodes) > 0 && !strings.HasPrefix(string(data), "{")
}
