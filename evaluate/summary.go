package evaluate

import (
	"bytes"
	"encoding/gob"
	"fmt"

	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/pipeline"
)

// summaryState is a Summary as stored: the rows scored, each model's scorers, the fairness
// groups, the candidate's prediction profile and the first rows kept (features and target).
type summaryState struct {
	Rows      int
	Scorers   []model.SegmentState
	Groups    map[string]pipeline.GroupRate
	Preds     []byte
	QRows, QY []float64
}

// MarshalBinary encodes the summary.
func (s *Summary) MarshalBinary() ([]byte, error) {
	ps := s.ps
	st := summaryState{Rows: ps.rows, Groups: map[string]pipeline.GroupRate{}, QRows: ps.qrows, QY: ps.qy}
	for _, sc := range ps.scorers {
		st.Scorers = append(st.Scorers, sc.State())
	}
	for g, gr := range ps.groups {
		st.Groups[g] = *gr
	}
	var err error
	if st.Preds, err = ps.preds.MarshalBinary(); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	err = gob.NewEncoder(&buf).Encode(st)
	return buf.Bytes(), err
}

// UnmarshalSummary restores a summary of an evaluation of the input's models.
func UnmarshalSummary(in Input, data []byte) (*Summary, error) {
	s, err := Start(in)
	if err != nil {
		return nil, err
	}
	var st summaryState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return nil, fmt.Errorf("evaluation summary: %w", err)
	}
	ps := s.ps
	if len(st.Scorers) != len(ps.scorers) {
		return nil, fmt.Errorf("evaluation summary: %d models scored, the evaluation has %d", len(st.Scorers), len(ps.scorers))
	}
	if p := len(ps.models[0].Features); len(st.QRows) != len(st.QY)*p {
		return nil, fmt.Errorf("evaluation summary: %d kept values for %d rows of %d features", len(st.QRows), len(st.QY), p)
	}
	for i, sc := range st.Scorers {
		if ps.scorers[i], err = model.SegmentScorerFrom(sc); err != nil {
			return nil, fmt.Errorf("evaluation summary: model %d: %w", i, err)
		}
	}
	for g, gr := range st.Groups {
		ps.groups[g] = &gr
	}
	if err := ps.preds.UnmarshalBinary(st.Preds); err != nil {
		return nil, fmt.Errorf("evaluation summary: %w", err)
	}
	ps.rows, ps.qrows, ps.qy = st.Rows, st.QRows, st.QY
	return s, nil
}

// Merge adds next, a summary of the holdout rows after s's, to s: what one pass over both
// gives, bit for bit (counts, groups, kept rows, and the sums of errors, which are exact:
// model.Scorer.Merge). Order matters only for the rows kept: the holdout's first.
func (s *Summary) Merge(next *Summary) error {
	a, b := s.ps, next.ps
	if len(a.scorers) != len(b.scorers) {
		return fmt.Errorf("merge evaluations: %d models and %d", len(a.scorers), len(b.scorers))
	}
	for i := range a.scorers {
		if err := a.scorers[i].Merge(b.scorers[i]); err != nil {
			return err
		}
	}
	for g, gr := range b.groups {
		mine := a.groups[g]
		if mine == nil {
			mine = &pipeline.GroupRate{}
			a.groups[g] = mine
		}
		mine.Rows += gr.Rows
		mine.Favorable += gr.Favorable
	}
	if err := a.preds.Merge(b.preds); err != nil {
		return err
	}
	a.rows += b.rows
	p := len(a.models[0].Features)
	take := min(QuantizationRows-len(a.qy), len(b.qy))
	a.qrows = append(a.qrows, b.qrows[:take*p]...)
	a.qy = append(a.qy, b.qy[:take]...)
	return nil
}
