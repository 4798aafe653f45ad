package drift

import (
	"container/heap"
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
// (the bottom k of a union is the bottom k of the parts' bottom k).
type BottomK struct {
	k    int
	salt uint64
	h    prioHeap
}

type prio struct {
	p uint64
	v float64
}

type prioHeap []prio // max-heap on p

func (h prioHeap) Len() int           { return len(h) }
func (h prioHeap) Less(i, j int) bool { return h[i].p > h[j].p }
func (h prioHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *prioHeap) Push(x any)        { *h = append(*h, x.(prio)) }
func (h *prioHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// NewBottomK samples up to k values; salt separates the samples of different features.
func NewBottomK(k int, salt uint64) *BottomK { return &BottomK{k: k, salt: salt} }

// Add offers a value with its row key (unique per row of the dataset).
func (b *BottomK) Add(v float64, rowKey uint64) {
	p := splitmix64(rowKey ^ b.salt)
	if len(b.h) < b.k {
		heap.Push(&b.h, prio{p, v})
		return
	}
	if p < b.h[0].p {
		b.h[0] = prio{p, v}
		heap.Fix(&b.h, 0)
	}
}

// Merge adds another sample of the same salt and k.
func (b *BottomK) Merge(o *BottomK) {
	for _, x := range o.h {
		if len(b.h) < b.k {
			heap.Push(&b.h, x)
		} else if x.p < b.h[0].p {
			b.h[0] = x
			heap.Fix(&b.h, 0)
		}
	}
}

// Sorted returns the sampled values in ascending order.
func (b *BottomK) Sorted() []float64 {
	out := make([]float64, len(b.h))
	for i, x := range b.h {
		out[i] = x.v
	}
	slices.Sort(out)
	return out
}
