package training

import (
	"encoding/json"
	"fmt"
	"math"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/spec"
)

// DefaultSampleCells bounds the built-in gbdt's training matrix when the spec sets no
// trainer.max_rows: one byte a feature a row, 256 MiB.
const DefaultSampleCells = 1 << 28

// sampleSalt separates the training sample's row hash from the bins' (1) and the early
// stopping split's (2).
const sampleSalt = 3

// MaxRows is the most rows the built-in gbdt trains on for sp with features features:
// trainer.max_rows, or DefaultSampleCells over the features.
func MaxRows(sp spec.Spec, features int) int64 {
	if sp.Trainer.MaxRows > 0 {
		return sp.Trainer.MaxRows
	}
	return DefaultSampleCells / int64(max(features, 1))
}

// daySample keeps a training window's rows whose hash falls under one limit, so every day is
// sampled at the same rate (the bound over the window's training rows) and the sample is the
// same for every retry and every worker; it counts what each day kept.
type daySample struct {
	of, bound int64
	limit     uint64
	kept      map[string]int64
	days      []string // in the order they came
}

// newDaySample is the sample of a window of rows training rows under bound; nil when the
// window fits.
func newDaySample(rows, bound int64) *daySample {
	if rows <= bound || bound <= 0 {
		return nil
	}
	rate := float64(bound) / float64(rows)
	return &daySample{of: rows, bound: bound, limit: uint64(rate * math.MaxUint64), kept: map[string]int64{}}
}

// keep says whether row r of b is in the sample, and counts it.
func (s *daySample) keep(b *dataset.Batch, r int) bool {
	if RowHash(b.RowKey0+uint64(r), sampleSalt) > s.limit {
		return false
	}
	if _, seen := s.kept[b.Date]; !seen {
		s.days = append(s.days, b.Date)
	}
	s.kept[b.Date]++
	return true
}

// record writes the sample into the model's lineage: its size, the rows it was drawn from,
// the rate, and the rows kept each day.
func (s *daySample) record(params map[string]float64, settings map[string]string, kept int) error {
	params["sample_rows"], params["sample_of_rows"], params["sample_rate"] = float64(kept), float64(s.of), float64(s.bound)/float64(s.of)
	settings["sample"] = fmt.Sprintf("every training day at rate %.6g by a hash of the row key (bound %d rows): %d of %d rows", float64(s.bound)/float64(s.of), s.bound, kept, s.of)
	perDay := make([]struct {
		Day  string `json:"day"`
		Rows int64  `json:"rows"`
	}, len(s.days))
	for i, d := range s.days {
		perDay[i].Day, perDay[i].Rows = d, s.kept[d]
	}
	raw, err := json.Marshal(perDay)
	settings["sample_days"] = string(raw)
	return err
}
