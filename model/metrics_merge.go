package model

import (
	"fmt"

	"github.com/driftline/driftline/internal/exactsum"
)

// ScorerState is a Scorer's state, to store and merge (a partition of an evaluation): its
// exact sums. AbsSum to LogLoss are a state stored before the sums were exact (Chan's running
// mean and M2 of the target); it is read, within a relative 1e-12, as it was merged then.
type ScorerState struct {
	Classifier         bool
	N, MapeN, Correct  int
	Exact              bool
	Abs, Sq, Ape       exactsum.State
	Y, YSq, Loss       exactsum.State
	AbsSum, SqSum      float64
	ApeSum, YMean, YM2 float64
	LogLoss            float64
	Scores             []float64
	Labels             []bool
}

// State is the scorer's state.
func (s *Scorer) State() ScorerState {
	return ScorerState{Classifier: s.classifier, N: s.n, MapeN: s.mapeN, Correct: s.correct, Exact: true,
		Abs: s.abs.State(), Sq: s.sq.State(), Ape: s.ape.State(), Y: s.y.State(), YSq: s.ySq.State(), Loss: s.loss.State(),
		Scores: s.scores, Labels: s.labels}
}

// ScorerFrom is a scorer in state st; a state whose sums do not fit a sum is an error.
func ScorerFrom(st ScorerState) (*Scorer, error) {
	s := &Scorer{classifier: st.Classifier, n: st.N, mapeN: st.MapeN, correct: st.Correct, scores: st.Scores, labels: st.Labels}
	if !st.Exact {
		n := float64(st.N)
		s.abs.Add(st.AbsSum)
		s.sq.Add(st.SqSum)
		s.ape.Add(st.ApeSum)
		s.y.Add(n * st.YMean)
		s.ySq.Add(st.YM2)
		s.ySq.Add(n * st.YMean * st.YMean)
		s.loss.Add(st.LogLoss)
		return s, nil
	}
	sums := s.sums()
	for i, x := range []exactsum.State{st.Abs, st.Sq, st.Ape, st.Y, st.YSq, st.Loss} {
		v, err := exactsum.FromState(x)
		if err != nil {
			return nil, fmt.Errorf("scorer state: %w", err)
		}
		*sums[i] = v
	}
	return s, nil
}

// sums are the scorer's sums in the order of ScorerState's.
func (s *Scorer) sums() []*exactsum.Sum {
	return []*exactsum.Sum{&s.abs, &s.sq, &s.ape, &s.y, &s.ySq, &s.loss}
}

// Merge adds o, a scorer of the same kind over the rows after s's, to s: counts, sums and
// the classifier's scores (so the AUC and accuracy) are those of one scorer over every row,
// so its metrics are too, bit for bit.
func (s *Scorer) Merge(o *Scorer) error {
	if o.classifier != s.classifier {
		return fmt.Errorf("merge scorers: a classifier's and a regressor's")
	}
	s.n += o.n
	s.mapeN += o.mapeN
	s.correct += o.correct
	mine := s.sums()
	for i, x := range o.sums() {
		mine[i].Merge(x)
	}
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
func SegmentScorerFrom(st SegmentState) (*SegmentScorer, error) {
	all, err := ScorerFrom(st.All)
	if err != nil {
		return nil, err
	}
	s := &SegmentScorer{classifier: st.All.Classifier, All: all, segments: make(map[string]*Scorer, len(st.Segments))}
	for k, sc := range st.Segments {
		if s.segments[k], err = ScorerFrom(sc); err != nil {
			return nil, fmt.Errorf("segment %q: %w", k, err)
		}
	}
	return s, nil
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
