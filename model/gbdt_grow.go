package model

import (
	"container/heap"
	"math"
	"slices"

	"github.com/driftline/driftline/model/hparams"
)

type growNode struct {
	id         int32
	start, end int // positions in buffer buf
	buf        int
	g, h       float64
	depth      int
	hist       []gh
	split      split
	// inPlace: a leaf whose rows were not moved out of its parent's range (see grow).
	inPlace bool
}

type nodeQueue struct {
	nodes    []*growNode
	leafwise bool
}

func (q *nodeQueue) Len() int { return len(q.nodes) }

func (q *nodeQueue) Less(a, b int) bool {
	if q.leafwise && q.nodes[a].split.gain != q.nodes[b].split.gain {
		return q.nodes[a].split.gain > q.nodes[b].split.gain
	}
	return q.nodes[a].id < q.nodes[b].id // depthwise: creation order is level order
}

func (q *nodeQueue) Swap(a, b int) { q.nodes[a], q.nodes[b] = q.nodes[b], q.nodes[a] }

func (q *nodeQueue) Push(x any) { q.nodes = append(q.nodes, x.(*growNode)) }

func (q *nodeQueue) Pop() any {
	x := q.nodes[len(q.nodes)-1]
	q.nodes = q.nodes[:len(q.nodes)-1]
	return x
}

// grow builds one tree on a row sample and adds its outputs to the training predictions.
func (t *gbdtTrainer) grow() Tree {
	rows, rootBuf := t.sampleRows()
	g := &growth{t: t, features: t.sampleFeatures(), q: &nodeQueue{leafwise: t.p.Growth == "leafwise"}, nleaves: 1}
	root := &growNode{start: 0, end: rows, buf: rootBuf, hist: t.getHist()}
	t.build(root.hist, rootBuf, 0, rows)
	for _, e := range root.hist[t.off[0] : t.off[0]+t.nbins[0]] {
		root.g += e.g
		root.h += e.h
	}
	root.id = g.newNode(root.h)
	t.findSplit(root, g.features)
	heap.Push(g.q, root)
	for g.q.Len() > 0 {
		g.splitNext()
	}
	tree := g.tree
	for _, lf := range g.leaves {
		tree.Value[lf.id] = t.leafValue(lf) * t.p.LearningRate
	}
	if !hasCat(tree.CatLeft) {
		tree.CatLeft = nil
	}
	t.addPredictions(&tree, g.leaves, g.last, rows, rootBuf == 1)
	return tree
}

// sampleRows draws the tree's row sample: a Bernoulli draw per position; the sampled rows move
// to the front of buffer 1 (in order), the others behind them. It returns how many were
// sampled and the buffer the root's rows are in (0 without a sample: every row).
func (t *gbdtTrainer) sampleRows() (rows, buf int) {
	n := t.m.Rows()
	if t.p.Subsample >= 1 {
		return n, 0
	}
	take := make([]bool, n)
	for i := range take {
		take[i] = t.rng.Float64() < t.p.Subsample
		if take[i] {
			rows++
		}
	}
	if rows == 0 {
		take[0], rows = true, 1
	}
	p := t.m.P
	l, r := 0, rows
	for i, tk := range take {
		o := r
		if tk {
			o = l
			l++
		} else {
			r++
		}
		copy(t.bins[1][o*p:o*p+p], t.bins[0][i*p:i*p+p])
		t.rid[1][o] = t.rid[0][i]
		if t.quant {
			t.gq[1][o] = t.gq[0][i]
		} else {
			t.gp[1][o] = t.gp[0][i]
		}
	}
	return rows, 1
}

// sampleFeatures is the tree's column sample, in feature order (every feature without one).
func (t *gbdtTrainer) sampleFeatures() []int {
	features := make([]int, t.m.P)
	for j := range features {
		features[j] = j
	}
	if t.p.ColsampleByTree < 1 {
		t.rng.Shuffle(len(features), func(a, b int) { features[a], features[b] = features[b], features[a] })
		features = features[:max(1, int(math.Round(t.p.ColsampleByTree*float64(len(features)))))]
		slices.Sort(features)
	}
	return features
}

// growth is one tree as it grows: the nodes waiting to split, the leaves so far, and the last
// level's splits left in place.
type growth struct {
	t        *gbdtTrainer
	features []int
	tree     Tree
	q        *nodeQueue
	leaves   []*growNode
	last     []lastSplit
	nleaves  int
}

// growJob is one node's split: where its rows go, and its children.
type growJob struct {
	nd                     *growNode
	smallLeft, final, inPl bool
	smallHist              []gh
	mid                    int
	left, right            *growNode
}

func (g *growth) newNode(h float64) int32 {
	tree := &g.tree
	tree.Feature = append(tree.Feature, -1)
	tree.Threshold = append(tree.Threshold, 0)
	tree.SplitBin = append(tree.SplitBin, 0)
	tree.DefaultLeft = append(tree.DefaultLeft, true)
	tree.Left = append(tree.Left, -1)
	tree.Right = append(tree.Right, -1)
	tree.Value = append(tree.Value, 0)
	tree.Cover = append(tree.Cover, h)
	tree.CatLeft = append(tree.CatLeft, [4]uint64{})
	return int32(len(tree.Left) - 1)
}

// splitNext splits the nodes that split together: depthwise, the whole next level (their rows
// move and their histograms build side by side, so no thread waits on a small node);
// leafwise, the best node.
func (g *growth) splitNext() {
	t, q := g.t, g.q
	batch := []*growNode{heap.Pop(q).(*growNode)}
	for !q.leafwise && q.Len() > 0 && q.nodes[0].depth == batch[0].depth {
		batch = append(batch, heap.Pop(q).(*growNode))
	}
	jobs := g.plan(batch)
	t.parallel(len(jobs), func(k int) {
		if j := jobs[k]; !j.inPl {
			j.mid = t.splitRows(j.nd, j.smallLeft, j.smallHist)
		}
	})
	var open []*growNode
	for _, j := range jobs {
		if g.apply(j) {
			open = append(open, j.left, j.right)
		}
	}
	t.parallel(len(open), func(k int) { t.findSplit(open[k], g.features) })
	for _, j := range jobs {
		heap.Push(q, j.left)
		heap.Push(q, j.right)
	}
}

// plan makes a leaf of each node that cannot or may not split, and a job of the others.
func (g *growth) plan(batch []*growNode) []*growJob {
	t := g.t
	var jobs []*growJob
	for _, nd := range batch {
		if nd.split.gain <= 0 || (t.p.MaxLeaves > 0 && g.nleaves >= t.p.MaxLeaves) {
			if nd.hist != nil {
				t.putHist(nd.hist)
				nd.hist = nil
			}
			g.leaves = append(g.leaves, nd)
			continue
		}
		// Children that can no longer split need no histograms; absolute error needs each
		// leaf's rows for its median, so only other losses leave the last level in place.
		final := (t.p.MaxDepth > 0 && nd.depth+1 >= t.p.MaxDepth) || (t.p.MaxLeaves > 0 && g.nleaves+1 >= t.p.MaxLeaves)
		j := &growJob{nd: nd, smallLeft: nd.split.hl <= nd.h-nd.split.hl, final: final,
			inPl: final && t.p.Objective != hparams.AbsoluteError}
		if !final {
			j.smallHist = t.getHist()
		}
		jobs = append(jobs, j)
		g.nleaves++
	}
	return jobs
}

// apply makes the job's node a split of the tree with its two children; it reports whether
// the children may split again (they got histograms: the smaller built, the larger the
// parent's minus it).
func (g *growth) apply(j *growJob) bool {
	t, tree := g.t, &g.tree
	nd, s := j.nd, j.nd.split
	var left, right *growNode
	if j.inPl {
		left = &growNode{g: s.gl, h: s.hl, depth: nd.depth + 1, inPlace: true}
		right = &growNode{g: nd.g - s.gl, h: nd.h - s.hl, depth: nd.depth + 1, inPlace: true}
		g.last = append(g.last, lastSplit{start: nd.start, end: nd.end, buf: nd.buf, feature: s.feature,
			dir: s.directions(), left: left, right: right})
	} else {
		left = &growNode{start: nd.start, end: j.mid, buf: 1 - nd.buf, g: s.gl, h: s.hl, depth: nd.depth + 1}
		right = &growNode{start: j.mid, end: nd.end, buf: 1 - nd.buf, g: nd.g - s.gl, h: nd.h - s.hl, depth: nd.depth + 1}
	}
	small, large := left, right
	if !j.smallLeft {
		small, large = right, left
	}
	if j.final {
		t.putHist(nd.hist)
	} else {
		small.hist = j.smallHist
		large.hist = nd.hist // parent minus the smaller child
		for i := range large.hist {
			large.hist[i].g -= small.hist[i].g
			large.hist[i].h -= small.hist[i].h
		}
	}
	i := nd.id
	tree.Feature[i] = int32(s.feature)
	tree.DefaultLeft[i] = s.defaultLeft
	if s.categorical {
		tree.CatLeft[i] = s.cat
	} else {
		tree.SplitBin[i] = s.bin
		tree.Threshold[i] = t.binner.Features[s.feature].Cuts[s.bin-1]
	}
	left.id = g.newNode(left.h)
	right.id = g.newNode(right.h)
	tree.Left[i], tree.Right[i] = left.id, right.id
	j.left, j.right = left, right
	return !j.final
}

// addPredictions adds the tree's outputs to the training predictions: sampled rows through
// their leaf (leaves hold disjoint rows: in parallel), the others by walking their bins; then
// every row goes back to buffer 0 for the next tree.
func (t *gbdtTrainer) addPredictions(tree *Tree, leaves []*growNode, last []lastSplit, rows int, sampled bool) {
	t.parallel(len(leaves), func(k int) {
		lf := leaves[k]
		if lf.inPlace {
			return
		}
		v := tree.Value[lf.id]
		for _, r := range t.rid[lf.buf][lf.start:lf.end] {
			t.pred[r] += v
		}
		if lf.buf == 1 {
			t.consolidate(lf.start, lf.end)
		}
	})
	t.parallel(len(last), func(k int) {
		ls := &last[k]
		v := [2]float64{tree.Value[ls.right.id], tree.Value[ls.left.id]}
		p, j := t.m.P, ls.feature
		bins := t.bins[ls.buf]
		for i, r := range t.rid[ls.buf][ls.start:ls.end] {
			t.pred[r] += v[ls.dir[bins[(ls.start+i)*p+j]]]
		}
		if ls.buf == 1 {
			t.consolidate(ls.start, ls.end)
		}
	})
	if sampled {
		n, p := t.m.Rows(), t.m.P
		for i := rows; i < n; i++ {
			t.pred[t.rid[1][i]] += tree.Value[tree.binLeaf(t.bins[1][i*p:i*p+p])]
		}
		t.consolidate(rows, n)
	}
}

func hasCat(c [][4]uint64) bool {
	for _, s := range c {
		if s != [4]uint64{} {
			return true
		}
	}
	return false
}

// leafValue is the Newton step -G/(H+lambda); for absolute error it is the median residual
// of the leaf's rows, which is what minimises absolute error.
func (t *gbdtTrainer) leafValue(n *growNode) float64 {
	if t.p.Objective == hparams.AbsoluteError {
		res := make([]float64, 0, n.end-n.start)
		for _, r := range t.rid[n.buf][n.start:n.end] {
			res = append(res, float64(t.m.Y[r])-t.pred[r])
		}
		return median(res)
	}
	return -n.g / (n.h + t.p.Lambda)
}

// binLeaf walks a binned row to its leaf (trees trained here).
func (t *Tree) binLeaf(row []uint8) int {
	return binWalk(t.Feature, t.Left, t.Right, t.DefaultLeft, t.CatLeft, t.SplitBin, row)
}

// binWalk walks a row of bin indices (0 = missing) to its leaf: left when the index is at
// most the node's, or by the category set, or the default way for a missing value.
func binWalk[F int32 | uint16, B uint8 | uint16](feat []F, left, right []int32, defaultLeft []bool, cat [][4]uint64, at []B, row []B) int {
	i := 0
	for left[i] >= 0 {
		b := row[feat[i]]
		var l bool
		switch {
		case cat != nil && cat[i] != [4]uint64{}:
			l = cat[i][b>>6]&(1<<(b&63)) != 0
		case b == 0:
			l = defaultLeft[i]
		default:
			l = b <= at[i]
		}
		if l {
			i = int(left[i])
		} else {
			i = int(right[i])
		}
	}
	return i
}
