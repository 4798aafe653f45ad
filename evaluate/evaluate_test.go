package evaluate

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/training"
)

// A candidate and a champion trained on the demo data, evaluated on the same holdout rows: the
// numbers Run reports are the ones a direct computation over the same rows gives.
func TestRunScoresBothModelsOnTheSameRows(t *testing.T) {
	ctx := context.Background()
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Trainer.Params["trees"] = 15
	b := objstore.NewMem()
	cfg := dataset.DefaultRetail()
	cfg.Days, cfg.Stores, cfg.Items = 14, 8, 20
	_, _, err = dataset.WriteRetail(ctx, b, sp.Dataset.Name, cfg)
	require.NoError(t, err)
	s, err := dataset.TakeSnapshot(ctx, b, sp.Dataset.Name, "e", cfg.Start, cfg.Start.AddDate(0, 0, 13))
	require.NoError(t, err)
	const cut = "2026-09-08"
	trainOn := func(sp spec.Spec) *model.Model {
		rows := dataset.ScanSource(ctx, b, s, sp.Contract, dataset.Before(cut))
		prep, err := training.NewPrep(sp, s.Rows)
		require.NoError(t, err)
		require.NoError(t, rows(func(bt *dataset.Batch) error {
			for r := 0; r < bt.Rows; r++ {
				if bt.Accepted[r] {
					prep.Add(bt, r)
				}
			}
			return nil
		}))
		bins, err := prep.Binner()
		require.NoError(t, err)
		m, _, err := training.Train(training.Input{Spec: sp, Rows: rows, Binner: bins, WindowRows: s.Rows, Fingerprint: "e"})
		require.NoError(t, err)
		art, err := m.Marshal()
		require.NoError(t, err)
		m, err = model.Unmarshal(art) // as the activity loads it
		require.NoError(t, err)
		return m
	}
	cand := trainOn(sp)
	ridge := sp
	ridge.Trainer.Name, ridge.Trainer.Params = "ridge", nil
	champ := trainOn(ridge)

	holdout := dataset.ScanSource(ctx, b, s, sp.Contract, dataset.From(cut))
	res, err := Run(Input{Spec: sp, Rows: holdout, HoldoutFrom: cut, Candidate: cand, Champion: champ, ChampionVersion: 1})
	require.NoError(t, err)

	// The same numbers by hand, row by row.
	var n int
	var cAbs, pAbs float64
	x := make([]float64, len(sp.Features))
	fr, err := training.NewFeatures(sp)
	require.NoError(t, err)
	require.NoError(t, holdout(func(bt *dataset.Batch) error {
		y := bt.Num(sp.Target)
		for r := 0; r < bt.Rows; r++ {
			if !bt.Accepted[r] {
				continue
			}
			fr.Vector(bt, r, x)
			n++
			cAbs += math.Abs(cand.Predict(x) - y[r])
			pAbs += math.Abs(champ.Predict(x) - y[r])
		}
		return nil
	}))
	rep := res.Report
	require.Equal(t, n, rep.HoldoutRows)
	require.InDelta(t, cAbs/float64(n), rep.CandidateMAE, 1e-9)
	require.InDelta(t, pAbs/float64(n), rep.ChampionMAE, 1e-9)
	require.Equal(t, rep.CandidateMAE, res.Metrics["mae"])
	require.Len(t, rep.Candidate.Segments, 4, "one segment per region")
	require.NotNil(t, rep.Champion)
	require.Equal(t, "region", rep.Fairness.Attribute)
	require.Len(t, rep.Fairness.Groups, 4)
	require.Len(t, rep.Importance, len(sp.Features))
	require.Greater(t, rep.Importance["promo"], 0.0)
	require.NotNil(t, res.Int8)
	require.Empty(t, rep.Quantized.Error)
	require.Less(t, rep.Quantized.MAELoss, 0.05)
	require.Len(t, res.PredictionProfile.Features, 1)

	// No holdout rows: an error naming the cut, as invalid data.
	_, err = Run(Input{Spec: sp, Rows: dataset.Batches(), HoldoutFrom: "2030-01-01", Candidate: cand})
	require.ErrorIs(t, err, dataset.ErrInvalidData)
	require.ErrorContains(t, err, "no holdout rows on or after 2030-01-01")
}
