package features

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// SourceRow is one row of a view's source: its entity key, event and created times (Unix
// microseconds) and the columns the view reads (NaN: null), in View.Columns order.
type SourceRow struct {
	Key     string
	Event   int64
	Created int64
	Cols    []float64
}

// Columns lists the source columns a view's features read, in a fixed order.
func (v View) Columns() []string {
	var out []string
	seen := map[string]bool{}
	own := map[string]bool{}
	for _, f := range v.Features {
		own[f.Name] = true
	}
	for _, f := range v.Features {
		for _, c := range []string{f.Column, f.Of, f.To} {
			if c != "" && !seen[c] && (c == f.Column || !own[c]) {
				seen[c] = true
				out = append(out, c)
			}
		}
	}
	return out
}

// Compute turns a view's source rows into its feature rows: one per source row, each
// feature computed over the key's rows up to that row's event (Feature.Op). A computed row is
// known when the last row it reads was (its created time is their latest), so a training row
// never sees a value written after its time. rows may be in any order.
func (v View) Compute(rows []SourceRow) []FeatureRow {
	cols := v.Columns()
	ci := map[string]int{}
	for i, c := range cols {
		ci[c] = i
	}
	fi := map[string]int{}
	for i, f := range v.Features {
		fi[f.Name] = i
	}
	rows = sortByKeyEvent(rows)
	out := make([]FeatureRow, 0, len(rows))
	for lo := 0; lo < len(rows); {
		hi := lo
		for hi < len(rows) && rows[hi].Key == rows[lo].Key {
			hi++
		}
		out = v.computeKey(rows[lo:hi], ci, fi, out)
		lo = hi
	}
	return out
}

// sortByKeyEvent returns the rows grouped by key (in first-seen order) and by event within a
// key, stably: keys are interned to integers so the sort compares numbers.
func sortByKeyEvent(rows []SourceRow) []SourceRow {
	ids := make(map[string]int32, 1024)
	type ord struct {
		key   int32
		idx   int32
		event int64
	}
	o := make([]ord, len(rows))
	for i, r := range rows {
		id, ok := ids[r.Key]
		if !ok {
			id = int32(len(ids))
			ids[r.Key] = id
		}
		o[i] = ord{id, int32(i), r.Event}
	}
	slices.SortFunc(o, func(a, b ord) int {
		if c := cmp.Compare(a.key, b.key); c != 0 {
			return c
		}
		if c := cmp.Compare(a.event, b.event); c != 0 {
			return c
		}
		return cmp.Compare(a.idx, b.idx)
	})
	out := make([]SourceRow, len(rows))
	for i, x := range o {
		out[i] = rows[x.idx]
	}
	return out
}

// computeKey computes the feature rows of one key's rows (sorted by event).
func (v View) computeKey(rows []SourceRow, ci, fi map[string]int, out []FeatureRow) []FeatureRow {
	n := len(v.Features)
	done := make([]bool, n)
	for i, r := range rows {
		vals := make([]float64, n)
		clear(done)
		created := r.Created
		top := i // rows of the same event count in the window whatever their order
		for top+1 < len(rows) && rows[top+1].Event == r.Event {
			top++
		}
		for j, f := range v.Features {
			c := ci[f.Column]
			switch f.Op {
			case OpValue:
				vals[j], done[j] = r.Cols[c], true
			case OpRollingSum, OpRollingMean, OpRollingCount:
				from := r.Event - f.Window.Microseconds() // (from, event]
				sum, cnt := 0.0, 0
				for k := top; k >= 0 && rows[k].Event > from; k-- {
					if x := rows[k].Cols[c]; !math.IsNaN(x) {
						sum, cnt = sum+x, cnt+1
					}
					created = max(created, rows[k].Created)
				}
				switch f.Op {
				case OpRollingSum:
					vals[j] = sum
				case OpRollingMean:
					vals[j] = math.NaN()
					if cnt > 0 {
						vals[j] = sum / float64(cnt)
					}
				default:
					vals[j] = float64(cnt)
				}
				done[j] = true
			case OpLag:
				// The latest event in (t - 2 lag, t - lag]: a lag reaches back one lag at most.
				at := r.Event - f.Lag.Microseconds()
				vals[j] = math.NaN()
				for k := i; k >= 0 && rows[k].Event > at-f.Lag.Microseconds(); k-- {
					if rows[k].Event <= at {
						vals[j] = rows[k].Cols[c]
						created = max(created, rows[k].Created)
						break
					}
				}
				done[j] = true
			}
		}
		// Ratios, in dependency order (Validate refused cycles).
		for pass := 0; pass < n; pass++ {
			for j, f := range v.Features {
				if done[j] || f.Op != OpRatio {
					continue
				}
				a, okA := operand(f.Of, r, vals, done, ci, fi)
				b, okB := operand(f.To, r, vals, done, ci, fi)
				if !okA || !okB {
					continue
				}
				vals[j], done[j] = math.NaN(), true
				if b != 0 && !math.IsNaN(a) && !math.IsNaN(b) {
					vals[j] = a / b
				}
			}
		}
		out = append(out, FeatureRow{Key: r.Key, Event: r.Event, Created: created, Values: vals})
	}
	return out
}

func operand(name string, r SourceRow, vals []float64, done []bool, ci, fi map[string]int) (float64, bool) {
	if j, ok := fi[name]; ok {
		return vals[j], done[j]
	}
	return r.Cols[ci[name]], true
}

// ReadSource reads a view's source rows from a snapshot of its dataset: the entity's keys
// joined into one key (key values rendered as reports render them, "|"-separated), the event
// time (a date or RFC 3339 string, or Unix seconds), the created time (its column, or the
// event time) plus the source's available_after, and the columns the view reads. Rows the
// contract rejects are left out, as training leaves them out; a row without its keys or event
// time is an error naming the file and row.
func ReadSource(ctx context.Context, b objstore.Bucket, v View, ent Entity, c contract.Contract, snap dataset.Snapshot) ([]SourceRow, error) {
	// The snapshot says how many rows there are: one allocation for the rows and one for
	// their columns (a growing slice would copy them, and leave the GC its garbage).
	ncol := len(v.Columns())
	out := make([]SourceRow, 0, snap.Rows)
	cols := make([]float64, 0, snap.Rows*int64(ncol))
	err := ScanSourceRows(ctx, b, v, ent, c, snap, func(r SourceRow) error {
		if len(cols)+ncol > cap(cols) { // more rows than pinned: cannot happen for a pinned snapshot
			cols = make([]float64, 0, 1024*ncol)
		}
		cols = append(cols, r.Cols...)
		r.Cols = cols[len(cols)-ncol : len(cols) : len(cols)]
		out = append(out, r)
		return nil
	})
	return out, err
}

// ScanSourceRows is ReadSource one row at a time, in the source's order: memory is one row
// group. The row's Cols are reused for the next row: visit copies what it keeps.
func ScanSourceRows(ctx context.Context, b objstore.Bucket, v View, ent Entity, c contract.Contract, snap dataset.Snapshot, visit func(SourceRow) error) error {
	cols := v.Columns()
	buf := make([]float64, len(cols))
	colOf := func(name string) (contract.Column, error) {
		cc, ok := c.Column(name)
		if !ok {
			return cc, invalidf("view %q: %q is not a column of dataset %s", v.Name, name, v.Source.Dataset)
		}
		return cc, nil
	}
	keyCols := make([]contract.Column, len(ent.Keys))
	for i, k := range ent.Keys {
		cc, err := colOf(k)
		if err != nil {
			return err
		}
		keyCols[i] = cc
	}
	evCol, err := colOf(v.Source.EventTime)
	if err != nil {
		return err
	}
	after := v.Source.AvailableAfter.Microseconds()
	parts := make([]string, len(keyCols))
	err = dataset.ScanSource(ctx, b, snap, c, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			if !bt.Accepted[r] {
				continue
			}
			for i, kc := range keyCols {
				if bt.Cols[kc.Name].Null[r] {
					return invalidf("view %q: %s row %d has no entity key %s", v.Name, bt.File, bt.FileRow(r), kc.Name)
				}
				parts[i] = bt.Value(kc, r)
			}
			ev, err := timeOf(bt, evCol, r)
			if err != nil {
				return invalidf("view %q: %s row %d: event_time %s: %w", v.Name, bt.File, bt.FileRow(r), evCol.Name, err)
			}
			created := ev
			if v.Source.CreatedTime != "" {
				cc, err := colOf(v.Source.CreatedTime)
				if err != nil {
					return err
				}
				if created, err = timeOf(bt, cc, r); err != nil {
					return invalidf("view %q: %s row %d: created_time %s: %w", v.Name, bt.File, bt.FileRow(r), cc.Name, err)
				}
				created = max(created, ev)
			}
			row := SourceRow{Key: strings.Join(parts, "|"), Event: ev, Created: created + after, Cols: buf}
			for i, name := range cols {
				d, ok := bt.Cols[name]
				switch {
				case !ok:
					return invalidf("view %q: %s has no column %s (did the source's schema change?)", v.Name, bt.File, name)
				case d.Null[r]:
					row.Cols[i] = math.NaN()
				default:
					row.Cols[i] = d.Num[r]
				}
			}
			if err := visit(row); err != nil {
				return err
			}
		}
		return nil
	})
	return err
}

// timeOf reads a time cell as Unix microseconds.
func timeOf(bt *dataset.Batch, c contract.Column, r int) (int64, error) {
	d := bt.Cols[c.Name]
	if d == nil || d.Null[r] {
		return 0, fmt.Errorf("missing")
	}
	if c.Type != contract.TypeString {
		return int64(d.Num[r] * 1e6), nil // Unix seconds
	}
	s := d.Str[r]
	for _, layout := range []string{"2006-01-02", time.RFC3339Nano} {
		if t, err := time.Parse(layout, s); err == nil {
			return t.UnixMicro(), nil
		}
	}
	return 0, fmt.Errorf("%q is not a date (2006-01-02) or an RFC 3339 time", s)
}

// TrainingSet is a feature service's vectors for entity rows, point-in-time correct.
type TrainingSet struct {
	Names   []string    // view:feature, the service's order
	Vectors [][]float64 // per entity row; NaN: missing (no value known in the lookback)
	// Events holds, per entity row and view (the service's views in order of first use), the
	// event time of the joined row (0: none): how fresh each part of the vector was.
	Views  []string
	Events [][]int64
}

// Retrieve builds the service's training set for the entity rows: each view's source is read
// from its snapshot, computed (Compute) and joined as of each row's time (AsOf, the view's
// lookback).
func Retrieve(ctx context.Context, b objstore.Bucket, r Repo, service string, contracts map[string]contract.Contract,
	snaps map[string]dataset.Snapshot, entities []EntityRow) (TrainingSet, error) {
	l, err := layout(r, service)
	if err != nil {
		return TrainingSet{}, err
	}
	ts := TrainingSet{Names: l.names, Views: l.views, Vectors: make([][]float64, len(entities)), Events: make([][]int64, len(entities))}
	for i := range entities {
		ts.Vectors[i] = make([]float64, len(l.names))
	}
	byView := l.byView
	for vi, name := range ts.Views {
		v, _ := r.View(name)
		ent, ok := r.Entity(v.Entity)
		if !ok {
			return TrainingSet{}, invalidf("view %q: entity %q is not defined", name, v.Entity)
		}
		snap, ok := snaps[v.Source.Dataset]
		if !ok {
			return TrainingSet{}, invalidf("view %q: no snapshot of dataset %s", name, v.Source.Dataset)
		}
		src, err := ReadSource(ctx, b, v, ent, contracts[v.Source.Dataset], snap)
		if err != nil {
			return TrainingSet{}, err
		}
		matches := AsOf(entities, v.Compute(src), v.Lookback.Duration)
		for i, m := range matches {
			if vi == 0 {
				ts.Events[i] = make([]int64, len(ts.Views))
			}
			for _, s := range byView[name] {
				ts.Vectors[i][s.pos] = math.NaN()
				if m.Found {
					ts.Vectors[i][s.pos] = m.Values[s.feature]
					ts.Events[i][vi] = m.Event
				}
			}
		}
	}
	return ts, nil
}

// Materialize writes into the online store, for every key of the view's source, the row the
// offline join gives as of asOf (AsOf with the view's lookback): what training would have
// joined at that time, so serving and training see the same values. Rows not known by asOf
// are not written. It returns how many keys got a row.
func Materialize(ctx context.Context, o Online, v View, src []SourceRow, asOf time.Time) (int, error) {
	rows := v.Compute(src)
	seen := map[string]bool{}
	var ents []EntityRow
	for _, r := range rows {
		if !seen[r.Key] {
			seen[r.Key] = true
			ents = append(ents, EntityRow{Key: r.Key, At: asOf.UnixMicro()})
		}
	}
	matches := AsOf(ents, rows, v.Lookback.Duration)
	out := make([]FeatureRow, 0, len(ents))
	for i, m := range matches {
		if m.Found {
			out = append(out, FeatureRow{Key: ents[i].Key, Event: m.Event, Created: m.Created, Values: m.Values})
		}
	}
	if err := o.Put(ctx, v.Name, out); err != nil {
		return 0, err
	}
	return len(out), nil
}

// History is how far before a time a view's row as of that time can reach: its lookback,
// its longest window or lag and its source's availability delay, plus a day of partitions.
func History(v View) time.Duration {
	h := v.Lookback.Duration
	if h == 0 {
		h = 365 * 24 * time.Hour // no lookback bound: a year of history
	}
	longest := time.Duration(0)
	for _, f := range v.Features {
		longest = max(longest, f.Window.Duration, 2*f.Lag.Duration)
	}
	return h + longest + v.Source.AvailableAfter.Duration + 24*time.Hour
}
