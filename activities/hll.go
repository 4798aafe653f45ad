package activities

import (
	"hash/fnv"
	"math"
	"math/bits"
)

// hll is a HyperLogLog distinct counter (2^12 registers, about 1.6% standard error) so the
// validation report can give distinct counts in fixed memory.
type hll struct{ reg [1 << 12]uint8 }

func newHLL() *hll { return &hll{} }

func (h *hll) add(s string) {
	f := fnv.New64a()
	_, _ = f.Write([]byte(s))
	x := f.Sum64()
	x ^= x >> 33 // fnv's high bits mix poorly for short strings
	x *= 0xff51afd7ed558ccd
	x ^= x >> 33
	idx := x >> 52
	rank := uint8(bits.LeadingZeros64(x<<12|1<<11) + 1)
	if rank > h.reg[idx] {
		h.reg[idx] = rank
	}
}

func (h *hll) estimate() int64 {
	m := float64(len(h.reg))
	var sum float64
	zeros := 0
	for _, r := range h.reg {
		sum += math.Ldexp(1, -int(r))
		if r == 0 {
			zeros++
		}
	}
	e := 0.7213 / (1 + 1.079/m) * m * m / sum
	if e <= 2.5*m && zeros > 0 {
		e = m * math.Log(m/float64(zeros)) // linear counting for small cardinalities
	}
	return int64(math.Round(e))
}
