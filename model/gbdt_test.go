package model

import (
	"encoding/json"
	"math"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model/hparams"
)

// friedman is a nonlinear regression set (Friedman #1 plus noise features), row-major.
func friedman(n, p int, seed uint64, noise float64) ([]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 11))
	x := make([]float64, n*p)
	y := make([]float64, n)
	for i := range n {
		row := x[i*p : i*p+p]
		for j := range row {
			row[j] = r.Float64()
		}
		y[i] = 10*math.Sin(math.Pi*row[0]*row[1]) + 20*(row[2]-0.5)*(row[2]-0.5) + 10*row[3] + 5*row[4] + noise*r.NormFloat64()
	}
	return x, y
}

func columnsOf(x []float64, n, p int) [][]float64 {
	cols := make([][]float64, p)
	for j := range cols {
		cols[j] = make([]float64, n)
		for i := range n {
			cols[j][i] = x[i*p+j]
		}
	}
	return cols
}

func binned(t testing.TB, x, y []float64, p int, cat []bool, b *Binner) (*Matrix, *Binner) {
	n := len(y)
	if b == nil {
		if cat == nil {
			cat = make([]bool, p)
		}
		var err error
		b, err = NewBinner(columnsOf(x, n, p), cat, hparams.MaxBins)
		require.NoError(t, err)
	}
	m := NewMatrix(p, n)
	for i := range n {
		m.Append(b, x[i*p:i*p+p], y[i])
	}
	return m, b
}

func maeOf(e *Ensemble, x, y []float64, p int) float64 {
	s := 0.0
	for i := range y {
		s += math.Abs(e.Predict(x[i*p:i*p+p]) - y[i])
	}
	return s / float64(len(y))
}

func TestGBDTLearnsNonlinearFunctionBetterThanRidge(t *testing.T) {
	const p = 6
	x, y := friedman(20000, p, 1, 0.5)
	vx, vy := friedman(5000, p, 2, 0.5)
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees, params.LearningRate = 200, 0.1
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	require.Len(t, e.Trees, 200)
	gbdtMAE := maeOf(e, vx, vy, p)
	lin, err := TrainRidge(columnsOf(x, len(y), p), y, 1)
	require.NoError(t, err)
	ridgeMAE := 0.0
	for i := range vy {
		ridgeMAE += math.Abs(lin.Predict(vx[i*p:i*p+p]) - vy[i])
	}
	ridgeMAE /= float64(len(vy))
	// Noise alone gives MAE 0.4; ridge cannot fit the sine and the square.
	require.Less(t, gbdtMAE, 0.8, "gbdt MAE")
	require.Less(t, gbdtMAE, ridgeMAE/2, "gbdt %.3f vs ridge %.3f", gbdtMAE, ridgeMAE)
	for _, tr := range e.Trees {
		require.LessOrEqual(t, tr.depth(), 6)
	}
}

func TestGBDTIsDeterministicForASeedAndThreadCount(t *testing.T) {
	const p = 5
	x, y := friedman(40000, p, 3, 1)
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees, params.Subsample, params.ColsampleByTree, params.Seed = 20, 0.7, 0.6, 42
	var outs [][]byte
	for _, threads := range []int{1, 2, 4} {
		params.Threads = threads
		e, _, err := TrainGBDT(m, nil, b, params)
		require.NoError(t, err)
		js, err := json.Marshal(e)
		require.NoError(t, err)
		outs = append(outs, js)
	}
	require.Equal(t, string(outs[0]), string(outs[1]))
	require.Equal(t, string(outs[0]), string(outs[2]))
	params.Seed = 43
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	js, _ := json.Marshal(e)
	require.NotEqual(t, string(outs[0]), string(js), "another seed draws other rows and columns")
}

func TestGBDTRoutesMissingValues(t *testing.T) {
	// y is 10 where x0 is missing, else x0: the model must learn where NaN goes.
	r := rand.New(rand.NewPCG(5, 5))
	const n, p = 5000, 2
	x, y := make([]float64, n*p), make([]float64, n)
	for i := range n {
		x[i*p], x[i*p+1] = r.Float64(), r.Float64()
		y[i] = x[i*p]
		if i%5 == 0 {
			x[i*p], y[i] = math.NaN(), 10
		}
	}
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees = 50
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	require.InDelta(t, 10, e.Predict([]float64{math.NaN(), 0.5}), 0.1)
	require.InDelta(t, 0.5, e.Predict([]float64{0.5, 0.5}), 0.1)
}

func TestGBDTCategoricalSplitsBeatOrdinalTreatment(t *testing.T) {
	// A category's effect has no order: codes 0..39 with random effects, one split level.
	r := rand.New(rand.NewPCG(6, 6))
	effect := make([]float64, 40)
	for c := range effect {
		effect[c] = r.NormFloat64() * 5
	}
	const n, p = 20000, 1
	x, y := make([]float64, n), make([]float64, n)
	for i := range n {
		c := r.IntN(40)
		x[i], y[i] = float64(c), effect[c]+0.1*r.NormFloat64()
	}
	params := hparams.Default()
	params.Trees, params.MaxDepth = 5, 2
	var mae [2]float64
	for k, cat := range []bool{true, false} {
		m, b := binned(t, x, y, p, []bool{cat}, nil)
		e, _, err := TrainGBDT(m, nil, b, params)
		require.NoError(t, err)
		mae[k] = maeOf(e, x, y, p)
		if cat {
			require.NotNil(t, e.Trees[0].CatLeft, "categorical splits recorded")
			require.NotNil(t, e.fast, "categorical splits are compiled too")
			out := make([]float64, 64)
			codes := make([]float64, 64)
			for c := range codes {
				codes[c] = float64(c % 45) // 40..44 were never seen
			}
			e.PredictBatch(codes, 1, out)
			for c, v := range codes {
				walk := e.BaseScore
				for k := range e.Trees {
					walk += e.Trees[k].Value[e.Trees[k].leaf([]float64{v}, e.cats())]
				}
				require.InDelta(t, walk, e.Predict([]float64{v}), 1e-9, "code %v", v)
				require.InDelta(t, walk, out[c], 1e-9, "batch code %v", v)
			}
			// An unseen code goes the "other" way without failing.
			require.False(t, math.IsNaN(e.Predict([]float64{999})))
		}
	}
	require.Less(t, mae[0], mae[1]*0.7, "categorical %.3f vs ordinal %.3f", mae[0], mae[1])
}

func TestGBDTAbsoluteErrorIgnoresOutliers(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	const n, p = 4000, 1
	x, y := make([]float64, n), make([]float64, n)
	for i := range n {
		x[i] = r.Float64()
		y[i] = 3 * x[i]
		if i%10 == 0 {
			y[i] = 1000 // 10% wild outliers
		}
	}
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Objective, params.Trees = hparams.AbsoluteError, 50
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	require.InDelta(t, 1.5, e.Predict([]float64{0.5}), 0.1, "the median, not pulled by outliers")
	params.Objective = hparams.SquaredError
	sq, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	require.Greater(t, sq.Predict([]float64{0.5}), 50.0, "squared error chases the outliers")
}

func TestGBDTBinaryLogLoss(t *testing.T) {
	r := rand.New(rand.NewPCG(8, 8))
	const n, p = 10000, 2
	x, y := make([]float64, n*p), make([]float64, n)
	for i := range n {
		a, c := r.Float64(), r.Float64()
		x[i*p], x[i*p+1] = a, c
		if (a-0.5)*(c-0.5) > 0 { // XOR: no linear model separates it
			y[i] = 1
		}
	}
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Objective, params.Trees = hparams.BinaryLogLoss, 30
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	correct := 0
	for i := range n {
		pr := e.Predict(x[i*p : i*p+p])
		require.True(t, pr > 0 && pr < 1)
		if (pr >= 0.5) == (y[i] == 1) {
			correct++
		}
	}
	require.Greater(t, float64(correct)/n, 0.97)
	y[3] = 2
	m, _ = binned(t, x, y, p, nil, b)
	_, _, err = TrainGBDT(m, nil, b, params)
	require.ErrorContains(t, err, "row 3 has 2")
}

func TestGBDTEarlyStoppingKeepsTheBestRound(t *testing.T) {
	const p = 5
	x, y := friedman(3000, p, 9, 3) // small and noisy: overfits soon
	vx, vy := friedman(3000, p, 10, 3)
	m, b := binned(t, x, y, p, nil, nil)
	v, _ := binned(t, vx, vy, p, nil, b)
	params := hparams.Default()
	params.Trees, params.LearningRate, params.EarlyStoppingRounds = 500, 0.3, 10
	e, log, err := TrainGBDT(m, v, b, params)
	require.NoError(t, err)
	require.Less(t, len(log.Validation), 500, "stopped early")
	require.Equal(t, log.BestIteration, len(e.Trees))
	require.Len(t, log.Validation, log.BestIteration+10)
	for i, l := range log.Validation {
		require.GreaterOrEqual(t, l, log.Validation[log.BestIteration-1], "round %d", i+1)
	}
}

func TestGBDTLeafwiseGrowthBoundsLeaves(t *testing.T) {
	const p = 5
	x, y := friedman(10000, p, 12, 0.5)
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Growth, params.MaxLeaves, params.MaxDepth, params.Trees, params.LearningRate = "leafwise", 12, 0, 60, 0.1
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	deep := false
	for _, tr := range e.Trees {
		leaves := 0
		for _, l := range tr.Left {
			if l < 0 {
				leaves++
			}
		}
		require.LessOrEqual(t, leaves, 12)
		deep = deep || tr.depth() > 4 // unbalanced: deeper than a 12-leaf balanced tree
	}
	require.True(t, deep)
	vx, vy := friedman(3000, p, 13, 0.5)
	require.Less(t, maeOf(e, vx, vy, p), 1.2)
}

func TestGBDTParamsValidateNamesTheField(t *testing.T) {
	p := hparams.Default()
	p.Objective, p.LearningRate, p.MaxBins, p.Growth = "poisson", 0, 300, "sideways"
	err := p.Validate()
	for _, want := range []string{"objective", "learning_rate", "max_bins", "growth"} {
		require.ErrorContains(t, err, want)
	}
}

// The complete-tree fast path and the batch path must agree with the node walk everywhere,
// rows with missing values included, for numeric splits and for numeric and categorical
// splits mixed, at depths 3 and 8.
func TestGBDTFastPathsMatchTheNodeWalk(t *testing.T) {
	const p = 6
	for _, mixed := range []bool{false, true} {
		for _, depth := range []int{3, 8} {
			x, y := friedman(5000, p, 14, 0.5)
			cat := make([]bool, p)
			if mixed {
				cat[5] = true
				for i := range 5000 {
					x[i*p+5] = float64(i % 9)
					y[i] += []float64{3, -2, 0, 5, -4, 1, 2, -1, 4}[i%9]
				}
			}
			m, b := binned(t, x, y, p, cat, nil)
			params := hparams.Default()
			params.Trees, params.MaxDepth = 40, depth
			e, _, err := TrainGBDT(m, nil, b, params)
			require.NoError(t, err)
			require.NotNil(t, e.fast)
			require.Equal(t, depth, e.fast.depth, "a tree reaches the depth (8: node indices wrap a byte)")
			require.Equal(t, mixed, len(e.fast.cats) > 1, "categorical splits compiled")
			for i := 0; i < 500; i += 7 {
				x[i*p+i%p] = math.NaN()
			}
			out := make([]float64, 500)
			e.PredictBatch(x[:500*p], p, out)
			for i := range out {
				row := x[i*p : i*p+p]
				walk := e.BaseScore
				for k := range e.Trees {
					walk += e.Trees[k].Value[e.Trees[k].leaf(row, e.cats())]
				}
				require.InDelta(t, walk, e.Predict(row), 1e-9, "mixed %v depth %d row %d", mixed, depth, i)
				require.InDelta(t, walk, out[i], 1e-9, "mixed %v depth %d batch row %d", mixed, depth, i)
			}
		}
	}
}

func TestBinsMatchTheirCutsAndAppendRowsMatchesAppend(t *testing.T) {
	r := rand.New(rand.NewPCG(51, 51))
	for _, ncuts := range []int{0, 1, 2, 3, 7, 64, 254} {
		cuts := make([]float64, ncuts)
		for i := range cuts {
			cuts[i] = float64(i) * 1.5
		}
		f := FeatureBins{Cuts: cuts}
		for range 2000 {
			x := r.Float64()*float64(ncuts+2)*1.5 - 1.5
			if r.IntN(10) == 0 && ncuts > 0 {
				x = cuts[r.IntN(ncuts)] // exactly on a cut: goes left of it
			}
			below := 0
			for _, c := range cuts {
				if c < x {
					below++
				}
			}
			require.Equal(t, uint8(below+1), f.Bin(x), "cuts %d x %v", ncuts, x)
		}
		require.Equal(t, uint8(0), f.Bin(math.NaN()))
	}
	const p = 5
	x, y := friedman(10000, p, 52, 1)
	for i := 0; i < len(x); i += 13 {
		x[i] = math.NaN()
	}
	one, b := binned(t, x, y, p, []bool{false, false, true, false, false}, nil)
	all := NewMatrix(p, 0)
	all.AppendRows(b, x[:3000*p], y[:3000])
	all.AppendRows(b, x[3000*p:], y[3000:])
	require.Equal(t, one.Bins, all.Bins)
	require.Equal(t, one.Y, all.Y)
}

func TestBinningHandlesSignsZerosAndInfinities(t *testing.T) {
	r := rand.New(rand.NewPCG(53, 53))
	special := []float64{math.Inf(-1), math.Inf(1), math.Copysign(0, -1), 0, -math.MaxFloat64,
		math.MaxFloat64, -5e-324, 5e-324, -1, 1, math.NaN()}
	for _, distinct := range []int{8, 100, 5000} {
		sample := make([]float64, 20000)
		for i := range sample {
			if r.IntN(20) == 0 {
				sample[i] = special[r.IntN(len(special))]
			} else {
				sample[i] = float64(r.IntN(distinct)-distinct/2) * 0.37
			}
		}
		want := make([]float64, 0, len(sample))
		for _, x := range sample {
			if !math.IsNaN(x) {
				want = append(want, x)
			}
		}
		slices.Sort(want)
		require.Equal(t, want, sortedValues(sample), "radix sort, %d distinct", distinct)

		b, err := NewBinner([][]float64{sample}, []bool{false}, hparams.MaxBins)
		require.NoError(t, err)
		cuts := b.Features[0].Cuts
		require.True(t, slices.IsSorted(cuts))
		for _, c := range cuts {
			require.False(t, math.IsNaN(c) || math.IsInf(c, 0), "cuts must be finite numbers (JSON): %v", cuts)
		}
		raw, err := json.Marshal(b)
		require.NoError(t, err)
		var decoded Binner
		require.NoError(t, json.Unmarshal(raw, &decoded))
		byHand := FeatureBins{Cuts: cuts} // no prepared keys: the other search path
		for _, x := range append(sample[:2000], special...) {
			require.Equal(t, b.Features[0].Bin(x), decoded.Features[0].Bin(x), "decoded bins, x %v", x)
			require.Equal(t, b.Features[0].Bin(x), byHand.Bin(x), "bins made by hand, x %v", x)
			if math.IsNaN(x) {
				require.Equal(t, uint8(0), b.Features[0].Bin(x))
				continue
			}
			below := 0
			for _, c := range cuts {
				if c < x {
					below++
				}
			}
			require.Equal(t, uint8(below+1), b.Features[0].Bin(x), "x %v", x)
		}
	}
}

// Packed histogram entries hold gradient sums in the high bits and counts in the low 24:
// unpacking, at any point, must give the exact sums (negative gradients included).
func TestPackedHistogramSumsAreExact(t *testing.T) {
	const p, n = 3, 5000
	r := rand.New(rand.NewPCG(61, 61))
	bins := make([]uint8, n*p)
	gq := make([]int16, n)
	wantG, wantN := make([]int64, p*256), make([]int64, p*256)
	for i := range n {
		gq[i] = int16(r.IntN(65535) - 32767)
		for j := range p {
			b := uint8(r.IntN(4) * 60) // few bins: large counts and sums per bin
			bins[i*p+j] = b
			wantG[j<<8|int(b)] += int64(gq[i])
			wantN[j<<8|int(b)]++
		}
	}
	ps := &packedSums{packed: make([][256]int64, p), g: make([]int64, p*256), n: make([]int64, p*256)}
	addPacked(ps.packed, bins[:1234*p], gq[:1234])
	ps.unpack()
	addPacked(ps.packed, bins[1234*p:], gq[1234:])
	ps.unpack()
	require.Equal(t, wantG, ps.g)
	require.Equal(t, wantN, ps.n)
}

// Depthwise growth splits a level at a time and must still stop at max_leaves, mid-level.
func TestGBDTDepthwiseGrowthBoundsLeaves(t *testing.T) {
	const p = 5
	x, y := friedman(20000, p, 15, 0.5)
	m, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.MaxLeaves, params.MaxDepth, params.Trees = 13, 6, 20
	e, _, err := TrainGBDT(m, nil, b, params)
	require.NoError(t, err)
	for k, tr := range e.Trees {
		leaves := 0
		for _, l := range tr.Left {
			if l < 0 {
				leaves++
			}
		}
		require.Equal(t, 13, leaves, "tree %d", k) // 20k rows always have a split left
		require.LessOrEqual(t, tr.depth(), 4, "tree %d: levels fill in order", k)
	}
}
