package dataset

import (
	"context"
	"fmt"

	"github.com/driftline/driftline/objstore"
)

// Table is the accepted rows of a snapshot for a set of numeric columns, column-major, with
// each row's partition date.
type Table struct {
	Names []string
	Cols  [][]float64
	Dates []string
}

// Rows is the number of rows.
func (t *Table) Rows() int { return len(t.Dates) }

// Col returns a named column or nil.
func (t *Table) Col(name string) []float64 {
	for i, n := range t.Names {
		if n == name {
			return t.Cols[i]
		}
	}
	return nil
}

// Split divides the rows by date: rows dated on or after cut go to the second table.
func (t *Table) Split(cut string) (before, after *Table) {
	before, after = &Table{Names: t.Names}, &Table{Names: t.Names}
	before.Cols, after.Cols = make([][]float64, len(t.Names)), make([][]float64, len(t.Names))
	for r, d := range t.Dates {
		dst := before
		if d >= cut {
			dst = after
		}
		dst.Dates = append(dst.Dates, d)
		for i := range t.Names {
			dst.Cols[i] = append(dst.Cols[i], t.Cols[i][r])
		}
	}
	return before, after
}

// FileCheck is the result of reading one file of a snapshot.
type FileCheck struct {
	File     string
	Read     int
	Accepted int
	Issues   []RowIssue
}

// Load reads the snapshot's files (verifying they are the pinned versions) and keeps the rows
// that pass CheckRows. visit, when not nil, sees every file's check result.
func Load(ctx context.Context, b objstore.Bucket, s Snapshot, names []string, visit func(FileCheck)) (*Table, error) {
	t := &Table{Names: names, Cols: make([][]float64, len(names))}
	for _, f := range s.Files {
		head, err := b.Head(ctx, f.Key)
		if err != nil {
			return nil, err
		}
		if head.ETag != f.ETag {
			return nil, dataErr(f.Key, "", -1, "changed since snapshot %s was taken (etag %s, pinned %s): datasets are immutable", s.ID, head.ETag, f.ETag)
		}
		c, err := ReadNumeric(ctx, b, f.Key, names)
		if err != nil {
			return nil, err
		}
		if int64(c.Rows) != f.Rows {
			return nil, dataErr(f.Key, "", -1, "read %d rows, footer said %d", c.Rows, f.Rows)
		}
		ok, issues := CheckRows(c)
		fc := FileCheck{File: f.Key, Read: c.Rows, Issues: issues}
		for r, good := range ok {
			if !good {
				continue
			}
			fc.Accepted++
			t.Dates = append(t.Dates, f.Date)
			for i := range names {
				t.Cols[i] = append(t.Cols[i], c.Data[i][r])
			}
		}
		if visit != nil {
			visit(fc)
		}
	}
	if t.Rows() == 0 {
		return nil, fmt.Errorf("%w: snapshot %s has no valid rows", ErrEmptyWindow, s.ID)
	}
	return t, nil
}
