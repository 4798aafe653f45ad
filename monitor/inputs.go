package monitor

import (
	"math"
	"runtime"
	"sync"

	"github.com/driftline/driftline/predlog"
)

// columns reads the features of logged requests into one column per feature, NaN for a
// missing feature; ok[i] is false when request i's inputs cannot be read (an older part's
// JSON that is not an object of numbers). Chunks run on every core.
func columns(recs []predlog.Record, features []string) (cols [][]float64, ok []bool) {
	n := len(recs)
	index := make(map[string]int, len(features))
	for j, f := range features {
		index[f] = j
	}
	cols = make([][]float64, len(features))
	for j := range cols {
		cols[j] = make([]float64, n)
	}
	ok = make([]bool, n)
	parallel(n, func(lo, hi int) {
		row := make([]float64, len(features))
		for i := lo; i < hi; i++ {
			for j := range row {
				row[j] = math.NaN()
			}
			if !recs[i].EachInput(func(name string, v float64) {
				if j, found := index[name]; found {
					row[j] = v
				}
			}) {
				continue
			}
			ok[i] = true
			for j, v := range row {
				cols[j][i] = v
			}
		}
	})
	return cols, ok
}

// parallel runs f over [0, n) in chunks on GOMAXPROCS goroutines.
func parallel(n int, f func(lo, hi int)) {
	workers := max(1, min(runtime.GOMAXPROCS(0), n/4096))
	chunk := (n + workers - 1) / max(workers, 1)
	var wg sync.WaitGroup
	for lo := 0; lo < n; lo += chunk {
		wg.Add(1)
		go func(lo, hi int) {
			defer wg.Done()
			f(lo, hi)
		}(lo, min(n, lo+chunk))
	}
	wg.Wait()
}
