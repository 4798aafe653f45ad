package delta

import (
	"cmp"
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
)

// TakeSnapshot pins a window of a Delta table for a run: the table's version (at), and of its
// files those whose partition value of the event-time column is a day in [from, to], each with
// its ETag, size and row counts (from its footer), its partition values (the scan reads them
// as columns) and the physical names of the columns (column mapping). The table must be
// partitioned by its event-time column, as days (YYYY-MM-DD): the window is a predicate on the
// partitions, never a scan of the rest.
func TakeSnapshot(ctx context.Context, b objstore.Bucket, ds, id, tablePath string, at At, eventTime string, from, to time.Time) (dataset.Snapshot, error) {
	s := dataset.Snapshot{ID: id, Dataset: ds, From: from.Format(dataset.DateLayout), To: to.Format(dataset.DateLayout)}
	t, err := Load(ctx, b, tablePath, at)
	if err != nil {
		return s, fmt.Errorf("%w: %v", dataset.ErrInvalidData, err)
	}
	if !slices.Contains(t.Metadata.PartitionColumns, eventTime) {
		return s, fmt.Errorf("%w: Delta table %s (version %d) is partitioned by %v, not by the event time column %s: a window is a set of its partitions",
			dataset.ErrInvalidData, b.URI(tablePath), t.Version, t.Metadata.PartitionColumns, eventTime)
	}
	eventCol := eventTime
	for _, f := range t.Schema {
		if f.Name == eventTime {
			eventCol = f.PhysicalName
		}
	}
	s.Table = &dataset.TableVersion{Format: "delta", URI: b.URI(tablePath), Version: t.Version, CommitTime: t.CommitTime}
	for _, f := range t.Files {
		v := f.PartitionValues[eventCol]
		if v == nil {
			continue // no event time: outside every window
		}
		day, err := time.Parse(dataset.DateLayout, *v)
		if err != nil {
			return s, fmt.Errorf("%w: Delta table %s: file %s has %s=%q, not a day (YYYY-MM-DD)", dataset.ErrInvalidData, b.URI(tablePath), f.Path, eventTime, *v)
		}
		if day.Before(from) || day.After(to) {
			continue
		}
		file, err := t.pin(ctx, b, f, *v)
		if err != nil {
			return s, err
		}
		s.Files = append(s.Files, file)
		s.Rows += file.Rows
		s.Bytes += file.Size
	}
	slices.SortFunc(s.Files, func(a, b dataset.File) int {
		if c := strings.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
	if s.Rows == 0 {
		return s, fmt.Errorf("%w: Delta table %s version %d has no rows between %s and %s", dataset.ErrEmptyWindow, b.URI(tablePath), t.Version, s.From, s.To)
	}
	return s, nil
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
	seen := map[string]bool{}
	for _, f := range t.Files {
		if v := f.PartitionValues[col]; v != nil {
			if _, err := time.Parse(dataset.DateLayout, *v); err == nil {
				seen[*v] = true
			}
		}
	}
	return t.Version, slices.Sorted(maps.Keys(seen)), nil
}
