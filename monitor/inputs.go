package monitor

import (
	"math"
	"runtime"
	"slices"
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
		for j := range cols {
			for i := lo; i < hi; i++ {
				cols[j][i] = math.NaN()
			}
		}
		var names []string // the last typed record's names and where each goes (-1: unused)
		var pos []int
		for i := lo; i < hi; i++ {
			r := &recs[i]
			if len(r.InputNames) > 0 && len(r.InputNames) == len(r.InputValues) {
				// Typed columns: the records of one version name the same features, so the
				// positions are looked up once per run of equal names.
				if !slices.Equal(names, r.InputNames) {
					names, pos = r.InputNames, pos[:0]
					for _, name := range names {
						j, found := index[name]
						if !found {
							j = -1
						}
						pos = append(pos, j)
					}
				}
				for k, j := range pos {
					if j >= 0 {
						cols[j][i] = r.InputValues[k]
					}
				}
				ok[i] = true
				continue
			}
			ok[i] = r.EachInput(func(name string, v float64) { // an older part's JSON
				if j, found := index[name]; found {
					cols[j][i] = v
				}
			})
			if !ok[i] {
				for j := range cols {
					cols[j][i] = math.NaN()
				}
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
