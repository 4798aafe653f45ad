package training

import (
	"context"
	"math"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// window writes days of the demo dataset to an in-memory bucket and pins them.
func window(t *testing.T, days int) (objstore.Bucket, dataset.Snapshot, spec.Spec) {
	t.Helper()
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	b := objstore.NewMem()
	cfg := dataset.DefaultRetail()
	cfg.Days, cfg.Stores, cfg.Items = days, 5, 20
	_, _, err = dataset.WriteRetail(context.Background(), b, sp.Dataset.Name, cfg)
	require.NoError(t, err)
	s, err := dataset.TakeSnapshot(context.Background(), b, sp.Dataset.Name, "t", cfg.Start, cfg.Start.AddDate(0, 0, days-1))
	require.NoError(t, err)
	return b, s, sp
}

// Prep over the training rows, then one pass of Train over the same rows: a gbdt that fits,
// with a profile of exactly those rows.
func TestPrepThenTrainOnePass(t *testing.T) {
	b, s, sp := window(t, 14)
	ctx := context.Background()
	rows := dataset.ScanSource(ctx, b, s, sp.Contract, dataset.Before("2026-09-11"))
	prep, err := NewPrep(sp, s.Rows)
	require.NoError(t, err)
	passes := 0
	counted := func(visit func(*dataset.Batch) error) error { passes++; return rows(visit) }
	require.NoError(t, counted(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			if bt.Accepted[r] {
				prep.Add(bt, r)
			}
		}
		return nil
	}))
	binner, err := prep.Binner()
	require.NoError(t, err)
	require.NotNil(t, binner)
	prof := prep.Profile()
	require.Len(t, prof.Features, len(sp.Features))
	sp.Trainer.Params["trees"] = 20
	m, st, err := Train(Input{Spec: sp, Rows: counted, Binner: binner, WindowRows: s.Rows, Fingerprint: s.ID})
	require.NoError(t, err)
	require.Equal(t, 2, passes, "prep once, train once")
	require.Equal(t, "gbdt", m.Family)
	require.Positive(t, st.Trees)
	require.Less(t, st.RMSE, 3.0, "the demo's demand is learnable")
	require.InDelta(t, 10*100, float64(st.Rows), 10, "ten days of 100 store-items, minus the quarantined rows")
	require.Equal(t, "t:"+itoa(st.Rows), m.TrainingFingerprint)
	x := []float64{5, 1, 3, 15, 2}
	require.False(t, math.IsNaN(m.Predict(x)))
}

func TestTrainErrorsAreInvalidData(t *testing.T) {
	b, s, sp := window(t, 3)
	ctx := context.Background()
	none := dataset.ScanSource(ctx, b, s, sp.Contract, func(string) bool { return false })
	_, _, err := Train(Input{Spec: sp, Rows: none})
	require.ErrorIs(t, err, dataset.ErrInvalidData, "gbdt without bins")
	sp.Trainer.Name = "ridge"
	_, _, err = Train(Input{Spec: sp, Rows: none})
	require.ErrorIs(t, err, dataset.ErrInvalidData)
	require.ErrorContains(t, err, "only 0 training rows for 5 features")
	sp.Trainer.Name = "forest"
	_, _, err = Train(Input{Spec: sp, Rows: none})
	require.ErrorContains(t, err, `unknown trainer "forest"`)
	// ridge on real rows works from the same source in one pass.
	sp.Trainer.Name, sp.Trainer.Params = "ridge", nil
	m, st, err := Train(Input{Spec: sp, Rows: dataset.ScanSource(ctx, b, s, sp.Contract, dataset.AllDays), Fingerprint: "f"})
	require.NoError(t, err)
	require.Equal(t, "linear", m.Family)
	require.Positive(t, st.RMSE)
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}
