package dataset

import (
	"bytes"
	"encoding/gob"
	"fmt"
	"strings"

	"github.com/driftline/driftline/contract"
)

// ColumnStats is one column's validation numbers.
type ColumnStats struct {
	Nulls       int64 `json:"nulls"`
	NaN         int64 `json:"nan"`
	Infinite    int64 `json:"infinite"`
	OutOfRange  int64 `json:"out_of_range"`
	NotAllowed  int64 `json:"not_allowed"`
	Duplicates  int64 `json:"duplicate_keys,omitempty"`
	WrongType   int64 `json:"wrong_type"`
	Inexact     int64 `json:"inexact,omitempty"` // ints beyond ±2^53 (contract.MaxExactInt)
	Distinct    int64 `json:"distinct_estimate"`
	Quarantined int64 `json:"rows_quarantined"`
}

// count adds one rejected row of the kind.
func (st *ColumnStats) count(kind contract.Reason) {
	st.Quarantined++
	switch kind {
	case contract.ReasonNull:
		st.Nulls++
	case contract.ReasonNaN:
		st.NaN++
	case contract.ReasonInfinite:
		st.Infinite++
	case contract.ReasonBelowMin, contract.ReasonAboveMax:
		st.OutOfRange++
	case contract.ReasonNotAllowed:
		st.NotAllowed++
	case contract.ReasonDuplicateKey:
		st.Duplicates++
	case contract.ReasonInexact:
		st.Inexact++
	}
}

// FileReport is one file's validation result.
type FileReport struct {
	File        string `json:"file"`
	Read        int64  `json:"rows_read"`
	Accepted    int64  `json:"rows_accepted"`
	Quarantined int64  `json:"rows_quarantined"`
	Error       string `json:"error,omitempty"`
}

// ValidationReport is a window's validation result (stored per run as validation.json).
type ValidationReport struct {
	Snapshot        string                  `json:"snapshot"`
	Contract        contract.Contract       `json:"contract"`
	Files           []FileReport            `json:"files"`
	Columns         map[string]*ColumnStats `json:"columns"`
	RowsRead        int64                   `json:"rows_read"`
	RowsAccepted    int64                   `json:"rows_accepted"`
	RowsQuarantined int64                   `json:"rows_quarantined"`
	BadShare        float64                 `json:"bad_share"`
	MaxBadShare     float64                 `json:"max_bad_share"`
	Examples        []RowIssue              `json:"examples,omitempty"`
	Passed          bool                    `json:"passed"`
	Error           string                  `json:"error,omitempty"`
	Quarantine      string                  `json:"quarantine,omitempty"`
}

// Validation accumulates a ValidationReport batch by batch: row counts per file, per-column
// breach counts by kind and distinct-value estimates (HyperLogLog, fixed memory).
type Validation struct {
	rep   ValidationReport
	cols  []contract.Column
	hlls  []*hll
	files map[int]int // file index -> Files index
}

// NewValidation starts a report for the contract.
func NewValidation(snapshotURI string, c contract.Contract) *Validation {
	v := &Validation{rep: ValidationReport{Snapshot: snapshotURI, Contract: c, Columns: map[string]*ColumnStats{}, MaxBadShare: c.MaxBadRowShare},
		cols: c.Columns, files: map[int]int{}}
	for _, col := range c.Columns {
		v.rep.Columns[col.Name] = &ColumnStats{}
		v.hlls = append(v.hlls, newHLL())
	}
	return v
}

// Add takes one batch.
func (v *Validation) Add(b *Batch) {
	i, ok := v.files[b.FileIndex]
	if !ok {
		v.rep.Files = append(v.rep.Files, FileReport{File: b.File})
		i = len(v.rep.Files) - 1
		v.files[b.FileIndex] = i
	}
	fr := &v.rep.Files[i]
	fr.Read += int64(b.Rows)
	fr.Quarantined += int64(len(b.Issues))
	fr.Accepted += int64(b.Rows - len(b.Issues))
	for ci, col := range v.cols {
		h, d := v.hlls[ci], b.Cols[col.Name]
		for r := 0; r < b.Rows; r++ {
			switch {
			case d.Null[r]:
			case col.Type == contract.TypeString:
				h.addString(d.Str[r])
			default:
				h.addNumber(d.Num[r])
			}
		}
	}
	for _, is := range b.Issues {
		v.rep.Columns[is.Column].count(is.Kind)
		if len(v.rep.Examples) < maxExamples {
			v.rep.Examples = append(v.rep.Examples, is)
		}
	}
}

// FileFailed records a file that could not be read (its error names file and column).
func (v *Validation) FileFailed(de *DataError) {
	if st, ok := v.rep.Columns[de.Column]; ok {
		st.WrongType++
	}
	v.rep.Files = append(v.rep.Files, FileReport{File: de.File, Error: de.Error()})
}

// Report totals the counts; quarantine is where the rejected rows are (empty: none).
// It fails (ErrInvalidData) when the bad-row share is over the contract's limit.
func (v *Validation) Report(quarantine string) (ValidationReport, error) {
	rep := v.rep
	rep.RowsRead, rep.RowsAccepted, rep.RowsQuarantined = 0, 0, 0
	for _, fr := range rep.Files {
		rep.RowsRead += fr.Read
		rep.RowsAccepted += fr.Accepted
		rep.RowsQuarantined += fr.Quarantined
	}
	for i, col := range v.cols {
		rep.Columns[col.Name].Distinct = v.hlls[i].estimate()
	}
	if rep.RowsQuarantined > 0 {
		rep.Quarantine = quarantine
	}
	if rep.RowsRead > 0 {
		rep.BadShare = float64(rep.RowsQuarantined) / float64(rep.RowsRead)
	}
	var err error
	if rep.BadShare > rep.MaxBadShare {
		err = fmt.Errorf("%w: %d of %d rows (%.2f%%) broke the contract, over the limit of %.2f%%; for example %s; all of them are in %s",
			ErrInvalidData, rep.RowsQuarantined, rep.RowsRead, 100*rep.BadShare, 100*rep.MaxBadShare, Examples(rep.Examples), rep.Quarantine)
	}
	rep.Passed = err == nil
	if err != nil {
		rep.Error = err.Error()
	}
	return rep, err
}

// Examples renders up to three rejected rows for an error message.
func Examples(issues []RowIssue) string {
	parts := make([]string, 0, 3)
	for _, is := range issues[:min(3, len(issues))] {
		parts = append(parts, fmt.Sprintf("file %s row %d column %s: %s (%s)", is.File, is.Row, is.Column, is.Reason, is.Value))
	}
	return strings.Join(parts, "; ")
}

// validationState is what a Validation has counted, for a checkpoint.
type validationState struct {
	Files    []FileReport
	Columns  map[string]*ColumnStats
	Examples []RowIssue
	HLL      [][]byte
	Index    map[int]int
}

// MarshalBinary encodes the counts so far (a checkpoint of a long pass).
func (v *Validation) MarshalBinary() ([]byte, error) {
	st := validationState{Files: v.rep.Files, Columns: v.rep.Columns, Examples: v.rep.Examples, Index: v.files}
	for _, h := range v.hlls {
		st.HLL = append(st.HLL, h.reg[:])
	}
	var buf bytes.Buffer
	err := gob.NewEncoder(&buf).Encode(st)
	return buf.Bytes(), err
}

// UnmarshalBinary restores counts encoded by MarshalBinary into a Validation made by
// NewValidation with the same contract.
func (v *Validation) UnmarshalBinary(data []byte) error {
	var st validationState
	if err := gob.NewDecoder(bytes.NewReader(data)).Decode(&st); err != nil {
		return fmt.Errorf("decode validation state: %w", err)
	}
	if len(st.HLL) != len(v.hlls) {
		return fmt.Errorf("validation state has %d columns, the contract %d", len(st.HLL), len(v.hlls))
	}
	for _, col := range v.cols {
		if st.Columns[col.Name] == nil {
			return fmt.Errorf("validation state has no column %q", col.Name)
		}
	}
	for i, h := range v.hlls {
		if len(st.HLL[i]) != len(h.reg) {
			return fmt.Errorf("validation state of column %q has %d registers, not %d", v.cols[i].Name, len(st.HLL[i]), len(h.reg))
		}
		copy(h.reg[:], st.HLL[i])
	}
	v.rep.Files, v.rep.Columns, v.rep.Examples = st.Files, st.Columns, st.Examples
	v.files = st.Index
	if v.files == nil {
		v.files = map[int]int{}
	}
	return nil
}
