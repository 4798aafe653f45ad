package delta

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/parquet-go/parquet-go"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/internal/tabletest"
	"github.com/driftline/driftline/objstore"
)

// The tables under testdata/ were written by Spark (Delta 0.2.0 and 0.8.0, and later writers)
// and are kept by delta-rs in its repository (github.com/delta-io/delta-rs, commit 2c996fa9b,
// crates/test/tests/data; Apache License 2.0, testdata/LICENSE-delta-rs.txt). The expected
// file lists are the ones delta-rs' own tests assert for the same tables.

// upload puts testdata/<table> into the bucket under tables/<table>.
func upload(t testing.TB, b objstore.Bucket, table string) string {
	t.Helper()
	root := filepath.Join("testdata", table)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		_, err = b.Put(context.Background(), "tables/"+table+"/"+filepath.ToSlash(rel), data, objstore.PutOptions{})
		return err
	})
	require.NoError(t, err)
	return "tables/" + table
}

func paths(s *Snapshot) []string {
	var out []string
	for _, f := range s.Files {
		out = append(out, f.Path)
	}
	return out
}

// Versions of Spark-written tables: each version's live files as delta-rs reads them, by
// version and by time, through JSON commits and through checkpoints.
func TestSparkWrittenTablesAtEachVersion(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "delta-0.2.0")
	s, err := Load(ctx, b, p, Latest)
	require.NoError(t, err)
	require.EqualValues(t, 3, s.Version)
	require.Equal(t, Protocol{MinReaderVersion: 1, MinWriterVersion: 2}, s.Protocol)
	require.ElementsMatch(t, []string{"part-00000-cb6b150b-30b8-4662-ad28-ff32ddab96d2-c000.snappy.parquet",
		"part-00000-7c2deba3-1994-4fb8-bc07-d46c948aa415-c000.snappy.parquet", "part-00001-c373a5bd-85f0-4758-815e-7eb62007a15c-c000.snappy.parquet"}, paths(s))
	s0, err := Load(ctx, b, p, At{Version: 0})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"part-00000-b44fcdb0-8b06-4f3a-8606-f8311a96f6dc-c000.snappy.parquet",
		"part-00001-185eca06-e017-4dea-ae49-fc48b973e37e-c000.snappy.parquet"}, paths(s0))
	s2, err := Load(ctx, b, p, At{Version: 2})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"part-00000-7c2deba3-1994-4fb8-bc07-d46c948aa415-c000.snappy.parquet",
		"part-00001-c373a5bd-85f0-4758-815e-7eb62007a15c-c000.snappy.parquet"}, paths(s2))
	require.Equal(t, time.UnixMilli(1564524298214).UTC(), s2.CommitTime)

	// Time travel: the latest version committed at or before a time.
	at, err := Load(ctx, b, p, At{Version: -1, Time: time.UnixMilli(1564524299000)})
	require.NoError(t, err)
	require.EqualValues(t, 2, at.Version)
	_, err = Load(ctx, b, p, At{Version: -1, Time: time.UnixMilli(1564524295000)})
	require.ErrorContains(t, err, "no version committed at or before 2019-07-30")
	_, err = Load(ctx, b, p, At{Version: 9})
	require.ErrorContains(t, err, "has no version 9 (the latest is 3)")

	p = upload(t, b, "delta-0.8.0")
	s, err = Load(ctx, b, p, Latest)
	require.NoError(t, err)
	require.EqualValues(t, 1, s.Version)
	require.ElementsMatch(t, []string{"part-00000-04ec9591-0b73-459e-8d18-ba5711d6cbe1-c000.snappy.parquet", "part-00000-c9b90f86-73e6-46c8-93ba-ff6bfaf892a1-c000.snappy.parquet"}, paths(s))
	require.Equal(t, int64(4), countRows(t, b, s), "4 rows, as delta-rs counts them")
	s0, err = Load(ctx, b, p, At{Version: 0})
	require.NoError(t, err)
	require.ElementsMatch(t, []string{"part-00000-c9b90f86-73e6-46c8-93ba-ff6bfaf892a1-c000.snappy.parquet", "part-00001-911a94a2-43f6-4acb-8620-5e68c2654989-c000.snappy.parquet"}, paths(s0))
}

// countRows reads the snapshot's files and counts their rows.
func countRows(t *testing.T, b objstore.Bucket, s *Snapshot) int64 {
	var n int64
	for _, f := range s.Files {
		data, _, err := objstore.ReadAll(context.Background(), b, s.Path+"/"+f.Path)
		require.NoError(t, err)
		require.EqualValues(t, f.Size, len(data), "the log's size is the file's")
		pf, err := parquet.OpenFile(bytes.NewReader(data), int64(len(data)))
		require.NoError(t, err)
		n += pf.NumRows()
	}
	return n
}

// Partition values come from the log (a null partition value is nil), paths are decoded.
func TestPartitionValuesAndNullPartitions(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	s, err := Load(ctx, b, upload(t, b, "delta-0.8.0-partitioned"), Latest)
	require.NoError(t, err)
	require.Equal(t, []string{"year", "month", "day"}, s.Metadata.PartitionColumns)
	var in2or12 []string
	for _, f := range s.Files {
		require.Equal(t, "year="+*f.PartitionValues["year"]+"/month="+*f.PartitionValues["month"]+"/day="+*f.PartitionValues["day"], filepath.Dir(filepath.Dir(filepath.Dir(f.Path)))+"/"+filepath.Base(filepath.Dir(filepath.Dir(f.Path)))+"/"+filepath.Base(filepath.Dir(f.Path)))
		if m := *f.PartitionValues["month"]; m == "2" || m == "12" {
			in2or12 = append(in2or12, f.Path)
		}
	}
	require.ElementsMatch(t, []string{"year=2020/month=2/day=3/part-00000-94d16827-f2fd-42cd-a060-f67ccc63ced9.c000.snappy.parquet",
		"year=2020/month=2/day=5/part-00000-89cdd4c8-2af7-4add-8ea3-3990b2f027b5.c000.snappy.parquet",
		"year=2021/month=12/day=20/part-00000-9275fdf4-3961-4184-baa0-1c8a2bb98104.c000.snappy.parquet",
		"year=2021/month=12/day=4/part-00000-6dc763c0-3e8b-4d52-b19e-1f92af3fbb25.c000.snappy.parquet"}, in2or12,
		"the files delta-rs keeps for month in (2, 12)")

	s, err = Load(ctx, b, upload(t, b, "delta-0.8.0-null-partition"), Latest)
	require.NoError(t, err)
	require.Len(t, s.Files, 2)
	var null, a int
	for _, f := range s.Files {
		if v := f.PartitionValues["k"]; v == nil {
			null++
		} else if *v == "A" {
			a++
		}
	}
	require.Equal(t, []int{1, 1}, []int{null, a}, "one file of k = A and one of a null k")
}

// A checkpoint gives the same snapshot as replaying every JSON commit; a log cleaned up below
// its checkpoint still reads from the checkpoint on, and a version below it is refused.
func TestCheckpointsAgreeWithTheCommits(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "simple_table_with_checkpoint")
	viaCheckpoint, err := Load(ctx, b, p, Latest)
	require.NoError(t, err)
	require.EqualValues(t, 10, viaCheckpoint.Version)
	require.NoError(t, b.Delete(ctx, p+"/_delta_log/00000000000000000010.checkpoint.parquet"))
	viaCommits, err := Load(ctx, b, p, Latest)
	require.NoError(t, err)
	require.Equal(t, paths(viaCommits), paths(viaCheckpoint))
	require.Equal(t, viaCommits.Metadata, viaCheckpoint.Metadata)
	require.Equal(t, viaCommits.Protocol, viaCheckpoint.Protocol)
	require.Equal(t, viaCommits.CommitTime, viaCheckpoint.CommitTime)
	require.NotEmpty(t, viaCheckpoint.Files)

	p = upload(t, b, "checkpoints_vacuumed")
	s, err := Load(ctx, b, p, Latest)
	require.NoError(t, err)
	require.EqualValues(t, 12, s.Version, "as delta-rs reads it")
	s7, err := Load(ctx, b, p, At{Version: 7})
	require.NoError(t, err, "from the checkpoint at 5")
	require.EqualValues(t, 7, s7.Version)
	_, err = Load(ctx, b, p, At{Version: 3})
	require.ErrorIs(t, err, ErrTable)
	require.ErrorContains(t, err, "commit 0 is missing and no checkpoint covers it")
}

// Column mapping gives each column its physical name; a table whose live files carry deletion
// vectors, an unknown reader feature, a newer reader version, a broken commit and a folder
// that is no table are refused by name.
func TestColumnMappingAndRefusals(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	s, err := Load(ctx, b, upload(t, b, "table_with_column_mapping"), Latest)
	require.NoError(t, err)
	require.NotEmpty(t, s.Schema)
	for _, f := range s.Schema {
		require.NotEqual(t, f.Name, f.PhysicalName, "column %s is stored under its physical name", f.Name)
		require.True(t, strings.HasPrefix(f.PhysicalName, "col-"), f.PhysicalName)
	}
	_, err = Load(ctx, b, upload(t, b, "table-with-dv-small"), Latest)
	require.ErrorContains(t, err, "has a deletion vector (2 rows deleted in place); not supported")

	p := upload(t, b, "delta-0.8.0")
	bump := func(line string) { // a version 2 of one action
		_, err := b.Put(ctx, p+"/_delta_log/00000000000000000002.json", []byte(line+"\n"), objstore.PutOptions{})
		require.NoError(t, err)
	}
	bump(`{"protocol":{"minReaderVersion":3,"minWriterVersion":7,"readerFeatures":["v2Checkpoint","variantType"],"writerFeatures":[]}}`)
	_, err = Load(ctx, b, p, Latest)
	require.ErrorContains(t, err, "reader features v2Checkpoint, variantType are not supported")
	bump(`{"protocol":{"minReaderVersion":4,"minWriterVersion":7}}`)
	_, err = Load(ctx, b, p, Latest)
	require.ErrorContains(t, err, "minReaderVersion 4; this reader reads versions 1 to 3")
	bump(`{"add": {"path": "x.parquet", "size": "not a number"}}`)
	_, err = Load(ctx, b, p, Latest)
	require.ErrorContains(t, err, "00000000000000000002.json line 1")
	_, err = Load(ctx, b, "tables/nothing", Latest)
	require.ErrorContains(t, err, "has no _delta_log commits: not a Delta table")
	s, err = Load(ctx, b, p, At{Version: 1})
	require.NoError(t, err, "the version before the broken commit still reads")
	raw, err := json.Marshal(s)
	require.NoError(t, err)
	require.Contains(t, string(raw), `"version":1`)
}

// The same reading on MinIO, through S3's listing and ranged reads.
func TestATableOnMinIO(t *testing.T) {
	b := stack.NewMinIOBucket(t)
	p := upload(t, b, "simple_table_with_checkpoint")
	s, err := Load(context.Background(), b, p, Latest)
	require.NoError(t, err)
	require.EqualValues(t, 10, s.Version)
	require.NotEmpty(t, s.Files)
	require.Positive(t, countRows(t, b, s))
}

// Schema evolution on a table written by Databricks Runtime 15.4: column mapping turned on,
// then the partition column id renamed newid, then a file added. The log keys partition values
// by physical name; each version reads in its own schema: version 1 has id, version 4 has
// newid for both files, the old one included.
func TestARenamedPartitionColumnReadsInEachVersionsSchema(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "table_with_partitioning_mapping")
	read := func(v int64, cols ...contract.Column) []string {
		s, err := Load(ctx, b, p, At{Version: v})
		require.NoError(t, err)
		snap := dataset.Snapshot{ID: "v"}
		for _, f := range s.Files {
			df, err := s.pin(ctx, b, f, "2025-03-25")
			require.NoError(t, err)
			snap.Files = append(snap.Files, df)
		}
		return tabletest.Rows(t, b, snap, cols...)
	}
	description := contract.Column{Name: "description", Type: contract.TypeString, Role: contract.RoleFeature}
	require.Equal(t, []string{"1|Initial data"}, read(1, contract.Column{Name: "id", Type: contract.TypeInt, Role: contract.RoleFeature}, description))
	newid := contract.Column{Name: "newid", Type: contract.TypeInt, Role: contract.RoleFeature}
	require.Equal(t, []string{"1|Initial data"}, read(3, newid, description))
	require.Equal(t, []string{"1|Initial data", "2|Additional data"}, read(4, newid, description), "the rows delta-rs reads")
}

// A column added to a Spark-written table (schema evolution by a later commit's metaData, as
// mergeSchema writes it): the files written before it read it as null, the new file as its
// values.
func TestAnAddedColumnIsNullInTheFilesWrittenBeforeIt(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	p := upload(t, b, "delta-0.8.0")
	type row struct {
		Value int32   `parquet:"value"`
		Extra float64 `parquet:"extra"`
	}
	data, err := dataset.EncodeParquet([]row{{Value: 7, Extra: 1.5}})
	require.NoError(t, err)
	_, err = b.Put(ctx, p+"/part-00000-added.snappy.parquet", data, objstore.PutOptions{})
	require.NoError(t, err)
	schema := `{\"type\":\"struct\",\"fields\":[{\"name\":\"value\",\"type\":\"integer\",\"nullable\":true,\"metadata\":{}},{\"name\":\"extra\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]}`
	commit := `{"metaData":{"id":"c48a3abf-ea47-498b-b173-52ce534e8dab","format":{"provider":"parquet","options":{}},"schemaString":"` + schema + `","partitionColumns":[],"configuration":{}}}` + "\n" +
		fmt.Sprintf(`{"add":{"path":"part-00000-added.snappy.parquet","partitionValues":{},"size":%d,"modificationTime":1615043800000,"dataChange":true}}`, len(data)) + "\n"
	_, err = b.Put(ctx, p+"/_delta_log/00000000000000000002.json", []byte(commit), objstore.PutOptions{})
	require.NoError(t, err)

	s, err := Load(ctx, b, p, Latest)
	require.NoError(t, err)
	snap := dataset.Snapshot{ID: "v2"}
	for _, f := range s.Files {
		df, err := s.pin(ctx, b, f, "2021-03-06")
		require.NoError(t, err)
		snap.Files = append(snap.Files, df)
	}
	value := contract.Column{Name: "value", Type: contract.TypeInt, Role: contract.RoleFeature}
	extra := contract.Column{Name: "extra", Type: contract.TypeDouble, Role: contract.RoleFeature, Nullable: true}
	require.Equal(t, []string{"0|null", "1|null", "2|null", "4|null", "7|1.5"}, tabletest.Rows(t, b, snap, value, extra))
}

// A table not partitioned by its event time: a file whose statistics keep it out of the window
// is never opened, the others are pinned once per day of the window they hold rows of, each
// entry reading that day's rows, and a rejected row is reported at its row in the file.
func TestAWindowOnATableNotPartitionedByDay(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	type row struct {
		Date string  `parquet:"date"`
		X    float64 `parquet:"x"`
	}
	put := func(name string, rows []row) int {
		data, err := dataset.EncodeParquet(rows)
		require.NoError(t, err)
		_, err = b.Put(ctx, "tables/events/"+name, data, objstore.PutOptions{})
		require.NoError(t, err)
		return len(data)
	}
	a := put("part-a.parquet", []row{{"2026-03-01", 1}, {"2026-03-02", 2}, {"2026-03-03", 3}, {"2026-03-02", -4}, {"2026-03-01T23:00:00Z", 5}})
	c := put("part-c.parquet", []row{{"2026-03-02", 6}, {"2026-02-27", 7}})
	schema := `{\"type\":\"struct\",\"fields\":[{\"name\":\"date\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},{\"name\":\"x\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]}`
	add := func(path string, size int, stats string) string {
		raw, _ := json.Marshal(map[string]any{"add": map[string]any{"path": path, "partitionValues": map[string]any{}, "size": size, "modificationTime": 1, "dataChange": true, "stats": stats}})
		return string(raw)
	}
	log := strings.Join([]string{`{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`,
		`{"metaData":{"id":"e","format":{"provider":"parquet","options":{}},"schemaString":"` + schema + `","partitionColumns":[],"configuration":{}}}`,
		add("part-a.parquet", a, `{"numRecords":5,"minValues":{"date":"2026-03-01"},"maxValues":{"date":"2026-03-03"}}`),
		add("part-b.parquet", 999, `{"numRecords":9,"minValues":{"date":"2026-03-10"},"maxValues":{"date":"2026-03-11"}}`), // not in the bucket: never opened
		add("part-c.parquet", c, ""),
	}, "\n") + "\n"
	_, err := b.Put(ctx, "tables/events/_delta_log/00000000000000000000.json", []byte(log), objstore.PutOptions{})
	require.NoError(t, err)

	s, err := TakeSnapshot(ctx, b, "events", "run", "tables/events", Latest, "date", time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC))
	require.NoError(t, err)
	var entries []string
	for _, f := range s.Files {
		entries = append(entries, fmt.Sprintf("%s %s %d", f.Date, f.Key[len("tables/events/"):], f.Rows))
	}
	require.Equal(t, []string{"2026-03-01 part-a.parquet 2", "2026-03-02 part-a.parquet 2", "2026-03-02 part-c.parquet 1"}, entries)
	require.EqualValues(t, 5, s.Rows)
	require.EqualValues(t, a+c, s.Bytes)

	date := contract.Column{Name: "date", Type: contract.TypeString, Role: contract.RoleFeature}
	min0 := 0.0
	x := contract.Column{Name: "x", Type: contract.TypeDouble, Role: contract.RoleFeature, Min: &min0}
	var got []string
	var issues []dataset.RowIssue
	require.NoError(t, dataset.Scan(ctx, b, s, contract.Contract{Columns: []contract.Column{date, x}, MaxBadRowShare: 1}, func(batch *dataset.Batch) error {
		for r := 0; r < batch.Rows; r++ {
			got = append(got, batch.Date+" "+batch.Value(date, r)+" "+batch.Value(x, r))
		}
		issues = append(issues, batch.Issues...)
		return nil
	}))
	require.Equal(t, []string{"2026-03-01 2026-03-01 1", "2026-03-01 2026-03-01T23:00:00Z 5", "2026-03-02 2026-03-02 2", "2026-03-02 2026-03-02 -4", "2026-03-02 2026-03-02 6"}, got)
	require.Len(t, issues, 1)
	require.Equal(t, "tables/events/part-a.parquet", issues[0].File)
	require.EqualValues(t, 3, issues[0].Row, "the rejected row's index in the file, not in its day")
}
