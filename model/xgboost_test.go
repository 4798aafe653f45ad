package model

import (
	"encoding/csv"
	"math"
	"os"
	"strconv"
	"testing"

	"github.com/stretchr/testify/require"
)

// The fixture (testdata/xgboost, made by make_fixture.py with XGBoost 1.7.4) holds two
// models XGBoost saved as JSON, the rows and XGBoost's own predictions for them.
func TestXGBoostJSONGivesXGBoostsPredictions(t *testing.T) {
	f, err := os.Open("testdata/xgboost/data.csv")
	require.NoError(t, err)
	defer f.Close()
	recs, err := csv.NewReader(f).ReadAll()
	require.NoError(t, err)
	for _, c := range []struct {
		file string
		col  int
	}{{"regression.json", 4}, {"binary.json", 5}} {
		data, err := os.ReadFile("testdata/xgboost/" + c.file)
		require.NoError(t, err)
		require.True(t, IsXGBoostJSON(data))
		m, err := LoadXGBoostJSON(data, nil, "y")
		require.NoError(t, err, c.file)
		require.Equal(t, []string{"x0", "x1", "x2", "x3"}, m.Features)
		// Through the artifact format: checksummed and reloaded.
		art, err := m.Marshal()
		require.NoError(t, err)
		m, err = Unmarshal(art)
		require.NoError(t, err)
		missing := 0
		for _, r := range recs[1:] {
			x := make([]float64, 4)
			for j := range x {
				if r[j] == "" {
					x[j] = math.NaN()
					missing++
					continue
				}
				x[j], _ = strconv.ParseFloat(r[j], 64)
			}
			want, _ := strconv.ParseFloat(r[c.col], 64)
			got := m.Predict(x)
			require.InDelta(t, want, got, 1e-6*math.Max(1, math.Abs(want)), "%s row %v", c.file, r)
			base, phi := m.Explain(x)
			sum := base
			for _, v := range phi {
				sum += v
			}
			// Exact in float64: the same leaves summed without XGBoost's float32 rounding.
			exact := m.GBDT.BaseScore
			x32 := roundFloat32(x)
			for k := range m.GBDT.Trees {
				tr := &m.GBDT.Trees[k]
				exact += tr.Value[tr.leaf(x32, nil)]
			}
			require.InDelta(t, exact, sum, 1e-9)
			require.InDelta(t, m.GBDT.Margin(x), exact, 1e-5)
		}
		require.Positive(t, missing)
	}
}

func TestXGBoostJSONErrorsNameTheProblem(t *testing.T) {
	data, err := os.ReadFile("testdata/xgboost/regression.json")
	require.NoError(t, err)
	_, err = LoadXGBoostJSON(data, []string{"a"}, "y")
	require.ErrorContains(t, err, "4 features, 1 names")
	_, err = LoadXGBoostJSON([]byte(`{"learner":{"gradient_booster":{"name":"gblinear"}}}`), nil, "y")
	require.ErrorContains(t, err, "gblinear")
	_, err = LoadXGBoostJSON(data[:100], nil, "y")
	require.ErrorIs(t, err, ErrBadArtifact)
}
