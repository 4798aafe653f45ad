package model

import (
	"github.com/driftline/driftline/internal/exactsum"
	"math"
	"slices"
	"sort"
)

// Metrics are a model's scores on a set of rows. Regression: MAE, RMSE, MAPE (rows with a
// zero target are left out of it), R2. Classification: log loss, AUC, accuracy at 0.5.
type Metrics struct {
	Rows     int      `json:"rows"`
	MAE      float64  `json:"mae"`
	RMSE     float64  `json:"rmse"`
	MAPE     *float64 `json:"mape,omitempty"`
	R2       float64  `json:"r2"`
	LogLoss  *float64 `json:"logloss,omitempty"`
	AUC      *float64 `json:"auc,omitempty"`
	Accuracy *float64 `json:"accuracy,omitempty"`
}

// Scorer accumulates predictions against targets. Classification keeps the scores for the
// AUC (8 bytes a row); regression keeps only sums.
//
// The sums (of absolute, squared and relative errors, of the target and its square, of the
// log loss's terms) are exact (exactsum), so scorers over parts of the rows, merged in any
// order, score as one scorer over every row, bit for bit.
type Scorer struct {
	classifier   bool
	n, mapeN     int
	abs, sq, ape exactsum.Sum
	y, ySq       exactsum.Sum
	loss         exactsum.Sum
	correct      int
	scores       []float64
	labels       []bool
}

// NewScorer prepares a scorer; classifier means predictions are probabilities of label 1.
func NewScorer(classifier bool) *Scorer { return &Scorer{classifier: classifier} }

// Add scores one prediction.
func (s *Scorer) Add(pred, y float64) {
	s.n++
	e := pred - y
	s.abs.Add(math.Abs(e))
	s.sq.AddSquare(e)
	if y != 0 {
		s.mapeN++
		s.ape.Add(math.Abs(e / y))
	}
	s.y.Add(y)
	s.ySq.AddSquare(y)
	if s.classifier {
		s.loss.Add(logLoss(pred, y))
		if (pred >= 0.5) == (y == 1) {
			s.correct++
		}
		s.scores = append(s.scores, pred)
		s.labels = append(s.labels, y == 1)
	}
}

// Metrics returns the scores so far.
func (s *Scorer) Metrics() Metrics {
	m := Metrics{Rows: s.n}
	if s.n == 0 {
		return m
	}
	n := float64(s.n)
	m.MAE, m.RMSE = s.abs.Quo(int64(s.n)), math.Sqrt(s.sq.Quo(int64(s.n)))
	if s.mapeN > 0 {
		v := s.ape.Quo(int64(s.mapeN))
		m.MAPE = &v
	}
	if sst := exactsum.Variance(&s.y, &s.ySq, int64(s.n)) * n; sst > 0 {
		m.R2 = 1 - s.sq.Float64()/sst
	}
	if s.classifier {
		ll, acc := s.loss.Quo(int64(s.n)), float64(s.correct)/n
		m.LogLoss, m.Accuracy = &ll, &acc
		if auc, ok := rocAUC(s.scores, s.labels); ok {
			m.AUC = &auc
		}
	}
	return m
}

// rocAUC is the area under the ROC curve by the rank-sum (Mann-Whitney) formula, ties
// given their average rank; false when one class is absent.
func rocAUC(scores []float64, labels []bool) (float64, bool) {
	idx := make([]int, len(scores))
	for i := range idx {
		idx[i] = i
	}
	sort.SliceStable(idx, func(a, b int) bool { return scores[idx[a]] < scores[idx[b]] })
	var pos, neg, rankSum float64
	for i := 0; i < len(idx); {
		j := i
		for j < len(idx) && scores[idx[j]] == scores[idx[i]] {
			j++
		}
		avg := float64(i+j+1) / 2 // ranks i+1..j
		for _, k := range idx[i:j] {
			if labels[k] {
				pos++
				rankSum += avg
			} else {
				neg++
			}
		}
		i = j
	}
	if pos == 0 || neg == 0 {
		return 0, false
	}
	return (rankSum - pos*(pos+1)/2) / (pos * neg), true
}

// SegmentScorer scores overall and per segment value (a column such as region).
type SegmentScorer struct {
	classifier bool
	All        *Scorer
	segments   map[string]*Scorer
}

// NewSegmentScorer prepares an overall and per-segment scorer.
func NewSegmentScorer(classifier bool) *SegmentScorer {
	return &SegmentScorer{classifier: classifier, All: NewScorer(classifier), segments: map[string]*Scorer{}}
}

// Add scores one prediction in its segment ("" = no segment).
func (s *SegmentScorer) Add(segment string, pred, y float64) {
	s.All.Add(pred, y)
	if segment == "" {
		return
	}
	sc := s.segments[segment]
	if sc == nil {
		sc = NewScorer(s.classifier)
		s.segments[segment] = sc
	}
	sc.Add(pred, y)
}

// Segments returns the metrics of each segment.
func (s *SegmentScorer) Segments() map[string]Metrics {
	out := make(map[string]Metrics, len(s.segments))
	keys := make([]string, 0, len(s.segments))
	for k := range s.segments {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		out[k] = s.segments[k].Metrics()
	}
	return out
}
