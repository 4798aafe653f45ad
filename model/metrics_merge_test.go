package model

import (
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"
)

// Scorers over consecutive runs of rows, stored as state and merged in order, give one
// scorer's metrics: rows, accuracy, AUC and log loss exactly (a classifier), MAE, RMSE, MAPE
// and R2 within a relative 1e-12; per segment too.
func TestMergedScorersEqualOneScorer(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 9))
	for trial := range 100 {
		classifier := trial%2 == 0
		n := 1 + rng.IntN(500)
		one := NewSegmentScorer(classifier)
		var parts []*SegmentScorer
		for r := 0; r < n; r++ {
			if r == 0 || rng.IntN(40) == 0 {
				parts = append(parts, NewSegmentScorer(classifier))
			}
			seg := []string{"", "a", "b"}[rng.IntN(3)]
			pred, y := rng.Float64()*10, float64(rng.IntN(20))
			if classifier {
				pred, y = float64(rng.IntN(8))/8, float64(rng.IntN(2)) // ties in the scores
			}
			one.Add(seg, pred, y)
			parts[len(parts)-1].Add(seg, pred, y)
		}
		merged := SegmentScorerFrom(parts[0].State())
		for _, p := range parts[1:] {
			require.NoError(t, merged.Merge(SegmentScorerFrom(p.State())))
		}
		same := func(w, g Metrics) {
			require.Equal(t, w.Rows, g.Rows)
			for _, pair := range [][2]float64{{w.MAE, g.MAE}, {w.RMSE, g.RMSE}, {w.R2, g.R2}} {
				require.InDelta(t, pair[0], pair[1], 1e-12*max(1, math.Abs(pair[0])), "trial %d", trial)
			}
			require.Equal(t, w.AUC, g.AUC)
			require.Equal(t, w.Accuracy, g.Accuracy)
			if w.LogLoss != nil {
				require.InDelta(t, *w.LogLoss, *g.LogLoss, 1e-12)
			}
		}
		same(one.All.Metrics(), merged.All.Metrics())
		ws, gs := one.Segments(), merged.Segments()
		require.Len(t, gs, len(ws))
		for k := range ws {
			same(ws[k], gs[k])
		}
	}
	require.Error(t, NewScorer(true).Merge(NewScorer(false)), "a classifier's and a regressor's")
}
