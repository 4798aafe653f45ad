package model

import "math"

// maxCompiledDepth bounds the complete-tree layout: 2^depth leaves per tree, node indices in
// one byte.
const maxCompiledDepth = 8

// maxCompiledFeatures bounds the per-row scratch copy the walks index without bounds checks.
const maxCompiledFeatures = 64

// compiled is an ensemble laid out as complete binary trees of one depth, children of node i
// at 2i+1 and 2i+2, so scoring is a fixed number of compare-and-index steps per tree with no
// child pointers to load and no data-dependent loop exits. A leaf shallower than the depth
// is padded: the nodes below it split on +Inf and all leaves under it carry its value.
// Node indices are masked to 8 bits and features to 6, which lets the compiler drop bounds
// checks. Categorical splits look the row's category bin up in a per-node table. Rows
// holding a NaN take the general path, which honours each node's default direction.
type compiled struct {
	depth    int
	internal int // 2^depth - 1 nodes per tree
	trees    []node256
	cats     [][256]uint8 // per categorical split: 1 = the bin goes right; [0] all zeros
	catFeat  []int        // features with categorical splits
	bins     []FeatureBins
}

type node256 struct {
	feat [256]uint8
	cat  [256]uint16 // index into compiled.cats: 0 (never right) for a numeric split
	thr  [256]float64
	leaf [256]float64
}

func compile(e *Ensemble) *compiled {
	d := 0
	p := 0
	for k := range e.Trees {
		t := &e.Trees[k]
		d = max(d, t.depth())
		for i, f := range t.Feature {
			if t.Left[i] >= 0 {
				p = max(p, int(f)+1)
			}
		}
	}
	if d > maxCompiledDepth || len(e.Trees) == 0 || p > maxCompiledFeatures {
		return nil
	}
	d = max(d, 1)
	c := &compiled{depth: d, internal: 1<<d - 1, trees: make([]node256, len(e.Trees)), bins: e.cats(), cats: make([][256]uint8, 1)}
	catFeat := map[int]bool{}
	for k := range e.Trees {
		t := &e.Trees[k]
		nt := &c.trees[k]
		var fill func(node, pos, level int) bool
		fill = func(node, pos, level int) bool {
			if level == d {
				nt.leaf[pos-c.internal] = t.Value[node]
				return true
			}
			if t.Left[node] < 0 { // padded: every path below ends at this leaf's value
				nt.feat[pos], nt.thr[pos] = 0, math.Inf(1)
				return fill(node, 2*pos+1, level+1) && fill(node, 2*pos+2, level+1)
			}
			f := int(t.Feature[node])
			nt.feat[pos] = uint8(f)
			if t.isCat(node) {
				if len(c.cats) > math.MaxUint16 {
					return false
				}
				var right [256]uint8
				for b := range right {
					if t.CatLeft[node][b>>6]&(1<<(b&63)) == 0 {
						right[b] = 1
					}
				}
				nt.cat[pos] = uint16(len(c.cats))
				nt.thr[pos] = math.Inf(1) // the numeric half of the step never goes right
				c.cats = append(c.cats, right)
				catFeat[f] = true
			} else {
				nt.thr[pos] = t.Threshold[node]
			}
			return fill(int(t.Left[node]), 2*pos+1, level+1) && fill(int(t.Right[node]), 2*pos+2, level+1)
		}
		if !fill(0, 0, 0) {
			return nil
		}
	}
	for f := range maxCompiledFeatures {
		if catFeat[f] {
			c.catFeat = append(c.catFeat, f)
		}
	}
	return c
}

func hasNaN(x []float64) bool {
	for _, v := range x {
		if v != v {
			return true
		}
	}
	return false
}

// row is one row prepared for the walk: the values, and the bins of categorical features.
type row struct {
	x   [maxCompiledFeatures]float64
	bin [maxCompiledFeatures]uint8
}

func (c *compiled) prepare(x []float64, r *row) {
	copy(r.x[:], x)
	for _, f := range c.catFeat {
		r.bin[f] = c.bins[f].Bin(x[f])
	}
}

// margin is the sum of the trees' leaves for one row, false when the row needs the general
// path.
func (c *compiled) margin(x []float64) (float64, bool) {
	if len(x) > maxCompiledFeatures || hasNaN(x) {
		return 0, false
	}
	var r row
	c.prepare(x, &r)
	internal := uint(c.internal)
	cats := c.cats
	s := 0.0
	trees := c.trees
	// Eight trees at a time, their indices in registers: independent chains the CPU overlaps.
	for len(trees) >= 8 {
		t := (*[8]node256)(trees[:8])
		var i0, i1, i2, i3, i4, i5, i6, i7 uint
		for range c.depth {
			i0 = stepTo(&t[0], &r, cats, i0)
			i1 = stepTo(&t[1], &r, cats, i1)
			i2 = stepTo(&t[2], &r, cats, i2)
			i3 = stepTo(&t[3], &r, cats, i3)
			i4 = stepTo(&t[4], &r, cats, i4)
			i5 = stepTo(&t[5], &r, cats, i5)
			i6 = stepTo(&t[6], &r, cats, i6)
			i7 = stepTo(&t[7], &r, cats, i7)
		}
		s += t[0].leaf[(i0-internal)&255] + t[1].leaf[(i1-internal)&255] +
			t[2].leaf[(i2-internal)&255] + t[3].leaf[(i3-internal)&255] +
			t[4].leaf[(i4-internal)&255] + t[5].leaf[(i5-internal)&255] +
			t[6].leaf[(i6-internal)&255] + t[7].leaf[(i7-internal)&255]
		trees = trees[8:]
	}
	for k := range trees {
		var i uint
		for range c.depth {
			i = stepTo(&trees[k], &r, cats, i)
		}
		s += trees[k].leaf[(i-internal)&255]
	}
	return s, true
}

// stepTo is one branch-free level of the walk from node i: a numeric split compares (a
// categorical one has threshold +Inf), a categorical split looks its table up (a numeric
// one reads the all-zero table).
func stepTo(t *node256, r *row, cats [][256]uint8, i uint) uint {
	i &= 255
	f := t.feat[i] & (maxCompiledFeatures - 1)
	return 2*i + 1 + b2u(r.x[f] > t.thr[i]) + uint(cats[t.cat[i]][r.bin[f]])
}

// groupRows rows walk a tree together in blockNumeric (seven: their indices, values and
// thresholds fit the registers; eight spill).
const groupRows = 7

const batchBlock = 2 * groupRows

// batch writes the tree sums of row-major rows into out, interleaving a block of rows per
// tree so their independent walks overlap in the CPU. Rows with a NaN get NaN (the caller
// takes the general path for them).
func (c *compiled) batch(rows []float64, p int, out []float64) {
	n := len(out)
	var rs [batchBlock]row
	var wide [batchBlock]wideRow
	var idx [batchBlock]uint
	var sum [batchBlock]float64
	numeric := len(c.cats) == 1
	for start := 0; start < n; start += batchBlock {
		b := min(batchBlock, n-start)
		clean := p <= maxCompiledFeatures && b == batchBlock
		if clean && numeric {
			// Copy the rows for the walk and look for NaNs in the same pass.
			for r := range wide {
				w := wide[r][:p]
				for j, v := range rows[(start+r)*p : (start+r)*p+p] {
					w[j] = v
					if v != v {
						clean = false
					}
				}
			}
		} else {
			for r := 0; r < b && clean; r++ {
				clean = !hasNaN(rows[(start+r)*p : (start+r)*p+p])
			}
		}
		if !clean {
			for r := 0; r < b; r++ {
				s, ok := c.margin(rows[(start+r)*p : (start+r)*p+p])
				if !ok {
					s = math.NaN()
				}
				out[start+r] = s
			}
			continue
		}
		for r := range sum {
			sum[r] = 0
		}
		if numeric {
			c.blockNumeric(&wide, &sum)
		} else {
			for r := range rs {
				c.prepare(rows[(start+r)*p:(start+r)*p+p], &rs[r])
			}
			for k := range c.trees {
				t := &c.trees[k]
				idx = [batchBlock]uint{}
				for range c.depth {
					for r := range idx {
						idx[r] = stepTo(t, &rs[r], c.cats, idx[r])
					}
				}
				for r := range idx {
					sum[r] += t.leaf[(idx[r]-uint(c.internal))&255]
				}
			}
		}
		copy(out[start:start+batchBlock], sum[:])
	}
}

// wideRow is a row's values for blockNumeric, indexed by a split's feature byte with no mask
// and no bounds check (only the first P entries are used).
type wideRow [256]float64

// blockNumeric adds every tree's leaf to the sums of a block of rows (numeric splits only).
// A group of rows walks each tree together, their node indices in registers and each step
// branch-free (the comparison sets a bit), so the rows' chains overlap in the CPU.
func (c *compiled) blockNumeric(rs *[batchBlock]wideRow, sum *[batchBlock]float64) {
	for g := 0; g < batchBlock; g += groupRows {
		c.walkGroup((*[groupRows]wideRow)(rs[g:g+groupRows]), (*[groupRows]float64)(sum[g:g+groupRows]))
	}
}

// walkGroup is blockNumeric for one group of rows: one pointer to them, so every value load
// is one instruction at a constant offset.
func (c *compiled) walkGroup(r *[groupRows]wideRow, s *[groupRows]float64) {
	internal := uint8(c.internal)
	for k := range c.trees {
		t := &c.trees[k]
		// Every row starts at the root: its split is loaded once for the group.
		f, thr := t.feat[0], t.thr[0]
		i0, i1, i2, i3 := 1+b2u8(r[0][f] > thr), 1+b2u8(r[1][f] > thr), 1+b2u8(r[2][f] > thr), 1+b2u8(r[3][f] > thr)
		i4, i5, i6 := 1+b2u8(r[4][f] > thr), 1+b2u8(r[5][f] > thr), 1+b2u8(r[6][f] > thr)
		for range c.depth - 1 {
			i0 = t.next(&r[0], i0)
			i1 = t.next(&r[1], i1)
			i2 = t.next(&r[2], i2)
			i3 = t.next(&r[3], i3)
			i4 = t.next(&r[4], i4)
			i5 = t.next(&r[5], i5)
			i6 = t.next(&r[6], i6)
		}
		leaf := &t.leaf
		s[0] += leaf[i0-internal]
		s[1] += leaf[i1-internal]
		s[2] += leaf[i2-internal]
		s[3] += leaf[i3-internal]
		s[4] += leaf[i4-internal]
		s[5] += leaf[i5-internal]
		s[6] += leaf[i6-internal]
	}
}

// next is the child of numeric split i the row goes to, without a branch. Byte indices
// need no bounds checks; on the last level of a depth-8 tree the child's index wraps past
// 255, and index - internal is still the leaf.
func (t *node256) next(r *wideRow, i uint8) uint8 {
	return 2*i + 1 + b2u8(r[t.feat[i]] > t.thr[i])
}

func b2u8(b bool) uint8 {
	var u uint8
	if b {
		u = 1
	}
	return u
}

// b2u is 1 for true, else 0, set from the flags rather than by a branch.
func b2u(b bool) uint {
	var u uint
	if b {
		u = 1
	}
	return u
}
