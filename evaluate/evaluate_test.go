package evaluate

import (
	"context"
	"math"
	"math/rand/v2"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
	"github.com/driftline/driftline/training"
)

// fixture is a candidate (gbdt) and a champion (ridge) trained on 7 days of the demo data,
// and the 7 holdout days after them.
type fixture struct {
	sp          spec.Spec
	b           objstore.Bucket
	s           dataset.Snapshot
	cand, champ *model.Model
}

const cut = "2026-09-08"

func newFixture(t *testing.T) fixture {
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
	ridge := sp
	ridge.Trainer.Name, ridge.Trainer.Params = "ridge", nil
	return fixture{sp: sp, b: b, s: s, cand: trainOn(sp), champ: trainOn(ridge)}
}

// A candidate and a champion trained on the demo data, evaluated on the same holdout rows: the
// numbers Run reports are the ones a direct computation over the same rows gives.
func TestRunScoresBothModelsOnTheSameRows(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sp, cand, champ := f.sp, f.cand, f.champ
	holdout := dataset.ScanSource(ctx, f.b, f.s, sp.Contract, dataset.From(cut))
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

// The holdout's days evaluated as partitions (any cut into runs of days, each summary stored
// and read back) and merged in order give one pass's evaluation: the same rows, segments,
// fairness groups, importance, int8 variant, loss estimator, MAE, RMSE, MAPE and R2, bit for
// bit (the sums are exact).
func TestPartitionedEvaluationEqualsOnePass(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	sp := f.sp
	in := Input{Spec: sp, Rows: dataset.ScanSource(ctx, f.b, f.s, sp.Contract, dataset.From(cut)), HoldoutFrom: cut, Candidate: f.cand, Champion: f.champ, ChampionVersion: 1}
	one, err := Run(in)
	require.NoError(t, err)
	var days []string
	for _, file := range f.s.Files {
		if file.Date >= cut {
			days = append(days, file.Date)
		}
	}
	require.Len(t, days, 7)
	rng := rand.New(rand.NewPCG(5, 5))
	for trial := range 6 {
		var merged *Summary
		for lo := 0; lo < len(days); {
			hi := min(lo+1+rng.IntN(4), len(days))
			from, to := days[lo], days[hi-1]
			part, err := Start(in)
			require.NoError(t, err)
			require.NoError(t, part.Add(dataset.ScanSource(ctx, f.b, f.s, sp.Contract, func(d string) bool { return d >= from && d <= to })))
			raw, err := part.MarshalBinary()
			require.NoError(t, err)
			back, err := UnmarshalSummary(in, raw)
			require.NoError(t, err)
			if merged == nil {
				merged = back
			} else {
				require.NoError(t, merged.Merge(back))
			}
			lo = hi
		}
		got, err := Finish(in, merged)
		require.NoError(t, err)
		w, g := one.Report, got.Report
		q := *g.Quantized // its timings are measured, not computed
		q.NsPerRow, q.FloatNsPerRow = w.Quantized.NsPerRow, w.Quantized.FloatNsPerRow
		g.Quantized = &q
		require.Equal(t, w, g, "trial %d", trial)
		wi, err := one.Int8.Marshal()
		require.NoError(t, err)
		gi, err := got.Int8.Marshal()
		require.NoError(t, err)
		require.Equal(t, string(wi), string(gi), "the int8 variant")
		wl, err := one.LossEstimator.Marshal()
		require.NoError(t, err)
		gl, err := got.LossEstimator.Marshal()
		require.NoError(t, err)
		require.Equal(t, string(wl), string(gl), "the loss estimator")
		require.Equal(t, one.PredictionProfile, got.PredictionProfile)
	}
}
