package drift

import (
	"slices"
)

// splitmix64 is a fast, well-mixed 64-bit hash used to give each row a random but
// deterministic sampling priority.
func splitmix64(x uint64) uint64 {
	x += 0x9e3779b97f4a7c15
	x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9
	x = (x ^ (x >> 27)) * 0x94d049bb133111eb
	return x ^ (x >> 31)
}

// BottomK keeps the k values whose row keys hash lowest: a uniform sample without
// replacement that does not depend on the order rows arrive in and that merges exactly
// (the bottom k of a union is the bottom k of the parts' bottom k). Candidates under the
// current threshold are buffered and trimmed to the k lowest by quickselect when the buffer
// reaches k + k/4, which costs O(1) amortised per candidate (about five comparisons) and
// bounds the buffer (a wide table holds one a feature).
type BottomK struct {
	k         int
	salt      uint64
	buf       []prio
	threshold uint64 // priorities at or above it can no longer enter the sample
}

type prio struct {
	p uint64
	v float64
}

// NewBottomK samples up to k values; salt separates the samples of different features.
func NewBottomK(k int, salt uint64) *BottomK {
	return &BottomK{k: k, salt: salt, threshold: ^uint64(0)}
}

// Add offers a value with its row key (unique per row of the dataset).
func (b *BottomK) Add(v float64, rowKey uint64) {
	if p := splitmix64(rowKey ^ b.salt); p < b.threshold {
		b.offer(prio{p, v})
	}
}

func (b *BottomK) offer(x prio) {
	if x.p >= b.threshold {
		return
	}
	if len(b.buf) == cap(b.buf) { // grown as values come, to at most limit: a feature of few values holds few
		grown := make([]prio, len(b.buf), min(max(2*cap(b.buf), 64), b.limit()))
		copy(grown, b.buf)
		b.buf = grown
	}
	b.buf = append(b.buf, x)
	if len(b.buf) >= b.limit() {
		b.trim()
	}
}

// limit is the buffer's length that triggers a trim.
func (b *BottomK) limit() int { return b.k + max(b.k/4, 1) }

// trim keeps the k lowest priorities and lowers the threshold to the k-th.
func (b *BottomK) trim() {
	if len(b.buf) <= b.k {
		return
	}
	selectK(b.buf, b.k)
	b.threshold = b.buf[b.k].p // the lowest priority that did not make it
	for _, x := range b.buf[b.k+1:] {
		b.threshold = min(b.threshold, x.p)
	}
	b.buf = b.buf[:b.k]
}

// selectK partially orders a so that a[:k] holds the k lowest priorities (Hoare quickselect
// with a deterministic median-of-three pivot).
func selectK(a []prio, k int) {
	lo, hi := 0, len(a)-1
	for lo < hi {
		mid := lo + (hi-lo)/2
		if a[mid].p < a[lo].p {
			a[mid], a[lo] = a[lo], a[mid]
		}
		if a[hi].p < a[lo].p {
			a[hi], a[lo] = a[lo], a[hi]
		}
		if a[hi].p < a[mid].p {
			a[hi], a[mid] = a[mid], a[hi]
		}
		pivot := a[mid].p
		i, j := lo, hi
		for i <= j {
			for a[i].p < pivot {
				i++
			}
			for a[j].p > pivot {
				j--
			}
			if i <= j {
				a[i], a[j] = a[j], a[i]
				i++
				j--
			}
		}
		switch {
		case k <= j:
			hi = j
		case k >= i:
			lo = i
		default:
			return
		}
	}
}

// Merge adds another sample of the same salt and k.
func (b *BottomK) Merge(o *BottomK) {
	for _, x := range o.buf {
		b.offer(x)
	}
}

// Sorted returns the sampled values in ascending order.
func (b *BottomK) Sorted() []float64 {
	b.trim()
	out := make([]float64, len(b.buf))
	for i, x := range b.buf {
		out[i] = x.v
	}
	slices.Sort(out)
	return out
}
