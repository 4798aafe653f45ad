package model

import "testing"

func BenchmarkGBDTTrain(b *testing.B) {
	const p = 20
	x, y := friedmanWide(200000, p)
	m, bn := binned(b, x, y, p, nil, nil)
	params := DefaultGBDT()
	params.Trees, params.LearningRate = 20, 0.1
	b.ResetTimer()
	for range b.N {
		if _, _, err := TrainGBDT(m, nil, bn, params); err != nil {
			b.Fatal(err)
		}
	}
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

func BenchmarkAccumulate(b *testing.B) {
	const p, n = 20, 800000
	x, y := friedmanWide(n, p)
	m, bn := binned(b, x, y, p, nil, nil)
	tr := &gbdtTrainer{m: m, binner: bn, gpair: make([]gh32, n)}
	h := make([]gh, p*256)
	seq := make([]uint32, n)
	for i := range seq {
		seq[i] = uint32(i)
	}
	sparse := make([]uint32, 0, n/8)
	for i := 0; i < n; i += 8 {
		sparse = append(sparse, uint32(i))
	}
	b.Run("sequential", func(b *testing.B) {
		for range b.N {
			tr.accumulate(h, seq)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/row")
	})
	b.Run("every8th", func(b *testing.B) {
		for range b.N {
			tr.accumulate(h, sparse)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(sparse)), "ns/row")
	})
}

func BenchmarkTreeSHAP(b *testing.B) {
	const p = 20
	x, y := friedmanWide(100000, p)
	m, bn := binned(b, x, y, p, nil, nil)
	params := DefaultGBDT()
	params.Trees, params.LearningRate = 100, 0.1
	e, _, err := TrainGBDT(m, nil, bn, params)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		j := i % 1000
		e.Explain(x[j*p : j*p+p])
	}
}
