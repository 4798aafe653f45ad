package model

import "sync"

// TreeSHAP: exact SHAP values of tree ensembles in polynomial time, with path-dependent
// feature perturbation (Lundberg, Erion and Lee, "Consistent Individualized Feature
// Attribution for Tree Ensembles", 2018, algorithm 2). The conditional expectation of a tree
// given a feature subset follows the row where the split feature is in the subset and
// otherwise weights both children by the share of training cover they received. Values are
// in margin space: base + the sum of contributions equals Margin(x).
//
// Trees up to 2*linearQ levels deep are explained by linear TreeSHAP (treeshap_linear.go);
// the path algorithm below explains deeper ones and is the tests' second reference.

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
// cover-weighted mean leaf (computed once when the ensemble is prepared).
func (e *Ensemble) ExpectedMargin() float64 {
	if e.prepared {
		return e.expected
	}
	return e.expectedMargin()
}

func (e *Ensemble) expectedMargin() float64 {
	s := e.BaseScore
	for k := range e.Trees {
		s += e.Trees[k].expectation(0)
	}
	return s
}

// prepareLinearShap prepares every tree for linear TreeSHAP when all are shallow enough
// (2*linearQ levels); otherwise explanations use the path algorithm.
func (e *Ensemble) prepareLinearShap() {
	e.lin = nil
	lin := make([]*linearTree, len(e.Trees))
	for k := range e.Trees {
		if lin[k] = prepareLinear(&e.Trees[k]); lin[k] == nil {
			return
		}
	}
	e.lin = lin
}

// linearPool recycles the 40 KB scratch of linear TreeSHAP between explanations.
var linearPool = sync.Pool{New: func() any { return new(linearScratch) }}

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
	if e.lin != nil {
		cats := e.cats()
		sc := linearPool.Get().(*linearScratch)
		defer linearPool.Put(sc)
		for k := range e.Trees {
			e.lin[k].explain(&e.Trees[k], x, cats, phi, sc)
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
