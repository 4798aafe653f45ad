package model

// TreeSHAP: exact SHAP values of tree ensembles in polynomial time, with path-dependent
// feature perturbation (Lundberg, Erion and Lee, "Consistent Individualized Feature
// Attribution for Tree Ensembles", 2018, algorithm 2). The conditional expectation of a tree
// given a feature subset follows the row where the split feature is in the subset and
// otherwise weights both children by the share of training cover they received. Values are
// in margin space: base + the sum of contributions equals Margin(x).

type pathElem struct {
	feature   int
	zero, one float64
	weight    float64
}

// In path-dependent TreeSHAP every one fraction is 0 or 1, and the remaining factors depend
// only on positions in the path, so the updates below use precomputed ratios and no
// division in their inner loops.

// ratios[d][i] = (i+1)/(d+1) and rests[d][i] = (d-i)/(d+1) for paths of up to maxPath.
const maxPath = 64

var ratios, rests = func() (r, q [maxPath + 1][maxPath + 1]float64) {
	for d := 0; d <= maxPath; d++ {
		for i := 0; i <= d; i++ {
			r[d][i] = float64(i+1) / float64(d+1)
			q[d][i] = float64(d-i) / float64(d+1)
		}
	}
	return
}()

// extendPath adds a feature to the path of the unique features seen so far (path[0:depth]
// holds the old path, path[depth] receives the new element).
func extendPath(path []pathElem, depth int, zero, one float64, feature int) {
	path[depth] = pathElem{feature: feature, zero: zero, one: one}
	if depth == 0 {
		path[depth].weight = 1
	}
	r, q := &ratios[depth], &rests[depth]
	for i := depth - 1; i >= 0; i-- {
		path[i+1].weight += one * path[i].weight * r[i]
		path[i].weight = zero * path[i].weight * q[i]
	}
}

// unwindPath removes element k from the path (the inverse of extendPath).
func unwindPath(path []pathElem, depth, k int) {
	one, zero := path[k].one, path[k].zero
	next := path[depth].weight
	ir, q, iq := &invRatios[depth], &rests[depth], &invRests[depth]
	if one != 0 {
		for i := depth - 1; i >= 0; i-- {
			tmp := path[i].weight
			path[i].weight = next * ir[i]
			next = tmp - path[i].weight*zero*q[i]
		}
	} else {
		inv := 1 / zero
		for i := depth - 1; i >= 0; i-- {
			path[i].weight = path[i].weight * inv * iq[i]
		}
	}
	for i := k; i < depth; i++ {
		path[i].feature, path[i].zero, path[i].one = path[i+1].feature, path[i+1].zero, path[i+1].one
	}
}

// inverse tables for unwoundSum: 1/ratios and 1/rests.
var invRatios, invRests = func() (r, q [maxPath + 1][maxPath + 1]float64) {
	for d := 0; d <= maxPath; d++ {
		for i := 0; i <= d; i++ {
			r[d][i] = float64(d+1) / float64(i+1)
			if i < d {
				q[d][i] = float64(d+1) / float64(d-i)
			}
		}
	}
	return
}()

// unwoundSum is the total weight of the path with element k removed, without changing it.
func unwoundSum(path []pathElem, depth, k int) float64 {
	one, zero := path[k].one, path[k].zero
	total := 0.0
	ir, q := &invRatios[depth], &rests[depth]
	if one != 0 {
		next := path[depth].weight
		for i := depth - 1; i >= 0; i-- {
			tmp := next * ir[i]
			total += tmp
			next = path[i].weight - tmp*zero*q[i]
		}
		return total
	}
	iq := &invRests[depth]
	for i := depth - 1; i >= 0; i-- {
		total += path[i].weight * iq[i]
	}
	return total / zero
}

type shapper struct {
	t    *Tree
	x    []float64
	cats []FeatureBins
	phi  []float64
	buf  []pathElem
}

// recurse visits node with the path held in buf[off : off+depth+1] after extension.
func (s *shapper) recurse(node, depth, parentOff int, zero, one float64, feature int) {
	off := parentOff + depth + 1
	path := s.buf[off : off+depth+1]
	copy(path, s.buf[parentOff:parentOff+depth])
	extendPath(path, depth, zero, one, feature)
	t := s.t
	if t.Left[node] < 0 {
		v := t.Value[node]
		for i := 1; i <= depth; i++ {
			w := unwoundSum(path, depth, i)
			s.phi[path[i].feature] += w * (path[i].one - path[i].zero) * v
		}
		return
	}
	hot, cold := int(t.Left[node]), int(t.Right[node])
	if !t.goesLeft(node, s.x, s.cats) {
		hot, cold = cold, hot
	}
	cover := t.Cover[node]
	hotZero, coldZero := t.Cover[hot]/cover, t.Cover[cold]/cover
	inZero, inOne := 1.0, 1.0
	f := int(t.Feature[node])
	for k := 1; k <= depth; k++ {
		if path[k].feature == f {
			inZero, inOne = path[k].zero, path[k].one
			unwindPath(path, depth, k)
			depth--
			break
		}
	}
	s.recurse(hot, depth+1, off, hotZero*inZero, inOne, f)
	s.recurse(cold, depth+1, off, coldZero*inZero, 0, f)
}

// expectation is the cover-weighted mean leaf value of the subtree at node.
func (t *Tree) expectation(node int) float64 {
	if t.Left[node] < 0 {
		return t.Value[node]
	}
	l, r := int(t.Left[node]), int(t.Right[node])
	return (t.Cover[l]*t.expectation(l) + t.Cover[r]*t.expectation(r)) / (t.Cover[l] + t.Cover[r])
}

// ExpectedMargin is the base value of the explanations: BaseScore plus every tree's
// cover-weighted mean leaf.
func (e *Ensemble) ExpectedMargin() float64 {
	s := e.BaseScore
	for k := range e.Trees {
		s += e.Trees[k].expectation(0)
	}
	return s
}

// prepareFastShap builds the per-leaf tables when every tree is shallow enough and the
// tables stay under 64 MB; otherwise explanations use the path algorithm.
func (e *Ensemble) prepareFastShap() {
	e.shap = nil
	entries := 0
	for k := range e.Trees {
		d := e.Trees[k].depth()
		if d > maxFastShapDepth {
			return
		}
		for _, l := range e.Trees[k].Left {
			if l < 0 {
				entries += 1 << d
			}
		}
	}
	if entries > 8<<20 {
		return
	}
	e.shap = make([]*shapTree, len(e.Trees))
	for k := range e.Trees {
		e.shap[k] = prepareShap(&e.Trees[k])
	}
}

// Explain returns the base value and the TreeSHAP contribution of every feature, in margin
// space: base + sum(contrib) = Margin(x).
func (e *Ensemble) Explain(x []float64) (float64, []float64) {
	if e.Float32Inputs {
		x = roundFloat32(x)
	}
	p := 0
	if e.Bins != nil {
		p = len(e.Bins.Features)
	}
	p = max(p, len(x))
	phi := make([]float64, p)
	if e.shap != nil {
		cats := e.cats()
		var stack [2 * maxPath]shapFrame
		for k := range e.Trees {
			e.shap[k].explainFast(&e.Trees[k], x, cats, phi, &stack)
		}
		return e.expected, phi
	}
	maxDepth := e.maxDepth
	s := &shapper{x: x, cats: e.cats(), phi: phi, buf: make([]pathElem, (maxDepth+2)*(maxDepth+3)/2+maxDepth+2)}
	for k := range e.Trees {
		s.t = &e.Trees[k]
		s.recurse(0, 0, 0, 1, 1, -1)
	}
	return e.expected, phi
}

// leafShap is what the precomputed explanation needs of one leaf: the unique features on
// its path (in order of first use), and for each subset T of them, as a bit mask over path
// positions, B(T) = sum over S in T of w(|S|) * prod over j not in S of z_j, where z_j is the
// share of cover the path keeps at feature j's splits and w(s) = s!(d-s-1)!/d!.
//
// With H the features whose every split on the path the row follows, the leaf's Shapley
// contribution to path feature i is v(1-z_i)/z_i * B(H minus i) when i is in H and -v * B(H)
// otherwise, so explaining a row costs one tree walk plus O(depth) per leaf (the "Fast
// TreeSHAP v2" idea, Yang 2021), instead of O(depth^2) path updates per leaf.
type leafShap struct {
	features []int32
	hotCoef  []float64 // v(1-z_i)/z_i
	value    float64
	b        []float64 // 2^d
}

// shapTree is a tree prepared for fast explanations: per node, the path position of its
// split feature; per leaf, its leafShap.
type shapTree struct {
	cat    []bool // categorical split
	pos    []uint8
	leaves []int32 // node -> index in leaf table, -1 for internal nodes
	table  []leafShap
}

// maxFastShapDepth bounds the 2^depth table per leaf.
const maxFastShapDepth = 8

func prepareShap(t *Tree) *shapTree {
	n := t.Nodes()
	st := &shapTree{pos: make([]uint8, n), leaves: make([]int32, n), cat: make([]bool, n)}
	for i := range n {
		st.cat[i] = t.isCat(i)
	}
	var feats []int32
	var zs []float64
	var walk func(node int)
	walk = func(node int) {
		if t.Left[node] < 0 {
			d := len(feats)
			v := t.Value[node]
			ls := leafShap{features: append([]int32(nil), feats...), value: v, hotCoef: make([]float64, d), b: make([]float64, 1<<d)}
			for k, z := range zs {
				ls.hotCoef[k] = v * (1 - z) / z
			}
			b := ls.b
			// c(S) = w(|S|) * prod_{j not in S} z_j, then the subset-sum (zeta) transform.
			for s := range b {
				size := 0
				prod := 1.0
				for k := range d {
					if s&(1<<k) != 0 {
						size++
					} else {
						prod *= zs[k]
					}
				}
				b[s] = shapWeight(size, d) * prod
			}
			for k := range d {
				for s := range b {
					if s&(1<<k) != 0 {
						b[s] += b[s^(1<<k)]
					}
				}
			}

			st.leaves[node] = int32(len(st.table))
			st.table = append(st.table, ls)
			return
		}
		st.leaves[node] = -1
		f := t.Feature[node]
		k := -1
		for i, g := range feats {
			if g == f {
				k = i
			}
		}
		fresh := k < 0
		if fresh {
			k = len(feats)
			feats = append(feats, f)
			zs = append(zs, 1)
		}
		st.pos[node] = uint8(k)
		old := zs[k]
		for _, c := range []int32{t.Left[node], t.Right[node]} {
			zs[k] = old * t.Cover[c] / t.Cover[node]
			walk(int(c))
		}
		zs[k] = old
		if fresh {
			feats, zs = feats[:k], zs[:k]
		}
	}
	walk(0)
	// One backing array per kind for the whole tree, leaves in walk order: explaining reads
	// them nearly in sequence instead of chasing three small allocations per leaf.
	var nf, nb int
	for _, ls := range st.table {
		nf += len(ls.features)
		nb += len(ls.b)
	}
	feats, coefs, bs := make([]int32, 0, nf), make([]float64, 0, nf), make([]float64, 0, nb)
	for i := range st.table {
		ls := &st.table[i]
		f0, b0 := len(feats), len(bs)
		feats, coefs, bs = append(feats, ls.features...), append(coefs, ls.hotCoef...), append(bs, ls.b...)
		ls.features, ls.hotCoef, ls.b = feats[f0:len(feats):len(feats)], coefs[f0:len(coefs):len(coefs)], bs[b0:len(bs):len(bs)]
	}
	return st
}

// shapWeight is s!(d-s-1)!/d!, the Shapley weight of a coalition of s of d players.
// A coalition of all d players never occurs (the player being valued is outside it): 0.
func shapWeight(s, d int) float64 {
	if s >= d {
		return 0
	}
	w := 1.0 / float64(d)
	// s!(d-s-1)!/(d-1)! = 1 / C(d-1, s)
	c := 1.0
	for i := 1; i <= s; i++ {
		c = c * float64(d-1-s+i) / float64(i)
	}
	return w / c
}

// explainFast adds the tree's contributions for row x to phi.
// shapFrame is a node still to visit and the path positions where the row left the path.
type shapFrame struct {
	node int32
	cold uint32
}

func (st *shapTree) explainFast(t *Tree, x []float64, cats []FeatureBins, phi []float64, stack *[2 * maxPath]shapFrame) {
	top := 0
	stack[0] = shapFrame{0, 0}
	top = 1
	for top > 0 {
		top--
		fr := stack[top]
		node := int(fr.node)
		if li := st.leaves[node]; li >= 0 {
			ls := &st.table[li]
			d := len(ls.features)
			hot := int(^fr.cold & (1<<d - 1))
			b := ls.b[:1<<d]
			cold := -ls.value * b[hot&(1<<d-1)]
			coef := ls.hotCoef[:d]
			for k, f := range ls.features[:d] {
				if hot&(1<<k) != 0 {
					phi[f] += coef[k] * b[(hot^(1<<k))&(1<<d-1)]
				} else {
					phi[f] += cold
				}
			}
			continue
		}
		hotChild, coldChild := t.Left[node], t.Right[node]
		var left bool
		if !st.cat[node] { // numeric split, inlined
			v := x[t.Feature[node]]
			left = v <= t.Threshold[node] || (v != v && t.DefaultLeft[node])
		} else {
			left = t.goesLeft(node, x, cats)
		}
		if !left {
			hotChild, coldChild = coldChild, hotChild
		}
		stack[top] = shapFrame{hotChild, fr.cold}
		stack[top+1] = shapFrame{coldChild, fr.cold | 1<<st.pos[node]}
		top += 2
	}
}
