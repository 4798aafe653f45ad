package model

import "math"

// Linear TreeSHAP (after Yu, Bach and Karolczak, "Linear TreeShap", NeurIPS 2022): the same
// path-dependent SHAP values as the path algorithm, in O(nodes x depth) a tree, with no
// per-leaf tables and no branch that depends on the row.
//
// For a leaf with value v whose path holds the distinct features F, let z_j be the share of
// cover the path keeps at feature j's splits and o_j = 1 when the row follows all of them,
// else 0. With the linear factors f_j(t) = z_j(1-t) + o_j t, feature i's Shapley
// contribution from the leaf is
//
//	(o_i - z_i) * integral over [0,1] of v * prod_{j in F, j != i} f_j(t) dt
//
// (the Shapley weight s!(d-s-1)!/d! is the Beta integral of t^s (1-t)^(d-s-1)). The
// integrand is a polynomial of degree < depth, so Gauss-Legendre quadrature with
// ceil(depth/2) points is exact. With G(t) = v * prod_j f_j(t) at those points, a node
// splitting on feature i gets from each child c (o_c - z_c) * sum_q w_q S_c(t_q) / f_c(t_q),
// where S_c is the sum of G over the leaves below c. So explaining a tree is one pass down
// (each node's product at the points) and one pass up (the sums and the contributions).
// When i was split on higher up the path, the node's factor replaces the ancestor's (the
// z multiply, the o combine with AND) and the node takes back what the ancestor counted for
// its leaves with the old factor.
//
// Everything that does not depend on the row is precomputed per node, so the passes hold
// no division and no branch on the row's values (o is 0 or 1 and selects by multiplying).

// linearQ quadrature points are exact for trees up to 2*linearQ levels deep; deeper trees
// use the path algorithm.
const linearQ = 4

// linearNode is an internal node with what explaining needs of it, in one place.
type linearNode struct {
	feat int32
	// Tree node ids (< linearNodes): the node, its children, and prev: when an ancestor split
	// on the same feature, the child of the nearest such ancestor on the way here (its o is
	// this node's old o); else the sentinel slot, whose o is always 1.
	id, left, right, prev uint16
	thr                   float64
	// kind: 0 numeric with missing values right, 1 numeric with missing values left,
	// 2 categorical.
	kind int32
	// rep indexes the repeat data: 0 (shared, neutral) for a first split on the feature.
	rep    int32
	zL, zR float64 // the split feature's combined cover share in each child
	vL, vR float64 // each child's value when it is a leaf, else 0
	// hotL, hotR: the weight of each child at each point when the row follows it,
	// w(1-z)/(z(1-t)+t). A child it does not follow weighs -w/(1-t) (linearTree.cold).
	hotL, hotR [linearQ]float64
}

// linearRepeat is what a split on a feature already split on above needs: with zOld the
// combined cover share above it, the inverse of the old factor zOld(1-t)+o t for either old
// o, and the take-back weight when the old o is 1, -(1-zOld) w/(zOld(1-t)+t) (when it is 0
// the take-back weight is w/(1-t)). A first split has zOld = 1, o = 1: factor 1, weight 0.
type linearRepeat struct {
	inv  [2][linearQ]float64 // 1 / the old factor by old o: 1/(zOld(1-t)), 1/(zOld(1-t)+t)
	back [linearQ]float64
}

// linearLast is a split whose children are both leaves. Its sums and its contribution are
// linear in its own product P at the points, with coefficients that depend only on which
// of the three cases holds (old o = 0; the row follows the left child; the right one), so
// they are precomputed: S[i] = P[i] * sum[case][i], contribution = sum_i P[i] * contrib[case][i].
type linearLast struct {
	feat         int32
	id, prev     uint16
	kind         int32
	thr          float64
	sum, contrib [3][linearQ]float64
}

type linearTree struct {
	nodes    []linearNode // splits with an inner child, parents before children
	last     []linearLast
	repeats  []linearRepeat
	cat      []uint16 // tree node ids of the categorical splits
	sentinel uint16
	// The q-point quadrature rule on [0,1] (q = ceil(depth/2)): points t, weights w, the
	// weight of a child the row does not follow, -w/(1-t), and 1-t.
	q          int
	t, w, cold [linearQ]float64
	omt        [linearQ]float64 // 1-t
}

// gaussLegendre returns the q-point Gauss-Legendre rule on [0,1].
func gaussLegendre(q int) (t, w [linearQ]float64) {
	for i := range q {
		x := math.Cos(math.Pi * (float64(i) + 0.75) / (float64(q) + 0.5))
		var dp float64
		for range 100 {
			p0, p1 := 1.0, x
			for k := 2; k <= q; k++ {
				p0, p1 = p1, ((2*float64(k)-1)*x*p1-(float64(k)-1)*p0)/float64(k)
			}
			dp = float64(q) * (x*p1 - p0) / (x*x - 1)
			dx := p1 / dp
			x -= dx
			if math.Abs(dx) < 1e-16 {
				break
			}
		}
		t[i] = (1 - x) / 2
		w[i] = 1 / ((1 - x*x) * dp * dp)
	}
	return t, w
}

// prepareLinear returns the tree's linear TreeSHAP data, or nil when it is too deep.
func prepareLinear(tr *Tree) *linearTree {
	if tr.depth() > 2*linearQ {
		return nil
	}
	n := tr.Nodes()
	lt := &linearTree{sentinel: uint16(n), q: max(1, (tr.depth()+1)/2)}
	lt.t, lt.w = gaussLegendre(lt.q)
	for i := range lt.q {
		lt.omt[i] = 1 - lt.t[i]
		lt.cold[i] = -lt.w[i] / (1 - lt.t[i])
	}
	neutral := linearRepeat{}
	for i := range linearQ {
		neutral.inv[1][i] = 1
	}
	lt.repeats = append(lt.repeats, neutral)
	type seen struct {
		z     float64
		child uint16
	}
	path := map[int32]seen{} // split features on the current path
	var walk func(node uint16)
	walk = func(node uint16) {
		if tr.Left[node] < 0 {
			return
		}
		f := tr.Feature[node]
		old, again := path[f]
		if !again {
			old = seen{z: 1, child: lt.sentinel}
		}
		l, r := uint16(tr.Left[node]), uint16(tr.Right[node])
		nd := lt.node(tr, node, old.z, old.child)
		rep := &lt.repeats[0] // neutral
		if again {
			rep = &linearRepeat{}
			for i := range lt.q {
				t, w := lt.t[i], lt.w[i]
				rep.inv[0][i] = 1 / (old.z * (1 - t))
				rep.inv[1][i] = 1 / (old.z*(1-t) + t)
				rep.back[i] = -(1 - old.z) * w / (old.z*(1-t) + t)
			}
		}
		if tr.Left[l] < 0 && tr.Left[r] < 0 {
			lt.last = append(lt.last, lt.lastOf(&nd, rep))
			return
		}
		if again {
			nd.rep = int32(len(lt.repeats))
			lt.repeats = append(lt.repeats, *rep)
		}
		lt.nodes = append(lt.nodes, nd)
		path[f] = seen{z: nd.zL, child: l}
		walk(l)
		path[f] = seen{z: nd.zR, child: r}
		walk(r)
		if again {
			path[f] = old
		} else {
			delete(path, f)
		}
	}
	walk(0)
	return lt
}

// node is a split's linear TreeSHAP data: z is the share of the feature's earlier split on
// the path (1: none), prev that split's child (the sentinel: none).
func (lt *linearTree) node(tr *Tree, node uint16, z float64, prev uint16) linearNode {
	l, r := uint16(tr.Left[node]), uint16(tr.Right[node])
	nd := linearNode{id: node, feat: tr.Feature[node], left: l, right: r, prev: prev, thr: tr.Threshold[node],
		zL: z * tr.Cover[l] / tr.Cover[node], zR: z * tr.Cover[r] / tr.Cover[node]}
	if tr.Left[l] < 0 {
		nd.vL = tr.Value[l]
	}
	if tr.Left[r] < 0 {
		nd.vR = tr.Value[r]
	}
	switch {
	case tr.isCat(int(node)):
		nd.kind = 2
		lt.cat = append(lt.cat, node)
	case tr.DefaultLeft[node]:
		nd.kind = 1
	}
	for i := range lt.q {
		t, w := lt.t[i], lt.w[i]
		nd.hotL[i] = w * (1 - nd.zL) / (nd.zL*(1-t) + t)
		nd.hotR[i] = w * (1 - nd.zR) / (nd.zR*(1-t) + t)
	}
	return nd
}

// lastOf folds a split whose children are leaves into its coefficients: the same
// arithmetic as down and up, done once per case instead of once per row.
func (lt *linearTree) lastOf(nd *linearNode, rep *linearRepeat) linearLast {
	ls := linearLast{feat: nd.feat, id: nd.id, prev: nd.prev, kind: nd.kind, thr: nd.thr}
	for c, o := range [3][3]float64{{0, 0, 0}, {1, 1, 0}, {1, 0, 1}} { // old o, oL, oR
		oOld, oL, oR := o[0], o[1], o[2]
		for i := range lt.q {
			t, c0 := lt.t[i], lt.cold[i]
			inv := rep.inv[int(oOld)][i]
			sl := inv * (nd.zL*lt.omt[i] + oL*t) * nd.vL
			sr := inv * (nd.zR*lt.omt[i] + oR*t) * nd.vR
			ls.sum[c][i] = sl + sr
			ls.contrib[c][i] = sl*(nd.hotL[i]*oL+c0*(1-oL)) + sr*(nd.hotR[i]*oR+c0*(1-oR)) +
				(sl+sr)*(rep.back[i]*oOld-c0*(1-oOld))
		}
	}
	return ls
}

// linearNodes bounds the nodes of a tree explained this way (depth <= 2*linearQ), with one
// more slot for the sentinel.
const linearNodes = 1 << (2*linearQ + 1)

// linearScratch holds, per tree node: o of its parent's split feature, the product and the
// sum at the quadrature points, and (categorical splits) the row's direction. Indexed by
// uint16 ids masked to its size, so no access needs a bounds check.
type linearScratch [linearNodes]struct {
	p, s   [linearQ]float64
	o, dec float64
}

// b2f is 1 for true, 0 for false, through an integer so the compiler sets it from the
// flags instead of branching on a comparison the row decides.
func b2f(b bool) float64 {
	var i int
	if b {
		i = 1
	}
	return float64(i)
}

// explain adds the tree's contributions for row x to phi.
func (lt *linearTree) explain(tr *Tree, x []float64, cats []FeatureBins, phi []float64, sc *linearScratch) {
	if len(lt.nodes)+len(lt.last) == 0 {
		return
	}
	lt.down(tr, x, cats, sc)
	lt.downLast(x, phi, sc)
	lt.up(phi, sc)
}

// down sets each node's o and product at the points from its parent's.
func (lt *linearTree) down(tr *Tree, x []float64, cats []FeatureBins, sc *linearScratch) {
	// Categorical splits first, apart, so the loop below holds no call.
	for _, id := range lt.cat {
		sc[id%linearNodes].dec = b2f(tr.goesLeft(int(id), x, cats))
	}
	lt.downNodes(x, sc)
}

func (lt *linearTree) downNodes(x []float64, sc *linearScratch) {
	ts := lt.t[:lt.q] // q <= linearQ from here on: no bounds checks on the points below
	sc[lt.sentinel%linearNodes].o = 1
	sc[0].p = [linearQ]float64{1, 1, 1, 1}
	for k := range lt.nodes {
		nd := &lt.nodes[k]
		v := x[nd.feat]
		n, l, r := &sc[nd.id%linearNodes], &sc[nd.left%linearNodes], &sc[nd.right%linearNodes]
		left := b2f(v <= nd.thr) + b2f(v != v)*float64(nd.kind&1)
		if nd.kind == 2 {
			left = n.dec
		}
		oOld := sc[nd.prev%linearNodes].o
		oL, oR := oOld*left, oOld*(1-left)
		l.o, r.o = oL, oR
		inv := &lt.repeats[nd.rep].inv[int(oOld)&1]
		for i, t := range ts {
			base := n.p[i] * inv[i]
			l.p[i] = base * (nd.zL*lt.omt[i] + oL*t)
			r.p[i] = base * (nd.zR*lt.omt[i] + oR*t)
			// A leaf's sum is its G; an inner child's is overwritten by up first.
			l.s[i] = nd.vL * l.p[i]
			r.s[i] = nd.vR * r.p[i]
		}
	}
}

// downLast sets the sums of the splits whose children are leaves and adds their
// contributions.
func (lt *linearTree) downLast(x []float64, phi []float64, sc *linearScratch) {
	ts := lt.t[:lt.q]
	for k := range lt.last {
		ls := &lt.last[k]
		v := x[ls.feat]
		n := &sc[ls.id%linearNodes]
		left := b2f(v <= ls.thr) + b2f(v != v)*float64(ls.kind&1)
		if ls.kind == 2 {
			left = n.dec
		}
		oOld := sc[ls.prev%linearNodes].o
		c := int(oOld) * (2 - int(left)) // 0: old o = 0, 1: left, 2: right
		sum, contrib := &ls.sum[c], &ls.contrib[c]
		acc := 0.0
		for i := range ts {
			n.s[i] = n.p[i] * sum[i]
			acc += n.p[i] * contrib[i]
		}
		phi[ls.feat] += acc
	}
}

// up sums G over the leaves below each node and adds the contributions of its split.
func (lt *linearTree) up(phi []float64, sc *linearScratch) {
	cs := lt.cold[:lt.q] // q <= linearQ from here on: no bounds checks on the points below
	for k := len(lt.nodes) - 1; k >= 0; k-- {
		nd := &lt.nodes[k]
		l, r, n := &sc[nd.left%linearNodes], &sc[nd.right%linearNodes], &sc[nd.id%linearNodes]
		back := &lt.repeats[nd.rep].back
		// Dot products of the sums with each weight; o then picks among them.
		var hl, hr, cl, cr, b float64
		for i, c := range cs {
			s := l.s[i] + r.s[i]
			n.s[i] = s
			hl += l.s[i] * nd.hotL[i]
			hr += r.s[i] * nd.hotR[i]
			cl += l.s[i] * c
			cr += r.s[i] * c
			b += s * back[i]
		}
		oL, oR, oOld := l.o, r.o, sc[nd.prev%linearNodes].o
		phi[nd.feat] += hl*oL + cl*(1-oL) + hr*oR + cr*(1-oR) + b*oOld - (cl+cr)*(1-oOld)
	}
}
