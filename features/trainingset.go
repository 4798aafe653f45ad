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
	// Prefix is where the files go: <Prefix>dt=<date>/part-<n>.parquet (an entity file's
	// rows: <Prefix>part-<n>.parquet).
	Prefix string
	// Progress, when set, is called after each day written (activities heartbeat with it).
	Progress func(day string, rows int64)
	// TempDir holds the partitions spilled while joining (empty: the system's).
	TempDir string
	// RowsPerPartition bounds memory: entity and source rows are partitioned by a hash of
	// their key so a partition holds about this many (0: 1,000,000).
	RowsPerPartition int64
	// RowsPerFile cuts the output: a file is written once it holds this many rows (0:
	// 1,000,000), so the file being built stays small whatever the input.
	RowsPerFile int64
}

// TrainingSetOutput is the training set: a snapshot of its files (one per day of the window),
// its added columns and how many rows had no value for each.
type TrainingSetOutput struct {
	Snapshot   dataset.Snapshot
	Columns    []string
	Missing    []int64
	Partitions int
}

// entityJoin is the join of one entity's views: its rows partitioned by key hash.
type entityJoin struct {
	name  string
	cols  []contract.Column
	views []string
	slots []int // the vector positions this entity's views fill, in order
	// byView holds, per view, its slots (position, the view's feature index) in that order.
	byView map[string][]slot
	ents   *spill
	srcs   map[string]*spill
	res    *spill
}

func (e *entityJoin) key(bt *dataset.Batch, r int) (string, error) {
	parts := make([]string, len(e.cols))
	for i, c := range e.cols {
		if bt.Cols[c.Name].Null[r] {
			return "", invalidf("%s row %d has no entity key %s", bt.File, bt.FileRow(r), c.Name)
		}
		parts[i] = bt.Value(c, r)
	}
	return strings.Join(parts, "|"), nil
}

func (e *entityJoin) close() {
	for _, s := range append([]*spill{e.ents, e.res}, mapValues(e.srcs)...) {
		if s != nil {
			s.close()
		}
	}
}

func mapValues(m map[string]*spill) []*spill {
	out := make([]*spill, 0, len(m))
	for _, s := range m {
		out = append(out, s)
	}
	return out
}

// BuildTrainingSet writes the window's rows with the service's features joined as of each
// row's time (AsOf with each view's lookback: only values known by then), day by day, as
// Parquet: every contract column as it was read plus one double column per feature (null when
// nothing was known). Rows the contract rejects are written too, with no features, so the
// run's validation quarantines them with their reasons as it would without a feature service.
//
// Memory is bounded, whatever the window's and the sources' sizes: the window's entity rows
// (ordinal, key, time) and the views' source rows are spilled to local files partitioned by a
// hash of the entity key (a grace hash join); each partition is computed and joined on its own
// and its vectors spilled in row order; a last pass over the window streams each day's rows
// with their vectors into that day's Parquet file. Peak memory is one partition (about
// RowsPerPartition rows) plus one day's file being built.
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
	joins, est, err := planJoins(in, l)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	per := in.RowsPerPartition
	if per <= 0 {
		per = 1_000_000
	}
	k := int(min(max(1, (est+per-1)/per), 1024))
	defer func() {
		for _, j := range joins {
			j.close()
		}
	}()
	for _, j := range joins {
		if err := j.openSpills(in.TempDir, k); err != nil {
			return TrainingSetOutput{}, err
		}
	}
	// Pass 1: the window's accepted rows and the views' source rows, partitioned per entity;
	// each partition joined on its own, its vectors (this entity's slots) spilled in row order.
	n, err := spillWindow(ctx, b, in, evCol, joins, k)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	for _, j := range joins {
		if err := j.spillSources(ctx, b, in, k); err != nil {
			return TrainingSetOutput{}, err
		}
		for p := range k {
			if err := j.joinPartition(in.Repo, p); err != nil {
				return TrainingSetOutput{}, err
			}
		}
	}
	// Pass 2: the window again, each row with its vector, a file per day.
	return writeTrainingSet(ctx, b, in, cols, joins, k, n)
}

// planJoins makes one join per entity the service's views use, and estimates the rows the
// joins spill (the window's and the views' sources').
func planJoins(in TrainingSetInput, l serviceLayout) ([]*entityJoin, int64, error) {
	var joins []*entityJoin
	byEntity := map[string]*entityJoin{}
	est := in.Base.Rows
	for _, name := range l.views {
		v, _ := in.Repo.View(name)
		snap, ok := in.Sources[v.Source.Dataset]
		if !ok {
			return nil, 0, invalidf("view %q: no snapshot of its source dataset %s", name, v.Source.Dataset)
		}
		est += snap.Rows
		j := byEntity[v.Entity]
		if j == nil {
			ent, ok := in.Repo.Entity(v.Entity)
			if !ok {
				return nil, 0, invalidf("view %q: entity %q is not defined", name, v.Entity)
			}
			j = &entityJoin{name: v.Entity, srcs: map[string]*spill{}, byView: map[string][]slot{}}
			for _, k := range ent.Keys {
				c, ok := in.BaseContract.Column(k)
				if !ok {
					return nil, 0, invalidf("view %q: entity %s key %q is not a column of dataset %s", name, ent.Name, k, in.Base.Dataset)
				}
				j.cols = append(j.cols, c)
			}
			byEntity[v.Entity] = j
			joins = append(joins, j)
		}
		j.views = append(j.views, name)
		j.byView[name] = l.byView[name]
		for _, s := range l.byView[name] {
			j.slots = append(j.slots, s.pos)
		}
	}
	return joins, est, nil
}

// openSpills creates the join's k partitions of entity rows, of results and of each view's
// source rows.
func (j *entityJoin) openSpills(dir string, k int) (err error) {
	if j.ents, err = newSpill(dir, k); err != nil {
		return err
	}
	if j.res, err = newSpill(dir, k); err != nil {
		return err
	}
	for _, name := range j.views {
		if j.srcs[name], err = newSpill(dir, k); err != nil {
			return err
		}
	}
	return nil
}

// encoders are the spill's writers, one a partition.
func encoders(s *spill) []*enc {
	out := make([]*enc, len(s.w))
	for p, w := range s.w {
		out[p] = &enc{w: w}
	}
	return out
}

// spillWindow writes each accepted row of the window (its number, entity key and time) to
// its partition of every join, and returns how many rows it wrote.
func spillWindow(ctx context.Context, b objstore.Bucket, in TrainingSetInput, evCol contract.Column, joins []*entityJoin, k int) (int64, error) {
	var n int64
	entEnc := make([][]*enc, len(joins))
	for ji, j := range joins {
		entEnc[ji] = encoders(j.ents)
	}
	err := dataset.ScanSource(ctx, b, in.Base, in.BaseContract, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			if !bt.Accepted[r] {
				continue
			}
			at, err := timeOf(bt, evCol, r)
			if err != nil {
				return invalidf("%s row %d: %s: %w", bt.File, bt.FileRow(r), evCol.Name, err)
			}
			for ji, j := range joins {
				key, err := j.key(bt, r)
				if err != nil {
					return err
				}
				e := entEnc[ji][partitionOf(key, k)]
				e.int(n)
				e.str(key)
				e.int(at)
				if e.err != nil {
					return fmt.Errorf("spill: %w", e.err)
				}
			}
			n++
		}
		return nil
	})
	return n, err
}

// spillSources writes the join's views' source rows to their partitions.
func (j *entityJoin) spillSources(ctx context.Context, b objstore.Bucket, in TrainingSetInput, k int) error {
	for _, name := range j.views {
		v, _ := in.Repo.View(name)
		ent, _ := in.Repo.Entity(v.Entity)
		es := encoders(j.srcs[name])
		err := ScanSourceRows(ctx, b, v, ent, in.Contracts[v.Source.Dataset], in.Sources[v.Source.Dataset], func(row SourceRow) error {
			e := es[partitionOf(row.Key, k)]
			e.str(row.Key)
			e.int(row.Event)
			e.int(row.Created)
			for _, x := range row.Cols {
				e.float(x)
			}
			return e.err
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// setWriter writes the training set's files: a file per day of the window (or per
// RowsPerFile rows), each recorded in the output's snapshot.
type setWriter struct {
	ctx  context.Context
	b    objstore.Bucket
	in   TrainingSetInput
	cols []string
	out  *TrainingSetOutput
	w    *dataset.RowWriter
	day  string
	part int
}

// flush writes the rows written so far as the day's next file.
func (s *setWriter) flush() error {
	if s.w == nil || s.w.Rows() == 0 {
		s.w = nil
		return nil
	}
	data, err := s.w.Close()
	if err != nil {
		return fmt.Errorf("training set %s: %w", s.day, err)
	}
	key := fmt.Sprintf("%sdt=%s/part-%d.parquet", s.in.Prefix, s.day, s.part)
	if s.day == "" { // not a dataset's partitions: an entity file
		key = fmt.Sprintf("%spart-%d.parquet", s.in.Prefix, s.part)
	}
	s.part++
	obj, err := s.b.Put(s.ctx, key, data, objstore.PutOptions{})
	if err != nil {
		return err
	}
	rows := s.w.Rows()
	s.out.Snapshot.Files = append(s.out.Snapshot.Files, dataset.File{Key: key, ETag: obj.ETag, Size: int64(len(data)), Rows: rows, Date: s.day})
	s.out.Snapshot.Rows += rows
	s.out.Snapshot.Bytes += int64(len(data))
	if s.in.Progress != nil {
		s.in.Progress(s.day, rows)
	}
	s.w = nil
	return nil
}

// writer is the open file's writer: a new file for a new day, or when the file is full.
func (s *setWriter) writer(date string) (*dataset.RowWriter, error) {
	perFile := s.in.RowsPerFile
	if perFile <= 0 {
		perFile = 1_000_000
	}
	if date != s.day || (s.w != nil && s.w.Rows() >= perFile) {
		if err := s.flush(); err != nil {
			return nil, err
		}
		if date != s.day {
			s.day, s.part = date, 0
		}
	}
	if s.w == nil {
		w, err := dataset.NewRowWriter(s.in.BaseContract, s.cols)
		if err != nil {
			return nil, err
		}
		s.w = w
	}
	return s.w, nil
}

// writeTrainingSet reads the window again and writes each row with its vector, read back
// from the joins' results in row order; n is the first pass's count of accepted rows.
func writeTrainingSet(ctx context.Context, b objstore.Bucket, in TrainingSetInput, cols []string, joins []*entityJoin, k int, n int64) (TrainingSetOutput, error) {
	out := TrainingSetOutput{Columns: cols, Missing: make([]int64, len(cols)), Partitions: k,
		Snapshot: dataset.Snapshot{ID: in.Base.ID + "-features", Dataset: in.Base.Dataset, From: in.Base.From, To: in.Base.To}}
	res := make([][]*dec, len(joins))
	for ji, j := range joins {
		res[ji] = make([]*dec, k)
		for p := range k {
			r, err := j.res.reader(p)
			if err != nil {
				return TrainingSetOutput{}, err
			}
			res[ji][p] = &dec{r: r}
		}
	}
	sw := &setWriter{ctx: ctx, b: b, in: in, cols: cols, out: &out}
	x := make([]float64, len(cols))
	var i int64
	err := dataset.ScanSource(ctx, b, in.Base, in.BaseContract, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			for c := range x {
				x[c] = math.NaN()
			}
			if bt.Accepted[r] {
				for ji, j := range joins {
					key, err := j.key(bt, r)
					if err != nil {
						return err
					}
					d := res[ji][partitionOf(key, k)]
					if got := d.int(); d.err != nil || got != i {
						return fmt.Errorf("training set: row %d of %s (row %d) read back as row %d: %v (did the window change while it was read?)", i, bt.File, bt.FileRow(r), got, d.err)
					}
					for _, pos := range j.slots {
						x[pos] = d.float()
					}
				}
				for c := range x {
					if math.IsNaN(x[c]) {
						out.Missing[c]++
					}
				}
				i++
			}
			w, err := sw.writer(bt.Date)
			if err != nil {
				return err
			}
			if err := w.Write(bt, r, x); err != nil {
				return fmt.Errorf("training set %s: %w", sw.day, err)
			}
		}
		return nil
	})
	if err == nil {
		err = sw.flush()
	}
	if err == nil && i != n {
		err = fmt.Errorf("training set: the window had %d accepted rows on the first pass and %d on the second", n, i)
	}
	return out, err
}

// joinPartition reads partition p of the entity's rows and of its views' source rows,
// computes and joins each view, and spills the vectors (the entity's slots) in row order.
func (j *entityJoin) joinPartition(repo Repo, p int) error {
	r, err := j.ents.reader(p)
	if err != nil {
		return err
	}
	var ords []int64
	var ents []EntityRow
	for d := (&dec{r: r}); d.more(); {
		ord, key, at := d.int(), d.str(), d.int()
		if d.err != nil {
			return fmt.Errorf("spill: %w", d.err)
		}
		ords = append(ords, ord)
		ents = append(ents, EntityRow{Key: key, At: at})
	}
	j.ents.drop(p)
	vals := make([]float64, len(ents)*len(j.slots))
	for i := range vals {
		vals[i] = math.NaN()
	}
	off := 0
	for _, name := range j.views {
		v, _ := repo.View(name)
		ncol := len(v.Columns())
		r, err := j.srcs[name].reader(p)
		if err != nil {
			return err
		}
		var src []SourceRow
		for d := (&dec{r: r}); d.more(); {
			row := SourceRow{Key: d.str(), Event: d.int(), Created: d.int(), Cols: make([]float64, ncol)}
			for c := range row.Cols {
				row.Cols[c] = d.float()
			}
			if d.err != nil {
				return fmt.Errorf("spill: %w", d.err)
			}
			src = append(src, row)
		}
		j.srcs[name].drop(p)
		matches := AsOf(ents, v.Compute(src), v.Lookback.Duration)
		slots := j.byView[name]
		for i, m := range matches {
			if !m.Found {
				continue
			}
			for s, sl := range slots {
				vals[i*len(j.slots)+off+s] = m.Values[sl.feature]
			}
		}
		off += len(slots)
	}
	e := &enc{w: j.res.w[p]}
	for i, ord := range ords {
		e.int(ord)
		for _, x := range vals[i*len(j.slots) : (i+1)*len(j.slots)] {
			e.float(x)
		}
	}
	if e.err != nil {
		return fmt.Errorf("spill: %w", e.err)
	}
	return nil
}
