// Package edgetest makes the rows the edge runtime's conformance is tested on, the same on
// every architecture: values at every threshold of the model and one ulp either side,
// ordinary values, missing values (NaN), infinities and, for categorical features, unseen
// categories (negative, fractional, beyond the last, infinite).
package edgetest

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"math"
	"math/rand/v2"

	"github.com/driftline/driftline/edge"
)

// Rows fills n rows (row-major) for the features, from seed.
func Rows(features []edge.Feature, n int, seed uint64) []float64 {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	out := make([]float64, n*len(features))
	for i := range n {
		for f, ft := range features {
			out[i*len(features)+f] = value(r, ft)
		}
	}
	return out
}

var unseen = []float64{-1, 254, 255, 300, 2.5, math.Inf(1), math.Inf(-1), -0.5, 1e300}

func value(r *rand.Rand, ft edge.Feature) float64 {
	c := r.IntN(16)
	switch {
	case c == 0:
		return math.NaN()
	case ft.Categorical && c == 1:
		return unseen[r.IntN(len(unseen))]
	case ft.Categorical:
		return float64(r.IntN(24))
	case c == 1:
		return []float64{math.Inf(1), math.Inf(-1), 0, math.Copysign(0, -1), math.MaxFloat64, -math.MaxFloat64}[r.IntN(6)]
	case len(ft.Cuts) == 0 || c < 6:
		lo, hi := -10.0, 10.0
		if len(ft.Cuts) > 0 {
			lo, hi = ft.Cuts[0]-1, ft.Cuts[len(ft.Cuts)-1]+1
		}
		return lo + float64(r.Float64()*(hi-lo)) // no fused multiply-add: the same rows on every CPU
	}
	cut := ft.Cuts[r.IntN(len(ft.Cuts))]
	switch c % 3 {
	case 0:
		return cut
	case 1:
		return math.Nextafter(cut, math.Inf(1))
	}
	return math.Nextafter(cut, math.Inf(-1))
}

// Digest is the SHA-256 of the predictions' float64 bits, little-endian, hex.
func Digest(pred []float64) string {
	h := sha256.New()
	var b [8]byte
	for _, v := range pred {
		binary.LittleEndian.PutUint64(b[:], math.Float64bits(v))
		h.Write(b[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}
