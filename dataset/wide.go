package dataset

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"time"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/objstore"
)

// WideConfig generates a wide table: Features double columns (f0000, f0001, ...), an id
// (the key), the date, and a target y that depends on the first five features, so a model
// has something to learn and the other features are noise it must ignore. From day ShiftDay
// on, the first Shifted features move by Shift standard deviations (drift on purpose).
type WideConfig struct {
	Features   int
	RowsPerDay int
	Days       int
	Start      time.Time
	ShiftDay   int
	Shifted    int
	Shift      float64
	Seed       uint64
}

// WideFeature is the name of feature i.
func WideFeature(i int) string { return fmt.Sprintf("f%04d", i) }

// FeatureNames are the table's features in column order.
func (c WideConfig) FeatureNames() []string {
	out := make([]string, c.Features)
	for i := range out {
		out[i] = WideFeature(i)
	}
	return out
}

// Contract is the table's data contract: every feature a double in [-10, 10].
func (c WideConfig) Contract() contract.Contract {
	lo, hi, one := -10.0, 10.0, 1.0
	cols := []contract.Column{{Name: "date", Type: contract.TypeString, Role: "event_time"}, {Name: "id", Type: contract.TypeInt, Role: "entity_key", Min: &one}}
	for _, f := range c.FeatureNames() {
		cols = append(cols, contract.Column{Name: f, Type: contract.TypeDouble, Role: "feature", Min: &lo, Max: &hi})
	}
	cols = append(cols, contract.Column{Name: "y", Type: contract.TypeDouble, Role: "target"})
	return contract.Contract{Columns: cols, UniqueKey: []string{"id"}, MaxBadRowShare: 0.01}
}

// Row is row r of a day: its features (each N(0, 1), clipped to the contract's range, moved
// by Shift from ShiftDay on for the first Shifted) and its target.
func (c WideConfig) Row(day, r int) (features []float64, y float64) {
	rng := rand.New(rand.NewPCG(c.Seed, uint64(day)<<32|uint64(r)))
	features = make([]float64, c.Features)
	for i := range features {
		v := rng.NormFloat64()
		if day >= c.ShiftDay && i < c.Shifted {
			v += c.Shift
		}
		features[i] = math.Max(-10, math.Min(10, v))
	}
	at := func(i int) float64 {
		if i < len(features) {
			return features[i]
		}
		return 0
	}
	y = 3*at(0) + 2*at(1) - at(2) + 1.5*at(3)*at(4) + math.Abs(at(0))*at(2) + 0.3*rng.NormFloat64()
	return features, y
}

// Day is a day's rows as a batch of the contract's columns.
func (c WideConfig) Day(day int) *Batch {
	n := c.RowsPerDay
	b := &Batch{Rows: n, Cols: map[string]*ColumnData{}, Date: c.Start.AddDate(0, 0, day).Format(DateLayout)}
	col := func(name string) *ColumnData {
		d := &ColumnData{Num: make([]float64, n), Null: make([]bool, n)}
		b.Cols[name] = d
		return d
	}
	date := &ColumnData{Str: make([]string, n), Null: make([]bool, n)}
	b.Cols["date"] = date
	id, y := col("id"), col("y")
	feats := make([]*ColumnData, c.Features)
	for i, f := range c.FeatureNames() {
		feats[i] = col(f)
	}
	for r := range n {
		x, target := c.Row(day, r)
		date.Str[r], id.Num[r], y.Num[r] = b.Date, float64(r+1), target
		for i, v := range x {
			feats[i].Num[r] = v
		}
	}
	return b
}

// WriteWide writes every day as datasets/<name>/dt=<date>/part-0000.parquet (row groups of
// 65,536 rows); an existing partition is left as it is.
func WriteWide(ctx context.Context, b objstore.Bucket, name string, c WideConfig) (written int, err error) {
	for day := range c.Days {
		key := PartitionPrefix(name, c.Start.AddDate(0, 0, day)) + "part-0000.parquet"
		w, err := NewRowWriter(c.Contract(), nil)
		if err != nil {
			return written, err
		}
		batch := c.Day(day)
		for r := range batch.Rows {
			if err := w.Write(batch, r, nil); err != nil {
				return written, fmt.Errorf("encode %s row %d: %w", key, r, err)
			}
		}
		data, err := w.Close()
		if err != nil {
			return written, fmt.Errorf("encode %s: %w", key, err)
		}
		_, err = b.Put(ctx, key, data, objstore.PutOptions{IfNoneMatch: true, ContentType: "application/vnd.apache.parquet"})
		switch {
		case errors.Is(err, objstore.ErrPreconditionFailed):
		case err != nil:
			return written, err
		default:
			written++
		}
	}
	return written, nil
}
