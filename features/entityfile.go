package features

import (
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/parquet-go/parquet-go/format"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// EntityFileContract reads an entity file's schema (a Parquet object: the entity's keys, a
// time column and any others, e.g. labels) as a contract: every top-level column as it is
// typed, nullable, the keys and the time column with their roles. A missing key or time
// column, a nested column and a Parquet TIMESTAMP time column are errors naming the file
// and the column.
func EntityFileContract(ctx context.Context, b objstore.Bucket, key string, keys []string, timeColumn string) (contract.Contract, dataset.Snapshot, error) {
	f, obj, err := dataset.OpenParquet(ctx, b, key)
	if err != nil {
		return contract.Contract{}, dataset.Snapshot{}, err
	}
	var c contract.Contract
	for _, field := range f.Schema().Fields() {
		name := field.Name()
		if !field.Leaf() {
			return c, dataset.Snapshot{}, invalidf("entity file %s: column %s is nested; an entity file has flat columns", key, name)
		}
		col := contract.Column{Name: name, Nullable: true, Role: contract.RoleOther}
		t := field.Type()
		switch k := t.Kind(); {
		case isTimestamp(t):
			if name == timeColumn {
				return c, dataset.Snapshot{}, invalidf("entity file %s: time column %s is a Parquet TIMESTAMP; give it as a date or RFC 3339 string, or as Unix seconds", key, name)
			}
			col.Type = contract.TypeInt
		case k == parquet.Int32 || k == parquet.Int64:
			col.Type = contract.TypeInt
		case k == parquet.Float || k == parquet.Double:
			col.Type = contract.TypeDouble
		case k == parquet.ByteArray:
			col.Type = contract.TypeString
		case k == parquet.Boolean:
			col.Type = contract.TypeBool
		default:
			return c, dataset.Snapshot{}, invalidf("entity file %s: column %s has Parquet type %s, which an entity file cannot hold", key, name, t)
		}
		switch {
		case name == timeColumn:
			col.Role = contract.RoleEventTime
		case slices.Contains(keys, name):
			col.Role = contract.RoleEntityKey
		}
		c.Columns = append(c.Columns, col)
	}
	for _, want := range append(slices.Clone(keys), timeColumn) {
		if _, ok := c.Column(want); !ok {
			return c, dataset.Snapshot{}, invalidf("entity file %s has no column %s (it needs the entity's keys %v and the time column %s)", key, want, keys, timeColumn)
		}
	}
	c.MaxBadRowShare = 1 // nothing is rejected: a row without its keys or time is an error, naming it
	snap := dataset.Snapshot{ID: "entities", Dataset: "entities", Files: []dataset.File{{Key: key, ETag: obj.ETag, Size: obj.Size, Rows: f.NumRows()}},
		Rows: f.NumRows(), Bytes: obj.Size}
	return c, snap, nil
}

// PinSource pins a snapshot of a view's source dataset over [from, to] (dates inclusive).
type PinSource func(ctx context.Context, dataset string, from, to time.Time) (dataset.Snapshot, error)

// RetrieveFile builds a service's training set for the rows of an entity file (Feast's
// entity dataframe): each row with its columns unchanged and the service's features joined
// as of its time column, streamed to one Parquet object, <outPrefix>part-0.parquet, in
// bounded memory (BuildTrainingSet). Each view's source is pinned (pin) from the earliest
// row's time less what the view can reach back (History) to the latest row's time.
func RetrieveFile(ctx context.Context, b objstore.Bucket, r Repo, service string, contracts map[string]contract.Contract, pin PinSource,
	entityKey, timeColumn, outPrefix, tempDir string) (TrainingSetOutput, error) {
	l, err := layout(r, service)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	var keys []string
	for _, name := range l.views {
		v, _ := r.View(name)
		ent, ok := r.Entity(v.Entity)
		if !ok {
			return TrainingSetOutput{}, invalidf("view %q: entity %q is not defined", name, v.Entity)
		}
		for _, k := range ent.Keys {
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	c, snap, err := EntityFileContract(ctx, b, entityKey, keys, timeColumn)
	if err != nil {
		return TrainingSetOutput{}, err
	}
	tc, _ := c.Column(timeColumn)
	first, last := int64(math.MaxInt64), int64(math.MinInt64)
	err = dataset.ScanSource(ctx, b, snap, c, dataset.AllDays)(func(bt *dataset.Batch) error {
		for r := 0; r < bt.Rows; r++ {
			at, err := timeOf(bt, tc, r)
			if err != nil {
				return invalidf("%s row %d: %s: %w", bt.File, bt.FileRow(r), tc.Name, err)
			}
			first, last = min(first, at), max(last, at)
		}
		return nil
	})
	if err != nil {
		return TrainingSetOutput{}, err
	}
	if snap.Rows == 0 {
		return TrainingSetOutput{}, invalidf("entity file %s has no rows", entityKey)
	}
	sources := map[string]dataset.Snapshot{}
	for _, name := range l.views {
		v, _ := r.View(name)
		ds := v.Source.Dataset
		from := time.UnixMicro(first).UTC().Add(-History(v)).Truncate(24 * time.Hour)
		if s, ok := sources[ds]; ok {
			prev, _ := time.Parse(dataset.DateLayout, s.From)
			if !from.Before(prev) {
				continue
			}
		}
		s, err := pin(ctx, ds, from, time.UnixMicro(last).UTC())
		if err != nil {
			return TrainingSetOutput{}, fmt.Errorf("view %q: source %s: %w", name, ds, err)
		}
		sources[ds] = s
	}
	return BuildTrainingSet(ctx, b, TrainingSetInput{Repo: r, Service: service, Base: snap, BaseContract: c, EventTime: timeColumn,
		Sources: sources, Contracts: contracts, Prefix: outPrefix, TempDir: tempDir})
}

func isTimestamp(t parquet.Type) bool {
	lt := t.LogicalType()
	if lt == nil {
		return false
	}
	_, ok := lt.Value.(*format.TimestampType)
	return ok
}
