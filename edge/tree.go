package edge

import (
	"bytes"
	"fmt"
)

// encodeTree writes a tree's nodes in preorder: flags, then a leaf's int8 value, or an
// internal node's feature, its threshold index (numeric) or category set (categorical), and
// its right child's position.
func encodeTree(w *bytes.Buffer, t *Tree, features []Feature) error {
	n := len(t.Left)
	if n == 0 || len(t.Right) != n || len(t.Feature) != n || len(t.Index) != n || len(t.Leaf) != n || len(t.DefaultLeft) != n {
		return fmt.Errorf("node arrays of different lengths or empty")
	}
	order, at := preorder(t)
	if len(order) != n {
		return fmt.Errorf("%d of %d nodes reachable from the root", len(order), n)
	}
	putUint(w, uint64(n), 4)
	fw, nw := featureWidth(len(features)), nodeWidth(n)
	for _, i := range order {
		var fl uint8
		if t.DefaultLeft[i] {
			fl |= flagDefaultLeft
		}
		if t.Left[i] < 0 {
			w.WriteByte(fl | flagLeaf)
			w.WriteByte(byte(t.Leaf[i]))
			continue
		}
		f := int(t.Feature[i])
		if f >= len(features) {
			return fmt.Errorf("node %d splits on feature %d of %d", i, f, len(features))
		}
		if t.isCat(int(i)) {
			w.WriteByte(fl | flagCategorical)
			putUint(w, uint64(f), fw)
			for _, word := range t.CatLeft[i] {
				putUint(w, word, 8)
			}
		} else {
			w.WriteByte(fl)
			putUint(w, uint64(f), fw)
			putUint(w, uint64(t.Index[i]), indexWidth(features[f]))
		}
		putUint(w, uint64(at[t.Right[i]]), nw)
	}
	return nil
}

// preorder lists the tree's nodes root first, each node's left subtree before its right,
// and where each old node went.
func preorder(t *Tree) ([]int32, map[int32]int32) {
	var order []int32
	at := map[int32]int32{}
	stack := []int32{0}
	for len(stack) > 0 && len(order) <= len(t.Left) {
		i := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if i < 0 || int(i) >= len(t.Left) {
			return nil, nil
		}
		if _, seen := at[i]; seen {
			return nil, nil
		}
		at[i] = int32(len(order))
		order = append(order, i)
		if t.Left[i] >= 0 {
			stack = append(stack, t.Right[i], t.Left[i])
		}
	}
	return order, at
}

// decode reads a body for p features into a Model, checking every index it will follow.
func decode(body []byte, p int) (*Model, error) {
	r := &reader{b: body}
	m := &Model{kind: int(r.u8("kind")), bodyBytes: len(body)}
	obj := r.u8("objective")
	r.need(2, "reserved")
	m.logistic = obj == ObjectiveLogistic
	m.base, m.scale = r.f64("base"), r.f64("scale")
	if n := r.count("feature count", 24); r.err == nil && n != p {
		return nil, refuse("the body has %d features, the manifest names %d", n, p)
	}
	m.features, m.catBins = make([]Feature, p), make([]bool, p)
	for f := range p {
		m.features[f] = decodeFeature(r, f)
		m.catBins[f] = m.features[f].Categorical
	}
	switch {
	case r.err != nil:
	case obj > ObjectiveLogistic:
		return nil, refuse("unknown objective %d at offset 1", obj)
	case m.kind == KindLinear:
		m.weights = make([]int8, p)
		for j := range p {
			m.weights[j] = int8(r.u8("weight"))
		}
		m.means, m.scales = r.f64s(p, "means"), r.f64s(p, "scales")
	case m.kind == KindTrees:
		nt := r.count("tree count", 5)
		for k := 0; k < nt && r.err == nil; k++ {
			decodeTree(r, m, k)
		}
	default:
		return nil, refuse("unknown kind %d at offset 0", m.kind)
	}
	if r.err == nil && r.off != len(body) {
		r.err = refuse("%d bytes after the model at offset %d", len(body)-r.off, r.off)
	}
	return m, r.err
}

func decodeFeature(r *reader, f int) Feature {
	what := fmt.Sprintf("feature %d", f)
	typ, width := r.u8(what), r.u8(what)
	r.need(2, what)
	ft := Feature{Categorical: typ == 1, Min: r.f64(what), Max: r.f64(what)}
	ft.Cuts = r.f64s(r.count(what+" cuts", 8), what+" cuts")
	if r.err == nil {
		switch {
		case typ > 1:
			r.err = refuse("%s: unknown type %d", what, typ)
		case int(width) != indexWidth(ft):
			r.err = refuse("%s: index width %d for %d thresholds", what, width, len(ft.Cuts))
		}
		for i := 1; i < len(ft.Cuts) && r.err == nil; i++ {
			if !(ft.Cuts[i-1] < ft.Cuts[i]) {
				r.err = refuse("%s: thresholds not rising at %d", what, i)
			}
		}
	}
	return ft
}

func (r *reader) f64s(n int, what string) []float64 {
	out := make([]float64, n)
	for i := range out {
		out[i] = r.f64(what)
	}
	return out
}

// decodeTree appends tree k's nodes to m, checking that every internal node's children lie
// ahead of it inside the tree (so a walk always ends at a leaf) and every index is in range.
func decodeTree(r *reader, m *Model, k int) {
	n := r.count(fmt.Sprintf("tree %d node count", k), 2)
	first := int32(len(m.nodes))
	m.roots = append(m.roots, first)
	fw, nw, p := featureWidth(len(m.features)), nodeWidth(n), len(m.features)
	for i := 0; i < n && r.err == nil; i++ {
		what := fmt.Sprintf("tree %d node %d", k, i)
		nd := node{flags: r.u8(what)}
		if nd.flags&flagLeaf != 0 {
			nd.kind, nd.leaf = kindLeaf, int8(r.u8(what))
			m.nodes = append(m.nodes, nd)
			continue
		}
		f := int(r.uint(fw, what))
		var ix uint64
		if nd.flags&flagCategorical != 0 {
			var set [4]uint64
			for w := range set {
				set[w] = r.u64(what)
			}
			ix = uint64(len(m.cats))
			m.cats = append(m.cats, set)
		} else if f < p {
			ix = r.uint(indexWidth(m.features[f]), what)
		}
		right := int(r.uint(nw, what))
		switch {
		case r.err != nil:
		case f >= p:
			r.err = refuse("%s splits on feature %d of %d", what, f, p)
		case nd.flags&flagCategorical == 0 && ix > uint64(len(m.features[f].Cuts)):
			r.err = refuse("%s: threshold index %d of %d", what, ix, len(m.features[f].Cuts))
		case i+1 >= n || right <= i+1 || right >= n:
			r.err = refuse("%s: children %d and %d outside the tree's %d nodes (preorder)", what, i+1, right, n)
		}
		if r.err != nil {
			return
		}
		nd.feat, nd.aux, nd.right, nd.kind = uint16(f), uint32(ix), first+int32(right), kindOther
		if nd.flags&flagCategorical == 0 && !m.catBins[f] && ix >= 1 {
			nd.kind, nd.thr = kindNumeric, m.features[f].Cuts[ix-1]
		}
		m.nodes = append(m.nodes, nd)
	}
}
