package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
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

// Train fits the spec's trainer on the training part of the window in one streaming pass
// (ridge needs only the co-moments), builds the reference profile in the same pass, and
// stages the artifact and the profile under reports/<model>/<run>/candidate/.
func (t *Training) Train(ctx context.Context, in StepInput) (TrainResult, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return TrainResult{}, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return TrainResult{}, err
	}
	if in.Spec.Trainer.Name != "ridge" {
		return TrainResult{}, invalid("train: unknown trainer %q", in.Spec.Trainer.Name)
	}
	fr, err := newFeatureReader(in.Spec)
	if err != nil {
		return TrainResult{}, err
	}
	acc := model.NewRidgeAccumulator(len(in.Spec.Features))
	prof := drift.NewProfileBuilder(in.Spec.Features, in.Spec.FeatureKinds())
	x := make([]float64, len(in.Spec.Features))
	err = dataset.Scan(ctx, t.Store, s, in.Spec.Contract, func(b *dataset.Batch) error {
		activity.RecordHeartbeat(ctx, b.File)
		if b.Date >= cut {
			return nil
		}
		y := b.Num(in.Spec.Target)
		for r := 0; r < b.Rows; r++ {
			if !b.Accepted[r] {
				continue
			}
			fr.vector(b, r, x)
			acc.Add(x, y[r])
			fr.observe(b, r, func(i int, kind string, num float64, cat string) {
				if kind == drift.Categorical {
					prof.AddCategory(i, cat)
				} else {
					prof.AddNumeric(i, num, b.RowKey0+uint64(r))
				}
			})
		}
		return nil
	})
	if err != nil {
		return TrainResult{}, classify("train", err)
	}
	if acc.Rows() < int64(2*len(in.Spec.Features)) {
		return TrainResult{}, invalid("train: only %d training rows before the holdout starting %s", acc.Rows(), cut)
	}
	alpha, ok := in.Spec.Trainer.Params["alpha"]
	if !ok {
		alpha = 1
	}
	lin, err := acc.Fit(alpha)
	if err != nil {
		return TrainResult{}, invalid("train: %v", err)
	}
	m := &model.Model{Family: "linear", Trainer: "ridge", Features: in.Spec.Features, Target: in.Spec.Target,
		Params: map[string]float64{"alpha": alpha}, Linear: lin,
		TrainingFingerprint: fmt.Sprintf("%s:%d", s.ID, acc.Rows())}
	art, err := m.Marshal()
	if err != nil {
		return TrainResult{}, err
	}
	pb, _ := json.Marshal(prof.Profile())
	ak, pk := reportKey(in.Model, in.RunID, "candidate/model.json"), reportKey(in.Model, in.RunID, "candidate/profile.json")
	for k, b := range map[string][]byte{ak: art, pk: pb} {
		if _, err := t.Store.Put(ctx, k, b, objstore.PutOptions{ContentType: "application/json"}); err != nil {
			return TrainResult{}, classify("train", err)
		}
	}
	return TrainResult{ArtifactKey: ak, ArtifactURI: t.Store.URI(ak), ProfileKey: pk, TrainRows: int(acc.Rows()),
		TrainRMSE: acc.TrainingRMSE(lin)}, nil
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
}

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
// one streaming pass.
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
			if col, ok := in.Spec.Contract.Column(f); !ok || col.Type == dataset.TypeString {
				return EvaluateResult{}, invalid("evaluate: feature %q of a model is not a numeric column of the contract", f)
			}
		}
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return EvaluateResult{}, err
	}
	sums := make([]float64, len(models))
	rows := 0
	// Fairness: favorable outcome = the candidate predicts at or above its training mean.
	attr, hasAttr := in.Spec.Contract.Column(in.Spec.Fairness.ProtectedAttribute)
	groups := map[string]*GroupRate{}
	favorableAbove := cand.Linear.Intercept
	// The candidate's outputs on the holdout are the reference for prediction drift.
	preds := drift.NewProfileBuilder([]string{predlog.PredictionFeature}, []string{drift.Numeric})
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
			for i, m := range models {
				x := make([]float64, len(m.Features))
				for j, f := range m.Features {
					x[j] = b.Cols[f].Num[r]
				}
				pred := m.Predict(x)
				sums[i] += math.Abs(pred - y[r])
				if i == 0 {
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
	res := EvaluateResult{HoldoutRows: rows, CandidateMAE: sums[0] / float64(rows)}
	if hasAttr {
		res.Fairness = disparateImpact(attr.Name, favorableAbove, groups, in.Spec.Fairness.MinGroupRows)
	}
	rep := EvaluationReport{HoldoutFrom: cut, HoldoutRows: rows, CandidateMAE: res.CandidateMAE, Threshold: in.Spec.Evaluation.MaxMAE, Fairness: res.Fairness}
	if len(models) > 1 {
		res.HasChampion, res.ChampionMAE = true, sums[1]/float64(rows)
		rep.ChampionVersion, rep.ChampionMAE = in.ChampionVersion, res.ChampionMAE
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
