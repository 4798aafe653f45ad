package features

import (
	"context"
	"fmt"
	"math"
	"strings"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// serviceLayout is where each of a service's features comes from: its views in order of first
// use and, per view, which of the view's features fill which positions of the vector.
type serviceLayout struct {
	names  []string // view:feature, the service's order
	views  []string
	byView map[string][]slot
}

type slot struct{ pos, feature int }

func layout(r Repo, service string) (serviceLayout, error) {
	svc, ok := r.Service(service)
	if !ok {
		return serviceLayout{}, invalidf("feature service %q is not defined", service)
	}
	l := serviceLayout{names: svc.Features, byView: map[string][]slot{}}
	for pos, ref := range svc.Features {
		view, feat, _ := strings.Cut(ref, ":")
		v, ok := r.View(view)
		if !ok {
			return l, invalidf("service %q: view %q is not defined", service, view)
		}
		j := -1
		for k, f := range v.Features {
			if f.Name == feat {
				j = k
			}
		}
		if j < 0 {
			return l, invalidf("service %q: view %q has no feature %q", service, view, feat)
		}
		if _, seen := l.byView[view]; !seen {
			l.views = append(l.views, view)
		}
		l.byView[view] = append(l.byView[view], slot{pos, j})
	}
	return l, nil
}

// ColumnNames are a service's features as a model names them: the feature's name without its
// view. Two views' features of the same name cannot both be in one service's training set.
func ColumnNames(r Repo, service string) ([]string, error) {
	l, err := layout(r, service)
	if err != nil {
		return nil, err
	}
	out := make([]string, len(l.names))
	seen := map[string]string{}
	for i, ref := range l.names {
		_, name, _ := strings.Cut(ref, ":")
		if other, dup := seen[name]; dup {
			return nil, invalidf("service %q: features %s and %s would both be column %q of the training set", service, other, ref, name)
		}
		seen[name] = ref
		out[i] = name
	}
	return out, nil
}

// TrainingSetInput says how to build a training set: the window's rows (Base, read with
// BaseContract, each row's time its EventTime column) and, per view of the service, the
// snapshot of its source (Sources, by dataset) read with Contracts.
type TrainingSetInput struct {
	Repo         Repo
	Service      string
	Base         dataset.Snapshot
	BaseContract contract.Contract
	EventTime    string
	Sources      map[string]dataset.Snapshot
	Contracts    map[string]contract.Contract
	// Prefix is where the files go: <Prefix>dt=<date>/part-0.parquet.
	Prefix string
	// Progress, when set, is called after each day written (activities heartbeat with it).
	Progress func(day string, rows int64)
}

// TrainingSetOutput is the training set: a snapshot of its files (one per day of the window),
// its added columns and how many rows had no value for each.
type TrainingSetOutput struct {
	Snapshot dataset.Snapshot
	Columns  []string
	Missing  []int64
}

// BuildTrainingSet writes the window's rows with the service's features joined as of each
// row's time (AsOf with each view's lookback: only values known by then), day by day, as
// Parquet: every contract column as it was read plus one double column per feature (null when
// nothing was known). Rows the contract rejects are written too, with no features, so the
// run's validation quarantines them with their reasons as it would without a feature service.
// Memory: the views' computed rows, the window's entity rows and their vectors, and one day's
// file; the window is read twice (entity rows, then the rows written).
func BuildTrainingSet(ctx context.Context, b objstore.Bucket, in TrainingSetInput) (TrainingSetOutput, error) {
	l, err := layout(in.Repo, in.Service)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	cols, err := ColumnNames(in.Repo, in.Service)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	evCol, ok := in.BaseContract.Column(in.EventTime)
	if !ok {
		return TrainingSetOutput{}, invalidf("event time %q is not a column of dataset %s", in.EventTime, in.Base.Dataset)
	}
	// The entity key of each accepted row, per entity the service's views use.
	type entityKeys struct {
		cols []contract.Column
		rows []EntityRow
	}
	ents := map[string]*entityKeys{}
	var entOrder []string
	for _, name := range l.views {
		v, _ := in.Repo.View(name)
		if _, done := ents[v.Entity]; done {
			continue
		}
		ent, ok := in.Repo.Entity(v.Entity)
		if !ok {
			return TrainingSetOutput{}, invalidf("view %q: entity %q is not defined", name, v.Entity)
		}
		ek := &entityKeys{}
		for _, k := range ent.Keys {
			c, ok := in.BaseContract.Column(k)
			if !ok {
				return TrainingSetOutput{}, invalidf("view %q: entity %s key %q is not a column of dataset %s", name, ent.Name, k, in.Base.Dataset)
			}
			ek.cols = append(ek.cols, c)
		}
		ents[v.Entity] = ek
		entOrder = append(entOrder, v.Entity)
	}
	err = dataset.ScanSource(ctx, b, in.Base, in.BaseContract, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			if !bt.Accepted[r] {
				continue
			}
			at, err := timeOf(bt, evCol, r)
			if err != nil {
				return invalidf("%s row %d: %s: %w", bt.File, bt.FirstRow+int64(r), evCol.Name, err)
			}
			for _, name := range entOrder {
				ek := ents[name]
				parts := make([]string, len(ek.cols))
				for i, c := range ek.cols {
					if bt.Cols[c.Name].Null[r] {
						return invalidf("%s row %d has no entity key %s", bt.File, bt.FirstRow+int64(r), c.Name)
					}
					parts[i] = bt.Value(c, r)
				}
				ek.rows = append(ek.rows, EntityRow{Key: strings.Join(parts, "|"), At: at})
			}
		}
		return nil
	})
	if err != nil {
		return TrainingSetOutput{}, err
	}
	n := 0
	if len(entOrder) > 0 {
		n = len(ents[entOrder[0]].rows)
	}
	// vectors[i*len(cols)+j]: feature j of accepted row i.
	vectors := make([]float64, n*len(cols))
	for i := range vectors {
		vectors[i] = math.NaN()
	}
	missing := make([]int64, len(cols))
	for _, name := range l.views {
		v, _ := in.Repo.View(name)
		ent, _ := in.Repo.Entity(v.Entity)
		snap, ok := in.Sources[v.Source.Dataset]
		if !ok {
			return TrainingSetOutput{}, invalidf("view %q: no snapshot of its source dataset %s", name, v.Source.Dataset)
		}
		src, err := ReadSource(ctx, b, v, ent, in.Contracts[v.Source.Dataset], snap)
		if err != nil {
			return TrainingSetOutput{}, err
		}
		matches := AsOf(ents[v.Entity].rows, v.Compute(src), v.Lookback.Duration)
		for i, m := range matches {
			if !m.Found {
				continue
			}
			for _, s := range l.byView[name] {
				vectors[i*len(cols)+s.pos] = m.Values[s.feature]
			}
		}
	}
	for i := 0; i < n; i++ {
		for j := range cols {
			if math.IsNaN(vectors[i*len(cols)+j]) {
				missing[j]++
			}
		}
	}

	out := TrainingSetOutput{Columns: cols, Missing: missing,
		Snapshot: dataset.Snapshot{ID: in.Base.ID + "-features", Dataset: in.Base.Dataset, From: in.Base.From, To: in.Base.To}}
	var w *dataset.RowWriter
	day := ""
	flush := func() error {
		if w == nil {
			return nil
		}
		data, err := w.Close()
		if err != nil {
			return fmt.Errorf("training set %s: %w", day, err)
		}
		key := fmt.Sprintf("%sdt=%s/part-0.parquet", in.Prefix, day)
		obj, err := b.Put(ctx, key, data, objstore.PutOptions{})
		if err != nil {
			return err
		}
		out.Snapshot.Files = append(out.Snapshot.Files, dataset.File{Key: key, ETag: obj.ETag, Size: int64(len(data)), Rows: w.Rows(), Date: day})
		out.Snapshot.Rows += w.Rows()
		out.Snapshot.Bytes += int64(len(data))
		if in.Progress != nil {
			in.Progress(day, w.Rows())
		}
		w = nil
		return nil
	}
	none := make([]float64, len(cols))
	for j := range none {
		none[j] = math.NaN()
	}
	i := 0
	err = dataset.ScanSource(ctx, b, in.Base, in.BaseContract, dataset.AllDays)(func(bt *dataset.Batch) error {
		if bt.Date != day {
			if err := flush(); err != nil {
				return err
			}
			day = bt.Date
		}
		if w == nil {
			if w, err = dataset.NewRowWriter(in.BaseContract, cols); err != nil {
				return err
			}
		}
		for r := 0; r < bt.Rows; r++ {
			x := none
			if bt.Accepted[r] {
				x = vectors[i*len(cols) : (i+1)*len(cols)]
				i++
			}
			if err := w.Write(bt, r, x); err != nil {
				return fmt.Errorf("training set %s: %w", day, err)
			}
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return out, err
}
