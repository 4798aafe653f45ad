package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
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

// Train fits the spec's trainer on the training part of the window and stages the artifact
// and its reference profile under reports/<model>/<run>/candidate/ (registered later).
func (t *Training) Train(ctx context.Context, in StepInput) (TrainResult, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return TrainResult{}, err
	}
	tbl, err := dataset.Load(ctx, t.Store, s, in.Spec.Columns(), func(fc dataset.FileCheck) { activity.RecordHeartbeat(ctx, fc.File) })
	if err != nil {
		return TrainResult{}, classify("train", err)
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return TrainResult{}, err
	}
	train, _ := tbl.Split(cut)
	if train.Rows() < 2*len(in.Spec.Features) {
		return TrainResult{}, invalid("train: only %d training rows before the holdout starting %s", train.Rows(), cut)
	}
	nf := len(in.Spec.Features)
	X, y := train.Cols[:nf], train.Cols[nf]
	var m *model.Model
	switch in.Spec.Trainer.Name {
	case "ridge":
		alpha, ok := in.Spec.Trainer.Params["alpha"]
		if !ok {
			alpha = 1
		}
		lin, err := model.TrainRidge(X, y, alpha)
		if err != nil {
			return TrainResult{}, invalid("train: %v", err)
		}
		m = &model.Model{Family: "linear", Trainer: "ridge", Features: in.Spec.Features, Target: in.Spec.Target,
			Params: map[string]float64{"alpha": alpha}, Linear: lin,
			TrainingFingerprint: fmt.Sprintf("%s:%d", s.ID, train.Rows())}
	default:
		return TrainResult{}, invalid("train: unknown trainer %q", in.Spec.Trainer.Name)
	}
	trainMAE, err := m.MAE(X, y)
	if err != nil {
		return TrainResult{}, invalid("train: %v", err)
	}
	prof, err := drift.NewProfile(in.Spec.Features, X)
	if err != nil {
		return TrainResult{}, err
	}
	art, err := m.Marshal()
	if err != nil {
		return TrainResult{}, err
	}
	pb, _ := json.Marshal(prof)
	ak, pk := reportKey(in.Model, in.RunID, "candidate/model.json"), reportKey(in.Model, in.RunID, "candidate/profile.json")
	for k, b := range map[string][]byte{ak: art, pk: pb} {
		if _, err := t.Store.Put(ctx, k, b, objstore.PutOptions{ContentType: "application/json"}); err != nil {
			return TrainResult{}, classify("train", err)
		}
	}
	return TrainResult{ArtifactKey: ak, ArtifactURI: t.Store.URI(ak), ProfileKey: pk, TrainRows: train.Rows(), TrainMAE: trainMAE}, nil
}

// EvaluationReport is stored at reports/<model>/<run>/evaluation.json.
type EvaluationReport struct {
	HoldoutFrom     string  `json:"holdout_from"`
	HoldoutRows     int     `json:"holdout_rows"`
	CandidateMAE    float64 `json:"candidate_mae"`
	ChampionVersion int     `json:"champion_version,omitempty"`
	ChampionMAE     float64 `json:"champion_mae,omitempty"`
	Threshold       float64 `json:"max_mae"`
}

// Evaluate scores the staged candidate and the production model on the same holdout rows.
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
	var champ *model.Model
	if in.ChampionVersion > 0 {
		if champ, err = t.Registry.LoadModel(ctx, in.Model, in.ChampionVersion); err != nil {
			return EvaluateResult{}, classify("evaluate champion", err)
		}
	}
	// One read of the union of both models' columns, so both see the same rows.
	cols := slices.Clone(cand.Features)
	if champ != nil {
		for _, f := range champ.Features {
			if !slices.Contains(cols, f) {
				cols = append(cols, f)
			}
		}
	}
	cols = append(cols, in.Spec.Target)
	tbl, err := dataset.Load(ctx, t.Store, s, cols, nil)
	if err != nil {
		return EvaluateResult{}, classify("evaluate", err)
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return EvaluateResult{}, err
	}
	_, hold := tbl.Split(cut)
	if hold.Rows() == 0 {
		return EvaluateResult{}, invalid("evaluate: no holdout rows on or after %s", cut)
	}
	pick := func(m *model.Model) [][]float64 {
		out := make([][]float64, len(m.Features))
		for i, f := range m.Features {
			out[i] = hold.Col(f)
		}
		return out
	}
	y := hold.Col(in.Spec.Target)
	res := EvaluateResult{HoldoutRows: hold.Rows()}
	if res.CandidateMAE, err = cand.MAE(pick(cand), y); err != nil {
		return res, invalid("evaluate: %v", err)
	}
	rep := EvaluationReport{HoldoutFrom: cut, HoldoutRows: hold.Rows(), CandidateMAE: res.CandidateMAE, Threshold: in.Spec.Evaluation.MaxMAE}
	if champ != nil {
		if res.ChampionMAE, err = champ.MAE(pick(champ), y); err != nil {
			return res, invalid("evaluate champion: %v", err)
		}
		res.HasChampion = true
		rep.ChampionVersion, rep.ChampionMAE = in.ChampionVersion, res.ChampionMAE
	}
	key := reportKey(in.Model, in.RunID, "evaluation.json")
	body, _ := json.MarshalIndent(rep, "", " ")
	if _, err := t.Store.Put(ctx, key, body, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return res, classify("evaluate", err)
	}
	res.ReportURI = t.Store.URI(key)
	if t.Metrics != nil {
		t.Metrics.MAE.WithLabelValues(in.Model, "candidate").Set(res.CandidateMAE)
		if champ != nil {
			t.Metrics.MAE.WithLabelValues(in.Model, "champion").Set(res.ChampionMAE)
		}
	}
	return res, nil
}
