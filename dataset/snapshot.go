package dataset

import (
	"context"
	"fmt"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/parquet-go/parquet-go"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/objstore"
)

// DateLayout is the partition date format (declared in contract, which specs share).
const DateLayout = contract.DateLayout

// File is one pinned Parquet object of a snapshot.
type File struct {
	Key  string `json:"key"`
	ETag string `json:"etag"`
	Size int64  `json:"size"`
	Rows int64  `json:"rows"`
	Date string `json:"date"`
	// RowGroups is the rows of each row group (snapshots taken before they were recorded
	// have none, and their files are not split into pieces).
	RowGroups []int64 `json:"row_groups,omitempty"`
	// Partition holds the columns a table keeps in its partition values, not in its files
	// (a Delta table's partition columns): each the same for every row of the file, nil a
	// null. Physical maps a column to its name in the file (a Delta table's column mapping).
	Partition map[string]*string `json:"partition,omitempty"`
	Physical  map[string]string  `json:"physical,omitempty"`
	// EventTime, set on a file of a table not partitioned by day, is its event-time column:
	// the entry is the file's rows of day Date only (Rows of them; days.go).
	EventTime string `json:"event_time,omitempty"`
}

// Snapshot pins the exact objects of a dataset window, so every step of a run (and any later
// audit) sees the same bytes.
type Snapshot struct {
	ID      string `json:"id"`
	Dataset string `json:"dataset"`
	From    string `json:"from"`
	To      string `json:"to"`
	Files   []File `json:"files"`
	Rows    int64  `json:"rows"`
	Bytes   int64  `json:"bytes"`
	// Table is the table version the files are of, for a dataset that is a table.
	Table *TableVersion `json:"table,omitempty"`
}

// TableVersion names the state of a table a snapshot pinned: its format, where it is, and its
// version (a Delta version, an Iceberg snapshot id).
type TableVersion struct {
	Format     string    `json:"format"`
	URI        string    `json:"uri"`
	Version    int64     `json:"version"`
	CommitTime time.Time `json:"commit_time"`
	// Metadata is the metadata file the version was read from (an Iceberg table's).
	Metadata string `json:"metadata,omitempty"`
}

// Clone is a copy of the snapshot that shares nothing with it.
func (s Snapshot) Clone() Snapshot {
	s.Files = slices.Clone(s.Files)
	for i := range s.Files {
		s.Files[i].RowGroups = slices.Clone(s.Files[i].RowGroups)
	}
	return s
}

// PartitionPrefix is where one day of a dataset lives.
func PartitionPrefix(ds string, day time.Time) string {
	return fmt.Sprintf("datasets/%s/dt=%s/", ds, day.Format(DateLayout))
}

// SnapshotKey is where a snapshot's manifest is stored.
func SnapshotKey(ds, id string) string { return fmt.Sprintf("snapshots/%s/%s.json", ds, id) }

// ErrEmptyWindow is returned when a window holds no rows at all.
var ErrEmptyWindow = fmt.Errorf("%w: empty window", ErrInvalidData)

// TakeSnapshot lists the partitions of [from, to] (inclusive dates) and pins each file's key,
// ETag, size and row count (read from the Parquet footer with ranged reads).
func TakeSnapshot(ctx context.Context, b objstore.Bucket, ds, id string, from, to time.Time) (Snapshot, error) {
	s := Snapshot{ID: id, Dataset: ds, From: from.Format(DateLayout), To: to.Format(DateLayout)}
	if to.Before(from) {
		return s, fmt.Errorf("%w: window end %s is before its start %s", ErrInvalidData, s.To, s.From)
	}
	for day := from; !day.After(to); day = day.AddDate(0, 0, 1) {
		objs, err := b.List(ctx, PartitionPrefix(ds, day))
		if err != nil {
			return s, err
		}
		for _, o := range objs {
			if !strings.HasSuffix(o.Key, ".parquet") {
				continue
			}
			f, _, err := OpenParquet(ctx, b, o.Key)
			if err != nil {
				return s, err
			}
			groups := make([]int64, len(f.RowGroups()))
			for i, rg := range f.RowGroups() {
				groups[i] = rg.NumRows()
			}
			s.Files = append(s.Files, File{Key: o.Key, ETag: o.ETag, Size: o.Size, Rows: f.NumRows(), Date: day.Format(DateLayout), RowGroups: groups})
			s.Rows += f.NumRows()
			s.Bytes += o.Size
		}
	}
	if s.Rows == 0 {
		return s, fmt.Errorf("%w: dataset %s has no rows between %s and %s (looked under %s)",
			ErrEmptyWindow, ds, s.From, s.To, path.Dir(strings.TrimSuffix(PartitionPrefix(ds, from), "/")))
	}
	return s, nil
}

// PinFile pins a table's data file: its footer is read (rows, row groups) and its ETag taken,
// and a file whose size is not the one the table's metadata records (size >= 0) is refused,
// since its files then changed under the table's log. The footer is returned for callers
// that map the file's columns (field IDs, physical names).
func PinFile(ctx context.Context, b objstore.Bucket, key string, size int64, day string) (File, *parquet.File, error) {
	pf, obj, err := OpenParquet(ctx, b, key)
	if err != nil {
		return File{}, nil, err
	}
	if size >= 0 && obj.Size != size {
		return File{}, nil, fmt.Errorf("%w: %s is %d bytes, the table's metadata says %d: the table's files changed under its log", ErrInvalidData, b.URI(key), obj.Size, size)
	}
	groups := make([]int64, len(pf.RowGroups()))
	for i, rg := range pf.RowGroups() {
		groups[i] = rg.NumRows()
	}
	return File{Key: key, ETag: obj.ETag, Size: obj.Size, Rows: pf.NumRows(), Date: day, RowGroups: groups}, pf, nil
}

// SortByDay orders a snapshot's files by day, then key (a table's files come in its log's or
// planner's order).
func (s *Snapshot) SortByDay() {
	slices.SortFunc(s.Files, func(a, b File) int {
		if c := strings.Compare(a.Date, b.Date); c != 0 {
			return c
		}
		return strings.Compare(a.Key, b.Key)
	})
}

// AddDays adds the entries of one table file (the file whole, or one entry per day it holds):
// their rows, and the file's bytes once.
func (s *Snapshot) AddDays(files []File) {
	for _, f := range files {
		s.Files = append(s.Files, f)
		s.Rows += f.Rows
	}
	if len(files) > 0 {
		s.Bytes += files[0].Size
	}
}
