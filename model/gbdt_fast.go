package model

import "math"

// maxCompiledDepth bounds the complete-tree layout: 2^depth leaves per tree.
const maxCompiledDepth = 10

// compiled is an ensemble laid out as complete binary trees of one depth, children of node i
// at 2i+1 and 2i+2, so scoring is a fixed number of compare-and-index steps per tree with no
// child pointers to load and no data-dependent loop exits. A leaf shallower than the depth
// is padded: the nodes below it split on +Inf and all leaves under it carry its value.
// Only numeric splits are compiled; rows holding a NaN take the general path, which honours
// each node's default direction.
type compiled struct {
	depth    int
	internal int // 2^depth - 1 nodes per tree
	feat     []int32
	thr      []float64
	leaf     []float64 // 2^depth per tree
	trees    int
}

func compile(e *Ensemble) *compiled {
	d := 0
	for k := range e.Trees {
		t := &e.Trees[k]
		if t.CatLeft != nil {
			for i := range t.CatLeft {
				if t.isCat(i) {
					return nil
				}
			}
		}
		d = max(d, t.depth())
	}
	if d > maxCompiledDepth || len(e.Trees) == 0 {
		return nil
	}
	d = max(d, 1)
	c := &compiled{depth: d, internal: 1<<d - 1, trees: len(e.Trees)}
	c.feat = make([]int32, c.internal*c.trees)
	c.thr = make([]float64, c.internal*c.trees)
	c.leaf = make([]float64, (c.internal+1)*c.trees)
	for k := range e.Trees {
		t := &e.Trees[k]
		feat, thr := c.feat[k*c.internal:(k+1)*c.internal], c.thr[k*c.internal:(k+1)*c.internal]
		leaf := c.leaf[k*(c.internal+1) : (k+1)*(c.internal+1)]
		var fill func(node, pos, level int)
		fill = func(node, pos, level int) {
			if level == d {
				leaf[pos-c.internal] = t.Value[node]
				return
			}
			if t.Left[node] < 0 { // padded: every path below ends at this leaf's value
				feat[pos], thr[pos] = 0, math.Inf(1)
				fill(node, 2*pos+1, level+1)
				fill(node, 2*pos+2, level+1)
				return
			}
			feat[pos], thr[pos] = t.Feature[node], t.Threshold[node]
			fill(int(t.Left[node]), 2*pos+1, level+1)
			fill(int(t.Right[node]), 2*pos+2, level+1)
		}
		fill(0, 0, 0)
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

// margin is the sum of the trees' leaves for one row, false when the row needs the general
// path.
func (c *compiled) margin(x []float64) (float64, bool) {
	if hasNaN(x) {
		return 0, false
	}
	s := 0.0
	for k := 0; k < c.trees; k++ {
		feat, thr := c.feat[k*c.internal:(k+1)*c.internal], c.thr[k*c.internal:(k+1)*c.internal]
		i := 0
		for range c.depth {
			j := 2*i + 1
			if x[feat[i]] > thr[i] {
				j++
			}
			i = j
		}
		s += c.leaf[k*(c.internal+1)+i-c.internal]
	}
	return s, true
}

const batchBlock = 16

// batch writes the tree sums of row-major rows into out, interleaving a block of rows per
// tree so their independent walks overlap in the CPU.
func (c *compiled) batch(rows []float64, p int, out []float64) {
	n := len(out)
	var idx [batchBlock]int
	var base [batchBlock]int
	for start := 0; start < n; start += batchBlock {
		b := min(batchBlock, n-start)
		clean := true
		for r := 0; r < b; r++ {
			base[r] = (start + r) * p
			out[start+r] = 0
			if hasNaN(rows[base[r] : base[r]+p]) {
				clean = false
			}
		}
		if !clean {
			for r := 0; r < b; r++ {
				x := rows[base[r] : base[r]+p]
				if s, ok := c.margin(x); ok {
					out[start+r] = s
				} else {
					out[start+r] = math.NaN() // marked for the caller's general path
				}
			}
			continue
		}
		for k := 0; k < c.trees; k++ {
			feat, thr := c.feat[k*c.internal:(k+1)*c.internal], c.thr[k*c.internal:(k+1)*c.internal]
			leaf := c.leaf[k*(c.internal+1) : (k+1)*(c.internal+1)]
			for r := 0; r < b; r++ {
				idx[r] = 0
			}
			for range c.depth {
				for r := 0; r < b; r++ {
					i := idx[r]
					j := 2*i + 1
					if rows[base[r]+int(feat[i])] > thr[i] {
						j++
					}
					idx[r] = j
				}
			}
			for r := 0; r < b; r++ {
				out[start+r] += leaf[idx[r]-c.internal]
			}
		}
	}
}
