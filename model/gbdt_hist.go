package model

type gh struct{ g, h float64 }

type gh32 struct{ g, h float32 }

func (t *gbdtTrainer) getHist() []gh {
	h := *(t.pool.Get().(*[]gh))
	clear(h)
	return h
}

func (t *gbdtTrainer) putHist(h []gh) { t.pool.Put(&h) }

// histChunk is the unit of parallel work: histograms of row chunks are summed in chunk
// order, so the result is the same for any number of threads.
const histChunk = 1 << 13

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
