package evaluate

import (
	"fmt"
	"math"

	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
)

// EstimatorPrediction is the loss estimator's last input: the model's prediction.
const EstimatorPrediction = "prediction"

// MinEstimatorRows is the fewest holdout rows a loss estimator is trained on.
const MinEstimatorRows = 500

// TrainLossEstimator fits direct loss estimation (as NannyML's DLE): a small gbdt that
// predicts a row's absolute error from the model's features and its prediction, on holdout
// rows x (row-major, the model's feature order) with targets y. The monitor averages it over
// live requests to estimate the MAE before labels arrive. It assumes the errors depend on the
// inputs as on the holdout (no concept drift) and, like any tree model, does not extrapolate
// beyond the holdout's ranges.
func TrainLossEstimator(m *model.Model, x, y []float64) (*model.Model, error) {
	p := len(m.Features)
	n := len(y)
	if n < MinEstimatorRows {
		return nil, fmt.Errorf("loss estimator: %d holdout rows, at least %d needed", n, MinEstimatorRows)
	}
	q := p + 1
	cols := make([][]float64, q)
	for j := range cols {
		cols[j] = make([]float64, n)
	}
	target := make([]float64, n)
	for i := range n {
		row := x[i*p : i*p+p]
		pred := m.Predict(row)
		for j, v := range row {
			cols[j][i] = v
		}
		cols[p][i] = pred
		target[i] = math.Abs(pred - y[i])
	}
	cat := make([]bool, q)
	features := append(append([]string(nil), m.Features...), EstimatorPrediction)
	inputs := make([]model.Input, q)
	for j := range p {
		if j < len(m.Inputs) {
			inputs[j] = m.Inputs[j]
			cat[j] = m.Inputs[j].Kind == drift.Categorical
		} else {
			inputs[j] = model.Input{Name: m.Features[j], Type: "double", Kind: drift.Numeric}
		}
	}
	inputs[p] = model.Input{Name: EstimatorPrediction, Type: "double", Kind: drift.Numeric}
	params := hparams.Default()
	params.Trees, params.MaxDepth, params.LearningRate, params.Seed = 60, 4, 0.1, 1
	binner, err := model.NewBinner(cols, cat, params.MaxBins)
	if err != nil {
		return nil, fmt.Errorf("loss estimator: %w", err)
	}
	mat := model.NewMatrix(q, n)
	row := make([]float64, q)
	for i := range n {
		for j := range q {
			row[j] = cols[j][i]
		}
		mat.Append(binner, row, target[i])
	}
	e, _, err := model.TrainGBDT(mat, nil, binner, params)
	if err != nil {
		return nil, fmt.Errorf("loss estimator: %w", err)
	}
	est := &model.Model{Family: model.FamilyGBDT, Trainer: "gbdt", Objective: hparams.SquaredError, Features: features, Inputs: inputs,
		Target: "absolute_error", GBDT: e, TrainingFingerprint: fmt.Sprintf("holdout:%d", n)}
	est.Params, est.Settings = params.Settings()
	return est, nil
}

// TrainCalibrator fits the calibration that confidence-based performance estimation (as
// NannyML's CBPE) reads, for a classifier: a small gbdt of the model's score alone (log loss,
// so its output is P(label 1 | score) as the holdout shows it), on holdout rows x with labels
// y. The monitor turns each live request's calibrated probability into the chance its
// thresholded answer is right and averages it: the expected accuracy before labels arrive.
// It assumes P(label | score) holds (covariate shift is fine; concept drift is not). It is
// registered in the loss estimator's place (the variant loss-estimator: the version's
// performance estimator); its objective says which it is.
func TrainCalibrator(m *model.Model, x, y []float64) (*model.Model, error) {
	p := len(m.Features)
	n := len(y)
	if n < MinEstimatorRows {
		return nil, fmt.Errorf("calibrator: %d holdout rows, at least %d needed", n, MinEstimatorRows)
	}
	scores := make([]float64, n)
	for i := range n {
		scores[i] = m.Predict(x[i*p : i*p+p])
	}
	params := hparams.Default()
	params.Objective = hparams.BinaryLogLoss
	params.Trees, params.MaxDepth, params.LearningRate, params.Seed = 100, 2, 0.3, 1
	binner, err := model.NewBinner([][]float64{scores}, []bool{false}, params.MaxBins)
	if err != nil {
		return nil, fmt.Errorf("calibrator: %w", err)
	}
	mat := model.NewMatrix(1, n)
	for i := range n {
		mat.Append(binner, scores[i:i+1], y[i])
	}
	e, _, err := model.TrainGBDT(mat, nil, binner, params)
	if err != nil {
		return nil, fmt.Errorf("calibrator: %w", err)
	}
	cal := &model.Model{Family: model.FamilyGBDT, Trainer: "gbdt", Objective: hparams.BinaryLogLoss, Features: []string{EstimatorPrediction},
		Inputs: []model.Input{{Name: EstimatorPrediction, Type: "double", Kind: drift.Numeric}}, Target: m.Target, GBDT: e,
		TrainingFingerprint: fmt.Sprintf("holdout:%d", n)}
	cal.Params, cal.Settings = params.Settings()
	return cal, nil
}
