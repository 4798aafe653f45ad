package monitor_test

import (
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/monitor"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/spec"
)

// churn draws n rows of a binary problem: P(label 1) = sigmoid(2 x1 - 1 + x2 + concept x2),
// x1 ~ N(shift, 1), x2 ~ U(0, 1).
func churn(rng *rand.Rand, n int, shift, concept float64) (x, y []float64) {
	for range n {
		x1, x2 := rng.NormFloat64()+shift, rng.Float64()
		p := 1 / (1 + math.Exp(-(2*x1 - 1 + x2 + concept*x2)))
		label := 0.0
		if rng.Float64() < p {
			label = 1
		}
		x, y = append(x, x1, x2), append(y, label)
	}
	return x, y
}

// trainClassifier fits a gbdt classifier (log loss) on rows x of two features.
func trainClassifier(t *testing.T, x, y []float64) *model.Model {
	t.Helper()
	n := len(y)
	cols := [][]float64{make([]float64, n), make([]float64, n)}
	for i := range n {
		cols[0][i], cols[1][i] = x[2*i], x[2*i+1]
	}
	params := hparams.Default()
	params.Objective, params.Trees, params.MaxDepth, params.Seed = hparams.BinaryLogLoss, 80, 3, 1
	b, err := model.NewBinner(cols, []bool{false, false}, params.MaxBins)
	require.NoError(t, err)
	mat := model.NewMatrix(2, n)
	for i := range n {
		mat.Append(b, x[2*i:2*i+2], y[i])
	}
	e, _, err := model.TrainGBDT(mat, nil, b, params)
	require.NoError(t, err)
	return &model.Model{Family: model.FamilyGBDT, Trainer: "gbdt", Objective: hparams.BinaryLogLoss, Features: []string{"x1", "x2"},
		Inputs: []model.Input{{Name: "x1", Type: "double", Kind: drift.Numeric}, {Name: "x2", Type: "double", Kind: drift.Numeric}},
		Target: "churned", GBDT: e}
}

// Confidence-based performance estimation for a classifier: the calibrator (fit on the
// holdout's scores) estimates each window's accuracy before labels; under covariate shift
// (x1's mean moving from -1.5 to 1.5, the accuracy moving with it) the estimate is within 3
// points of the accuracy the labels then show in every window, and the expected |score -
// label| within 10% of the live MAE. Under concept drift (the labels answer x2 differently)
// it cannot know, as documented; the test shows the gap.
func TestCBPEEstimatesAccuracyBeforeLabels(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	tx, ty := churn(rng, 8000, 0, 0)
	clf := trainClassifier(t, tx, ty)
	hx, hy := churn(rng, 5000, 0, 0)
	cal, err := evaluate.TrainCalibrator(clf, hx, hy)
	require.NoError(t, err)
	require.True(t, cal.Classifier())
	sp, err := spec.Load("../examples/demand.yaml")
	require.NoError(t, err)
	sp.Features, sp.Monitoring.Decision, sp.Fairness.ProtectedAttribute = []string{"x1", "x2"}, nil, ""

	window := func(w int, shift, concept float64) monitor.Report {
		x, y := churn(rng, 3000, shift, concept)
		var recs []predlog.Record
		var labels []predlog.Label
		answered := map[string]predlog.Record{}
		for i := range y {
			in, _ := json.Marshal(map[string]float64{"x1": x[2*i], "x2": x[2*i+1]})
			id := fmt.Sprintf("w%d-%d", w, i)
			r := predlog.Record{RequestID: id, Version: 1, Route: string(pipeline.RouteProduction), Prediction: clf.Predict(x[2*i : 2*i+2]), Inputs: string(in)}
			recs, answered[id] = append(recs, r), r
			labels = append(labels, predlog.Label{RequestID: id, Label: y[i]})
		}
		rep := monitor.Compute(monitor.Input{Spec: sp, Version: 1, Model: clf, Estimator: cal, FavorableAbove: math.NaN(),
			Records: recs, Labels: labels, Answered: answered, To: time.Now()})
		require.NotNil(t, rep.Estimated)
		require.Equal(t, "cbpe", rep.Estimated.Method)
		require.NotNil(t, rep.Live.Accuracy)
		return rep
	}
	for w, shift := range []float64{-1.5, -1, -0.5, 0, 0.5, 1, 1.5} {
		rep := window(w, shift, 0)
		est, live := rep.Estimated.Accuracy, *rep.Live.Accuracy
		t.Logf("x1 mean %+.1f: estimated accuracy %.3f, realised %.3f (%+.3f); estimated MAE %.3f, live %.3f", shift, est, live, est-live,
			rep.Estimated.MAE, rep.Live.MAE)
		require.InDelta(t, live, est, 0.03, "covariate shift %+.1f", shift)
		require.InDelta(t, 1, rep.Estimated.MAE/rep.Live.MAE, 0.10)
	}
	rep := window(99, 0, -4) // concept drift: x2 now pushes the other way
	t.Logf("concept drift: estimated accuracy %.3f, realised %.3f (CBPE assumes P(label | score) holds)", rep.Estimated.Accuracy, *rep.Live.Accuracy)
	require.Greater(t, rep.Estimated.Accuracy-*rep.Live.Accuracy, 0.03, "concept drift is what CBPE cannot see")
}
