package iceberg

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/big"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/table"
	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// At chooses a table's snapshot: by id, else the newest of the table's history committed at
// or before Time, else (both zero) the current one.
type At struct {
	SnapshotID int64
	Time       time.Time
}

// TakeSnapshot pins a window of an Iceberg table for a run: its snapshot (at) and, of the
// snapshot's data files, those iceberg-go's planner keeps for the predicate from <=
// eventTime < to+1 day (partition pruning, then the files' column statistics), each with its
// ETag, size and row counts. A file partitioned by day on the event-time column (identity of
// a date or YYYY-MM-DD string column, or day or hour of a timestamp) is pinned whole when its
// day is in the window; a file of a spec that partitions otherwise (or not at all) is pinned
// once per day of the window it holds rows of (dataset.SplitByDay). A file with deletes
// (merge-on-read) is refused by name.
func TakeSnapshot(ctx context.Context, b objstore.Bucket, ds, id string, src Source, at At, eventTime string, from, to time.Time) (dataset.Snapshot, error) {
	s := dataset.Snapshot{ID: id, Dataset: ds, From: from.Format(dataset.DateLayout), To: to.Format(dataset.DateLayout)}
	t, uri, err := Load(ctx, b, src)
	if err != nil {
		return s, err
	}
	meta := t.Metadata()
	snap, err := choose(meta, at)
	if err != nil {
		return s, fmt.Errorf("%w: Iceberg table %s: %v", dataset.ErrInvalidData, uri, err)
	}
	schema := meta.CurrentSchema()
	if snap.SchemaID != nil {
		if i := slices.IndexFunc(meta.Schemas(), func(sc *iceberg.Schema) bool { return sc.ID == *snap.SchemaID }); i >= 0 {
			schema = meta.Schemas()[i]
		}
	}
	field, ok := schema.FindFieldByName(eventTime)
	if !ok {
		return s, fmt.Errorf("%w: Iceberg table %s snapshot %d has no column %s (the event time)", dataset.ErrInvalidData, uri, snap.SnapshotID, eventTime)
	}
	filter, err := window(field, from, to)
	if err != nil {
		return s, fmt.Errorf("%w: Iceberg table %s: %v", dataset.ErrInvalidData, uri, err)
	}
	tasks, err := t.Scan(table.WithSnapshotID(snap.SnapshotID), table.WithRowFilter(filter)).PlanFiles(ctx)
	if err != nil {
		return s, fmt.Errorf("%w: Iceberg table %s snapshot %d: plan the window's files: %v", dataset.ErrInvalidData, uri, snap.SnapshotID, err)
	}
	s.Table = &dataset.TableVersion{Format: "iceberg", URI: uri, Version: snap.SnapshotID,
		CommitTime: time.UnixMilli(snap.TimestampMs).UTC(), Metadata: b.URI(mustKey(b, t.MetadataLocation()))}
	for _, task := range tasks {
		files, err := windowFiles(ctx, b, meta, schema, field, task, from, to)
		if err != nil {
			return s, fmt.Errorf("snapshot %d of Iceberg table %s: %w", snap.SnapshotID, uri, err)
		}
		s.AddDays(files)
	}
	s.SortByDay()
	if s.Rows == 0 {
		return s, fmt.Errorf("%w: Iceberg table %s snapshot %d has no rows between %s and %s", dataset.ErrEmptyWindow, uri, snap.SnapshotID, s.From, s.To)
	}
	return s, nil
}

// mustKey is a metadata location's key, or the location itself when it is not in the bucket.
func mustKey(b objstore.Bucket, loc string) string {
	if k, err := key(b, loc); err == nil {
		return k
	}
	return loc
}

// choose finds the snapshot at names.
func choose(meta table.Metadata, at At) (*table.Snapshot, error) {
	switch {
	case at.SnapshotID != 0:
		if s := meta.SnapshotByID(at.SnapshotID); s != nil {
			return s, nil
		}
		var ids []string
		for _, s := range meta.Snapshots() {
			ids = append(ids, strconv.FormatInt(s.SnapshotID, 10))
		}
		return nil, fmt.Errorf("no snapshot %d (it has %s)", at.SnapshotID, strings.Join(ids, ", "))
	case !at.Time.IsZero():
		var found *table.Snapshot
		for e := range meta.SnapshotLogs() {
			if e.TimestampMs <= at.Time.UnixMilli() {
				if s := meta.SnapshotByID(e.SnapshotID); s != nil {
					found = s
				}
			}
		}
		if found == nil {
			return nil, fmt.Errorf("no snapshot was committed at or before %s", at.Time.UTC().Format(time.RFC3339))
		}
		return found, nil
	}
	if s := meta.CurrentSnapshot(); s != nil {
		return s, nil
	}
	return nil, fmt.Errorf("the table has no snapshot yet (no data)")
}

// window is the predicate from <= field < to + 1 day for the event-time column's type.
func window(f iceberg.NestedField, from, to time.Time) (iceberg.BooleanExpression, error) {
	ref, end := iceberg.Reference(f.Name), to.AddDate(0, 0, 1)
	switch f.Type.(type) {
	case iceberg.DateType:
		return iceberg.NewAnd(iceberg.GreaterThanEqual(ref, days(from)), iceberg.LessThan(ref, days(end))), nil
	case iceberg.StringType:
		return iceberg.NewAnd(iceberg.GreaterThanEqual(ref, from.Format(dataset.DateLayout)), iceberg.LessThan(ref, end.Format(dataset.DateLayout))), nil
	case iceberg.TimestampType, iceberg.TimestampTzType:
		return iceberg.NewAnd(iceberg.GreaterThanEqual(ref, iceberg.Timestamp(from.UnixMicro())), iceberg.LessThan(ref, iceberg.Timestamp(end.UnixMicro()))), nil
	}
	return nil, fmt.Errorf("the event time column %s is %s: a date, a timestamp or a YYYY-MM-DD string is needed", f.Name, f.Type)
}

func days(t time.Time) iceberg.Date { return iceberg.Date(t.Unix() / 86400) }

// windowFiles pins a planned data file for the window: whole when its partition is a day of
// the window, once per day of the window it holds rows of when the file's spec does not
// partition by day on the event time (dataset.SplitByDay), not at all when its partition's
// event time is null or another day.
func windowFiles(ctx context.Context, b objstore.Bucket, meta table.Metadata, schema *iceberg.Schema, event iceberg.NestedField, task table.FileScanTask, from, to time.Time) ([]dataset.File, error) {
	day, err := taskDay(meta, event, task)
	switch {
	case errors.Is(err, errNullDay):
		return nil, nil
	case errors.Is(err, errNotByDay):
		whole, err := pinTask(ctx, b, meta, schema, task, "")
		if err != nil {
			return nil, err
		}
		return dataset.SplitByDay(ctx, b, whole, event.Name, from, to)
	case err != nil:
		return nil, err
	case day.Before(from) || day.After(to):
		return nil, nil
	}
	f, err := pinTask(ctx, b, meta, schema, task, day.Format(dataset.DateLayout))
	if err != nil {
		return nil, err
	}
	return []dataset.File{f}, nil
}

var (
	// errNotByDay: a file's partition spec does not partition by day on the event time.
	errNotByDay = errors.New("not partitioned by day")
	// errNullDay: a file's partition on the event time is null.
	errNullDay = errors.New("null event time partition")
)

// taskDay is the day of a planned data file's partition on the event-time column; a file
// with deletes (merge-on-read) or not in Parquet is refused first.
func taskDay(meta table.Metadata, event iceberg.NestedField, task table.FileScanTask) (time.Time, error) {
	df := task.File
	if n := len(task.DeleteFiles) + len(task.EqualityDeleteFiles) + len(task.DeletionVectorFiles); n > 0 {
		return time.Time{}, fmt.Errorf("%w: data file %s has %d delete file(s) (merge-on-read deletes are not read yet): rewrite the table's data files (CALL rewrite_data_files) or write it copy-on-write", dataset.ErrInvalidData, df.FilePath(), n)
	}
	if df.FileFormat() != iceberg.ParquetFile {
		return time.Time{}, fmt.Errorf("%w: data file %s is %s, Driftline reads Parquet", dataset.ErrInvalidData, df.FilePath(), df.FileFormat())
	}
	spec := meta.PartitionSpecByID(int(df.SpecID()))
	if spec == nil {
		return time.Time{}, fmt.Errorf("%w: data file %s names partition spec %d, which the table does not have", dataset.ErrInvalidData, df.FilePath(), df.SpecID())
	}
	day, err := fileDay(spec, event, df.Partition())
	if err != nil && !errors.Is(err, errNotByDay) && !errors.Is(err, errNullDay) {
		return time.Time{}, fmt.Errorf("%w: data file %s (partition spec %d): %v", dataset.ErrInvalidData, df.FilePath(), spec.ID(), err)
	}
	if err != nil {
		return time.Time{}, err
	}
	return day, nil
}

// pinTask pins one planned data file of the day: its ETag, size and rows checked against
// the manifest, its columns mapped onto the schema.
func pinTask(ctx context.Context, b objstore.Bucket, meta table.Metadata, schema *iceberg.Schema, task table.FileScanTask, day string) (dataset.File, error) {
	df := task.File
	k, err := key(b, df.FilePath())
	if err != nil {
		return dataset.File{}, fmt.Errorf("%w: data file %v", dataset.ErrInvalidData, err)
	}
	f, pf, err := dataset.PinFile(ctx, b, k, df.FileSizeBytes(), day)
	if err != nil {
		return f, err
	}
	if f.Rows != df.Count() {
		return f, fmt.Errorf("%w: %s has %d rows, the table's manifest says %d", dataset.ErrInvalidData, b.URI(k), f.Rows, df.Count())
	}
	f.Partition, f.Physical = columns(schema, meta.PartitionSpecByID(int(df.SpecID())), df.Partition(), pf)
	return f, nil
}

// fileDay is the day of a file's partition on the event-time column.
func fileDay(spec *iceberg.PartitionSpec, event iceberg.NestedField, values map[int]any) (time.Time, error) {
	for _, pf := range spec.FieldsBySourceID(event.ID) {
		v, ok := values[pf.FieldID]
		if !ok || v == nil {
			return time.Time{}, fmt.Errorf("%w: no %s partition value", errNullDay, pf.Name)
		}
		switch pf.Transform.(type) {
		case iceberg.DayTransform:
			if n, ok := integer(v); ok {
				return time.Unix(n*86400, 0).UTC(), nil
			}
		case iceberg.HourTransform:
			if n, ok := integer(v); ok {
				return time.Unix(n*3600, 0).UTC().Truncate(24 * time.Hour), nil
			}
		case iceberg.IdentityTransform:
			switch x := v.(type) {
			case iceberg.Date:
				return time.Unix(int64(x)*86400, 0).UTC(), nil
			case string:
				if d, err := time.Parse(dataset.DateLayout, x); err == nil {
					return d, nil
				}
			case iceberg.Timestamp:
				return time.UnixMicro(int64(x)).UTC().Truncate(24 * time.Hour), nil
			}
		default:
			continue
		}
		return time.Time{}, fmt.Errorf("partition value %v (%T) of %s is not a day", v, v, pf.Name)
	}
	return time.Time{}, fmt.Errorf("%w on %s (its spec: %s)", errNotByDay, event.Name, spec)
}

func integer(v any) (int64, bool) {
	switch x := v.(type) {
	case int32:
		return int64(x), true
	case int64:
		return x, true
	case iceberg.Date:
		return int64(x), true
	case int:
		return int64(x), true
	}
	return 0, false
}

// columns maps the snapshot's schema onto one data file: an identity partition column is its
// partition value (the scan reads it as a constant), a column is found in the file by its
// field id (so a renamed column is read under its old name: Physical), and a column the file
// does not have (added after it was written) is null. A file without field ids is read by
// name.
func columns(schema *iceberg.Schema, spec *iceberg.PartitionSpec, values map[int]any, pf *parquet.File) (map[string]*string, map[string]string) {
	partition, physical := map[string]*string{}, map[string]string{}
	for _, p := range spec.Fields() {
		if _, ok := p.Transform.(iceberg.IdentityTransform); !ok || len(p.SourceIDs) != 1 {
			continue
		}
		if f, ok := schema.FindFieldByID(p.SourceIDs[0]); ok {
			partition[f.Name] = render(values[p.FieldID])
		}
	}
	ids := map[int]string{}
	for _, c := range pf.Root().Columns() {
		if c.ID() > 0 {
			ids[c.ID()] = c.Name()
		}
	}
	if len(ids) > 0 {
		for _, f := range schema.Fields() {
			if _, ok := partition[f.Name]; ok {
				continue
			}
			switch name, ok := ids[f.ID]; {
			case !ok:
				partition[f.Name] = nil
			case name != f.Name:
				physical[f.Name] = name
			}
		}
	}
	if len(partition) == 0 {
		partition = nil
	}
	if len(physical) == 0 {
		physical = nil
	}
	return partition, physical
}

// render is a partition value as the scan reads a constant column: a date as YYYY-MM-DD.
func render(v any) *string {
	var s string
	switch x := v.(type) {
	case nil:
		return nil
	case iceberg.Date:
		s = time.Unix(int64(x)*86400, 0).UTC().Format(dataset.DateLayout)
	case iceberg.Timestamp:
		s = time.UnixMicro(int64(x)).UTC().Format(time.RFC3339Nano)
	case string:
		s = x
	case bool:
		s = strconv.FormatBool(x)
	case float32:
		s = strconv.FormatFloat(float64(x), 'g', -1, 32)
	case float64:
		s = strconv.FormatFloat(x, 'g', -1, 64)
	case *big.Rat:
		s = x.FloatString(10)
	default:
		s = fmt.Sprint(x)
	}
	return &s
}

// Days is the table's current snapshot id and the days (YYYY-MM-DD, sorted) its data files'
// partitions hold on the event-time column: what a watcher of new snapshots compares.
func Days(ctx context.Context, b objstore.Bucket, src Source, eventTime string) (int64, []string, error) {
	t, uri, err := Load(ctx, b, src)
	if err != nil {
		return 0, nil, err
	}
	meta := t.Metadata()
	snap := meta.CurrentSnapshot()
	if snap == nil {
		return 0, nil, nil
	}
	field, ok := meta.CurrentSchema().FindFieldByName(eventTime)
	if !ok {
		return 0, nil, fmt.Errorf("%w: Iceberg table %s has no column %s (the event time)", dataset.ErrInvalidData, uri, eventTime)
	}
	tasks, err := t.Scan(table.WithSnapshotID(snap.SnapshotID)).PlanFiles(ctx)
	if err != nil {
		return 0, nil, fmt.Errorf("snapshot %d of Iceberg table %s: %w", snap.SnapshotID, uri, err)
	}
	seen := map[string]bool{}
	for _, task := range tasks {
		spec := meta.PartitionSpecByID(int(task.File.SpecID()))
		if spec == nil {
			continue
		}
		if d, err := fileDay(spec, field, task.File.Partition()); err == nil {
			seen[d.Format(dataset.DateLayout)] = true
		} else if errors.Is(err, errNotByDay) {
			lo, okLo := boundDay(field, task.File.LowerBoundValues()[field.ID])
			hi, okHi := boundDay(field, task.File.UpperBoundValues()[field.ID])
			for d := lo; okLo && okHi && !d.After(hi); d = d.AddDate(0, 0, 1) {
				seen[d.Format(dataset.DateLayout)] = true
			}
		}
	}
	return snap.SnapshotID, slices.Sorted(maps.Keys(seen)), nil
}

// boundDay is the day of a data file's lower or upper bound of the event-time column (Iceberg's
// single-value serialization: a date as 4 bytes, a timestamp as 8, little-endian; a string).
func boundDay(f iceberg.NestedField, raw []byte) (time.Time, bool) {
	switch f.Type.(type) {
	case iceberg.DateType:
		if len(raw) == 4 {
			return time.Unix(int64(int32(binary.LittleEndian.Uint32(raw)))*86400, 0).UTC(), true
		}
	case iceberg.TimestampType, iceberg.TimestampTzType:
		if len(raw) == 8 {
			return time.UnixMicro(int64(binary.LittleEndian.Uint64(raw))).UTC().Truncate(24 * time.Hour), true
		}
	case iceberg.StringType:
		if d, err := time.Parse(dataset.DateLayout, string(raw[:min(len(raw), 10)])); err == nil {
			return d, true
		}
	}
	return time.Time{}, false
}
