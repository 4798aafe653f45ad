package activities

import (
	"math"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/drift"
	"github.com/driftline/driftline/spec"
)

// featureReader pulls a spec's features from a batch: numeric values in model order, and for
// drift the value as drift sees it (a number, or a category).
type featureReader struct {
	sp    spec.Spec
	cols  []contract.Column
	kinds []string
}

func newFeatureReader(sp spec.Spec) (*featureReader, error) {
	fr := &featureReader{sp: sp, kinds: sp.FeatureKinds()}
	for _, f := range sp.Features {
		col, ok := sp.Contract.Column(f)
		if !ok {
			return nil, invalid("feature %q is not a column of the contract", f)
		}
		fr.cols = append(fr.cols, col)
	}
	if col, ok := sp.Contract.Column(sp.Target); !ok || col.Type == "string" {
		return nil, invalid("target %q is not a numeric column of the contract", sp.Target)
	}
	return fr, nil
}

// vector fills x with row r's features (numeric; categorical ints and bools as numbers;
// nulls as NaN, which gbdt routes as missing values).
func (f *featureReader) vector(b *dataset.Batch, r int, x []float64) {
	for i, col := range f.cols {
		d := b.Cols[col.Name]
		if d.Null[r] {
			x[i] = math.NaN()
			continue
		}
		x[i] = d.Num[r]
	}
}

// observe passes row r's features to a drift window; idx maps feature i to the window's index.
func (f *featureReader) observe(b *dataset.Batch, r int, add func(i int, kind string, num float64, cat string)) {
	for i, col := range f.cols {
		if f.kinds[i] == drift.Categorical {
			add(i, drift.Categorical, 0, b.Value(col, r))
		} else {
			add(i, drift.Numeric, b.Cols[col.Name].Num[r], "")
		}
	}
}
