package model

import (
	"math"
	"math/bits"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model/hparams"
)

// condExpect is E[tree(x) | x_S] under the path-dependent model: follow x at splits on a
// feature in S, otherwise average the children by cover.
func condExpect(t *Tree, node int, x []float64, cats []FeatureBins, in func(int) bool) float64 {
	if t.Left[node] < 0 {
		return t.Value[node]
	}
	if in(int(t.Feature[node])) {
		if t.goesLeft(node, x, cats) {
			return condExpect(t, int(t.Left[node]), x, cats, in)
		}
		return condExpect(t, int(t.Right[node]), x, cats, in)
	}
	l, r := int(t.Left[node]), int(t.Right[node])
	return (t.Cover[l]*condExpect(t, l, x, cats, in) + t.Cover[r]*condExpect(t, r, x, cats, in)) / t.Cover[node]
}

// bruteShapley is the Shapley value of every feature by enumerating all subsets.
func bruteShapley(e *Ensemble, x []float64, p int) []float64 {
	fact := func(n int) float64 { return math.Gamma(float64(n + 1)) }
	v := func(mask uint) float64 {
		s := 0.0
		for k := range e.Trees {
			s += condExpect(&e.Trees[k], 0, x, e.cats(), func(f int) bool { return mask&(1<<f) != 0 })
		}
		return s
	}
	phi := make([]float64, p)
	for mask := uint(0); mask < 1<<p; mask++ {
		size := bits.OnesCount(mask)
		base := v(mask)
		for i := range p {
			if mask&(1<<i) != 0 {
				continue
			}
			w := fact(size) * fact(p-size-1) / fact(p)
			phi[i] += w * (v(mask|1<<i) - base)
		}
	}
	return phi
}

func TestTreeSHAPIsExactAndSumsToTheMargin(t *testing.T) {
	const p = 5
	x, y := friedman(4000, p, 21, 0.5)
	// Missing values and a categorical feature exercise every split kind.
	for i := 0; i < 4000; i += 9 {
		x[i*p+1] = math.NaN()
	}
	for i := range 4000 {
		x[i*p+4] = float64(i % 7)
		y[i] += []float64{3, -2, 0, 5, -4, 1, 2}[i%7]
	}
	m, b := binned(t, x, y, p, []bool{false, false, false, false, true}, nil)
	for _, growth := range []string{"depthwise", "leafwise"} {
		params := hparams.Default()
		params.Trees, params.Growth, params.MaxLeaves = 15, growth, 20
		if growth == "leafwise" {
			params.MaxDepth = 8
		}
		trained, _, err := TrainGBDT(m, nil, b, params)
		require.NoError(t, err)
		// Both algorithms: linear TreeSHAP and the path algorithm.
		fast, path := *trained, *trained
		fast.prepareLinearShap()
		require.NotNil(t, fast.lin, growth)
		path.lin = nil
		for _, e := range []*Ensemble{&fast, &path} {
			for i := 0; i < 4000; i += 97 {
				row := x[i*p : i*p+p]
				base, phi := e.Explain(row)
				sum := base
				for _, c := range phi {
					sum += c
				}
				require.InDelta(t, e.Margin(row), sum, 1e-9, "%s row %d", growth, i)
				if i%(97*8) == 0 {
					want := bruteShapley(e, row, p)
					for j := range want {
						require.InDelta(t, want[j], phi[j], 1e-9, "%s row %d feature %d", growth, i, j)
					}
				}
			}
		}
	}
}

func TestTreeSHAPOfLogLossIsInMarginSpace(t *testing.T) {
	const p = 5
	x, y := friedman(3000, p, 22, 0)
	for i := range y {
		y[i] = 0
		if x[i*p] > 0.5 {
			y[i] = 1
		}
	}
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Objective, params.Trees = hparams.BinaryLogLoss, 10
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	row := x[:p]
	base, phi := e.Explain(row)
	sum := base
	for _, c := range phi {
		sum += c
	}
	require.InDelta(t, e.Margin(row), sum, 1e-9)
	require.InDelta(t, e.Predict(row), sigmoid(sum), 1e-12)
	require.Greater(t, math.Abs(phi[0]), 10*math.Abs(phi[1]), "the only informative feature carries the explanation")
}

func TestTreeSHAPOfTreesDeeperThanTheLinearRuleUsesThePathAlgorithm(t *testing.T) {
	const p = 5
	x, y := friedman(4000, p, 23, 0.5)
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees, params.Growth, params.MaxDepth, params.MaxLeaves = 3, "leafwise", 0, 200
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	require.Greater(t, e.maxDepth, 2*linearQ, "the test needs a tree deeper than the quadrature is exact for")
	require.Nil(t, e.lin)
	for i := 0; i < 4000; i += 997 {
		row := x[i*p : i*p+p]
		_, phi := e.Explain(row)
		want := bruteShapley(e, row, p)
		for j := range want {
			require.InDelta(t, want[j], phi[j], 1e-9, "row %d feature %d", i, j)
		}
	}
}

func TestGaussLegendreIntegratesPolynomialsExactly(t *testing.T) {
	for q := 1; q <= linearQ; q++ {
		pts, w := gaussLegendre(q)
		for k := 0; k < 2*q; k++ { // exact up to degree 2q-1: integral of t^k over [0,1]
			got := 0.0
			for i := range q {
				got += w[i] * math.Pow(pts[i], float64(k))
			}
			require.InDelta(t, 1/float64(k+1), got, 1e-15, "q %d degree %d", q, k)
		}
	}
}
