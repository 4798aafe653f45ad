package iceberg

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/tabletest"
	"github.com/driftline/driftline/objstore"
)

// The tables under testdata/data/persistent were written by Spark (Iceberg 1.x; format v2
// with an evolved partition spec, format v1 with the deprecated metadata fields, and a
// merge-on-read table with equality deletes) and are kept by DuckDB's Iceberg extension in
// its repository (github.com/duckdb/duckdb-iceberg, commit 68623ff99; MIT licence,
// testdata/LICENSE-duckdb-iceberg.txt). Their metadata names its files relative to that
// repository's root, so they are uploaded under the same keys. The expected rows are the
// ones the extension's own tests assert for the same tables.

// upload puts testdata/data/persistent/<table> into the bucket under the same key.
func upload(t testing.TB, b objstore.Bucket, table string) string {
	t.Helper()
	root := filepath.Join("testdata", "data", "persistent", table)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel("testdata", p)
		_, err = b.Put(context.Background(), filepath.ToSlash(rel), data, objstore.PutOptions{})
		return err
	})
	require.NoError(t, err)
	return "data/persistent/" + table
}

// rows reads a snapshot through the dataset scan, each row as its values joined by |, sorted.
var rows = tabletest.Rows

func day(s string) time.Time {
	d, err := time.Parse(dataset.DateLayout, s)
	if err != nil {
		panic(err)
	}
	return d
}

// A Spark-written format v2 table whose partition spec evolved (event_date, then event_date
// and event_type) between its two snapshots. Its data files were rewritten after Spark wrote
// the manifests (by DuckDB 1.2.2, to other sizes), so pinning them is refused by name; its
// metadata is Spark's: snapshots by id and by time, and the window pruned to its days across
// both partition specs.
func TestASparkWrittenTableWithAnEvolvedPartitionSpec(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "hive_partitioned_table")
	src := Source{Path: p}
	tbl, uri, err := Load(ctx, b, src)
	require.NoError(t, err)
	require.Equal(t, b.URI(p), uri)
	require.Equal(t, p+"/metadata/v4.metadata.json", tbl.MetadataLocation(), "version-hint.text names v4")
	meta := tbl.Metadata()
	field, _ := meta.CurrentSchema().FindFieldByName("event_date")

	// planned is the days of the files planned for a window of a snapshot, with their specs.
	planned := func(at At, from, to string) []string {
		snap, err := choose(meta, at)
		require.NoError(t, err)
		filter, err := window(field, day(from), day(to))
		require.NoError(t, err)
		tasks, err := tbl.Scan(table.WithSnapshotID(snap.SnapshotID), table.WithRowFilter(filter)).PlanFiles(ctx)
		require.NoError(t, err)
		var out []string
		for _, task := range tasks {
			d, err := taskDay(meta, field, task)
			require.NoError(t, err)
			out = append(out, fmt.Sprintf("%s spec %d", d.Format(dataset.DateLayout), task.File.SpecID()))
		}
		slices.Sort(out)
		return out
	}
	require.Equal(t, []string{"2024-01-01 spec 0", "2024-01-02 spec 0", "2024-01-03 spec 1", "2024-01-03 spec 1", "2024-01-04 spec 1", "2024-01-04 spec 1"},
		planned(At{}, "2024-01-01", "2024-01-04"))
	require.Equal(t, []string{"2024-01-02 spec 0", "2024-01-03 spec 1", "2024-01-03 spec 1"}, planned(At{}, "2024-01-02", "2024-01-03"))
	require.Equal(t, []string{"2024-01-04 spec 1", "2024-01-04 spec 1"}, planned(At{}, "2024-01-04", "2024-01-09"))
	first := At{SnapshotID: 2541674261311761067}
	require.Equal(t, []string{"2024-01-01 spec 0", "2024-01-02 spec 0"}, planned(first, "2024-01-01", "2024-01-04"))
	require.Equal(t, []string{"2024-01-01 spec 0", "2024-01-02 spec 0"}, planned(At{Time: time.UnixMilli(1746793271500)}, "2024-01-01", "2024-01-04"))
	require.Empty(t, planned(first, "2024-01-03", "2024-01-04"))

	// Pinning checks every file against its manifest.
	_, err = TakeSnapshot(ctx, b, "events", "run-1", src, first, "event_date", day("2024-01-01"), day("2024-01-04"))
	require.Regexp(t, `event_date=2024-01-0[12]/00000-3-249d8105-f013-47e6-8600-a855387633e5-0000[12].parquet is (487|502) bytes, the table's metadata says (933|948): the table's files changed`, err)

	// Refusals name what was wrong.
	_, err = TakeSnapshot(ctx, b, "events", "run-5", src, At{SnapshotID: 42}, "event_date", day("2024-01-01"), day("2024-01-04"))
	require.ErrorContains(t, err, "no snapshot 42 (it has 2541674261311761067, 5128628767169163501)")
	_, err = TakeSnapshot(ctx, b, "events", "run-6", src, At{Time: time.UnixMilli(1746793270000)}, "event_date", day("2024-01-01"), day("2024-01-04"))
	require.ErrorContains(t, err, "no snapshot was committed at or before 2025-05-09T12:21:10Z")
	_, err = TakeSnapshot(ctx, b, "events", "run-7", src, first, "when", day("2024-01-01"), day("2024-01-04"))
	require.ErrorContains(t, err, "has no column when (the event time)")
	_, err = TakeSnapshot(ctx, b, "events", "run-8", src, first, "user_id", day("2024-01-01"), day("2024-01-04"))
	require.ErrorContains(t, err, "the event time column user_id is long")
	_, err = TakeSnapshot(ctx, b, "events", "run-9", src, first, "event_date", day("2023-01-01"), day("2023-01-31"))
	require.ErrorIs(t, err, dataset.ErrEmptyWindow)
	_, err = TakeSnapshot(ctx, b, "events", "run-10", Source{Path: "data/persistent/nothing"}, At{}, "event_date", day("2024-01-01"), day("2024-01-04"))
	require.ErrorContains(t, err, "has no Iceberg metadata")
}

// A Spark-written format v1 table (schema, partition spec and manifests in the deprecated
// fields): its rows with the partition column from the manifest and a null read as null.
func TestASparkWrittenFormatV1Table(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "iceberg_v1_deprecated/default/legacy_v1")
	tbl, _, err := Load(ctx, b, Source{Path: p})
	require.NoError(t, err)
	require.Equal(t, 1, tbl.Metadata().Version())
	tasks, err := tbl.Scan().PlanFiles(ctx)
	require.NoError(t, err)
	s := dataset.Snapshot{ID: "v1"}
	for _, task := range tasks {
		f, err := pinTask(ctx, b, tbl.Metadata(), tbl.Metadata().CurrentSchema(), task, "2024-01-01")
		require.NoError(t, err)
		s.Files = append(s.Files, f)
	}
	cols := []contract.Column{
		{Name: "id", Type: contract.TypeInt, Role: contract.RoleFeature},
		{Name: "category", Type: contract.TypeString, Role: contract.RoleFeature},
		{Name: "amount", Type: contract.TypeInt, Role: contract.RoleFeature, Nullable: true},
	}
	require.Equal(t, []string{"1|alpha|10", "2|beta|20", "3|alpha|null"}, rows(t, b, s, cols...))
}

// A Spark-written merge-on-read table, not partitioned: a snapshot with equality deletes is
// refused by name (its rows would otherwise come back deleted); its first snapshot (one file of
// four days, bir a DATE) is pinned once per day of the window it holds, each entry reading
// that day's rows only.
func TestAnUnpartitionedTableAndDeletes(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	src := Source{Path: upload(t, b, "equality_deletes/warehouse/mydb/mytable")}
	_, err := TakeSnapshot(ctx, b, "people", "run", src, At{}, "bir", day("2000-01-01"), day("2030-01-01"))
	require.ErrorContains(t, err, "delete file(s) (merge-on-read deletes are not read yet)")

	s, err := TakeSnapshot(ctx, b, "people", "run", src, At{SnapshotID: 853766660775201079}, "bir", day("2025-01-02"), day("2025-01-03"))
	require.NoError(t, err)
	require.Len(t, s.Files, 2)
	require.Equal(t, s.Files[0].Key, s.Files[1].Key, "one file, one entry a day")
	require.Equal(t, []string{"2025-01-02", "2025-01-03"}, []string{s.Files[0].Date, s.Files[1].Date})
	require.EqualValues(t, 2, s.Rows)
	require.EqualValues(t, s.Files[0].Size, s.Bytes, "the file's bytes once")
	id := contract.Column{Name: "id", Type: contract.TypeInt, Role: contract.RoleFeature}
	name := contract.Column{Name: "name", Type: contract.TypeString, Role: contract.RoleFeature}
	require.Equal(t, []string{"2|b", "3|c"}, rows(t, b, s, id, name), "the rows Spark inserted on those days")
	bir := contract.Column{Name: "bir", Type: contract.TypeString, Role: contract.RoleFeature}
	require.Equal(t, []string{"2|2025-01-02", "3|2025-01-03"}, rows(t, b, s, id, bir), "a DATE read as YYYY-MM-DD")
	for _, f := range s.Files {
		one := s
		one.Files = []dataset.File{f}
		got := rows(t, b, one, id, name)
		require.Len(t, got, 1)
		require.Equal(t, map[string]string{"2025-01-02": "2|b", "2025-01-03": "3|c"}[f.Date], got[0], "the entry of %s reads that day's row", f.Date)
	}
}

// Paths of a table's metadata resolve to keys of the bucket; others are refused by name.
func TestPathsResolveInTheBucket(t *testing.T) {
	b := objstore.NewMem()
	root := b.URI("")
	for in, want := range map[string]string{
		root + "lake/t/metadata/v1.metadata.json": "lake/t/metadata/v1.metadata.json",
		"lake/t/data/x.parquet":                   "lake/t/data/x.parquet",
		"/lake/t/data/x.parquet":                  "lake/t/data/x.parquet",
	} {
		got, err := key(b, in)
		require.NoError(t, err, in)
		require.Equal(t, want, got)
	}
	for in, want := range map[string]string{
		"s3://elsewhere/t/x.parquet": "outside Driftline's bucket",
		"file:///tmp/t/x.parquet":    "is a local file",
		"lake/../../etc/passwd":      "is not a path in the bucket",
	} {
		_, err := key(b, in)
		require.ErrorContains(t, err, want, in)
	}
}

// A catalog is a SQL catalog on PostgreSQL; another URI is refused without showing its password.
func TestOnlyPostgresCatalogsOpen(t *testing.T) {
	_, err := OpenCatalog("lake", "mysql://admin:s3cret@db/catalog")
	require.ErrorContains(t, err, `iceberg catalog lake: "mysql://admin:***@db/catalog" is not a postgres:// URI`)
	require.NotContains(t, err.Error(), "s3cret")
	c, err := OpenCatalog("lake", "postgres://driftline@127.0.0.1:1/catalog")
	require.NoError(t, err, "opened lazily")
	require.NoError(t, c.Close())
}

// A spec's table resolves to a source by path or through the worker's catalogs; a catalog the
// worker lacks is refused naming it, and the URI the lineage records says which table.
func TestSourcesResolveThroughTheWorkersCatalogs(t *testing.T) {
	b := objstore.NewMem()
	lake := &Catalog{Name: "lake"}
	src, err := Resolve(map[string]*Catalog{"lake": lake}, "", "lake", "retail.demand")
	require.NoError(t, err)
	require.Same(t, lake, src.Catalog)
	require.Equal(t, "iceberg+sql://lake/retail.demand", src.URI(b))
	src, err = Resolve(nil, "warehouse/retail/demand/", "", "")
	require.NoError(t, err)
	require.Equal(t, b.URI("warehouse/retail/demand"), src.URI(b))
	_, err = Resolve(map[string]*Catalog{"lake": lake}, "", "sea", "retail.demand")
	require.ErrorIs(t, err, dataset.ErrInvalidData)
	require.ErrorContains(t, err, `this worker has no Iceberg catalog "sea" (driftline worker --iceberg-catalog sea=URI)`)
}
