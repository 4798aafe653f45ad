package training

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/model/hparams"
	"github.com/driftline/driftline/spec"
)

// ErrInvalid marks training input that retrying cannot fix (too few rows, bad parameters,
// an unknown trainer). It wraps dataset.ErrInvalidData.
var ErrInvalid = fmt.Errorf("%w: training", dataset.ErrInvalidData)

// Stats are the training numbers a run reports.
type Stats struct {
	Rows int
	// RMSE for squared-error trainers; Metric (rmse, mae or logloss) and Loss: the objective's
	// training loss.
	RMSE   float64
	Metric string
	Loss   float64
	Trees  int // kept by early stopping (gbdt)
	// ReadSeconds is the time spent reading (and, for gbdt, binning) the rows; FitSeconds the
	// time spent fitting (the boosting rounds for gbdt).
	ReadSeconds, FitSeconds float64
	// SampledFrom is how many training rows gbdt's sample was drawn from (0: it trained on
	// every row).
	SampledFrom int64
}

// Input is one training job.
type Input struct {
	Spec spec.Spec
	// Rows streams the accepted rows of the training days (src reads nothing else).
	Rows dataset.Source
	// Binner (gbdt) comes from Prep over the same rows.
	Binner *model.Binner
	// WindowRows sizes the first allocation; Fingerprint names the data (snapshot id).
	WindowRows  int64
	Fingerprint string
	// TrainDayRows is how many rows the training days hold (the snapshot's counts; 0: not
	// known): gbdt samples them when they are more than MaxRows.
	TrainDayRows int64
	// Boost resumes (gbdt) from a checkpointed state and reports states to checkpoint.
	Boost model.BoostOptions
}

// Train fits the spec's trainer. ridge and gbdt read the rows once (co-moments; rows binned
// to one byte per feature as they arrive); logistic regression once per Newton step.
func Train(in Input) (*model.Model, Stats, error) {
	sp := in.Spec
	fr, err := NewFeatures(sp)
	if err != nil {
		return nil, Stats{}, err
	}
	m := &model.Model{Family: "linear", Trainer: sp.Trainer.Name, Objective: sp.Trainer.ObjectiveName(), Features: sp.Features,
		Inputs: Inputs(sp), Target: sp.Target}
	var st Stats
	switch sp.Trainer.Name {
	case "ridge":
		st, err = trainRidge(sp, in.Rows, fr, m)
	case "logistic":
		st, err = trainLogistic(sp, in.Rows, fr, m)
	case "gbdt":
		st, err = trainGBDT(in, fr, m)
	default:
		err = fmt.Errorf("%w: unknown trainer %q", ErrInvalid, sp.Trainer.Name)
	}
	if err != nil {
		return nil, st, err
	}
	m.TrainingFingerprint = fmt.Sprintf("%s:%d", in.Fingerprint, st.Rows)
	return m, st, nil
}

// Inputs is the artifact's input schema from the contract.
func Inputs(sp spec.Spec) []model.Input {
	kinds := sp.FeatureKinds()
	out := make([]model.Input, len(sp.Features))
	for i, f := range sp.Features {
		col, _ := sp.Contract.Column(f)
		out[i] = model.Input{Name: f, Type: col.Type, Kind: kinds[i]}
	}
	return out
}

// each streams the accepted rows of src (those keep takes, when it is not nil) with their
// features and target.
func each(src dataset.Source, sp spec.Spec, fr *dataset.Features, keep func(b *dataset.Batch, r int) bool, visit func(b *dataset.Batch, r int, x []float64, y float64)) error {
	x := make([]float64, fr.Len())
	return src(func(b *dataset.Batch) error {
		y := b.Num(sp.Target)
		for r := 0; r < b.Rows; r++ {
			if b.Accepted[r] && (keep == nil || keep(b, r)) {
				fr.Vector(b, r, x)
				visit(b, r, x, y[r])
			}
		}
		return nil
	})
}

func param(params map[string]float64, k string, def float64) float64 {
	if v, ok := params[k]; ok {
		return v
	}
	return def
}

func tooFew(rows, p int) error {
	return fmt.Errorf("%w: only %d training rows for %d features", ErrInvalid, rows, p)
}

func trainRidge(sp spec.Spec, src dataset.Source, fr *dataset.Features, m *model.Model) (Stats, error) {
	p := fr.Len()
	acc := model.NewRidgeAccumulator(p)
	if err := each(src, sp, fr, nil, func(_ *dataset.Batch, _ int, x []float64, y float64) { acc.Add(x, y) }); err != nil {
		return Stats{}, err
	}
	if acc.Rows() < int64(2*p) {
		return Stats{}, tooFew(int(acc.Rows()), p)
	}
	alpha := param(sp.Trainer.Params, "alpha", 1)
	lin, err := acc.Fit(alpha)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.Linear, m.Params = lin, map[string]float64{"alpha": alpha}
	rmse := acc.TrainingRMSE(lin)
	return Stats{Rows: int(acc.Rows()), RMSE: rmse, Metric: "rmse", Loss: rmse}, nil
}

func trainLogistic(sp spec.Spec, src dataset.Source, fr *dataset.Features, m *model.Model) (Stats, error) {
	alpha := param(sp.Trainer.Params, "alpha", 1)
	lin, fit, err := model.TrainLogistic(fr.Len(), alpha, func(visit func(x []float64, y float64)) error {
		return each(src, sp, fr, nil, func(_ *dataset.Batch, _ int, x []float64, y float64) { visit(x, y) })
	})
	if err != nil {
		var de *dataset.DataError
		if errors.As(err, &de) || errors.Is(err, dataset.ErrInvalidData) {
			return Stats{}, err
		}
		return Stats{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	m.Linear, m.Params = lin, map[string]float64{"alpha": alpha}
	return Stats{Rows: int(fit.Rows), Metric: "logloss", Loss: fit.LogLoss}, nil
}

// binBatch is how many rows are binned at once (model.Matrix.AppendRows uses every core).
const binBatch = 1 << 15

func trainGBDT(in Input, fr *dataset.Features, m *model.Model) (Stats, error) {
	sp := in.Spec
	params, err := hparams.From(sp.Trainer.Objective, sp.Trainer.Growth, sp.Trainer.Params)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if in.Binner == nil {
		return Stats{}, fmt.Errorf("%w: gbdt needs the bins cut in the window's first pass", ErrInvalid)
	}
	p := fr.Len()
	smp := newDaySample(in.TrainDayRows, MaxRows(sp, p))
	t0 := time.Now()
	train, valid, err := binRows(in, fr, smp)
	if err != nil {
		return Stats{}, err
	}
	if train.Rows() < 2*p {
		return Stats{}, tooFew(train.Rows(), p)
	}
	t1 := time.Now()
	e, log, err := model.TrainGBDTWith(train, valid, in.Binner, params, in.Boost)
	if err != nil && in.Boost.Resume != nil {
		// A state that does not fit this training is dropped: boost from the start.
		in.Boost.Resume = nil
		t1 = time.Now()
		e, log, err = model.TrainGBDTWith(train, valid, in.Binner, params, in.Boost)
	}
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	read, fit := t1.Sub(t0).Seconds(), time.Since(t1).Seconds()
	m.Family, m.GBDT = "gbdt", e
	m.Params, m.Settings = params.Settings()
	st := Stats{Rows: train.Rows(), Metric: log.Metric, Loss: log.Train, Trees: len(e.Trees), ReadSeconds: read, FitSeconds: fit}
	if valid != nil {
		st.Rows += valid.Rows()
		m.Params["validation_share"] = sp.Trainer.ValidationShare
	}
	if log.Metric == "rmse" {
		st.RMSE = log.Train
	}
	if smp != nil {
		st.SampledFrom = smp.of
		if m.Settings == nil {
			m.Settings = map[string]string{}
		}
		if err := smp.record(m.Params, m.Settings, st.Rows); err != nil {
			return st, err
		}
	}
	return st, nil
}

// binRows reads the training rows once (those of the sample, when there is one), binning each
// as it streams in; a hash split holds out the early-stopping rows (valid: nil without them).
func binRows(in Input, fr *dataset.Features, smp *daySample) (train, valid *model.Matrix, err error) {
	sp, p := in.Spec, fr.Len()
	capacity := int(min(max(in.WindowRows, 0), 1<<26))
	var keep func(b *dataset.Batch, r int) bool
	if smp != nil {
		capacity, keep = int(min(int64(capacity), smp.bound+smp.bound/20+1024)), smp.keep
	}
	train = model.NewMatrix(p, capacity)
	share := sp.Trainer.ValidationShare
	if share > 0 {
		valid = model.NewMatrix(p, int(float64(capacity)*share)+1)
	}
	vlimit := uint64(share * float64(math.MaxUint64))
	type pending struct {
		m     *model.Matrix
		xs, y []float64
	}
	tp, vp := &pending{m: train}, &pending{m: valid}
	flush := func(pd *pending) {
		if len(pd.y) > 0 {
			pd.m.AppendRows(in.Binner, pd.xs, pd.y)
			pd.xs, pd.y = pd.xs[:0], pd.y[:0]
		}
	}
	err = each(in.Rows, sp, fr, keep, func(b *dataset.Batch, r int, x []float64, y float64) {
		pd := tp
		if valid != nil && RowHash(b.RowKey0+uint64(r), 2) < vlimit {
			pd = vp
		}
		pd.xs, pd.y = append(pd.xs, x...), append(pd.y, y)
		if len(pd.y) == binBatch {
			flush(pd)
		}
	})
	if err != nil {
		return nil, nil, err
	}
	flush(tp)
	if valid != nil {
		flush(vp)
	}
	return train, valid, nil
}
