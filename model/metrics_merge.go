package model

import "fmt"

// ScorerState is a Scorer's state, to store and merge (a partition of an evaluation).
type ScorerState struct {
	Classifier            bool
	N, MapeN, Correct     int
	AbsSum, SqSum, ApeSum float64
	YMean, YM2, LogLoss   float64
	Scores                []float64
	Labels                []bool
}

// State is the scorer's state.
func (s *Scorer) State() ScorerState {
	return ScorerState{Classifier: s.classifier, N: s.n, MapeN: s.mapeN, Correct: s.correct, AbsSum: s.absSum, SqSum: s.sqSum,
		ApeSum: s.apeSum, YMean: s.yMean, YM2: s.yM2, LogLoss: s.logLoss, Scores: s.scores, Labels: s.labels}
}

// ScorerFrom is a scorer in state st.
func ScorerFrom(st ScorerState) *Scorer {
	return &Scorer{classifier: st.Classifier, n: st.N, mapeN: st.MapeN, correct: st.Correct, absSum: st.AbsSum, sqSum: st.SqSum,
		apeSum: st.ApeSum, yMean: st.YMean, yM2: st.YM2, logLoss: st.LogLoss, scores: st.Scores, labels: st.Labels}
}

// Merge adds o, a scorer of the same kind over the rows after s's, to s. Counts, the
// classifier's scores (so the AUC and accuracy) and the log loss's terms are those of one
// scorer over every row; the sums of errors and the target's variance (Chan's formula) are
// combined in floating point, within a relative 1e-12 of one scorer's.
func (s *Scorer) Merge(o *Scorer) error {
	if o.classifier != s.classifier {
		return fmt.Errorf("merge scorers: a classifier's and a regressor's")
	}
	if o.n == 0 {
		return nil
	}
	if s.n == 0 {
		*s = *ScorerFrom(o.State())
		return nil
	}
	na, nb := float64(s.n), float64(o.n)
	d := o.yMean - s.yMean
	s.yMean += d * nb / (na + nb)
	s.yM2 += o.yM2 + d*d*na*nb/(na+nb)
	s.n += o.n
	s.mapeN += o.mapeN
	s.correct += o.correct
	s.absSum += o.absSum
	s.sqSum += o.sqSum
	s.apeSum += o.apeSum
	s.logLoss += o.logLoss
	s.scores = append(s.scores, o.scores...)
	s.labels = append(s.labels, o.labels...)
	return nil
}

// SegmentState is a SegmentScorer's state.
type SegmentState struct {
	All      ScorerState
	Segments map[string]ScorerState
}

// State is the segment scorer's state.
func (s *SegmentScorer) State() SegmentState {
	st := SegmentState{All: s.All.State(), Segments: make(map[string]ScorerState, len(s.segments))}
	for k, sc := range s.segments {
		st.Segments[k] = sc.State()
	}
	return st
}

// SegmentScorerFrom is a segment scorer in state st.
func SegmentScorerFrom(st SegmentState) *SegmentScorer {
	s := &SegmentScorer{classifier: st.All.Classifier, All: ScorerFrom(st.All), segments: make(map[string]*Scorer, len(st.Segments))}
	for k, sc := range st.Segments {
		s.segments[k] = ScorerFrom(sc)
	}
	return s
}

// Merge adds o, over the rows after s's, to s: overall and segment by segment.
func (s *SegmentScorer) Merge(o *SegmentScorer) error {
	if err := s.All.Merge(o.All); err != nil {
		return err
	}
	for k, sc := range o.segments {
		mine := s.segments[k]
		if mine == nil {
			mine = NewScorer(s.classifier)
			s.segments[k] = mine
		}
		if err := mine.Merge(sc); err != nil {
			return err
		}
	}
	return nil
}
