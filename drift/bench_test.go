package drift

import (
	"fmt"
	"testing"
)

// BenchmarkWindow measures accumulating and reporting a window of rows x features against a
// profile of the same size (bench/drift.sh runs the full-size comparison with scipy).
func BenchmarkWindow(b *testing.B) {
	const rows, feats = 200_000, 20
	names := make([]string, feats)
	refCols := make([][]float64, feats)
	curCols := make([][]float64, feats)
	for i := range feats {
		names[i] = fmt.Sprint("f", i)
		refCols[i] = gen(uint64(i), rows, 0, 1, 0)
		curCols[i] = gen(uint64(100+i), rows, 0.05*float64(i%3), 1, 0)
	}
	ref, err := NewProfile(names, refCols)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for range b.N {
		w := NewWindow(ref)
		w.AddColumns(curCols, 0)
		_ = w.Report(DefaultConfig())
	}
	b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
}
