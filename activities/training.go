package activities

import (
	"context"
	"time"

	"go.temporal.io/sdk/activity"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/evaluate"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/training"
)

// Training trains candidates and evaluates them against the champion.
type Training struct {
	Store    objstore.Bucket
	Registry *registry.Registry
	Metrics  *Metrics
	// CheckpointEvery is how often a gbdt training stores its boosting state to resume from
	// (0: DefaultCheckpointEvery).
	CheckpointEvery time.Duration
}

// source streams the accepted rows of the selected days of a run's window, heartbeating.
func (t *Training) source(ctx context.Context, in pipeline.StepInput, days func(cut string) dataset.Days) (dataset.Snapshot, string, dataset.Source, error) {
	s, err := loadSnapshot(ctx, t.Store, in.SnapshotKey)
	if err != nil {
		return s, "", nil, err
	}
	cut, err := holdoutCut(s, in.Spec)
	if err != nil {
		return s, "", nil, err
	}
	scan := dataset.ScanSource(ctx, t.Store, s, in.Spec.Contract, days(cut))
	return s, cut, func(visit func(*dataset.Batch) error) error {
		return scan(func(b *dataset.Batch) error {
			heartbeat(ctx)
			return visit(b)
		})
	}, nil
}

// Train fits the spec's trainer on the window's training days, read once, with the bins and
// profile the window's first pass prepared; artifact and profile are staged under
// reports/<model>/<run>/candidate/.
func (t *Training) Train(ctx context.Context, in pipeline.TrainInput) (pipeline.TrainResult, error) {
	if in.Spec.Trainer.Name == "file" {
		return t.adoptFile(ctx, in)
	}
	s, cut, rows, err := t.source(ctx, in.StepInput, dataset.Before)
	if err != nil {
		return pipeline.TrainResult{}, err
	}
	var trainDayRows int64
	for _, f := range s.Files {
		if f.Date < cut && f.Rows > 0 {
			trainDayRows += f.Rows
		}
	}
	if in.ProfileKey == "" || (in.BinsKey == "" && in.Spec.Trainer.Name == "gbdt") {
		// A run from before the one-pass shape: prepare here (one more read of the days).
		prep, err := training.NewPrep(in.Spec, s.Rows)
		if err != nil {
			return pipeline.TrainResult{}, classify("train", err)
		}
		if err := rows(acceptedRows(prep.Add)); err != nil {
			return pipeline.TrainResult{}, classify("train", err)
		}
		if in.ProfileKey, in.BinsKey, err = storePrep(ctx, t.Store, in.StepInput, prep); err != nil {
			return pipeline.TrainResult{}, err
		}
	}
	var binner *model.Binner
	if in.BinsKey != "" {
		binner = &model.Binner{}
		if err := getJSON(ctx, t.Store, in.BinsKey, binner); err != nil {
			return pipeline.TrainResult{}, err
		}
	}
	bc := newBoostCheckpoints(t.Store, in.Model, in.RunID, t.CheckpointEvery)
	resume, why := bc.resume(ctx)
	if why != "" {
		activity.GetLogger(ctx).Warn("training boosts from the start", "reason", why)
	}
	m, st, err := training.Train(training.Input{Spec: in.Spec, Rows: rows, Binner: binner, WindowRows: s.Rows, Fingerprint: s.ID, TrainDayRows: trainDayRows,
		Boost: model.BoostOptions{Resume: resume, Checkpoint: func(rounds int, state func() model.BoostState) { bc.offer(ctx, rounds, state) }}})
	if err != nil {
		return pipeline.TrainResult{}, classify("train", err)
	}
	res := pipeline.TrainResult{TrainRows: st.Rows, TrainRMSE: st.RMSE, TrainMetric: st.Metric, TrainLoss: st.Loss, Trees: st.Trees,
		ReadSeconds: st.ReadSeconds, FitSeconds: st.FitSeconds, SampledFrom: st.SampledFrom}
	if resume != nil {
		res.ResumedRounds = resume.Rounds
	}
	res, err = t.stage(ctx, in.StepInput, m, in.ProfileKey, res)
	if err == nil {
		bc.clear(ctx)
	}
	return res, err
}

// acceptedRows calls add for each accepted row of a batch.
func acceptedRows(add func(b *dataset.Batch, r int)) func(*dataset.Batch) error {
	return func(b *dataset.Batch) error {
		for r := 0; r < b.Rows; r++ {
			if b.Accepted[r] {
				add(b, r)
			}
		}
		return nil
	}
}

// stage writes the candidate's artifact under reports/<model>/<run>/candidate/ next to its
// reference profile.
func (t *Training) stage(ctx context.Context, in pipeline.StepInput, m *model.Model, profileKey string, res pipeline.TrainResult) (pipeline.TrainResult, error) {
	art, err := m.Marshal()
	if err != nil {
		return pipeline.TrainResult{}, invalid("stage candidate: %v", err)
	}
	ak := reportKey(in.Model, in.RunID, "candidate/model.json")
	if _, err := t.Store.Put(ctx, ak, art, objstore.PutOptions{ContentType: "application/json"}); err != nil {
		return pipeline.TrainResult{}, classify("stage candidate", err)
	}
	res.ArtifactKey, res.ArtifactURI, res.ProfileKey = ak, t.Store.URI(ak), profileKey
	return res, nil
}

// Evaluate scores the staged candidate and the production model on the same holdout rows
// (the holdout days only, read once) and stores the report, the candidate's prediction
// profile and its int8 variant.
func (t *Training) Evaluate(ctx context.Context, in pipeline.EvaluateInput) (pipeline.EvaluateResult, error) {
	_, cut, rows, err := t.source(ctx, in.StepInput, dataset.From)
	if err != nil {
		return pipeline.EvaluateResult{}, err
	}
	ev, err := t.evalInput(ctx, in, cut)
	if err != nil {
		return pipeline.EvaluateResult{}, err
	}
	ev.Rows = rows
	r, err := evaluate.Run(ev)
	if err != nil {
		return pipeline.EvaluateResult{}, classify("evaluate", err)
	}
	return t.storeEvaluation(ctx, in, ev, r)
}

// evalInput is the evaluation of the staged candidate and the champion on the holdout from
// cut (its rows not set).
func (t *Training) evalInput(ctx context.Context, in pipeline.EvaluateInput, cut string) (evaluate.Input, error) {
	ev := evaluate.Input{Spec: in.Spec, HoldoutFrom: cut, ChampionVersion: in.ChampionVersion}
	var err error
	if ev.Candidate, err = loadArtifact(ctx, t.Store, in.ArtifactKey); err != nil {
		return ev, err
	}
	if in.ChampionVersion > 0 {
		if ev.Champion, err = t.Registry.LoadModel(ctx, in.Model, in.ChampionVersion); err != nil {
			return ev, classify("evaluate champion", err)
		}
	}
	return ev, nil
}

// storeEvaluation stores the evaluation's report, the candidate's prediction profile, its
// int8 variant and loss estimator, and sets the MAE gauges.
func (t *Training) storeEvaluation(ctx context.Context, in pipeline.EvaluateInput, ev evaluate.Input, r evaluate.Result) (pipeline.EvaluateResult, error) {
	rep := r.Report
	res := pipeline.EvaluateResult{HoldoutRows: rep.HoldoutRows, CandidateMAE: rep.CandidateMAE, Metrics: r.Metrics,
		Importance: rep.Importance, Fairness: rep.Fairness, Quantization: rep.Quantized,
		HasChampion: ev.Champion != nil, ChampionMAE: rep.ChampionMAE}
	if r.Int8 != nil {
		qart, err := r.Int8.Marshal()
		if err != nil {
			return res, invalid("evaluate: int8 variant: %v", err)
		}
		res.Int8Key = reportKey(in.Model, in.RunID, "candidate/model.int8.json")
		if _, err := t.Store.Put(ctx, res.Int8Key, qart, objstore.PutOptions{ContentType: "application/json"}); err != nil {
			return res, classify("evaluate", err)
		}
		rep.Quantized.Key = res.Int8Key
	}
	if r.LossEstimator != nil {
		art, err := r.LossEstimator.Marshal()
		if err != nil {
			return res, invalid("evaluate: loss estimator: %v", err)
		}
		res.LossEstimatorKey = reportKey(in.Model, in.RunID, "candidate/loss_estimator.json")
		if _, err := t.Store.Put(ctx, res.LossEstimatorKey, art, objstore.PutOptions{ContentType: "application/json"}); err != nil {
			return res, classify("evaluate", err)
		}
	}
	res.PredictionProfileKey = reportKey(in.Model, in.RunID, "candidate/prediction_profile.json")
	key := reportKey(in.Model, in.RunID, "evaluation.json")
	for k, v := range map[string]any{res.PredictionProfileKey: r.PredictionProfile, key: rep} {
		if err := putJSON(ctx, t.Store, k, v, false); err != nil {
			return res, classify("evaluate", err)
		}
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

func loadArtifact(ctx context.Context, b objstore.Bucket, key string) (*model.Model, error) {
	data, _, err := objstore.ReadAll(ctx, b, key)
	if err != nil {
		return nil, classify("load "+key, err)
	}
	m, err := model.Unmarshal(data)
	return m, classify("load "+key, err)
}
