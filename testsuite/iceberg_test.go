package testsuite

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
	_ "github.com/apache/iceberg-go/catalog/sql"   // the writer's SQL catalog
	_ "github.com/apache/iceberg-go/io/gocloud/s3" // the writer's S3 files
	"github.com/apache/iceberg-go/table"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/client"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/spec"
)

// retailIceberg is the demo's retail table as a team keeps it in Iceberg: date a date column,
// the table partitioned by month(date), so a file holds many days.
var retailIceberg = iceberg.NewSchema(0,
	iceberg.NestedField{ID: 1, Name: "date", Type: iceberg.PrimitiveTypes.Date, Required: true},
	iceberg.NestedField{ID: 2, Name: "store_id", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 3, Name: "item_id", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 4, Name: "region", Type: iceberg.PrimitiveTypes.String},
	iceberg.NestedField{ID: 5, Name: "price", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 6, Name: "promo", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 7, Name: "weekday", Type: iceberg.PrimitiveTypes.Int32},
	iceberg.NestedField{ID: 8, Name: "temperature", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 9, Name: "item_popularity", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 10, Name: "competitor_price", Type: iceberg.PrimitiveTypes.Float64},
	iceberg.NestedField{ID: 11, Name: "units_sold", Type: iceberg.PrimitiveTypes.Float64},
)

// appendRetailDays commits days [from, to) of the demo data to the table as one snapshot
// (iceberg-go writes a file a day) and returns the table after it.
func appendRetailDays(ctx context.Context, t *testing.T, tbl *table.Table, from, to int) *table.Table {
	t.Helper()
	cfg := dataset.DefaultRetail()
	sc, err := table.SchemaToArrowSchema(tbl.Schema(), nil, true, false)
	require.NoError(t, err)
	rb := array.NewRecordBuilder(memory.DefaultAllocator, sc)
	defer rb.Release()
	for day := from; day < to; day++ {
		for _, r := range cfg.RetailDay(day) {
			rb.Field(0).(*array.Date32Builder).Append(arrow.Date32FromTime(cfg.Start.AddDate(0, 0, day)))
			for i, v := range []int32{r.StoreID, r.ItemID} {
				rb.Field(1 + i).(*array.Int32Builder).Append(v)
			}
			rb.Field(3).(*array.StringBuilder).Append(r.Region)
			rb.Field(4).(*array.Float64Builder).Append(r.Price)
			rb.Field(5).(*array.Int32Builder).Append(r.Promo)
			rb.Field(6).(*array.Int32Builder).Append(r.Weekday)
			for i, v := range []float64{r.Temperature, r.ItemPopularity, r.CompetitorPrice, r.UnitsSold} {
				rb.Field(7 + i).(*array.Float64Builder).Append(v)
			}
		}
	}
	rec := rb.NewRecordBatch()
	defer rec.Release()
	rdr, err := array.NewRecordReader(sc, []arrow.RecordBatch{rec})
	require.NoError(t, err)
	txn := tbl.NewTransaction()
	require.NoError(t, txn.Append(ctx, rdr, nil))
	out, err := txn.Commit(ctx)
	require.NoError(t, err)
	return out
}

// The loop trained from an Iceberg table found through a SQL catalog on PostgreSQL (the
// worker's --iceberg-catalog), written by iceberg-go to MinIO and partitioned by month, so the
// window's days are cut out of its files (a DATE column read as the contract's string): v1's
// lineage pins the snapshot id and the file of each day. A later snapshot adds rows to a day of the window; a rerun pinned to the lineage's
// snapshot id reads exactly v1's rows and trains the same trees, while a run of the latest
// snapshot reads the new rows too.
func TestTheLoopTrainsFromAnIcebergTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-iceberg")
	c := st.Dial(ctx, client.Options{})
	port, _ := stack.StartPostgres(t)
	uri := fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", port)
	stack.WaitPort(t, fmt.Sprintf("127.0.0.1:%d", port), 30*time.Second)
	var lake catalog.Catalog
	var err error
	require.Eventually(t, func() bool {
		lake, err = catalog.Load(ctx, "lake", iceberg.Properties{"type": "sql", "uri": uri, "sql.driver": "pgx", "sql.dialect": "postgres",
			"warehouse": st.Store.URI("warehouse"), "s3.endpoint": st.S3.Endpoint, "s3.region": st.S3.Region,
			"s3.access-key-id": st.S3.AccessKey, "s3.secret-access-key": st.S3.SecretKey})
		return err == nil
	}, 30*time.Second, 200*time.Millisecond, "the catalog on PostgreSQL: %v", err)
	t.Cleanup(func() { _ = lake.(io.Closer).Close() })
	require.NoError(t, lake.CreateNamespace(ctx, table.Identifier{"retail"}, nil))
	spec0 := iceberg.NewPartitionSpec(iceberg.PartitionField{SourceIDs: []int{1}, FieldID: 1000, Name: "date_month", Transform: iceberg.MonthTransform{}})
	tbl, err := lake.CreateTable(ctx, table.Identifier{"retail", "demand"}, retailIceberg, catalog.WithPartitionSpec(&spec0))
	require.NoError(t, err)
	tbl = appendRetailDays(ctx, t, tbl, 0, dataset.DefaultRetail().Days)

	st.SetEnv("DRIFTLINE_ICEBERG_CATALOGS=lake=" + uri)
	loopProcesses(t, st, stack.BuildDriftline(t))
	sp, run1, v1 := trainFromTable(ctx, t, c, st, spec.TableSource{Format: "iceberg", Catalog: "lake", Name: "retail.demand"})
	require.Equal(t, tbl.CurrentSnapshot().SnapshotID, v1.Lineage.Table.Version)
	require.Equal(t, "iceberg+sql://lake/retail.demand", v1.Lineage.Table.URI)
	require.Equal(t, tbl.MetadataLocation(), v1.Lineage.Table.Metadata)
	require.Len(t, v1.Lineage.SnapshotFiles, 28, "one entry a day of the window")
	require.Equal(t, v1.Lineage.SnapshotFiles[0].Key, v1.Lineage.SnapshotFiles[27].Key, "all in September's file")

	// A second snapshot adds rows to a day of the window.
	appendRetailDays(ctx, t, tbl, 9, 10)
	id := v1.Lineage.Table.Version
	rerunReadsTheSameRows(ctx, t, c, st, sp, spec.TableSource{Format: "iceberg", Catalog: "lake", Name: "retail.demand", SnapshotID: &id}, run1)
}
