package model

import (
	"testing"

	"github.com/driftline/driftline/model/hparams"
)

func BenchmarkGBDTTrain(b *testing.B) {
	const p = 20
	x, y := friedmanWide(200000, p)
	benchTrain(b, x, y, p)
}

func friedmanWide(n, p int) ([]float64, []float64) {
	x5, y := friedman(n, 5, 1, 1)
	x := make([]float64, n*p)
	for i := range n {
		copy(x[i*p:], x5[i*5:i*5+5])
		for j := 5; j < p; j++ {
			x[i*p+j] = x5[((i*7+j)%n)*5+j%5]
		}
	}
	return x, y
}

// hundredTrees trains 100 trees of depth 6 (learning rate 0.1) on rows x of p features.
func hundredTrees(b *testing.B, x, y []float64, p int, cat []bool) *Ensemble {
	m, bn := binned(b, x, y, p, cat, nil)
	params := hparams.Default()
	params.Trees, params.LearningRate = 100, 0.1
	e, _, err := TrainGBDT(m, nil, bn, params)
	if err != nil {
		b.Fatal(err)
	}
	return e
}

func BenchmarkTreeSHAP(b *testing.B) {
	const p = 20
	x, y := friedmanWide(100000, p)
	e := hundredTrees(b, x, y, p, nil)
	b.ResetTimer()
	for i := range b.N {
		j := i % 1000
		e.Explain(x[j*p : j*p+p])
	}
}

// BenchmarkBinRows bins 100k random rows of 20 features against 255 quantile bins each.
func BenchmarkBinRows(b *testing.B) {
	const n, p = 100000, 20
	x, y := friedmanWide(n, p)
	_, bn := binned(b, x[:2000*p], y[:2000], p, nil, nil)
	m := NewMatrix(p, n)
	b.ResetTimer()
	for range b.N {
		m.Bins, m.Y = m.Bins[:0], m.Y[:0]
		for i := range n {
			m.Append(bn, x[i*p:i*p+p], y[i])
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/(n*p), "ns/value")
}

// BenchmarkPredictRow scores one row at a time with 100 depth-6 trees over 5 features, one
// of them categorical (the shape of the demo's model).
func BenchmarkPredictRow(b *testing.B) {
	const n, p = 20000, 5
	x, y := friedman(n, p, 31, 0.5)
	for i := range n {
		x[i*p+4] = float64(i % 7)
		y[i] += []float64{3, -2, 0, 5, -4, 1, 2}[i%7]
	}
	e := hundredTrees(b, x, y, p, []bool{false, false, false, false, true})
	b.ResetTimer()
	for i := range b.N {
		j := i % n
		e.Predict(x[j*p : j*p+p])
	}
}

// BenchmarkGBDTTrainNarrow is the loop's shape: many rows, few features (the demo spec has 5),
// where moving rows and updating predictions cost more than histograms.
func BenchmarkGBDTTrainNarrow(b *testing.B) {
	const p = 5
	x, y := friedman(1_000_000, p, 1, 1)
	benchTrain(b, x, y, p)
}

// benchTrain times 20 trees of learning rate 0.1 on binned x, y (binning not timed).
func benchTrain(b *testing.B, x, y []float64, p int) {
	b.Helper()
	m, bn := binned(b, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees, params.LearningRate = 20, 0.1
	b.ResetTimer()
	for range b.N {
		if _, _, err := TrainGBDT(m, nil, bn, params); err != nil {
			b.Fatal(err)
		}
	}
}
