package delta

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// TakeSnapshot pins a window of a Delta table for a run: the table's version (at), and of its
// files those holding rows of days in [from, to], each with its ETag, size and row counts (from
// its footer), its partition values (the scan reads them as columns) and the physical names of
// the columns (column mapping). A table partitioned by its event-time column as days
// (YYYY-MM-DD) is cut by its partitions, never a scan of the rest; in another table, a file
// whose statistics (minValues, maxValues) keep it out of the window is not opened, and the
// others are pinned once per day of the window they hold rows of (dataset.SplitByDay).
func TakeSnapshot(ctx context.Context, b objstore.Bucket, ds, id, tablePath string, at At, eventTime string, from, to time.Time) (dataset.Snapshot, error) {
	s := dataset.Snapshot{ID: id, Dataset: ds, From: from.Format(dataset.DateLayout), To: to.Format(dataset.DateLayout)}
	t, err := Load(ctx, b, tablePath, at)
	if err != nil {
		return s, fmt.Errorf("%w: %v", dataset.ErrInvalidData, err)
	}
	eventCol := ""
	for _, f := range t.Schema {
		if f.Name == eventTime {
			eventCol = f.PhysicalName
		}
	}
	if eventCol == "" {
		return s, fmt.Errorf("%w: Delta table %s (version %d) has no column %s (the event time)", dataset.ErrInvalidData, b.URI(tablePath), t.Version, eventTime)
	}
	partitioned := slices.Contains(t.Metadata.PartitionColumns, eventTime)
	s.Table = &dataset.TableVersion{Format: "delta", URI: b.URI(tablePath), Version: t.Version, CommitTime: t.CommitTime}
	for _, f := range t.Files {
		var files []dataset.File
		if partitioned {
			files, err = t.partitionFile(ctx, b, f, eventCol, from, to)
		} else if statsMayHold(f.Stats, eventCol, from, to) {
			var whole dataset.File
			if whole, err = t.pin(ctx, b, f, ""); err == nil {
				files, err = dataset.SplitByDay(ctx, b, whole, eventTime, from, to)
			}
		}
		if err != nil {
			return s, err
		}
		s.AddDays(files)
	}
	s.SortByDay()
	if s.Rows == 0 {
		return s, fmt.Errorf("%w: Delta table %s version %d has no rows between %s and %s", dataset.ErrEmptyWindow, b.URI(tablePath), t.Version, s.From, s.To)
	}
	return s, nil
}

// partitionFile pins a file of a table partitioned by day on the event time, when its day is
// in the window.
func (t *Snapshot) partitionFile(ctx context.Context, b objstore.Bucket, f File, eventCol string, from, to time.Time) ([]dataset.File, error) {
	v := f.PartitionValues[eventCol]
	if v == nil {
		return nil, nil // no event time: outside every window
	}
	day, err := time.Parse(dataset.DateLayout, *v)
	if err != nil {
		return nil, fmt.Errorf("%w: Delta table %s: file %s has %s=%q, not a day (YYYY-MM-DD)", dataset.ErrInvalidData, b.URI(t.Path), f.Path, eventCol, *v)
	}
	if day.Before(from) || day.After(to) {
		return nil, nil
	}
	file, err := t.pin(ctx, b, f, *v)
	if err != nil {
		return nil, err
	}
	return []dataset.File{file}, nil
}

// statsMayHold says whether a file's statistics allow rows of the window: its minValues and
// maxValues of the event-time column (a date, a timestamp or a string, each starting
// YYYY-MM-DD). Without them it may.
func statsMayHold(stats, col string, from, to time.Time) bool {
	lo, okLo := statsDay(stats, "minValues", col)
	hi, okHi := statsDay(stats, "maxValues", col)
	return !okLo || !okHi || (!hi.Before(from) && !lo.After(to))
}

// statsDay is the day of a file's statistic (minValues or maxValues) of a column: a date, a
// timestamp with its offset (its UTC day) or a string starting YYYY-MM-DD.
func statsDay(stats, which, col string) (time.Time, bool) {
	var st map[string]json.RawMessage
	var values map[string]any
	if stats == "" || json.Unmarshal([]byte(stats), &st) != nil || json.Unmarshal(st[which], &values) != nil {
		return time.Time{}, false
	}
	s, ok := values[col].(string)
	if !ok || len(s) < 10 {
		return time.Time{}, false
	}
	if ts, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return ts.UTC().Truncate(24 * time.Hour), true
	}
	d, err := time.Parse(dataset.DateLayout, s[:10])
	return d, err == nil
}

// physicalNames maps each column whose name in the files differs (column mapping) to it.
func (t *Snapshot) physicalNames() map[string]string {
	physical := map[string]string{}
	for _, f := range t.Schema {
		if f.PhysicalName != f.Name {
			physical[f.Name] = f.PhysicalName
		}
	}
	return physical
}

// pin pins a data file of the log, with its partition values (the log keys them by physical
// name: they are keyed by column name for the scan), the physical names, and a null for each
// column of the schema the file does not have (added after it was written).
func (t *Snapshot) pin(ctx context.Context, b objstore.Bucket, f File, day string) (dataset.File, error) {
	out, pf, err := dataset.PinFile(ctx, b, t.Path+"/"+f.Path, f.Size, day)
	if err != nil {
		return out, err
	}
	physical := t.physicalNames()
	logical := map[string]string{}
	for name, p := range physical {
		logical[p] = name
	}
	out.Partition = map[string]*string{}
	for k, v := range f.PartitionValues {
		out.Partition[cmp.Or(logical[k], k)] = v
	}
	for _, c := range t.Schema {
		if _, ok := out.Partition[c.Name]; ok {
			continue
		}
		if _, ok := pf.Schema().Lookup(c.PhysicalName); !ok {
			out.Partition[c.Name] = nil
		}
	}
	if len(out.Partition) == 0 {
		out.Partition = nil
	}
	if len(physical) > 0 {
		out.Physical = physical
	}
	return out, nil
}

// Days is the table's latest version and the days (YYYY-MM-DD, sorted) its live files hold
// on the event-time column (a partition column as days): what a watcher of new versions
// compares.
func Days(ctx context.Context, b objstore.Bucket, tablePath, eventTime string) (int64, []string, error) {
	t, err := Load(ctx, b, tablePath, Latest)
	if err != nil {
		return 0, nil, err
	}
	col := eventTime
	for _, f := range t.Schema {
		if f.Name == eventTime {
			col = f.PhysicalName
		}
	}
	partitioned := slices.Contains(t.Metadata.PartitionColumns, eventTime)
	seen := map[string]bool{}
	for _, f := range t.Files {
		if !partitioned { // the days between the file's statistics
			lo, okLo := statsDay(f.Stats, "minValues", col)
			hi, okHi := statsDay(f.Stats, "maxValues", col)
			for d := lo; okLo && okHi && !d.After(hi); d = d.AddDate(0, 0, 1) {
				seen[d.Format(dataset.DateLayout)] = true
			}
			continue
		}
		if v := f.PartitionValues[col]; v != nil {
			if _, err := time.Parse(dataset.DateLayout, *v); err == nil {
				seen[*v] = true
			}
		}
	}
	return t.Version, slices.Sorted(maps.Keys(seen)), nil
}
