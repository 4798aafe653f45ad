package training

import (
	"context"
	"encoding/json"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// A window with more training rows than trainer.max_rows trains gbdt on a sample: every day
// at the same rate by a hash of the row, the same sample on every attempt (byte-identical
// models), recorded in the model's lineage (its size, the rows it was drawn from, each day's
// rows). Its quality cost is measured on the holdout against the whole window.
func TestGBDTTrainsOnADaySampleOfALargeWindow(t *testing.T) {
	ctx := context.Background()
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	b := objstore.NewMem()
	cfg := dataset.DefaultRetail()
	cfg.Days, cfg.Stores, cfg.Items = 21, 20, 50
	_, _, err = dataset.WriteRetail(ctx, b, sp.Dataset.Name, cfg)
	require.NoError(t, err)
	s, err := dataset.TakeSnapshot(ctx, b, sp.Dataset.Name, "t", cfg.Start, cfg.Start.AddDate(0, 0, cfg.Days-1))
	require.NoError(t, err)
	cut := cfg.Start.AddDate(0, 0, 14).Format(dataset.DateLayout)
	var trainDayRows int64
	for _, f := range s.Files {
		if f.Date < cut {
			trainDayRows += f.Rows
		}
	}
	sp.Trainer.Params["trees"] = 60
	train := func(maxRows int64) (*model.Model, Stats) {
		sp := sp
		sp.Trainer.MaxRows = maxRows
		rows := dataset.ScanSource(ctx, b, s, sp.Contract, dataset.Before(cut))
		m, st, err := Train(Input{Spec: sp, Rows: rows, Binner: binsOf(t, sp, rows, s.Rows), WindowRows: s.Rows, Fingerprint: s.ID, TrainDayRows: trainDayRows})
		require.NoError(t, err)
		return m, st
	}
	whole, wst := train(0)
	require.Zero(t, wst.SampledFrom, "the default bound holds the whole window")
	require.NotContains(t, whole.Settings, "sample")

	sampled, st := train(3000)
	require.Equal(t, trainDayRows, st.SampledFrom)
	require.InDelta(t, 3000, st.Rows, 200, "about max_rows rows (a binomial draw at rate 3000/%d)", trainDayRows)
	require.Equal(t, float64(st.Rows), sampled.Params["sample_rows"])
	require.Equal(t, float64(trainDayRows), sampled.Params["sample_of_rows"])
	var days []struct {
		Day  string `json:"day"`
		Rows int64  `json:"rows"`
	}
	require.NoError(t, json.Unmarshal([]byte(sampled.Settings["sample_days"]), &days))
	require.Len(t, days, 14, "every training day sampled")
	var sum int64
	for _, d := range days {
		require.InDelta(t, 3000.0/14, float64(d.Rows), 60, "day %s keeps its share", d.Day)
		sum += d.Rows
	}
	require.Equal(t, int64(st.Rows), sum)
	again, _ := train(3000)
	a, err := sampled.Marshal()
	require.NoError(t, err)
	a2, err := again.Marshal()
	require.NoError(t, err)
	require.Equal(t, string(a), string(a2), "the same sample and the same model on every attempt")

	wholeMAE, sampleMAE := holdoutMAE(t, b, s, sp, cut, whole), holdoutMAE(t, b, s, sp, cut, sampled)
	t.Logf("holdout MAE: the whole window (%d rows) %.4f, a sample of %d rows %.4f (%+.1f%%)", wst.Rows, wholeMAE, st.Rows, sampleMAE, 100*(sampleMAE/wholeMAE-1))
	require.Less(t, sampleMAE, 1.15*wholeMAE, "a sample of a fifth of the rows costs little accuracy")
}

// binsOf cuts the gbdt bins from the rows, as the window's pass does.
func binsOf(t *testing.T, sp spec.Spec, rows dataset.Source, windowRows int64) *model.Binner {
	prep, err := NewPrep(sp, windowRows)
	require.NoError(t, err)
	require.NoError(t, rows(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			if bt.Accepted[r] {
				prep.Add(bt, r)
			}
		}
		return nil
	}))
	binner, err := prep.Binner()
	require.NoError(t, err)
	return binner
}

// holdoutMAE is m's mean absolute error over the accepted rows from cut on.
func holdoutMAE(t *testing.T, b objstore.Bucket, s dataset.Snapshot, sp spec.Spec, cut string, m *model.Model) float64 {
	var sum float64
	var n int
	x := make([]float64, len(sp.Features))
	require.NoError(t, dataset.ScanSource(context.Background(), b, s, sp.Contract, dataset.From(cut))(func(bt *dataset.Batch) error {
		y := bt.Num(sp.Target)
		for r := 0; r < bt.Rows; r++ {
			if !bt.Accepted[r] {
				continue
			}
			for i, f := range sp.Features {
				x[i] = bt.Num(f)[r]
			}
			sum += math.Abs(m.Predict(x) - y[r])
			n++
		}
		return nil
	}))
	require.Positive(t, n)
	return sum / float64(n)
}
