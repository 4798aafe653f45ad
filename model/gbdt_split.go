package model

import (
	"sort"
)

// lastSplit is a split whose children are both leaves: its rows stay where they are and
// each adds its side's leaf value, which saves the deepest level's row moves.
type lastSplit struct {
	start, end, buf int
	feature         int
	dir             [256]uint8
	left, right     *growNode
}

type split struct {
	gain        float64
	feature     int
	bin         uint8 // numeric: left when bin <= bin (bin >= 1)
	cat         [4]uint64
	categorical bool
	defaultLeft bool
	gl, hl      float64
}

func (t *gbdtTrainer) score(g, h float64) float64 { return g * g / (h + t.p.Lambda) }

// findSplit sets n.split to the best split over the allowed features (gain 0 = none).
func (t *gbdtTrainer) findSplit(n *growNode, features []int) {
	n.split = split{}
	if (t.p.MaxDepth > 0 && n.depth >= t.p.MaxDepth) || n.depth >= maxPath-1 {
		return
	}
	parent := t.score(n.g, n.h)
	mcw := t.p.MinChildWeight
	ok := func(hl, hr float64) bool { return hl >= mcw && hr >= mcw && hl > 0 && hr > 0 }
	try := func(s split) {
		gain := t.score(s.gl, s.hl) + t.score(n.g-s.gl, n.h-s.hl) - parent
		if gain > n.split.gain && gain > t.p.MinSplitLoss && gain > 1e-12 {
			s.gain = gain
			n.split = s
		}
	}
	for _, j := range features {
		hist := n.hist[t.off[j] : t.off[j]+t.nbins[j]]
		miss := hist[0]
		if t.binner.Features[j].Categorical {
			t.findCategorical(n, j, hist, ok, try)
			continue
		}
		var gl, hl float64
		for b := 1; b < len(hist)-1; b++ {
			gl += hist[b].g
			hl += hist[b].h
			if hl == 0 {
				continue
			}
			// Missing values right, then left.
			if ok(hl, n.h-hl) {
				try(split{feature: j, bin: uint8(b), gl: gl, hl: hl})
			}
			if miss.h > 0 && ok(hl+miss.h, n.h-hl-miss.h) {
				try(split{feature: j, bin: uint8(b), gl: gl + miss.g, hl: hl + miss.h, defaultLeft: true})
			}
		}
		if miss.h == 0 && n.split.feature == j && n.split.gain > 0 && !n.split.categorical {
			// No missing value reached this node: send future ones to the heavier child.
			n.split.defaultLeft = n.split.hl >= n.h-n.split.hl
		}
	}
}

// findCategorical orders the node's categories by gradient over hessian and scans the
// prefixes of that order, the optimal partition for a convex loss (Fisher 1958).
func (t *gbdtTrainer) findCategorical(n *growNode, j int, hist []gh, ok func(hl, hr float64) bool, try func(split)) {
	type cat struct {
		bin   int
		ratio float64
	}
	var cats []cat
	for b := 1; b < len(hist); b++ {
		if hist[b].h > 0 {
			cats = append(cats, cat{b, hist[b].g / (hist[b].h + t.p.Lambda)})
		}
	}
	sort.SliceStable(cats, func(a, b int) bool { return cats[a].ratio < cats[b].ratio })
	miss := hist[0]
	var set [4]uint64
	var gl, hl float64
	for k := 0; k < len(cats)-1; k++ {
		b := cats[k].bin
		set[b>>6] |= 1 << (b & 63)
		gl += hist[b].g
		hl += hist[b].h
		if ok(hl, n.h-hl) {
			try(split{feature: j, categorical: true, cat: set, gl: gl, hl: hl})
		}
		if miss.h > 0 && ok(hl+miss.h, n.h-hl-miss.h) {
			s := set
			s[0] |= 1
			try(split{feature: j, categorical: true, cat: s, gl: gl + miss.g, hl: hl + miss.h, defaultLeft: true})
		}
	}
}

// directions is 1 for the bins the split sends left, 0 for the others.
func (s *split) directions() (dir [256]uint8) {
	for b := range dir {
		if s.left(uint8(b)) {
			dir[b] = 1
		}
	}
	return dir
}

func (s *split) left(b uint8) bool {
	if s.categorical {
		return s.cat[b>>6]&(1<<(b&63)) != 0
	}
	if b == 0 {
		return s.defaultLeft
	}
	return b <= s.bin
}

// splitRows moves the node's rows into the other buffer, left rows first (both sides keep
// their order), and builds the histogram of the side expected to be smaller (by hessian)
// from the moved rows. Chunks run in parallel at fixed boundaries, so the result does not
// depend on the thread count.
func (t *gbdtTrainer) splitRows(n *growNode, smallLeft bool, small []gh) int {
	p, j := t.m.P, n.split.feature
	src, dst := n.buf, 1-n.buf
	sb, sr, db, dr := t.bins[src], t.rid[src], t.bins[dst], t.rid[dst]
	sg, dg := t.gp[src], t.gp[dst]
	sq, dq := t.gq[src], t.gq[dst]
	nchunks := (n.end - n.start + histChunk - 1) / histChunk
	dir := n.split.directions()
	chunk := func(c int) (int, int) { return n.start + c*histChunk, min(n.start+(c+1)*histChunk, n.end) }
	nl := make([]int, nchunks)
	t.parallel(nchunks, func(c int) {
		lo, hi := chunk(c)
		l := 0
		for i := lo; i < hi; i++ {
			l += int(dir[sb[i*p+j]])
		}
		nl[c] = l
	})
	mid := n.start
	for _, l := range nl {
		mid += l
	}
	leftAt, rightAt := make([]int, nchunks), make([]int, nchunks)
	lw, rw := n.start, mid
	for c := range nchunks {
		lo, hi := chunk(c)
		leftAt[c], rightAt[c] = lw, rw
		lw += nl[c]
		rw += hi - lo - nl[c]
	}
	t.parallel(nchunks, func(c int) {
		lo, hi := chunk(c)
		l, r := leftAt[c], rightAt[c]
		for i := lo; i < hi; i++ {
			row := sb[i*p : i*p+p]
			o := r
			if dir[row[j]] == 1 {
				o = l
				l++
			} else {
				r++
			}
			copy(db[o*p:o*p+p], row)
			dr[o] = sr[i]
			if t.quant {
				dq[o] = sq[i]
			} else {
				dg[o] = sg[i]
			}
		}
	})
	if small != nil {
		if smallLeft {
			t.build(small, dst, n.start, mid)
		} else {
			t.build(small, dst, mid, n.end)
		}
	}
	return mid
}
