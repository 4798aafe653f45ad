package budget

import (
	"net/http"
	"sync/atomic"
)

// Bytes is a budget of bytes shared by concurrent requests.
type Bytes struct {
	max  int64
	used atomic.Int64
}

// New is a budget of max bytes.
func New(max int64) *Bytes { return &Bytes{max: max} }

// Max is the budget.
func (b *Bytes) Max() int64 { return b.max }

// Used is what requests hold now.
func (b *Bytes) Used() int64 { return b.used.Load() }

// Take reserves n bytes; false (nothing reserved) when the total would pass the budget.
func (b *Bytes) Take(n int64) bool {
	for {
		u := b.used.Load()
		if u+n > b.max {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// Give returns n bytes taken before.
func (b *Bytes) Give(n int64) { b.used.Add(-n) }

// Wrap holds each request's share while the request is served: its body length (its
// Content-Length, or perRequest, the body cap, when it is unknown or larger) times expansion,
// what decoding and answering a body of that length may hold at most; over the budget refuse
// answers it.
func (b *Bytes) Wrap(next http.Handler, perRequest, expansion int64, refuse func(w http.ResponseWriter, used, max int64)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		n := perRequest
		if r.ContentLength > 0 && r.ContentLength < n {
			n = r.ContentLength
		}
		n *= max(expansion, 1)
		if !b.Take(n) {
			w.Header().Set("Retry-After", "1")
			refuse(w, b.Used(), b.max)
			return
		}
		defer b.Give(n)
		next.ServeHTTP(w, r)
	})
}
