package dataset

import (
	"bytes"
	"fmt"
	"math"
	"slices"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/compress/zstd"

	"github.com/driftline/driftline/contract"
)

// A RowWriter writes rows of scanned batches, the contract's columns as they were read plus
// extra double columns (a training set's features), as one Parquet file. Every column is
// optional, so a null cell stays null and a NaN extra value is written as null. Rows are
// encoded as they come; memory is the file being built (row groups are flushed into it).
type RowWriter struct {
	c     contract.Contract
	extra []string
	// idx maps the contract's columns, then the extra ones, to their Parquet leaf index
	// (a group's fields are sorted by name).
	idx  []int
	buf  bytes.Buffer
	w    *parquet.GenericWriter[any]
	row  parquet.Row
	rows int64
}

// NewRowWriter starts a file of the contract's columns and the extra ones; an extra name
// that is also a contract column is an error.
func NewRowWriter(c contract.Contract, extra []string) (*RowWriter, error) {
	g := parquet.Group{}
	var names []string
	for _, col := range c.Columns {
		var n parquet.Node
		switch col.Type {
		case contract.TypeInt:
			n = parquet.Int(64)
		case contract.TypeDouble:
			n = parquet.Leaf(parquet.DoubleType)
		case contract.TypeString:
			n = parquet.String()
		case contract.TypeBool:
			n = parquet.Leaf(parquet.BooleanType)
		default:
			return nil, fmt.Errorf("column %s: type %q cannot be written", col.Name, col.Type)
		}
		g[col.Name] = parquet.Optional(n)
		names = append(names, col.Name)
	}
	for _, e := range extra {
		if _, dup := g[e]; dup {
			return nil, fmt.Errorf("column %s: a feature of the same name is already a column of the dataset", e)
		}
		g[e] = parquet.Optional(parquet.Leaf(parquet.DoubleType))
		names = append(names, e)
	}
	sorted := slices.Clone(names)
	slices.Sort(sorted)
	w := &RowWriter{c: c, extra: extra, idx: make([]int, len(names)), row: make(parquet.Row, len(names))}
	for i, n := range names {
		w.idx[i], _ = slices.BinarySearch(sorted, n)
	}
	w.w = parquet.NewGenericWriter[any](&w.buf, parquet.NewSchema("row", g), parquet.Compression(&zstd.Codec{}), parquet.MaxRowsPerRowGroup(64<<10))
	return w, nil
}

// Write appends row r of b with its extra values (len(extra) of NewRowWriter; NaN: null).
func (w *RowWriter) Write(b *Batch, r int, extra []float64) error {
	for i, col := range w.c.Columns {
		j := w.idx[i]
		d := b.Cols[col.Name]
		if d == nil || d.Null[r] {
			w.row[j] = parquet.NullValue().Level(0, 0, j)
			continue
		}
		var v parquet.Value
		switch col.Type {
		case contract.TypeInt:
			v = parquet.Int64Value(int64(d.Num[r]))
		case contract.TypeDouble:
			v = parquet.DoubleValue(d.Num[r])
		case contract.TypeString:
			v = parquet.ByteArrayValue([]byte(d.Str[r]))
		case contract.TypeBool:
			v = parquet.BooleanValue(d.Num[r] != 0)
		}
		w.row[j] = v.Level(0, 1, j)
	}
	for i, x := range extra {
		j := w.idx[len(w.c.Columns)+i]
		if math.IsNaN(x) {
			w.row[j] = parquet.NullValue().Level(0, 0, j)
		} else {
			w.row[j] = parquet.DoubleValue(x).Level(0, 1, j)
		}
	}
	if _, err := w.w.WriteRows([]parquet.Row{w.row}); err != nil {
		return err
	}
	w.rows++
	return nil
}

// Flush ends the row group being built: its pages are encoded into the file, and the rows
// written so far are no longer held (a caller streaming groups calls it every N rows).
func (w *RowWriter) Flush() error { return w.w.Flush() }

// Size is how many bytes of the file are built so far.
func (w *RowWriter) Size() int { return w.buf.Len() }

// Rows is how many rows were written.
func (w *RowWriter) Rows() int64 { return w.rows }

// Close finishes the file and returns its bytes.
func (w *RowWriter) Close() ([]byte, error) {
	if err := w.w.Close(); err != nil {
		return nil, err
	}
	return w.buf.Bytes(), nil
}
