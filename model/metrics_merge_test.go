package model

import (
	"math/rand/v2"
	"testing"

	"github.com/driftline/driftline/internal/exactsum"
	"github.com/stretchr/testify/require"
)

// Scorers over runs of rows, stored as state and merged in any order, give one scorer's
// metrics bit for bit: rows, MAE, RMSE, MAPE, R2, accuracy, AUC and log loss; per segment too.
// Targets near 1e6 with errors of 1e-3 make sums in floating point lose their last digits.
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
			y := 1e6 + float64(rng.IntN(20))
			pred := y + rng.NormFloat64()*1e-3
			if classifier {
				pred, y = float64(rng.IntN(8))/8, float64(rng.IntN(2)) // ties in the scores
			}
			one.Add(seg, pred, y)
			parts[len(parts)-1].Add(seg, pred, y)
		}
		merged := NewSegmentScorer(classifier)
		for _, i := range rng.Perm(len(parts)) {
			p, err := SegmentScorerFrom(parts[i].State())
			require.NoError(t, err)
			require.NoError(t, merged.Merge(p))
		}
		require.Equal(t, one.All.Metrics(), merged.All.Metrics(), "trial %d", trial)
		require.Equal(t, one.Segments(), merged.Segments(), "trial %d", trial)
		if !classifier {
			m := one.All.Metrics()
			require.Greater(t, m.R2, 0.0, "the target's variance kept its digits (mean 1e6)")
		}
	}
	legacy := ScorerState{N: 4, MapeN: 4, AbsSum: 2, SqSum: 1.5, ApeSum: 0.2, YMean: 10, YM2: 5}
	s, err := ScorerFrom(legacy)
	require.NoError(t, err, "a state stored before the sums were exact")
	m := s.Metrics()
	require.InEpsilon(t, 0.5, m.MAE, 1e-12)
	require.InEpsilon(t, 1-1.5/5, m.R2, 1e-12)
	_, err = ScorerFrom(ScorerState{Exact: true, Loss: exactsum.State{Int: []byte{1}, Shift: 1 << 20}})
	require.ErrorContains(t, err, "more than a sum holds")
	require.Error(t, NewScorer(true).Merge(NewScorer(false)), "a classifier's and a regressor's")
}
