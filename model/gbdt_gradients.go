package model

import (
	"math"
	"slices"

	"github.com/driftline/driftline/model/hparams"
)

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
	if t.quant {
		// Rows sit in the last tree's leaf order: reading predictions and targets through the
		// row ids would miss the cache on every row of a large matrix. Compute the gradients
		// in row order instead (sequential reads), then gather the 2-byte results by row id.
		if len(t.gRow) != n {
			t.gRow = make([]int16, n)
		}
		t.parallel(chunks, func(c int) { t.quantGradients(c*histChunk, min((c+1)*histChunk, n)) })
		t.parallel(chunks, func(c int) {
			start, end := c*histChunk, min((c+1)*histChunk, n)
			dst, rid := t.gq[0][start:end], t.rid[0][start:end]
			for i, r := range rid {
				dst[i] = t.gRow[r]
			}
		})
		return
	}
	t.parallel(chunks, func(c int) {
		t.gradientRange(c*histChunk, min((c+1)*histChunk, n))
	})
}

// quantGradients writes the int16 gradients of rows [start, end) in row order into gRow.
func (t *gbdtTrainer) quantGradients(start, end int) {
	y, pred, out := t.m.Y[start:end], t.pred[start:end], t.gRow[start:end]
	if t.p.Objective == hparams.SquaredError {
		for i, p := range pred {
			out[i] = int16(math.RoundToEven((p - float64(y[i])) * t.inv))
		}
		return
	}
	for i, p := range pred { // absolute error: the sign
		yi := float64(y[i])
		switch {
		case p > yi:
			out[i] = 1
		case p < yi:
			out[i] = -1
		default:
			out[i] = 0
		}
	}
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
