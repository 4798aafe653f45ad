package evaluate

import (
	"fmt"
	"math"
	"slices"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/spec"
)

// ErrNoHoldout: the holdout days hold no accepted row. It wraps dataset.ErrInvalidData.
var ErrNoHoldout = fmt.Errorf("%w: no holdout rows", dataset.ErrInvalidData)

// How many holdout rows importance and the int8 measurement use.
const (
	ImportanceRows   = 2000
	QuantizationRows = 20000
)

// Input is one evaluation.
type Input struct {
	Spec spec.Spec
	// Rows streams the holdout days only.
	Rows        dataset.Source
	HoldoutFrom string
	Candidate   *model.Model
	// Champion is the production model (nil: first deployment), ChampionVersion its number.
	Champion        *model.Model
	ChampionVersion int
}

// LossEstimatorReport says what the performance estimator was trained on: the loss
// estimator (dle, regression) or the calibrator (cbpe, classification).
type LossEstimatorReport struct {
	Method string `json:"method,omitempty"`
	Rows   int    `json:"rows"`
	Error  string `json:"error,omitempty"`
}

// Report is stored at reports/<model>/<run>/evaluation.json.
type Report struct {
	HoldoutFrom     string                   `json:"holdout_from"`
	HoldoutRows     int                      `json:"holdout_rows"`
	CandidateMAE    float64                  `json:"candidate_mae"`
	ChampionVersion int                      `json:"champion_version,omitempty"`
	ChampionMAE     float64                  `json:"champion_mae,omitempty"`
	Threshold       float64                  `json:"max_mae"`
	Fairness        *pipeline.FairnessResult `json:"fairness,omitempty"`
	// Candidate and Champion hold every metric on the same holdout rows, overall and per
	// segment (Segments[value], by SegmentBy).
	SegmentBy string                       `json:"segment_by,omitempty"`
	Candidate ModelEvaluation              `json:"candidate"`
	Champion  *ModelEvaluation             `json:"champion,omitempty"`
	Quantized *pipeline.QuantizationReport `json:"quantization,omitempty"`
	// LossEstimator: the rows the monitor's loss estimator was trained on (regression).
	LossEstimator *LossEstimatorReport `json:"loss_estimator,omitempty"`
	// Importance is the candidate's global feature importance: mean |SHAP| over up to
	// ImportanceRows holdout rows.
	Importance map[string]float64 `json:"feature_importance,omitempty"`
}

// ModelEvaluation is one model's metrics on the holdout.
type ModelEvaluation struct {
	Overall  model.Metrics            `json:"overall"`
	Segments map[string]model.Metrics `json:"segments,omitempty"`
}

// Result is the evaluation: the report, the candidate's holdout output distribution (the
// reference for prediction drift) and its int8 variant (nil when none could be made or the
// spec disables it).
type Result struct {
	Report            Report
	Metrics           map[string]float64 // the candidate's metrics, flat (mae, rmse, r2, ...)
	PredictionProfile drift.Profile
	Int8              *model.Model
	// LossEstimator predicts a row's absolute error from its features and prediction
	// (regression, TrainLossEstimator) or calibrates a classifier's score (TrainCalibrator);
	// nil with too few holdout rows.
	LossEstimator *model.Model
}

// Run evaluates in one pass over in.Rows.
func Run(in Input) (Result, error) {
	s, err := Start(in)
	if err != nil {
		return Result{}, err
	}
	if err := s.Add(in.Rows); err != nil {
		return Result{}, err
	}
	return Finish(in, s)
}

// Summary is an evaluation's mergeable state over some of the holdout's rows: a partition's.
type Summary struct{ ps *pass }

// Start is an evaluation's state over no rows yet, for the input's models (its Rows unused).
func Start(in Input) (*Summary, error) {
	models := in.models()
	for _, m := range models {
		for _, f := range m.Features {
			if col, ok := in.Spec.Contract.Column(f); !ok || col.Type == contract.TypeString {
				return nil, fmt.Errorf("%w: feature %q of a model is not a numeric column of the contract", dataset.ErrInvalidData, f)
			}
		}
	}
	return &Summary{newPass(in.Spec, models)}, nil
}

// Add scores the rows.
func (s *Summary) Add(rows dataset.Source) error { return rows(s.ps.batch) }

func (in Input) models() []*model.Model {
	models := []*model.Model{in.Candidate}
	if in.Champion != nil {
		models = append(models, in.Champion)
	}
	return models
}

// Finish is the evaluation of the rows s holds: the report, the prediction profile, the
// importance over the first ImportanceRows rows, the loss estimator and the int8 variant.
func Finish(in Input, s *Summary) (Result, error) {
	sp, ps, models := in.Spec, s.ps, in.models()
	if ps.rows == 0 {
		return Result{}, fmt.Errorf("%w on or after %s", ErrNoHoldout, in.HoldoutFrom)
	}
	evals := make([]ModelEvaluation, len(models))
	for i := range models {
		evals[i] = ModelEvaluation{Overall: ps.scorers[i].All.Metrics(), Segments: ps.scorers[i].Segments()}
	}
	cand := in.Candidate
	rep := Report{HoldoutFrom: in.HoldoutFrom, HoldoutRows: ps.rows, CandidateMAE: evals[0].Overall.MAE, Threshold: sp.Evaluation.MaxMAE,
		SegmentBy: sp.Evaluation.SegmentBy, Candidate: evals[0], Importance: map[string]float64{}}
	importance, explained := ps.importance(cand)
	for j, f := range cand.Features {
		rep.Importance[f] = importance[j] / float64(max(explained, 1))
	}
	if ps.hasAttr {
		rep.Fairness = DisparateImpact(ps.attr.Name, ps.favorableAbove, ps.groups, sp.Fairness.MinGroupRows)
	}
	if len(models) > 1 {
		rep.ChampionVersion, rep.ChampionMAE, rep.Champion = in.ChampionVersion, evals[1].Overall.MAE, &evals[1]
	}
	res := Result{Report: rep, Metrics: MetricMap(evals[0].Overall), PredictionProfile: ps.preds.Profile()}
	res.lossEstimator(cand, ps.qrows, ps.qy)
	if !sp.Quantization.Disabled {
		res.quantize(cand, ps.qrows, ps.qy)
	}
	return res, nil
}

// pass is the evaluation's one pass over the holdout: per model, its scorer by segment; for
// the candidate, the fairness groups, its prediction profile, its importance over the first
// rows and the rows kept for the loss estimator and the int8 variant.
type pass struct {
	models         []*model.Model
	target         string
	scorers        []*model.SegmentScorer
	segCol, attr   contract.Column
	hasSeg         bool
	hasAttr        bool
	groups         Groups
	favorableAbove float64
	preds          *drift.ProfileBuilder
	rows           int
	qrows, qy      []float64
	// Per batch: the accepted rows, each model's row-major matrix of them and its outputs.
	idx        []int
	mats, outs [][]float64
}

func newPass(sp spec.Spec, models []*model.Model) *pass {
	ps := &pass{models: models, target: sp.Target, scorers: make([]*model.SegmentScorer, len(models)), groups: Groups{},
		favorableAbove: FavorableCut(models[0]), preds: drift.NewProfileBuilder([]string{drift.PredictionFeature}, []string{drift.Numeric}),
		mats: make([][]float64, len(models)), outs: make([][]float64, len(models))}
	for i, m := range models {
		ps.scorers[i] = model.NewSegmentScorer(m.Classifier())
	}
	ps.segCol, ps.hasSeg = sp.Contract.Column(sp.Evaluation.SegmentBy)
	// Fairness: favorable outcome = the candidate predicts at or above its expected value
	// (regression) or class 1 (classification).
	ps.attr, ps.hasAttr = sp.Contract.Column(sp.Fairness.ProtectedAttribute)
	return ps
}

// batch scores the batch's accepted rows with each model (gathered once into a row-major
// matrix), then scores, groups, explains and samples the rows in order.
func (ps *pass) batch(b *dataset.Batch) error {
	ps.idx = ps.idx[:0]
	for r := 0; r < b.Rows; r++ {
		if b.Accepted[r] {
			ps.idx = append(ps.idx, r)
		}
	}
	for i, m := range ps.models {
		p := len(m.Features)
		ps.mats[i] = slices.Grow(ps.mats[i][:0], len(ps.idx)*p)[:len(ps.idx)*p]
		for j, f := range m.Features {
			d := b.Cols[f]
			for k, r := range ps.idx {
				v := d.Num[r]
				if d.Null[r] {
					v = math.NaN()
				}
				ps.mats[i][k*p+j] = v
			}
		}
		ps.outs[i] = slices.Grow(ps.outs[i][:0], len(ps.idx))[:len(ps.idx)]
		for k := range ps.idx {
			ps.outs[i][k] = m.Predict(ps.mats[i][k*p : k*p+p])
		}
	}
	y := b.Num(ps.target)
	for k, r := range ps.idx {
		ps.add(b, k, r, y[r])
	}
	return nil
}

// add takes the batch's k-th accepted row (row r, target y).
func (ps *pass) add(b *dataset.Batch, k, r int, y float64) {
	cand := ps.models[0]
	ps.rows++
	segment := ""
	if ps.hasSeg {
		segment = b.Value(ps.segCol, r)
	}
	for i := range ps.models {
		ps.scorers[i].Add(segment, ps.outs[i][k], y)
	}
	pred := ps.outs[0][k]
	p := len(cand.Features)
	x := ps.mats[0][k*p : k*p+p]
	ps.preds.AddNumeric(0, pred, b.RowKey0+uint64(r))
	if ps.hasAttr {
		ps.groups.Add(b.Value(ps.attr, r), pred >= ps.favorableAbove)
	}
	if len(ps.qy) < QuantizationRows {
		ps.qrows = append(ps.qrows, x...)
		ps.qy = append(ps.qy, y)
	}
}

// importance is the sum of |SHAP| of each of the candidate's features over the first
// ImportanceRows rows (of the kept rows, which are the holdout's first), and how many.
func (ps *pass) importance(cand *model.Model) ([]float64, int) {
	p := len(cand.Features)
	sums := make([]float64, p)
	n := min(len(ps.qy), ImportanceRows)
	for k := range n {
		_, phi := cand.Explain(ps.qrows[k*p : k*p+p])
		for j, c := range phi[:p] {
			sums[j] += math.Abs(c)
		}
	}
	return sums, n
}

// lossEstimator trains the monitor's loss estimator (regression) or calibrator (a classifier)
// on the kept holdout rows.
func (res *Result) lossEstimator(cand *model.Model, qrows, qy []float64) {
	le := &LossEstimatorReport{Rows: len(qy)}
	train := TrainLossEstimator
	if cand.Classifier() {
		train, le.Method = TrainCalibrator, "cbpe"
	} else {
		le.Method = "dle"
	}
	if est, err := train(cand, qrows, qy); err != nil {
		le.Error = err.Error()
	} else {
		res.LossEstimator = est
	}
	res.Report.LossEstimator = le
}

// quantize makes the candidate's int8 variant and measures it on the kept holdout rows.
func (res *Result) quantize(cand *model.Model, qrows, qy []float64) {
	q, qerr := cand.Quantise()
	var qr pipeline.QuantizationReport
	if qerr == nil {
		qr, qerr = MeasureQuantization(cand, q, qrows, qy)
	}
	if qerr != nil {
		qr = pipeline.QuantizationReport{Variant: "int8", Error: qerr.Error()}
	} else {
		res.Int8 = q
	}
	res.Report.Quantized = &qr
}

// FavorableCut is the prediction at or above which an outcome counts as favorable for
// fairness: the model's expected value (regression) or 0.5 (classification).
func FavorableCut(m *model.Model) float64 {
	if m.Classifier() {
		return 0.5
	}
	return m.ExpectedValue()
}

// MetricMap flattens metrics for the registry (mae, rmse, r2, mape, logloss, auc, accuracy).
func MetricMap(m model.Metrics) map[string]float64 {
	out := map[string]float64{"mae": m.MAE, "rmse": m.RMSE, "r2": m.R2}
	for _, kv := range []struct {
		k string
		v *float64
	}{{"mape", m.MAPE}, {"logloss", m.LogLoss}, {"auc", m.AUC}, {"accuracy", m.Accuracy}} {
		if kv.v != nil {
			out[kv.k] = *kv.v
		}
	}
	return out
}
