package model

import (
	"bytes"
	"encoding/gob"
	"encoding/json"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/model/hparams"
)

// A training resumed from the state a checkpoint stored after round k (through gob, as the
// Train activity stores it) ends with the very ensemble and log of a training that never
// stopped: row and column sampling, early stopping and every objective included.
func TestGBDTResumedTrainingIsTheUninterruptedOne(t *testing.T) {
	const p = 5
	x, y := friedman(20000, p, 5, 1)
	vx, vy := friedman(4000, p, 6, 1)
	logit := make([]float64, len(y))
	for i, v := range y {
		if v > 14 {
			logit[i] = 1
		}
	}
	vlogit := make([]float64, len(vy))
	for i, v := range vy {
		if v > 14 {
			vlogit[i] = 1
		}
	}
	for _, objective := range []string{hparams.SquaredError, hparams.AbsoluteError, hparams.BinaryLogLoss} {
		t.Run(objective, func(t *testing.T) {
			ty, vty := y, vy
			if objective == hparams.BinaryLogLoss {
				ty, vty = logit, vlogit
			}
			m, b := binned(t, x, ty, p, nil, nil)
			v, _ := binned(t, vx, vty, p, nil, b)
			params := hparams.Default()
			params.Objective, params.Trees, params.Subsample, params.ColsampleByTree, params.Seed = objective, 40, 0.7, 0.6, 7
			params.EarlyStoppingRounds, params.LearningRate = 5, 0.3
			var states []BoostState
			whole, wlog, err := TrainGBDTWith(m, v, b, params, BoostOptions{Checkpoint: func(rounds int, state func() BoostState) {
				if rounds == 3 || rounds == 17 {
					states = append(states, state())
				}
			}})
			require.NoError(t, err)
			require.Len(t, states, 2)
			want, err := json.Marshal(whole)
			require.NoError(t, err)
			for _, st := range states {
				var buf bytes.Buffer
				require.NoError(t, gob.NewEncoder(&buf).Encode(st))
				var back BoostState
				require.NoError(t, gob.NewDecoder(&buf).Decode(&back))
				resumed, rlog, err := TrainGBDTWith(m, v, b, params, BoostOptions{Resume: &back})
				require.NoError(t, err)
				got, err := json.Marshal(resumed)
				require.NoError(t, err)
				require.Equal(t, string(want), string(got), "resumed after round %d", st.Rounds)
				require.Equal(t, wlog, rlog)
			}
			// A state of another training is refused, not trained on.
			other := states[0]
			other.Order = other.Order[1:]
			_, _, err = TrainGBDTWith(m, v, b, params, BoostOptions{Resume: &other})
			require.ErrorContains(t, err, "not of this training")
		})
	}
}
