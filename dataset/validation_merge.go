package dataset

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// Merge adds o, a Validation of the same contract over other files of the same snapshot
// (another partition of the window), to v. It is exact and its order does not matter: the
// report of partitions merged in any order equals the report of one pass over all their files
// (row counts and breaches are sums, distinct-value sketches merge register by register, the
// files and the examples keep the scan's order). A file in both (pieces of a file split by
// row groups) has its rows summed.
func (v *Validation) Merge(o *Validation) error {
	if len(o.cols) != len(v.cols) {
		return fmt.Errorf("merge validations: %d columns and %d", len(v.cols), len(o.cols))
	}
	for i, c := range v.cols {
		if o.cols[i].Name != c.Name {
			return fmt.Errorf("merge validations: column %d is %q and %q", i, c.Name, o.cols[i].Name)
		}
	}
	order := map[string]int{} // file -> its index in the snapshot, for the examples' order
	files := v.indexed(order)
	at := make(map[int]int, len(files))
	for i, f := range files {
		at[f.idx] = i
	}
	for _, f := range o.indexed(order) {
		if i, ok := at[f.idx]; ok {
			if files[i].fr.File != f.fr.File {
				return fmt.Errorf("merge validations: file %d is %s and %s", f.idx, files[i].fr.File, f.fr.File)
			}
			files[i].fr.Read += f.fr.Read
			files[i].fr.Accepted += f.fr.Accepted
			files[i].fr.Quarantined += f.fr.Quarantined
			continue
		}
		files = append(files, f)
	}
	slices.SortStableFunc(files, func(a, b indexedFile) int { return a.idx - b.idx })
	failed := append(v.failed(), o.failed()...)
	slices.SortStableFunc(failed, func(a, b FileReport) int { return strings.Compare(a.File, b.File) })
	v.rep.Files, v.files = v.rep.Files[:0], map[int]int{}
	for _, f := range files {
		v.files[f.idx] = len(v.rep.Files)
		v.rep.Files = append(v.rep.Files, f.fr)
	}
	v.rep.Files = append(v.rep.Files, failed...)
	for _, c := range v.cols {
		v.rep.Columns[c.Name].add(o.rep.Columns[c.Name])
	}
	for i, h := range v.hlls {
		h.merge(o.hlls[i])
	}
	// The first examples of the scan: by file, then row (a row's issues stay in column order).
	ex := append(append([]RowIssue(nil), v.rep.Examples...), o.rep.Examples...)
	slices.SortStableFunc(ex, func(a, b RowIssue) int {
		if c := order[a.File] - order[b.File]; c != 0 {
			return c
		}
		return cmp.Compare(a.Row, b.Row)
	})
	v.rep.Examples = ex[:min(len(ex), maxExamples)]
	return nil
}

// maxExamples is how many rejected rows a report shows.
const maxExamples = 5

type indexedFile struct {
	idx int
	fr  FileReport
}

// indexed is the files the scan read, with their index in the snapshot (recorded in order).
func (v *Validation) indexed(order map[string]int) []indexedFile {
	out := make([]indexedFile, 0, len(v.files))
	for idx, i := range v.files {
		out = append(out, indexedFile{idx, v.rep.Files[i]})
		order[v.rep.Files[i].File] = idx
	}
	return out
}

// failed is the files that could not be read (FileFailed): they have no index.
func (v *Validation) failed() []FileReport {
	read := make(map[int]bool, len(v.files))
	for _, i := range v.files {
		read[i] = true
	}
	var out []FileReport
	for i, fr := range v.rep.Files {
		if !read[i] {
			out = append(out, fr)
		}
	}
	return out
}

// add sums o's breach counts into st (the distinct estimate is the report's, from the sketch).
func (st *ColumnStats) add(o *ColumnStats) {
	st.Nulls += o.Nulls
	st.NaN += o.NaN
	st.Infinite += o.Infinite
	st.OutOfRange += o.OutOfRange
	st.NotAllowed += o.NotAllowed
	st.Duplicates += o.Duplicates
	st.WrongType += o.WrongType
	st.Inexact += o.Inexact
	st.Quarantined += o.Quarantined
}
