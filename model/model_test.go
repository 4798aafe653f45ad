package model

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

func synth(n int, seed uint64) ([][]float64, []float64) {
	r := rand.New(rand.NewPCG(seed, 3))
	x0, x1, x2 := make([]float64, n), make([]float64, n), make([]float64, n)
	y := make([]float64, n)
	for i := range n {
		x0[i], x1[i], x2[i] = r.NormFloat64()*3+10, r.Float64(), 5 // x2 is constant
		y[i] = 4 + 2*x0[i] - 7*x1[i] + 0.01*r.NormFloat64()
	}
	return [][]float64{x0, x1, x2}, y
}

func TestRidgeRecoversCoefficients(t *testing.T) {
	cols, y := synth(5000, 1)
	m, err := TrainRidge(cols, y, 0)
	require.NoError(t, err)
	// Back on the original scale: slope = w / scale.
	require.InDelta(t, 2, m.Coef[0]/m.Scales[0], 1e-3)
	require.InDelta(t, -7, m.Coef[1]/m.Scales[1], 1e-2)
	require.InDelta(t, 0, m.Coef[2], 1e-12, "constant feature")
	// Penalty shrinks the coefficients.
	shrunk, err := TrainRidge(cols, y, 5000)
	require.NoError(t, err)
	require.Less(t, math.Abs(shrunk.Coef[0]), math.Abs(m.Coef[0]))
}

func TestRidgeErrors(t *testing.T) {
	_, err := TrainRidge(nil, []float64{1, 2}, 1)
	require.ErrorContains(t, err, "no features")
	_, err = TrainRidge([][]float64{{1}}, []float64{1}, 1)
	require.ErrorContains(t, err, "at least 2 rows")
	_, err = TrainRidge([][]float64{{1, 2, 3}}, []float64{1, 2}, 1)
	require.ErrorContains(t, err, "has 3 rows")
}

func TestExplainSumsToPrediction(t *testing.T) {
	cols, y := synth(500, 2)
	lin, err := TrainRidge(cols, y, 1)
	require.NoError(t, err)
	for i := range 50 {
		x := []float64{cols[0][i], cols[1][i], cols[2][i]}
		base, c := lin.Explain(x)
		s := base
		for _, v := range c {
			s += v
		}
		require.InDelta(t, lin.Predict(x), s, 1e-9)
	}
}

func TestArtifactRoundTripAndTamper(t *testing.T) {
	cols, y := synth(200, 3)
	lin, err := TrainRidge(cols, y, 1)
	require.NoError(t, err)
	m := &Model{Family: "linear", Trainer: "ridge", Features: []string{"a", "b", "c"}, Target: "y", Linear: lin}
	data, err := m.Marshal()
	require.NoError(t, err)
	back, err := Unmarshal(data)
	require.NoError(t, err)
	x := []float64{1, 2, 3}
	require.Equal(t, m.Predict(x), back.Predict(x))

	_, err = Unmarshal(data[:len(data)/2])
	require.ErrorIs(t, err, ErrBadArtifact)
	tampered := []byte(string(data))
	i := len(tampered) - 20
	for tampered[i] < '0' || tampered[i] > '8' {
		i--
	}
	tampered[i]++
	_, err = Unmarshal(tampered)
	require.ErrorIs(t, err, ErrBadArtifact)
	require.ErrorContains(t, err, "checksum mismatch")

	// A pretty-printed artifact (someone's editor) still loads: its payload is compacted
	// before the check; altered, it is refused the same.
	var pretty bytes.Buffer
	require.NoError(t, json.Indent(&pretty, data, "", "  "))
	back, err = Unmarshal(pretty.Bytes())
	require.NoError(t, err)
	require.Equal(t, m.Predict(x), back.Predict(x))
	var prettyTampered bytes.Buffer
	require.NoError(t, json.Indent(&prettyTampered, tampered, "", "  "))
	_, err = Unmarshal(prettyTampered.Bytes())
	require.ErrorContains(t, err, "checksum mismatch")
}

func TestVectorNamesMissingFeature(t *testing.T) {
	m := &Model{Family: "linear", Features: []string{"a", "b"}}
	_, err := m.Vector(map[string]float64{"a": 1})
	var mf *MissingFeatureError
	require.ErrorAs(t, err, &mf)
	require.Equal(t, "b", mf.Feature)
	_, err = m.Vector(map[string]float64{"a": 1, "b": math.Inf(1)})
	require.ErrorContains(t, err, `"b"`)
}
