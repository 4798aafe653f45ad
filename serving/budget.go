package serving

import (
	"fmt"
	"net/http"
	"sync/atomic"
)

// DefaultBodyBudget is the memory all request bodies being read may hold together
// (Options.BodyBudget).
const DefaultBodyBudget = 256 << 20

// bodyBudget bounds the bytes of request bodies in flight across all requests: each request
// with a body holds what it may read (its Content-Length, or MaxBodyBytes when unknown) until
// it is answered. The per-request cap alone let 2,000 concurrent 1 MB bodies take the process
// from 173 MB to 1.8 GB.
type bodyBudget struct {
	max  int64
	used atomic.Int64
}

func (b *bodyBudget) take(n int64) bool {
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

// wrap refuses a request with 503 (and Retry-After) when its body would take the budget over.
func (b *bodyBudget) wrap(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
			next.ServeHTTP(w, r)
			return
		}
		n := int64(MaxBodyBytes)
		if r.ContentLength > 0 && r.ContentLength < n {
			n = r.ContentLength
		}
		if !b.take(n) {
			w.Header().Set("Retry-After", "1")
			httpError(w, http.StatusServiceUnavailable, "serving holds %d bytes of request bodies, its budget (serve --body-budget %d): try again", b.used.Load(), b.max)
			return
		}
		defer b.used.Add(-n)
		next.ServeHTTP(w, r)
	})
}

func (b *bodyBudget) String() string { return fmt.Sprintf("%d/%d bytes", b.used.Load(), b.max) }
