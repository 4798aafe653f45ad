package dataset

import (
	"fmt"
	"math"

	"github.com/driftline/driftline/contract"
)

// Features reads a model's features from batches, in the model's order.
type Features struct {
	cols        []contract.Column
	categorical []bool
}

// NewFeatures maps feature names to contract columns; a name that is not a column of the
// contract, or a string column (models take numbers and category codes), is an error naming it.
func NewFeatures(c contract.Contract, names []string, categorical []bool) (*Features, error) {
	f := &Features{categorical: categorical}
	for _, n := range names {
		col, ok := c.Column(n)
		if !ok {
			return nil, fmt.Errorf("%w: feature %q is not a column of the contract", ErrInvalidData, n)
		}
		f.cols = append(f.cols, col)
	}
	return f, nil
}

// Len is the number of features.
func (f *Features) Len() int { return len(f.cols) }

// Vector fills x with row r's features: numbers, category codes and bools as numbers, nulls
// as NaN (which gbdt routes as missing values).
func (f *Features) Vector(b *Batch, r int, x []float64) {
	for i, col := range f.cols {
		d := b.Cols[col.Name]
		if d.Null[r] {
			x[i] = math.NaN()
			continue
		}
		x[i] = d.Num[r]
	}
}

// Observe passes row r's features to a drift accumulator: numbers (NaN for nulls) by index, or
// the category as drift sees it (its rendered value).
func (f *Features) Observe(b *Batch, r int, num func(i int, v float64), cat func(i int, v string)) {
	for i, col := range f.cols {
		if f.categorical[i] {
			cat(i, b.Value(col, r))
			continue
		}
		d := b.Cols[col.Name]
		if d.Null[r] {
			num(i, math.NaN())
		} else {
			num(i, d.Num[r])
		}
	}
}
