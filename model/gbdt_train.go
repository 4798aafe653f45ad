package model

import (
	"container/heap"
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sort"
	"sync"

	"github.com/driftline/driftline/model/hparams"
)

// TrainLog records the validation loss of each round.
type TrainLog struct {
	Metric        string    `json:"metric"` // rmse, mae or logloss
	Train         float64   `json:"train"`  // the metric on the training rows, after the last round
	Validation    []float64 `json:"validation,omitempty"`
	BestIteration int       `json:"best_iteration"`
}

type gh struct{ g, h float64 }

type gh32 struct{ g, h float32 }

type gbdtTrainer struct {
	p      hparams.GBDT
	m      *Matrix
	binner *Binner
	nbins  []int
	off    []int
	total  int
	pred   []float64
	// The training rows' bins and original row numbers, ordered so every node's rows are
	// contiguous: splitting a node copies its rows into the other buffer, left rows first,
	// so histograms and partitions read memory in sequence rather than hopping over the
	// matrix. Between trees every row is back in buffer 0.
	bins [2][]uint8
	rid  [2][]uint32
	gp   [2][]gh32 // the gradient pairs, moved with the rows (binary log loss)
	// Constant-hessian losses (squared, absolute error) keep each gradient as an int16 of
	// the tree's scale instead: histograms then add one packed integer per bin (gradient in
	// the high bits, row count in the low 24) and memory holds 2 bytes a row, not 8.
	quant   bool
	gq      [2][]int16
	scale   float64
	inv     float64 // 1 / scale
	qpool   sync.Pool
	threads int
	pool    sync.Pool
	rng     *rand.Rand
}

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

// TrainGBDT fits gradient-boosted trees on a binned matrix. valid (may be nil) drives early
// stopping. The result depends only on the data, the bins and the params (seed included).
func TrainGBDT(train, valid *Matrix, binner *Binner, p hparams.GBDT) (*Ensemble, *TrainLog, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	if train.P != len(binner.Features) {
		return nil, nil, fmt.Errorf("gbdt: matrix has %d features, bins %d", train.P, len(binner.Features))
	}
	n := train.Rows()
	if n < 2 {
		return nil, nil, fmt.Errorf("gbdt: need at least 2 training rows, got %d", n)
	}
	if p.Objective == hparams.BinaryLogLoss {
		for _, m := range []*Matrix{train, valid} {
			if m == nil {
				continue
			}
			for i, y := range m.Y {
				if y != 0 && y != 1 {
					return nil, nil, fmt.Errorf("gbdt: binary_logloss needs labels 0 or 1; row %d has %g", i, y)
				}
			}
		}
	}
	t := &gbdtTrainer{p: p, m: train, binner: binner, threads: p.Threads}
	if t.threads <= 0 {
		t.threads = runtime.GOMAXPROCS(0)
	}
	t.rng = rand.New(rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15))
	for _, f := range binner.Features {
		t.off = append(t.off, t.total) // feature j's bins start at j*256
		t.nbins = append(t.nbins, f.Bins())
		t.total += 256
	}
	t.pool.New = func() any { s := make([]gh, t.total); return &s }
	e := &Ensemble{Objective: p.Objective, Bins: binner, BaseScore: baseScore(p.Objective, train.Y)}

	t.pred = make([]float64, n)
	for i := range t.pred {
		t.pred[i] = e.BaseScore
	}
	// Buffer 0 is the caller's matrix (restored to its order before returning).
	t.bins[0], t.bins[1] = train.Bins, make([]uint8, len(train.Bins))
	t.rid[0], t.rid[1] = make([]uint32, n), make([]uint32, n)
	// Every histogram is accumulated over at most histChunk rows at a time, so packed sums
	// stay far from overflow (|sum| < 2^13 * 2^15 in the gradient bits) for any n.
	t.quant = p.Objective != hparams.BinaryLogLoss
	if t.quant {
		t.gq[0], t.gq[1] = make([]int16, n), make([]int16, n)
		t.qpool.New = func() any {
			return &packedSums{packed: make([][256]int64, train.P), g: make([]int64, t.total), n: make([]int64, t.total)}
		}
	} else {
		t.gp[0], t.gp[1] = make([]gh32, n), make([]gh32, n)
	}
	for i := range t.rid[0] {
		t.rid[0][i] = uint32(i)
	}
	defer t.restoreOrder()
	log := &TrainLog{Metric: map[string]string{hparams.SquaredError: "rmse", hparams.AbsoluteError: "mae", hparams.BinaryLogLoss: "logloss"}[p.Objective]}
	var vpred []float64
	if valid != nil && valid.Rows() > 0 {
		vpred = make([]float64, valid.Rows())
		for i := range vpred {
			vpred[i] = e.BaseScore
		}
	}
	best, bestLoss := 0, math.Inf(1)
	for round := 0; round < p.Trees; round++ {
		t.gradients()
		tree := t.grow()
		e.Trees = append(e.Trees, tree)
		if vpred != nil {
			for i := range vpred {
				vpred[i] += tree.Value[tree.binLeaf(valid.Row(i))]
			}
			loss := lossOf(p.Objective, vpred, valid.Y)
			log.Validation = append(log.Validation, loss)
			if loss < bestLoss {
				best, bestLoss = round+1, loss
			} else if p.EarlyStoppingRounds > 0 && round+1-best >= p.EarlyStoppingRounds {
				break
			}
		}
	}
	if vpred == nil || p.EarlyStoppingRounds == 0 {
		best = len(e.Trees)
	}
	e.Trees = e.Trees[:best]
	e.BestIteration, log.BestIteration = best, best
	log.Train = lossOf(p.Objective, t.pred, train.Y)
	if err := e.check(train.P); err != nil {
		return nil, nil, err
	}
	return e, log, nil
}

func baseScore(objective string, y []float32) float64 {
	switch objective {
	case hparams.AbsoluteError:
		v := make([]float64, len(y))
		for i, x := range y {
			v[i] = float64(x)
		}
		return median(v)
	case hparams.BinaryLogLoss:
		s := 0.0
		for _, x := range y {
			s += float64(x)
		}
		m := math.Min(math.Max(s/float64(len(y)), 1e-6), 1-1e-6)
		return math.Log(m / (1 - m))
	default:
		s := 0.0
		for _, x := range y {
			s += float64(x)
		}
		return s / float64(len(y))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// lossOf is the validation loss: RMSE, MAE or mean log loss of margins against labels.
func lossOf(objective string, margin []float64, y []float32) float64 {
	s := 0.0
	for i, m := range margin {
		yi := float64(y[i])
		switch objective {
		case hparams.SquaredError:
			s += (m - yi) * (m - yi)
		case hparams.AbsoluteError:
			s += math.Abs(m - yi)
		case hparams.BinaryLogLoss:
			s += logLoss(sigmoid(m), yi)
		}
	}
	s /= float64(len(margin))
	if objective == hparams.SquaredError {
		return math.Sqrt(s)
	}
	return s
}

func logLoss(p, y float64) float64 {
	p = math.Min(math.Max(p, 1e-15), 1-1e-15)
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// countMask holds a histogram bin's row count in the low bits of a packed entry.
const countMask = 1<<24 - 1

// gradients fills buffer 0's gradients, by position.
func (t *gbdtTrainer) gradients() {
	n := len(t.rid[0])
	chunks := (n + histChunk - 1) / histChunk
	if t.quant {
		t.scale = 1 // absolute error: gradients are -1, 0, 1 exactly
		if t.p.Objective == hparams.SquaredError {
			// The scale maps the largest |gradient| to 32767 (rows in order: sequential).
			peaks := make([]float64, chunks)
			t.parallel(chunks, func(c int) {
				m := 0.0
				y := t.m.Y[c*histChunk : min((c+1)*histChunk, n)]
				for i, p := range t.pred[c*histChunk : c*histChunk+len(y)] {
					if a := math.Abs(p - float64(y[i])); a > m {
						m = a
					}
				}
				peaks[c] = m
			})
			t.scale = slices.Max(peaks) / 32767
			if t.scale == 0 {
				t.scale = 1
			}
		}
		t.inv = 1 / t.scale
	}
	t.parallel(chunks, func(c int) {
		t.gradientRange(c*histChunk, min((c+1)*histChunk, n))
	})
}

func (t *gbdtTrainer) gradientRange(start, end int) {
	y := t.m.Y
	for i := start; i < end; i++ {
		r := t.rid[0][i]
		p, yi := t.pred[r], float64(y[r])
		switch t.p.Objective {
		case hparams.SquaredError:
			if t.quant {
				t.gq[0][i] = int16(math.RoundToEven((p - yi) * t.inv))
				continue
			}
			t.gp[0][i] = gh32{float32(p - yi), 1}
		case hparams.AbsoluteError:
			g := float32(0)
			if p > yi {
				g = 1
			} else if p < yi {
				g = -1
			}
			if t.quant {
				t.gq[0][i] = int16(g)
				continue
			}
			t.gp[0][i] = gh32{g, 1}
		case hparams.BinaryLogLoss:
			s := sigmoid(p)
			t.gp[0][i] = gh32{float32(s - yi), float32(math.Max(s*(1-s), 1e-16))}
		}
	}
}

func (t *gbdtTrainer) getHist() []gh {
	h := *(t.pool.Get().(*[]gh))
	clear(h)
	return h
}

func (t *gbdtTrainer) putHist(h []gh) { t.pool.Put(&h) }

// histChunk is the unit of parallel work: histograms of row chunks are summed in chunk
// order, so the result is the same for any number of threads.
const histChunk = 1 << 13

// parallel runs f(c) for chunks 0..n-1 on the trainer's threads (inline when n is 1).
func (t *gbdtTrainer) parallel(n int, f func(c int)) {
	t.workers(n, func(_, c int) { f(c) })
}

// workers runs f(w, c) for chunks 0..n-1 on min(threads, n) workers; w (0-based) names the
// worker running chunk c, so a worker can keep state of its own.
func (t *gbdtTrainer) workers(n int, f func(w, c int)) {
	if n == 1 || t.threads == 1 {
		for c := range n {
			f(0, c)
		}
		return
	}
	var wg sync.WaitGroup
	var next sync.Mutex
	c := 0
	for w := range min(t.threads, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				mine := c
				c++
				next.Unlock()
				if mine >= n {
					return
				}
				f(w, mine)
			}
		}()
	}
	wg.Wait()
}

// build accumulates the histogram of positions [start, end) of buffer buf into h.
func (t *gbdtTrainer) build(h []gh, buf, start, end int) {
	nchunks := (end - start + histChunk - 1) / histChunk
	if t.quant && end-start >= smallHist {
		t.buildQuantised(h, buf, start, end, nchunks)
		return
	}
	if nchunks <= 1 {
		t.accumulate(h, buf, start, end)
		return
	}
	parts := make([][]gh, nchunks)
	t.parallel(nchunks, func(c int) {
		parts[c] = t.getHist()
		t.accumulate(parts[c], buf, start+c*histChunk, min(start+(c+1)*histChunk, end))
	})
	t.addParts(h, parts)
}

func (t *gbdtTrainer) addParts(h []gh, parts [][]gh) {
	for _, part := range parts {
		for i := range h {
			h[i].g += part[i].g
			h[i].h += part[i].h
		}
		t.putHist(part)
	}
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

func (t *gbdtTrainer) accumulate(h []gh, buf, start, end int) {
	if t.quant {
		t.accumulateQuantised(h, buf, start, end)
		return
	}
	p := t.m.P
	bins := t.bins[buf][start*p : end*p]
	gps := t.gp[buf][start:end]
	for i := range gps {
		gp := gps[i]
		g, hs := float64(gp.g), float64(gp.h)
		row := bins[i*p : i*p+p]
		for j, b := range row {
			e := &h[j<<8|int(b)]
			e.g += g
			e.h += hs
		}
	}
}

// smallHist is the row count under which adding decoded gradients to the histogram beats
// clearing, filling and decoding a packed one.
const smallHist = 1024

// accumulateQuantised adds a few rows' decoded gradients (constant-hessian losses) to h.
func (t *gbdtTrainer) accumulateQuantised(h []gh, buf, start, end int) {
	p := t.m.P
	bins := t.bins[buf][start*p : end*p]
	for i, q := range t.gq[buf][start:end] {
		g := float64(q) * t.scale
		row := bins[i*p : i*p+p]
		for j, b := range row {
			e := &h[j<<8|int(b)]
			e.g += g
			e.h++
		}
	}
}

// packedSums is one worker's exact histogram of int16 gradients: a packed table it adds
// one integer per bin update to (gradient sum in the high 40 bits, row count in the low 24),
// unpacked into wide sums before the count can overflow.
type packedSums struct {
	packed [][256]int64
	rows   int // added to packed since it was last unpacked
	g, n   []int64
}

func (ps *packedSums) unpack() {
	for j := range ps.packed {
		g, n := ps.g[j<<8:][:256], ps.n[j<<8:][:256]
		for b, v := range ps.packed[j] {
			if v == 0 {
				continue
			}
			count := v & countMask
			g[b] += (v - count) >> 24
			n[b] += count
		}
	}
	clear(ps.packed)
	ps.rows = 0
}

// buildQuantised accumulates the histogram of positions [start, end) for constant-hessian
// losses. Each worker adds its chunks' rows into its own packed table; the sums are integers,
// exact in any order, so they are merged and turned into floats once, and the result does
// not depend on the chunking or the number of threads.
func (t *gbdtTrainer) buildQuantised(h []gh, buf, start, end, nchunks int) {
	p := t.m.P
	sums := make([]*packedSums, min(t.threads, nchunks))
	t.workers(nchunks, func(w, c int) {
		ps := sums[w]
		if ps == nil {
			ps = t.qpool.Get().(*packedSums)
			clear(ps.packed)
			clear(ps.g)
			clear(ps.n)
			ps.rows = 0
			sums[w] = ps
		}
		lo, hi := start+c*histChunk, min(start+(c+1)*histChunk, end)
		if ps.rows+hi-lo >= countMask {
			ps.unpack()
		}
		addPacked(ps.packed, t.bins[buf][lo*p:hi*p], t.gq[buf][lo:hi])
		ps.rows += hi - lo
	})
	for _, ps := range sums {
		if ps != nil {
			ps.unpack()
		}
	}
	for k := range h {
		var g, n int64
		for _, ps := range sums {
			if ps != nil {
				g += ps.g[k]
				n += ps.n[k]
			}
		}
		if n != 0 {
			h[k].g += float64(g) * t.scale
			h[k].h += float64(n)
		}
	}
	for _, ps := range sums {
		if ps != nil {
			t.qpool.Put(ps)
		}
	}
}

// addPacked adds each row's packed gradient and count to the bin of every feature. It is its
// own function so that the compiler keeps the loop's few values in registers.
func addPacked(packed [][256]int64, bins []uint8, gq []int16) {
	p := len(packed)
	for i, q := range gq {
		v := int64(q)<<24 + 1
		row := bins[i*p:][:p] // same length as packed: no bounds checks below
		for j := range packed {
			packed[j][row[j]] += v
		}
	}
}

// consolidate copies positions [start, end) from buffer 1 back to buffer 0.
func (t *gbdtTrainer) consolidate(start, end int) {
	p := t.m.P
	copy(t.bins[0][start*p:end*p], t.bins[1][start*p:end*p])
	copy(t.rid[0][start:end], t.rid[1][start:end])
	if t.quant {
		copy(t.gq[0][start:end], t.gq[1][start:end])
	} else {
		copy(t.gp[0][start:end], t.gp[1][start:end])
	}
}

// restoreOrder puts the caller's matrix back in row order.
func (t *gbdtTrainer) restoreOrder() {
	p := t.m.P
	for pos, r := range t.rid[0] {
		copy(t.bins[1][int(r)*p:int(r)*p+p], t.bins[0][pos*p:pos*p+p])
	}
	copy(t.bins[0], t.bins[1])
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
func (q *nodeQueue) Push(x any)    { q.nodes = append(q.nodes, x.(*growNode)) }
func (q *nodeQueue) Pop() any {
	x := q.nodes[len(q.nodes)-1]
	q.nodes = q.nodes[:len(q.nodes)-1]
	return x
}

// grow builds one tree on a row sample and adds its outputs to the training predictions.
func (t *gbdtTrainer) grow() Tree {
	n := t.m.Rows()
	// Row sample: a Bernoulli draw per position; the sampled rows move to the front of
	// buffer 1 (in order), the others behind them.
	rows := n
	rootBuf := 0
	sampled := t.p.Subsample < 1
	if sampled {
		take := make([]bool, n)
		rows = 0
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
		rootBuf = 1
	}
	features := make([]int, t.m.P)
	for j := range features {
		features[j] = j
	}
	if t.p.ColsampleByTree < 1 {
		t.rng.Shuffle(len(features), func(a, b int) { features[a], features[b] = features[b], features[a] })
		features = features[:max(1, int(math.Round(t.p.ColsampleByTree*float64(len(features)))))]
		slices.Sort(features)
	}
	var tree Tree
	newNode := func(g, h float64) int32 {
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
	root := &growNode{start: 0, end: rows, buf: rootBuf, hist: t.getHist()}
	t.build(root.hist, rootBuf, 0, rows)
	for _, e := range root.hist[t.off[0] : t.off[0]+t.nbins[0]] {
		root.g += e.g
		root.h += e.h
	}
	root.id = newNode(root.g, root.h)
	t.findSplit(root, features)
	q := &nodeQueue{leafwise: t.p.Growth == "leafwise"}
	heap.Push(q, root)
	var leaves []*growNode
	var last []lastSplit
	nleaves := 1
	type job struct {
		nd                     *growNode
		smallLeft, final, inPl bool
		smallHist              []gh
		mid                    int
		left, right            *growNode
	}
	for q.Len() > 0 {
		// The nodes split together: depthwise, the whole next level (their rows move and
		// their histograms build side by side, so no thread waits on a small node);
		// leafwise, the best node.
		batch := []*growNode{heap.Pop(q).(*growNode)}
		for !q.leafwise && q.Len() > 0 && q.nodes[0].depth == batch[0].depth {
			batch = append(batch, heap.Pop(q).(*growNode))
		}
		var jobs []*job
		for _, nd := range batch {
			if nd.split.gain <= 0 || (t.p.MaxLeaves > 0 && nleaves >= t.p.MaxLeaves) {
				if nd.hist != nil {
					t.putHist(nd.hist)
					nd.hist = nil
				}
				leaves = append(leaves, nd)
				continue
			}
			// Children that can no longer split need no histograms; absolute error needs each
			// leaf's rows for its median, so only other losses leave the last level in place.
			final := (t.p.MaxDepth > 0 && nd.depth+1 >= t.p.MaxDepth) || (t.p.MaxLeaves > 0 && nleaves+1 >= t.p.MaxLeaves)
			j := &job{nd: nd, smallLeft: nd.split.hl <= nd.h-nd.split.hl, final: final,
				inPl: final && t.p.Objective != hparams.AbsoluteError}
			if !final {
				j.smallHist = t.getHist()
			}
			jobs = append(jobs, j)
			nleaves++
		}
		t.parallel(len(jobs), func(k int) {
			if j := jobs[k]; !j.inPl {
				j.mid = t.splitRows(j.nd, j.smallLeft, j.smallHist)
			}
		})
		var open []*growNode
		for _, j := range jobs {
			nd, s := j.nd, j.nd.split
			var left, right *growNode
			if j.inPl {
				left = &growNode{g: s.gl, h: s.hl, depth: nd.depth + 1, inPlace: true}
				right = &growNode{g: nd.g - s.gl, h: nd.h - s.hl, depth: nd.depth + 1, inPlace: true}
				last = append(last, lastSplit{start: nd.start, end: nd.end, buf: nd.buf, feature: s.feature,
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
				open = append(open, left, right)
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
			left.id = newNode(left.g, left.h)
			right.id = newNode(right.g, right.h)
			tree.Left[i], tree.Right[i] = left.id, right.id
			j.left, j.right = left, right
		}
		t.parallel(len(open), func(k int) { t.findSplit(open[k], features) })
		for _, j := range jobs {
			heap.Push(q, j.left)
			heap.Push(q, j.right)
		}
	}
	for _, lf := range leaves {
		tree.Value[lf.id] = t.leafValue(lf) * t.p.LearningRate
	}
	if !hasCat(tree.CatLeft) {
		tree.CatLeft = nil
	}
	// Training predictions: sampled rows through their leaf, the others by walking their
	// bins; then every row goes back to buffer 0 for the next tree.
	// Leaves hold disjoint rows: update them in parallel.
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
		p := t.m.P
		for i := rows; i < n; i++ {
			t.pred[t.rid[1][i]] += tree.Value[tree.binLeaf(t.bins[1][i*p:i*p+p])]
		}
		t.consolidate(rows, n)
	}
	return tree
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
func binWalk[F int32 | uint16](feat []F, left, right []int32, defaultLeft []bool, cat [][4]uint64, at []uint8, row []uint8) int {
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
