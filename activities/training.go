package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// Training trains candidates and evaluates them against the champion.
type Training struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
}

// holdoutCut is the first holdout date: the last HoldoutDays days of the window are held out.
func holdoutCut(s dataset.Snapshot, sp spec.Spec) (string, error) {
	to, err := time.Parse(dataset.DateLayout, s.To)
	if err != nil {
		return "", invalid("snapshot %s: bad window end %q", s.ID, s.To)
	}
	return to.AddDate(0, 0, 1-sp.Dataset.HoldoutDays).Format(dataset.DateLayout), nil
}

// rowHash mixes a row's key with a salt (splitmix64): a uniform, deterministic draw per row
// for sampling and for the early-stopping validation split.
func rowHash(key, salt uint64) uint64 {
	z := key + salt*0x9e3779b97f4a7c15 + 0x632be59bd9b4e5f5
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// binSampleRows is how many rows the gbdt bins are cut from.
const binSampleRows = 200_000

// trainScan streams the accepted training rows (before the holdout) of the window.
func (t *Training) trainScan(ctx context.Context, s dataset.Snapshot, sp spec.Spec, cut string, fr *featureReader,
	visit func(b *dataset.Batch, r int, x []float64, y float64)) error {
	x := make([]float64, len(sp.Features))
	return dataset.Scan(ctx, t.Store, s, sp.Contract, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, b.File)
		if b.Date >= cut {
			return nil
		}
		y := b.Num(sp.Target)
		for r := 0; r < b.Rows; r++ {
			if b.Accepted[r] {
				fr.vector(b, r, x)
				visit(b, r, x, y[r])
			}
		}
		return nil
	})
}

// newProfiler builds a model's reference profile from the rows passed to add.
func newProfiler(sp spec.Spec, fr *featureReader) (*drift.ProfileBuilder, func(b *dataset.Batch, r int)) {
	prof := drift.NewProfileBuilder(sp.Features, sp.FeatureKinds())
	return prof, func(b *dataset.Batch, r int) {
		fr.observe(b, r, func(i int, kind string, num float64, cat string) {
			if kind == drift.Categorical {
				prof.AddCategory(i, cat)
			} else {
				prof.AddNumeric(i, num, b.RowKey0+uint64(r))
			}
		})
	}
}

// window loads the run's pinned snapshot and the first holdout date.
func (t *Training) window(ctx context.Context, in StepInput) (dataset.Snapshot, string, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return s, "", err
	}
	cut, err := holdoutCut(s, in.Spec)
	return s, cut, err
}

// modelInputs is the artifact's input schema from the contract.
func modelInputs(sp spec.Spec) []model.Input {
	kinds := sp.FeatureKinds()
	out := make([]model.Input, len(sp.Features))
	for i, f := range sp.Features {
		col, _ := sp.Contract.Column(f)
		out[i] = model.Input{Name: f, Type: string(col.Type), Kind: kinds[i]}
	}
	return out
}

// Train fits the spec's trainer on the training part of the window, streaming: ridge needs
// one pass (co-moments); logistic one pass per Newton step; gbdt one pass that samples rows
// for the bins and one that bins every row to uint8 as it arrives. The first pass also
// builds the reference profile. Artifact and profile are staged under
// reports/<model>/<run>/candidate/.
func (t *Training) Train(ctx context.Context, in StepInput) (TrainResult, error) {
	s, cut, err := t.window(ctx, in)
	if err != nil {
		return TrainResult{}, err
	}
	fr, err := newFeatureReader(in.Spec)
	if err != nil {
		return TrainResult{}, err
	}
	sp := in.Spec
	p := len(sp.Features)
	prof, profile := newProfiler(sp, fr)
	m := &model.Model{Family: "linear", Trainer: sp.Trainer.Name, Objective: sp.Trainer.ObjectiveName(), Features: sp.Features,
		Inputs: modelInputs(sp), Target: sp.Target}
	res := TrainResult{}
	var rows int64
	switch sp.Trainer.Name {
	case "ridge":
		acc := model.NewRidgeAccumulator(p)
		err = t.trainScan(ctx, s, sp, cut, fr, func(b *dataset.Batch, r int, x []float64, y float64) {
			acc.Add(x, y)
			profile(b, r)
		})
		if err != nil {
			return TrainResult{}, classify("train", err)
		}
		if rows = acc.Rows(); rows < int64(2*p) {
			return TrainResult{}, invalid("train: only %d training rows before the holdout starting %s", rows, cut)
		}
		alpha := paramOr(sp.Trainer.Params, "alpha", 1)
		if m.Linear, err = acc.Fit(alpha); err != nil {
			return TrainResult{}, invalid("train: %v", err)
		}
		m.Params = map[string]float64{"alpha": alpha}
		res.TrainRMSE = acc.TrainingRMSE(m.Linear)
		res.TrainMetric, res.TrainLoss = "rmse", res.TrainRMSE
	case "logistic":
		alpha := paramOr(sp.Trainer.Params, "alpha", 1)
		first := true
		src := func(visit func(x []float64, y float64)) error {
			err := t.trainScan(ctx, s, sp, cut, fr, func(b *dataset.Batch, r int, x []float64, y float64) {
				visit(x, y)
				if first {
					profile(b, r)
				}
			})
			first = false
			return err
		}
		lin, fit, err := model.TrainLogistic(p, alpha, src)
		if err != nil {
			return TrainResult{}, classify("train", err)
		}
		m.Linear, m.Params, rows = lin, map[string]float64{"alpha": alpha}, fit.Rows
		res.TrainMetric, res.TrainLoss = "logloss", fit.LogLoss
	case "gbdt":
		params, err := hparams.From(sp.Trainer.Objective, sp.Trainer.Growth, sp.Trainer.Params)
		if err != nil {
			return TrainResult{}, invalid("train: %v", err)
		}
		// Pass 1: profile and a hash sample of rows for the bins.
		rate := 1.0
		if s.Rows > binSampleRows {
			rate = float64(binSampleRows) / float64(s.Rows)
		}
		limit := uint64(rate * float64(math.MaxUint64))
		sample := make([][]float64, p)
		err = t.trainScan(ctx, s, sp, cut, fr, func(b *dataset.Batch, r int, x []float64, y float64) {
			profile(b, r)
			if rate >= 1 || rowHash(b.RowKey0+uint64(r), 1) <= limit {
				for j, v := range x {
					sample[j] = append(sample[j], v)
				}
			}
		})
		if err != nil {
			return TrainResult{}, classify("train", err)
		}
		categorical := make([]bool, p)
		for j, k := range sp.FeatureKinds() {
			categorical[j] = k == drift.Categorical
		}
		binner, err := model.NewBinner(sample, categorical, params.MaxBins)
		if err != nil {
			return TrainResult{}, invalid("train: %v", err)
		}
		sample = nil
		// Pass 2: every row binned to one byte per feature as it streams in; a hash split
		// holds out the early-stopping rows.
		train := model.NewMatrix(p, int(min(s.Rows, 1<<26)))
		var valid *model.Matrix
		share := sp.Trainer.ValidationShare
		if share > 0 {
			valid = model.NewMatrix(p, int(float64(min(s.Rows, 1<<26))*share)+1)
		}
		vlimit := uint64(share * float64(math.MaxUint64))
		// Rows are binned in batches on all cores (model.Matrix.AppendRows).
		const batch = 1 << 15
		type pending struct {
			m     *model.Matrix
			xs, y []float64
		}
		tp, vp := &pending{m: train}, &pending{m: valid}
		flush := func(pd *pending) {
			if len(pd.y) > 0 {
				pd.m.AppendRows(binner, pd.xs, pd.y)
				pd.xs, pd.y = pd.xs[:0], pd.y[:0]
			}
		}
		err = t.trainScan(ctx, s, sp, cut, fr, func(b *dataset.Batch, r int, x []float64, y float64) {
			pd := tp
			if valid != nil && rowHash(b.RowKey0+uint64(r), 2) < vlimit {
				pd = vp
			}
			pd.xs, pd.y = append(pd.xs, x...), append(pd.y, y)
			if len(pd.y) == batch {
				flush(pd)
			}
		})
		if err != nil {
			return TrainResult{}, classify("train", err)
		}
		flush(tp)
		if valid != nil {
			flush(vp)
		}
		if train.Rows() < 2*p {
			return TrainResult{}, invalid("train: only %d training rows before the holdout starting %s", train.Rows(), cut)
		}
		e, log, err := model.TrainGBDT(train, valid, binner, params)
		if err != nil {
			return TrainResult{}, invalid("train: %v", err)
		}
		m.Family, m.GBDT = "gbdt", e
		m.Params, m.Settings = params.Settings()
		rows = int64(train.Rows())
		if valid != nil {
			rows += int64(valid.Rows())
			m.Params["validation_share"] = share
		}
		res.TrainMetric, res.TrainLoss, res.Trees = log.Metric, log.Train, len(e.Trees)
		if log.Metric == "rmse" {
			res.TrainRMSE = log.Train
		}
	default:
		return TrainResult{}, invalid("train: unknown trainer %q", sp.Trainer.Name)
	}
	m.TrainingFingerprint = fmt.Sprintf("%s:%d", s.ID, rows)
	res.TrainRows = int(rows)
	return t.stage(ctx, in, m, prof.Profile(), res)
}

// stage writes the candidate's artifact and reference profile under
// reports/<model>/<run>/candidate/ and fills in where they are.
func (t *Training) stage(ctx context.Context, in StepInput, m *model.Model, prof drift.Profile, res TrainResult) (TrainResult, error) {
	art, err := m.Marshal()
	if err != nil {
		return TrainResult{}, err
	}
	pb, _ := json.Marshal(prof)
	ak, pk := reportKey(in.Model, in.RunID, "candidate/model.json"), reportKey(in.Model, in.RunID, "candidate/profile.json")
	for _, o := range []struct {
		key  string
		body []byte
	}{{ak, art}, {pk, pb}} {
		if _, err := t.Store.Put(ctx, o.key, o.body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
			return TrainResult{}, classify("stage candidate", err)
		}
	}
	res.ArtifactKey, res.ArtifactURI, res.ProfileKey = ak, t.Store.URI(ak), pk
	return res, nil
}

func paramOr(params map[string]float64, k string, def float64) float64 {
	if v, ok := params[k]; ok {
		return v
	}
	return def
}

// EvaluationReport is stored at reports/<model>/<run>/evaluation.json.
type EvaluationReport struct {
	HoldoutFrom     string          `json:"holdout_from"`
	HoldoutRows     int             `json:"holdout_rows"`
	CandidateMAE    float64         `json:"candidate_mae"`
	ChampionVersion int             `json:"champion_version,omitempty"`
	ChampionMAE     float64         `json:"champion_mae,omitempty"`
	Threshold       float64         `json:"max_mae"`
	Fairness        *FairnessResult `json:"fairness,omitempty"`
	// Candidate and Champion hold every metric on the same holdout rows, overall and per
	// segment (Segments[value], by SegmentBy).
	SegmentBy string                    `json:"segment_by,omitempty"`
	Candidate ModelEvaluation           `json:"candidate"`
	Champion  *ModelEvaluation          `json:"champion,omitempty"`
	Quantized *model.QuantizationReport `json:"quantization,omitempty"`
	// Importance is the candidate's global feature importance: mean |SHAP| over up to
	// importanceRows holdout rows.
	Importance map[string]float64 `json:"feature_importance,omitempty"`
}

// ModelEvaluation is one model's metrics on the holdout.
type ModelEvaluation struct {
	Overall  model.Metrics            `json:"overall"`
	Segments map[string]model.Metrics `json:"segments,omitempty"`
}

const (
	importanceRows   = 2000
	quantizationRows = 20000
)

// disparateImpact is the lowest favorable rate over the highest, among groups with enough
// rows; 1 when no group has a favorable outcome or fewer than two groups qualify.
func disparateImpact(attr string, above float64, groups map[string]*GroupRate, minRows int) *FairnessResult {
	fr := &FairnessResult{Attribute: attr, FavorableAbove: above, DisparateImpact: 1, Groups: map[string]GroupRate{}}
	names := make([]string, 0, len(groups))
	for g := range groups {
		names = append(names, g)
	}
	sort.Strings(names)
	lo, hi := math.Inf(1), math.Inf(-1)
	for _, g := range names {
		gr := groups[g]
		gr.Rate = float64(gr.Favorable) / float64(gr.Rows)
		fr.Groups[g] = *gr
		if gr.Rows < minRows {
			continue
		}
		if gr.Rate < lo {
			lo, fr.Lowest = gr.Rate, g
		}
		if gr.Rate > hi {
			hi, fr.Highest = gr.Rate, g
		}
	}
	if hi > 0 && !math.IsInf(lo, 1) {
		fr.DisparateImpact = lo / hi
	}
	return fr
}

// Evaluate scores the staged candidate and the production model on the same holdout rows in
// one streaming pass: every metric overall and per segment, fairness, the candidate's global
// feature importance, and its int8 variant (staged next to it with its measurements).
func (t *Training) Evaluate(ctx context.Context, in EvaluateInput) (EvaluateResult, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return EvaluateResult{}, err
	}
	data, _, err := objstore.ReadAll(ctx, t.Store, in.ArtifactKey)
	if err != nil {
		return EvaluateResult{}, classify("evaluate", err)
	}
	cand, err := model.Unmarshal(data)
	if err != nil {
		return EvaluateResult{}, classify("evaluate", err)
	}
	models := []*model.Model{cand}
	if in.ChampionVersion > 0 {
		champ, err := t.Registry.LoadModel(ctx, in.Model, in.ChampionVersion)
		if err != nil {
			return EvaluateResult{}, classify("evaluate champion", err)
		}
		models = append(models, champ)
	}
	for _, m := range models {
		for _, f := range m.Features {
			if col, ok := in.Spec.Contract.Column(f); !ok || col.Type == contract.TypeString {
				return EvaluateResult{}, invalid("evaluate: feature %q of a model is not a numeric column of the contract", f)
			}
		}
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return EvaluateResult{}, err
	}
	scorers := make([]*model.SegmentScorer, len(models))
	for i, m := range models {
		scorers[i] = model.NewSegmentScorer(m.Classifier())
	}
	rows := 0
	segCol, hasSeg := in.Spec.Contract.Column(in.Spec.Evaluation.SegmentBy)
	// Fairness: favorable outcome = the candidate predicts at or above its expected value
	// (regression) or class 1 (classification).
	attr, hasAttr := in.Spec.Contract.Column(in.Spec.Fairness.ProtectedAttribute)
	groups := map[string]*GroupRate{}
	favorableAbove := cand.ExpectedValue()
	if cand.Classifier() {
		favorableAbove = 0.5
	}
	// The candidate's outputs on the holdout are the reference for prediction drift.
	preds := drift.NewProfileBuilder([]string{predlog.PredictionFeature}, []string{drift.Numeric})
	importance := make([]float64, len(cand.Features))
	explained := 0
	var qrows, qy []float64
	xs := make([][]float64, len(models))
	for i, m := range models {
		xs[i] = make([]float64, len(m.Features))
	}
	err = dataset.Scan(ctx, t.Store, s, in.Spec.Contract, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, b.File)
		if b.Date < cut {
			return nil
		}
		y := b.Num(in.Spec.Target)
		for r := 0; r < b.Rows; r++ {
			if !b.Accepted[r] {
				continue
			}
			rows++
			segment := ""
			if hasSeg {
				segment = b.Value(segCol, r)
			}
			for i, m := range models {
				x := xs[i]
				for j, f := range m.Features {
					if d := b.Cols[f]; d.Null[r] {
						x[j] = math.NaN()
					} else {
						x[j] = d.Num[r]
					}
				}
				pred := m.Predict(x)
				scorers[i].Add(segment, pred, y[r])
				if i > 0 {
					continue
				}
				preds.AddNumeric(0, pred, b.RowKey0+uint64(r))
				if hasAttr {
					g := b.Value(attr, r)
					gr := groups[g]
					if gr == nil {
						gr = &GroupRate{}
						groups[g] = gr
					}
					gr.Rows++
					if pred >= favorableAbove {
						gr.Favorable++
					}
				}
				if explained < importanceRows {
					_, phi := m.Explain(x)
					for j, c := range phi[:len(importance)] {
						importance[j] += math.Abs(c)
					}
					explained++
				}
				if len(qy) < quantizationRows {
					qrows = append(qrows, x...)
					qy = append(qy, y[r])
				}
			}
		}
		return nil
	})
	if err != nil {
		return EvaluateResult{}, classify("evaluate", err)
	}
	if rows == 0 {
		return EvaluateResult{}, invalid("evaluate: no holdout rows on or after %s", cut)
	}
	evals := make([]ModelEvaluation, len(models))
	for i := range models {
		evals[i] = ModelEvaluation{Overall: scorers[i].All.Metrics(), Segments: scorers[i].Segments()}
	}
	res := EvaluateResult{HoldoutRows: rows, CandidateMAE: evals[0].Overall.MAE, Metrics: metricMap(evals[0].Overall),
		Importance: map[string]float64{}}
	for j, f := range cand.Features {
		res.Importance[f] = importance[j] / float64(max(explained, 1))
	}
	if hasAttr {
		res.Fairness = disparateImpact(attr.Name, favorableAbove, groups, in.Spec.Fairness.MinGroupRows)
	}
	rep := EvaluationReport{HoldoutFrom: cut, HoldoutRows: rows, CandidateMAE: res.CandidateMAE, Threshold: in.Spec.Evaluation.MaxMAE,
		Fairness: res.Fairness, SegmentBy: in.Spec.Evaluation.SegmentBy, Candidate: evals[0], Importance: res.Importance}
	if len(models) > 1 {
		res.HasChampion, res.ChampionMAE = true, evals[1].Overall.MAE
		rep.ChampionVersion, rep.ChampionMAE, rep.Champion = in.ChampionVersion, res.ChampionMAE, &evals[1]
	}
	if !in.Spec.Quantization.Disabled {
		q, qerr := cand.Quantise()
		var qr model.QuantizationReport
		if qerr == nil {
			qr, qerr = model.MeasureQuantization(cand, q, qrows, qy)
		}
		if qerr != nil {
			qr = model.QuantizationReport{Variant: "int8", Error: qerr.Error()}
		} else {
			qart, err := q.Marshal()
			if err != nil {
				return res, err
			}
			qk := reportKey(in.Model, in.RunID, "candidate/model.int8.json")
			if _, err := t.Store.Put(ctx, qk, qart, objstore.PutOptions{ContentType: "application/json"}); err != nil {
				return res, classify("evaluate", err)
			}
			qr.Key, res.Int8Key = qk, qk
		}
		res.Quantization, rep.Quantized = &qr, &qr
	}
	pk := reportKey(in.Model, in.RunID, "candidate/prediction_profile.json")
	pb, _ := json.Marshal(preds.Profile())
	if _, err := t.Store.Put(ctx, pk, pb, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return res, classify("evaluate", err)
	}
	res.PredictionProfileKey = pk
	key := reportKey(in.Model, in.RunID, "evaluation.json")
	body, _ := json.MarshalIndent(rep, "", " ")
	if _, err := t.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return res, classify("evaluate", err)
	}
	res.ReportURI = t.Store.URI(key)
	if t.Metrics != nil {
		t.Metrics.MAE.WithLabelValues(in.Model, "candidate").Set(res.CandidateMAE)
		if res.HasChampion {
			t.Metrics.MAE.WithLabelValues(in.Model, "champion").Set(res.ChampionMAE)
		}
	}
	return res, nil
}

// metricMap flattens metrics for the registry (mae, rmse, r2, mape, logloss, auc, accuracy).
func metricMap(m model.Metrics) map[string]float64 {
	out := map[string]float64{"mae": m.MAE, "rmse": m.RMSE, "r2": m.R2}
	for k, v := range map[string]*float64{"mape": m.MAPE, "logloss": m.LogLoss, "auc": m.AUC, "accuracy": m.Accuracy} {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
