package model

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime"
	"slices"
	"sync"

	"github.com/driftline/driftline/model/hparams"
)

// TrainLog records the validation loss of each round.
type TrainLog struct {
	Metric        string    `json:"metric"` // rmse, mae or logloss
	Train         float64   `json:"train"`  // the metric on the training rows, after the last round
	Validation    []float64 `json:"validation,omitempty"`
	BestIteration int       `json:"best_iteration"`
}

type gbdtTrainer struct {
	p      hparams.GBDT
	m      *Matrix
	binner *Binner
	nbins  []int
	off    []int
	total  int
	pred   []float64
	// The training rows' bins and original row numbers, ordered so every node's rows are
	// contiguous: splitting a node copies its rows into the other buffer, left rows first,
	// so histograms and partitions read memory in sequence rather than hopping over the
	// matrix. Between trees every row is back in buffer 0.
	bins [2][]uint8
	rid  [2][]uint32
	gp   [2][]gh32 // the gradient pairs, moved with the rows (binary log loss)
	// Constant-hessian losses (squared, absolute error) keep each gradient as an int16 of
	// the tree's scale instead: histograms then add one packed integer per bin (gradient in
	// the high bits, row count in the low 24) and memory holds 2 bytes a row, not 8.
	quant   bool
	gq      [2][]int16
	gRow    []int16 // quantised gradients in row order, gathered into gq by row id
	scale   float64
	inv     float64 // 1 / scale
	qpool   sync.Pool
	threads int
	pool    sync.Pool
	rng     *rand.Rand
	pcg     *rand.PCG // rng's source, whose state a checkpoint keeps
}

// BoostState is a training after some boosting rounds: what it takes to go on from there
// and end with the very ensemble an uninterrupted training gives (the trees, the random
// source, the early-stopping record, the order the rows are in and the predictions so far;
// walking every row through the trees again would cost about as long as the rounds did).
type BoostState struct {
	Rounds     int
	Trees      []Tree
	RNG        []byte
	Validation []float64
	Best       int
	BestLoss   float64
	Order      []uint32
	Pred       []float64 // training rows, in row order
	ValidPred  []float64 // validation rows
}

// BoostOptions resume a training from a state and report states as it goes.
type BoostOptions struct {
	Resume *BoostState
	// Checkpoint (if set) is called after every round that does not end the training with
	// the rounds done; state builds the state to store (it copies the row order: call it
	// only when storing).
	Checkpoint func(rounds int, state func() BoostState)
}

// TrainGBDT fits gradient-boosted trees on a binned matrix. valid (may be nil) drives early
// stopping. The result depends only on the data, the bins and the params (seed included).
func TrainGBDT(train, valid *Matrix, binner *Binner, p hparams.GBDT) (*Ensemble, *TrainLog, error) {
	return TrainGBDTWith(train, valid, binner, p, BoostOptions{})
}

// checkLabels refuses labels other than 0 and 1 for binary log loss.
func checkLabels(objective string, train, valid *Matrix) error {
	if objective != hparams.BinaryLogLoss {
		return nil
	}
	for _, m := range []*Matrix{train, valid} {
		if m == nil {
			continue
		}
		for i, y := range m.Y {
			if y != 0 && y != 1 {
				return fmt.Errorf("gbdt: binary_logloss needs labels 0 or 1; row %d has %g", i, y)
			}
		}
	}
	return nil
}

// newGBDTTrainer sets up the training's buffers (buffer 0 is the caller's matrix, restored to
// its order by restoreOrder), its random source and the ensemble it grows from the base score.
func newGBDTTrainer(train *Matrix, binner *Binner, p hparams.GBDT) (*gbdtTrainer, *Ensemble) {
	t := &gbdtTrainer{p: p, m: train, binner: binner, threads: p.Threads}
	if t.threads <= 0 {
		t.threads = runtime.GOMAXPROCS(0)
	}
	t.pcg = rand.NewPCG(p.Seed, 0x9e3779b97f4a7c15)
	t.rng = rand.New(t.pcg)
	for _, f := range binner.Features {
		t.off = append(t.off, t.total) // feature j's bins start at j*256
		t.nbins = append(t.nbins, f.Bins())
		t.total += 256
	}
	t.pool.New = func() any { s := make([]gh, t.total); return &s }
	e := &Ensemble{Objective: p.Objective, Bins: binner, BaseScore: baseScore(p.Objective, train.Y)}
	n := train.Rows()
	t.pred = make([]float64, n)
	for i := range t.pred {
		t.pred[i] = e.BaseScore
	}
	// Buffer 0 is the caller's matrix (restored to its order before returning).
	t.bins[0], t.bins[1] = train.Bins, make([]uint8, len(train.Bins))
	t.rid[0], t.rid[1] = make([]uint32, n), make([]uint32, n)
	// Every histogram is accumulated over at most histChunk rows at a time, so packed sums
	// stay far from overflow (|sum| < 2^13 * 2^15 in the gradient bits) for any n.
	t.quant = p.Objective != hparams.BinaryLogLoss
	if t.quant {
		t.gq[0], t.gq[1] = make([]int16, n), make([]int16, n)
		t.qpool.New = func() any {
			return &packedSums{packed: make([][256]int64, train.P), g: make([]int64, t.total), n: make([]int64, t.total)}
		}
	} else {
		t.gp[0], t.gp[1] = make([]gh32, n), make([]gh32, n)
	}
	for i := range t.rid[0] {
		t.rid[0][i] = uint32(i)
	}
	return t, e
}

// TrainGBDTWith is TrainGBDT resumed from o.Resume (the state of a training of the same
// matrices, bins and params) and checkpointed through o.Checkpoint.
func TrainGBDTWith(train, valid *Matrix, binner *Binner, p hparams.GBDT, o BoostOptions) (*Ensemble, *TrainLog, error) {
	if err := p.Validate(); err != nil {
		return nil, nil, err
	}
	if train.P != len(binner.Features) {
		return nil, nil, fmt.Errorf("gbdt: matrix has %d features, bins %d", train.P, len(binner.Features))
	}
	n := train.Rows()
	if n < 2 {
		return nil, nil, fmt.Errorf("gbdt: need at least 2 training rows, got %d", n)
	}
	if err := checkLabels(p.Objective, train, valid); err != nil {
		return nil, nil, err
	}
	t, e := newGBDTTrainer(train, binner, p)
	defer t.restoreOrder()
	log := &TrainLog{Metric: map[string]string{hparams.SquaredError: "rmse", hparams.AbsoluteError: "mae", hparams.BinaryLogLoss: "logloss"}[p.Objective]}
	var vpred []float64
	if valid != nil && valid.Rows() > 0 {
		vpred = make([]float64, valid.Rows())
		for i := range vpred {
			vpred[i] = e.BaseScore
		}
	}
	best, bestLoss := 0, math.Inf(1)
	start := 0
	if r := o.Resume; r != nil {
		if err := t.resume(r, e, vpred); err != nil {
			return nil, nil, fmt.Errorf("gbdt: resume after round %d: %w", r.Rounds, err)
		}
		start, best, bestLoss = r.Rounds, r.Best, r.BestLoss
		log.Validation = append(log.Validation, r.Validation...)
	}
	for round := start; round < p.Trees; round++ {
		t.gradients()
		tree := t.grow()
		e.Trees = append(e.Trees, tree)
		if vpred != nil {
			for i := range vpred {
				vpred[i] += tree.Value[tree.binLeaf(valid.Row(i))]
			}
			loss := lossOf(p.Objective, vpred, valid.Y)
			log.Validation = append(log.Validation, loss)
			if loss < bestLoss {
				best, bestLoss = round+1, loss
			} else if p.EarlyStoppingRounds > 0 && round+1-best >= p.EarlyStoppingRounds {
				break
			}
		}
		if o.Checkpoint != nil && round+1 < p.Trees {
			o.Checkpoint(round+1, func() BoostState { return t.state(e, log, best, bestLoss, vpred) })
		}
	}
	if vpred == nil || p.EarlyStoppingRounds == 0 {
		best = len(e.Trees)
	}
	e.Trees = e.Trees[:best]
	e.BestIteration, log.BestIteration = best, best
	log.Train = lossOf(p.Objective, t.pred, train.Y)
	if err := e.checked(train.P); err != nil {
		return nil, nil, err
	}
	return e, log, nil
}

// state is the training after the rounds in e.
func (t *gbdtTrainer) state(e *Ensemble, log *TrainLog, best int, bestLoss float64, vpred []float64) BoostState {
	rng, _ := t.pcg.MarshalBinary() // never fails
	return BoostState{Rounds: len(e.Trees), Trees: slices.Clone(e.Trees), RNG: rng, Validation: slices.Clone(log.Validation),
		Best: best, BestLoss: bestLoss, Order: slices.Clone(t.rid[0]), Pred: slices.Clone(t.pred), ValidPred: slices.Clone(vpred)}
}

// resume puts the trainer where state r left it: the predictions, the random source and the
// rows' order restored.
func (t *gbdtTrainer) resume(r *BoostState, e *Ensemble, vpred []float64) error {
	n, p := t.m.Rows(), t.m.P
	if r.Rounds != len(r.Trees) || r.Rounds > t.p.Trees || len(r.Order) != n || len(r.Pred) != n || len(r.ValidPred) != len(vpred) ||
		(vpred != nil && len(r.Validation) != r.Rounds) {
		return fmt.Errorf("the state (%d rounds, %d trees, %d rows) is not of this training (%d rows, %d trees at most)",
			r.Rounds, len(r.Trees), len(r.Order), n, t.p.Trees)
	}
	seen := make([]bool, n)
	for _, x := range r.Order {
		if int(x) >= n || seen[x] {
			return fmt.Errorf("the state's row order is not a permutation of the %d rows", n)
		}
		seen[x] = true
	}
	for i := range r.Trees {
		tr := &r.Trees[i]
		if err := tr.check(p); err != nil {
			return fmt.Errorf("tree %d: %w", i, err)
		}
		if tr.SplitBin == nil {
			return fmt.Errorf("tree %d has no bin thresholds (not trained here)", i)
		}
	}
	if err := t.pcg.UnmarshalBinary(r.RNG); err != nil {
		return fmt.Errorf("random state: %w", err)
	}
	e.Trees = slices.Clone(r.Trees)
	copy(t.pred, r.Pred)
	copy(vpred, r.ValidPred)
	copy(t.bins[1], t.bins[0])
	for pos, x := range r.Order {
		copy(t.bins[0][pos*p:pos*p+p], t.bins[1][int(x)*p:int(x)*p+p])
	}
	copy(t.rid[0], r.Order)
	return nil
}

func baseScore(objective string, y []float32) float64 {
	switch objective {
	case hparams.AbsoluteError:
		v := make([]float64, len(y))
		for i, x := range y {
			v[i] = float64(x)
		}
		return median(v)
	case hparams.BinaryLogLoss:
		s := 0.0
		for _, x := range y {
			s += float64(x)
		}
		m := math.Min(math.Max(s/float64(len(y)), 1e-6), 1-1e-6)
		return math.Log(m / (1 - m))
	default:
		s := 0.0
		for _, x := range y {
			s += float64(x)
		}
		return s / float64(len(y))
	}
}

func median(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	slices.Sort(v)
	n := len(v)
	if n%2 == 1 {
		return v[n/2]
	}
	return (v[n/2-1] + v[n/2]) / 2
}

// lossOf is the validation loss: RMSE, MAE or mean log loss of margins against labels.
func lossOf(objective string, margin []float64, y []float32) float64 {
	s := 0.0
	for i, m := range margin {
		yi := float64(y[i])
		switch objective {
		case hparams.SquaredError:
			s += (m - yi) * (m - yi)
		case hparams.AbsoluteError:
			s += math.Abs(m - yi)
		case hparams.BinaryLogLoss:
			s += logLoss(sigmoid(m), yi)
		}
	}
	s /= float64(len(margin))
	if objective == hparams.SquaredError {
		return math.Sqrt(s)
	}
	return s
}

func logLoss(p, y float64) float64 {
	p = math.Min(math.Max(p, 1e-15), 1-1e-15)
	return -(y*math.Log(p) + (1-y)*math.Log(1-p))
}

// parallel runs f(c) for chunks 0..n-1 on the trainer's threads (inline when n is 1).
func (t *gbdtTrainer) parallel(n int, f func(c int)) {
	t.workers(n, func(_, c int) { f(c) })
}

// workers runs f(w, c) for chunks 0..n-1 on min(threads, n) workers; w (0-based) names the
// worker running chunk c, so a worker can keep state of its own.
func (t *gbdtTrainer) workers(n int, f func(w, c int)) {
	if n == 1 || t.threads == 1 {
		for c := range n {
			f(0, c)
		}
		return
	}
	var wg sync.WaitGroup
	var next sync.Mutex
	c := 0
	for w := range min(t.threads, n) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				next.Lock()
				mine := c
				c++
				next.Unlock()
				if mine >= n {
					return
				}
				f(w, mine)
			}
		}()
	}
	wg.Wait()
}

// consolidate copies positions [start, end) from buffer 1 back to buffer 0.
func (t *gbdtTrainer) consolidate(start, end int) {
	p := t.m.P
	copy(t.bins[0][start*p:end*p], t.bins[1][start*p:end*p])
	copy(t.rid[0][start:end], t.rid[1][start:end])
	if t.quant {
		copy(t.gq[0][start:end], t.gq[1][start:end])
	} else {
		copy(t.gp[0][start:end], t.gp[1][start:end])
	}
}

// restoreOrder puts the caller's matrix back in row order.
func (t *gbdtTrainer) restoreOrder() {
	p := t.m.P
	for pos, r := range t.rid[0] {
		copy(t.bins[1][int(r)*p:int(r)*p+p], t.bins[0][pos*p:pos*p+p])
	}
	copy(t.bins[0], t.bins[1])
}
