package iceberg

import (
	"context"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/apache/arrow-go/v18/arrow"
	"github.com/apache/arrow-go/v18/arrow/array"
	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/iceberg-go"
	"github.com/apache/iceberg-go/catalog"
	_ "github.com/apache/iceberg-go/catalog/sql"   // the SQL catalog the writer uses
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // the writer's S3 files
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/contract"
	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore/s3store"
)

// lake is an Iceberg SQL catalog on PostgreSQL with its warehouse on MinIO, written by
// iceberg-go (as a team's own writer would), and the bucket Driftline reads it through.
type lake struct {
	writer catalog.Catalog
	reader *Catalog
	bucket *s3store.S3
}

func startLake(t *testing.T) lake {
	t.Helper()
	ctx := context.Background()
	cfg := stack.StartMinIO(t)
	b, err := s3store.New(ctx, cfg)
	require.NoError(t, err)
	port, _ := stack.StartPostgres(t)
	uri := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	r, err := OpenCatalog("lake", uri)
	require.NoError(t, err)
	t.Cleanup(func() { _ = r.Close() })
	require.Eventually(t, func() bool { return r.DB.PingContext(ctx) == nil }, 30*time.Second, 100*time.Millisecond, "PostgreSQL accepts connections")
	w, err := catalog.Load(ctx, "lake", iceberg.Properties{
		"type": "sql", "uri": uri, "sql.driver": "pgx", "sql.dialect": "postgres",
		"warehouse":            "s3://" + cfg.Bucket + "/warehouse",
		"s3.endpoint":          cfg.Endpoint,
		"s3.region":            cfg.Region,
		"s3.access-key-id":     cfg.AccessKey,
		"s3.secret-access-key": cfg.SecretKey,
	})
	require.NoError(t, err)
	t.Cleanup(func() { _ = w.(io.Closer).Close() })
	require.NoError(t, w.CreateNamespace(ctx, table.Identifier{"retail"}, nil))
	return lake{writer: w, reader: r, bucket: b}
}

// sale is a row of the test table.
type sale struct {
	date  string
	store int64
	price float64
	units int64
}

// appendSales commits one snapshot of rows to the table, in its current schema (a column
// the rows do not have is written null).
func appendSales(t *testing.T, tbl *table.Table, rows []sale) *table.Table {
	t.Helper()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	require.NoError(t, err)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	for _, r := range rows {
		d, err := time.Parse(dataset.DateLayout, r.date)
		require.NoError(t, err)
		for i, f := range sc.Fields() {
			switch f.Name {
			case "date":
				rb.Field(i).(*array.Date32Builder).Append(arrow.Date32FromTime(d))
			case "store_id":
				rb.Field(i).(*array.Int64Builder).Append(r.store)
			case "price", "unit_price":
				rb.Field(i).(*array.Float64Builder).Append(r.price)
			case "units":
				rb.Field(i).(*array.Int64Builder).Append(r.units)
			case "promo":
				rb.Field(i).(*array.Float64Builder).Append(0.5)
			default:
				t.Fatalf("unexpected column %s", f.Name)
			}
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	require.NoError(t, err)
	txn := tbl.NewTransaction()
	require.NoError(t, txn.Append(context.Background(), rdr, nil))
	out, err := txn.Commit(context.Background())
	require.NoError(t, err)
	return out
}

// A table written during the test by iceberg-go through a SQL catalog on PostgreSQL, its files
// on MinIO: the reader finds it through the catalog, pins each snapshot's files, and reads the
// rows of a snapshot with the schema it was written in after the schema evolved (a renamed
// column read by field id from the files written before, an added column null in them); the
// same snapshot id read again pins the same files and rows.
func TestATableWrittenThroughASQLCatalogWithAnEvolvedSchema(t *testing.T) {
	ctx := context.Background()
	start := time.Now()
	l := startLake(t)
	t.Logf("lake started in %s", time.Since(start))
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "date", Type: iceberg.PrimitiveTypes.Date, Required: true},
		iceberg.NestedField{ID: 2, Name: "store_id", Type: iceberg.PrimitiveTypes.Int64, Required: true},
		iceberg.NestedField{ID: 3, Name: "price", Type: iceberg.PrimitiveTypes.Float64},
		iceberg.NestedField{ID: 4, Name: "units", Type: iceberg.PrimitiveTypes.Int64},
	)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "date", Transform: iceberg.IdentityTransform{}})
	tbl, err := l.writer.CreateTable(ctx, table.Identifier{"retail", "sales"}, sc, catalog.WithPartitionSpec(&spec))
	require.NoError(t, err)
	tbl = appendSales(t, tbl, []sale{{"2026-03-01", 1, 2.5, 10}, {"2026-03-01", 2, 3.0, 7}, {"2026-03-02", 1, 2.5, 12}})
	first := tbl.CurrentSnapshot().SnapshotID

	// The schema evolves: price is renamed unit_price, promo is added; then a second append.
	txn := tbl.NewTransaction()
	require.NoError(t, txn.UpdateSchema(true, false).
		RenameColumn([]string{"price"}, "unit_price").
		AddColumn([]string{"promo"}, iceberg.PrimitiveTypes.Float64, "", false, nil).Commit())
	tbl, err = txn.Commit(ctx)
	require.NoError(t, err)
	tbl = appendSales(t, tbl, []sale{{"2026-03-02", 2, 3.5, 5}, {"2026-03-03", 1, 2.75, 9}})
	second := tbl.CurrentSnapshot().SnapshotID

	src := Source{Catalog: l.reader, Name: "retail.sales"}
	date := contract.Column{Name: "date", Type: contract.TypeString, Role: contract.RoleFeature}
	store := contract.Column{Name: "store_id", Type: contract.TypeInt, Role: contract.RoleFeature}
	units := contract.Column{Name: "units", Type: contract.TypeInt, Role: contract.RoleTarget}
	unitPrice := contract.Column{Name: "unit_price", Type: contract.TypeDouble, Role: contract.RoleFeature}
	promo := contract.Column{Name: "promo", Type: contract.TypeDouble, Role: contract.RoleFeature, Nullable: true}

	s, err := TakeSnapshot(ctx, l.bucket, "sales", "run-1", src, At{}, "date", day("2026-03-01"), day("2026-03-03"))
	require.NoError(t, err)
	require.Equal(t, "iceberg+sql://lake/retail.sales", s.Table.URI)
	require.Equal(t, second, s.Table.Version)
	require.Contains(t, s.Table.Metadata, "s3://"+"driftline-test/warehouse/retail.db/sales/metadata/")
	require.EqualValues(t, 5, s.Rows)
	require.Equal(t, []string{
		"2026-03-01|1|2.5|null|10", "2026-03-01|2|3|null|7", "2026-03-02|1|2.5|null|12",
		"2026-03-02|2|3.5|0.5|5", "2026-03-03|1|2.75|0.5|9",
	}, rows(t, l.bucket, s, date, store, unitPrice, promo, units), "old files: unit_price by field id, promo null")

	// The window's days only.
	w, err := TakeSnapshot(ctx, l.bucket, "sales", "run-2", src, At{}, "date", day("2026-03-02"), day("2026-03-02"))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-03-02|1|2.5|null|12", "2026-03-02|2|3.5|0.5|5"}, rows(t, l.bucket, w, date, store, unitPrice, promo, units))

	// The first snapshot, in the schema it was written with (price, no promo).
	price := contract.Column{Name: "price", Type: contract.TypeDouble, Role: contract.RoleFeature}
	s1, err := TakeSnapshot(ctx, l.bucket, "sales", "run-3", src, At{SnapshotID: first}, "date", day("2026-03-01"), day("2026-03-03"))
	require.NoError(t, err)
	require.Equal(t, []string{"2026-03-01|1|2.5|10", "2026-03-01|2|3|7", "2026-03-02|1|2.5|12"}, rows(t, l.bucket, s1, date, store, price, units))
	_, err = TakeSnapshot(ctx, l.bucket, "sales", "run-4", src, At{SnapshotID: first}, "date", day("2026-03-01"), day("2026-03-03"))
	require.NoError(t, err)

	// A rerun pinned to the lineage's snapshot id reads the same files and rows, after more
	// commits.
	appendSales(t, tbl, []sale{{"2026-03-02", 3, 9.0, 1}})
	again, err := TakeSnapshot(ctx, l.bucket, "sales", "run-5", src, At{SnapshotID: s.Table.Version}, "date", day("2026-03-01"), day("2026-03-03"))
	require.NoError(t, err)
	require.Equal(t, s.Files, again.Files)
	require.Equal(t, s.Table.Version, again.Table.Version)
	require.Equal(t, s.Table.CommitTime, again.Table.CommitTime)
	require.NotEqual(t, s.Table.Metadata, again.Table.Metadata, "read from the table's newer metadata file")
	latest, err := TakeSnapshot(ctx, l.bucket, "sales", "run-6", src, At{}, "date", day("2026-03-01"), day("2026-03-03"))
	require.NoError(t, err)
	require.EqualValues(t, 6, latest.Rows)
	v, days, err := Days(ctx, l.bucket, src, "date")
	require.NoError(t, err)
	require.Equal(t, latest.Table.Version, v, "the current snapshot's days, for a watcher")
	require.Equal(t, []string{"2026-03-01", "2026-03-02", "2026-03-03"}, days)

	_, err = TakeSnapshot(ctx, l.bucket, "sales", "run-7", Source{Catalog: l.reader, Name: "retail.nothing"}, At{}, "date", day("2026-03-01"), day("2026-03-03"))
	require.ErrorContains(t, err, "iceberg catalog lake has no table retail.nothing")
}

// A table partitioned by day(ts) (hidden partitioning on a timestamp): the window is pushed
// down as a timestamp range, each file's day is its partition's, and the timestamps are read
// as microseconds.
func TestATablePartitionedByDayOfATimestamp(t *testing.T) {
	ctx := context.Background()
	l := startLake(t)
	sc := iceberg.NewSchema(0,
		iceberg.NestedField{ID: 1, Name: "ts", Type: iceberg.PrimitiveTypes.TimestampTz, Required: true},
		iceberg.NestedField{ID: 2, Name: "clicks", Type: iceberg.PrimitiveTypes.Int64, Required: true},
	)
	spec := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "ts_day", Transform: iceberg.DayTransform{}})
	tbl, err := l.writer.CreateTable(ctx, table.Identifier{"retail", "clicks"}, sc, catalog.WithPartitionSpec(&spec))
	require.NoError(t, err)
	asc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	require.NoError(t, err)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, asc)
	defer rb.Release()
	times := []string{"2026-03-01T23:59:59Z", "2026-03-02T00:00:00Z", "2026-03-02T13:30:00Z", "2026-03-03T08:00:00Z"}
	for i, s := range times {
		ts, err := time.Parse(time.RFC3339, s)
		require.NoError(t, err)
		rb.Field(0).(*array.TimestampBuilder).Append(arrow.Timestamp(ts.UnixMicro()))
		rb.Field(1).(*array.Int64Builder).Append(int64(i + 1))
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(asc, []arrow.RecordBatch{rec})
	require.NoError(t, err)
	txn := tbl.NewTransaction()
	require.NoError(t, txn.Append(ctx, rdr, nil))
	_, err = txn.Commit(ctx)
	require.NoError(t, err)

	s, err := TakeSnapshot(ctx, l.bucket, "clicks", "run-1", Source{Catalog: l.reader, Name: "retail.clicks"}, At{}, "ts", day("2026-03-02"), day("2026-03-02"))
	require.NoError(t, err)
	require.Len(t, s.Files, 1)
	require.Equal(t, "2026-03-02", s.Files[0].Date)
	ts := contract.Column{Name: "ts", Type: contract.TypeInt, Role: contract.RoleFeature}
	clicks := contract.Column{Name: "clicks", Type: contract.TypeInt, Role: contract.RoleTarget}
	at := func(s string) string {
		v, _ := time.Parse(time.RFC3339, s)
		return fmt.Sprint(v.UnixMicro())
	}
	require.Equal(t, []string{at(times[1]) + "|2", at(times[2]) + "|3"}, rows(t, l.bucket, s, ts, clicks))
}
