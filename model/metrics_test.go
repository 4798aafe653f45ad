package model

import (
	"testing"

	"github.com/stretchr/testify/require"
)

func TestRegressionMetrics(t *testing.T) {
	s := NewScorer(false)
	for i, y := range []float64{1, 2, 3, 4} {
		s.Add([]float64{1.5, 2, 2, 5}[i], y)
	}
	m := s.Metrics()
	require.InDelta(t, 0.625, m.MAE, 1e-12) // (0.5+0+1+1)/4
	require.InDelta(t, 0.75, m.RMSE, 1e-12) // sqrt((0.25+0+1+1)/4)
	require.InDelta(t, (0.5+0+1.0/3+0.25)/4, *m.MAPE, 1e-12)
	require.InDelta(t, 1-2.25/5, m.R2, 1e-12) // SSE 2.25, SST 5
	require.Nil(t, m.AUC)
}

func TestClassificationMetricsMatchSklearn(t *testing.T) {
	// sklearn: roc_auc_score([0,0,1,1,1,0],[0.1,0.4,0.35,0.8,0.4,0.2]) = 0.8333...;
	// log_loss(...) = 0.50476...; accuracy at 0.5 = 4/6.
	s := NewScorer(true)
	ys := []float64{0, 0, 1, 1, 1, 0}
	ps := []float64{0.1, 0.4, 0.35, 0.8, 0.4, 0.2}
	for i := range ys {
		s.Add(ps[i], ys[i])
	}
	m := s.Metrics()
	require.InDelta(t, 0.8333333333333334, *m.AUC, 1e-12)
	require.InDelta(t, 0.5047643497375115, *m.LogLoss, 1e-12)
	require.InDelta(t, 4.0/6, *m.Accuracy, 1e-12)
}

func TestSegmentScorer(t *testing.T) {
	s := NewSegmentScorer(false)
	s.Add("north", 1, 2)
	s.Add("south", 5, 5)
	s.Add("north", 3, 2)
	seg := s.Segments()
	require.InDelta(t, 1, seg["north"].MAE, 1e-12)
	require.InDelta(t, 0, seg["south"].MAE, 1e-12)
	require.Equal(t, 3, s.All.Metrics().Rows)
}
