package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model/hparams"
)

func TestLogisticRegressionRecoversCoefficients(t *testing.T) {
	r := rand.New(rand.NewPCG(31, 31))
	const n = 20000
	cols := [][]float64{make([]float64, n), make([]float64, n)}
	y := make([]float64, n)
	for i := range n {
		a, b := r.NormFloat64(), r.NormFloat64()*2+1
		cols[0][i], cols[1][i] = a, b
		if r.Float64() < sigmoid(0.5+2*a-1*b) {
			y[i] = 1
		}
	}
	lin, fit, err := TrainLogistic(2, 0, ColumnSource(cols, y))
	require.NoError(t, err)
	require.Less(t, fit.Iterations, 15)
	// Raw-scale slopes: w_j / scale_j; intercept: b - sum w_j mean_j / scale_j.
	require.InDelta(t, 2, lin.Coef[0]/lin.Scales[0], 0.1)
	require.InDelta(t, -1, lin.Coef[1]/lin.Scales[1], 0.05)
	b0 := lin.Intercept - lin.Coef[0]*lin.Means[0]/lin.Scales[0] - lin.Coef[1]*lin.Means[1]/lin.Scales[1]
	require.InDelta(t, 0.5, b0, 0.1)
	// At the optimum the gradient vanishes: mean(p - y) = 0 with an unpenalised intercept.
	m := &Model{Family: "linear", Objective: hparams.BinaryLogLoss, Features: []string{"a", "b"}, Linear: lin}
	s := 0.0
	for i := range n {
		s += m.Predict([]float64{cols[0][i], cols[1][i]}) - y[i]
	}
	require.InDelta(t, 0, s/n, 1e-9)
	// Separable data stays finite with a penalty, and bad labels are named.
	_, _, err = TrainLogistic(1, 1, ColumnSource([][]float64{{0, 1, 2, 3}}, []float64{0, 0, 1, 1}))
	require.NoError(t, err)
	_, _, err = TrainLogistic(1, 1, ColumnSource([][]float64{{0, 1, 2}}, []float64{0, 2, 1}))
	require.ErrorContains(t, err, "row 1 has 2")
}

func TestInt8VariantsStayCloseAndRoundTrip(t *testing.T) {
	const p = 5
	x, y := friedman(20000, p, 41, 0.5)
	vx, vy := friedman(4000, p, 42, 0.5)
	mat, b := binned(t, x, y, p, nil, nil)
	params := hparams.Default()
	params.Trees, params.LearningRate = 100, 0.1
	e, _, err := TrainGBDT(mat, nil, b, params)
	require.NoError(t, err)
	lin, err := TrainRidge(columnsOf(x, len(y), p), y, 1)
	require.NoError(t, err)
	names := []string{"a", "b", "c", "d", "e"}
	for _, m := range []*Model{
		{Family: "gbdt", Trainer: "gbdt", Objective: hparams.SquaredError, Features: names, Inputs: NumericInputs(names), GBDT: e},
		{Family: "linear", Trainer: "ridge", Objective: hparams.SquaredError, Features: names, Inputs: NumericInputs(names), Linear: lin},
	} {
		q, err := m.Quantise()
		require.NoError(t, err)
		art, err := q.Marshal()
		require.NoError(t, err)
		q, err = Unmarshal(art)
		require.NoError(t, err, m.Family)
		require.Equal(t, "int8", q.Family)
		var fmae, qmae float64
		for i := range vy {
			fmae += math.Abs(m.Predict(vx[i*p:i*p+p]) - vy[i])
			qmae += math.Abs(q.Predict(vx[i*p:i*p+p]) - vy[i])
		}
		require.Greater(t, qmae, 0.0)
		require.Less(t, (qmae-fmae)/fmae, 0.02, "%s: int8 MAE %.4f vs %.4f", m.Family, qmae/float64(len(vy)), fmae/float64(len(vy)))
		for i := 0; i < 4000; i += 401 {
			row := vx[i*p : i*p+p]
			require.InDelta(t, m.Predict(row), q.Predict(row), 0.05*math.Max(1, math.Abs(m.Predict(row))))
			base, phi := q.Explain(row)
			sum := base
			for _, c := range phi {
				sum += c
			}
			require.InDelta(t, q.Predict(row), sum, 1e-9, "int8 explanations are exact for the variant")
		}
	}
	// Missing values keep their default direction in the int8 trees.
	m := &Model{Family: "gbdt", Objective: hparams.SquaredError, Features: names, GBDT: e}
	q, err := m.Quantise()
	require.NoError(t, err)
	row := []float64{math.NaN(), 0.5, 0.5, 0.5, 0.5}
	require.InDelta(t, m.Predict(row), q.Predict(row), 0.2)
}

func TestGBDTArtifactRoundTripAndTamper(t *testing.T) {
	const p = 5
	x, y := friedman(2000, p, 43, 0.5)
	mat, b := binned(t, x, y, p, []bool{false, false, false, false, true}, nil)
	params := hparams.Default()
	params.Trees = 10
	e, _, err := TrainGBDT(mat, nil, b, params)
	require.NoError(t, err)
	names := []string{"a", "b", "c", "d", "e"}
	m := &Model{Family: "gbdt", Trainer: "gbdt", Objective: hparams.SquaredError, Features: names, Inputs: NumericInputs(names), GBDT: e,
		Params: map[string]float64{"trees": 10}, Settings: map[string]string{"growth": "depthwise"}, TrainingFingerprint: "snap:2000"}
	data, err := m.Marshal()
	require.NoError(t, err)
	back, err := Unmarshal(data)
	require.NoError(t, err)
	for i := 0; i < 2000; i += 37 {
		require.Equal(t, m.Predict(x[i*p:i*p+p]), back.Predict(x[i*p:i*p+p]))
	}
	require.Equal(t, "snap:2000", back.TrainingFingerprint)
	_, err = Unmarshal(data[:len(data)-40])
	require.ErrorIs(t, err, ErrBadArtifact)
	// A leaf altered in the payload: the checksum catches it.
	i := len(data) / 2
	for data[i] < '1' || data[i] > '8' {
		i++
	}
	data[i]++
	_, err = Unmarshal(data)
	require.ErrorContains(t, err, "checksum mismatch")
}
