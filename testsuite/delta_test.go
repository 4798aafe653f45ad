package testsuite

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	enumspb "go.temporal.io/api/enums/v1"
	"go.temporal.io/sdk/client"
	"go.temporal.io/sdk/converter"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/internal/keys"
	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/model"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/spec"
)

// deltaRow is a retail row as a Delta table partitioned by date stores it: the partition
// column lives in the log, not in the file.
type deltaRow struct {
	StoreID         int32   `parquet:"store_id"`
	ItemID          int32   `parquet:"item_id"`
	Region          string  `parquet:"region"`
	Price           float64 `parquet:"price"`
	Promo           int32   `parquet:"promo"`
	Weekday         int32   `parquet:"weekday"`
	Temperature     float64 `parquet:"temperature,optional"`
	ItemPopularity  float64 `parquet:"item_popularity"`
	CompetitorPrice float64 `parquet:"competitor_price"`
	UnitsSold       float64 `parquet:"units_sold"`
}

const retailDeltaSchema = `{"type":"struct","fields":[{"name":"date","type":"string","nullable":true,"metadata":{}},` +
	`{"name":"store_id","type":"integer","nullable":true,"metadata":{}},{"name":"item_id","type":"integer","nullable":true,"metadata":{}},` +
	`{"name":"region","type":"string","nullable":true,"metadata":{}},{"name":"price","type":"double","nullable":true,"metadata":{}},` +
	`{"name":"promo","type":"integer","nullable":true,"metadata":{}},{"name":"weekday","type":"integer","nullable":true,"metadata":{}},` +
	`{"name":"temperature","type":"double","nullable":true,"metadata":{}},{"name":"item_popularity","type":"double","nullable":true,"metadata":{}},` +
	`{"name":"competitor_price","type":"double","nullable":true,"metadata":{}},{"name":"units_sold","type":"double","nullable":true,"metadata":{}}]}`

// commitRetailDays commits days [from, to) of the demo data to the Delta table at path as
// version v (version 0 also carries the protocol and the metadata), one file a day under
// date=YYYY-MM-DD/, as Spark lays a date-partitioned table out; suffix names the files.
func commitRetailDays(ctx context.Context, t *testing.T, b objstore.Bucket, path string, v, from, to int, suffix string) {
	t.Helper()
	cfg := dataset.DefaultRetail()
	var lines []string
	add := func(a map[string]any) {
		raw, err := json.Marshal(a)
		require.NoError(t, err)
		lines = append(lines, string(raw))
	}
	add(map[string]any{"commitInfo": map[string]any{"timestamp": time.Now().UnixMilli(), "operation": "WRITE"}})
	if v == 0 {
		add(map[string]any{"protocol": map[string]any{"minReaderVersion": 1, "minWriterVersion": 2}})
		add(map[string]any{"metaData": map[string]any{"id": "retail-demand", "format": map[string]any{"provider": "parquet", "options": map[string]any{}},
			"schemaString": retailDeltaSchema, "partitionColumns": []string{"date"}, "configuration": map[string]any{}}})
	}
	for day := from; day < to; day++ {
		var rows []deltaRow
		for _, r := range cfg.RetailDay(day) {
			rows = append(rows, deltaRow{r.StoreID, r.ItemID, r.Region, r.Price, r.Promo, r.Weekday, r.Temperature, r.ItemPopularity, r.CompetitorPrice, r.UnitsSold})
		}
		data, err := dataset.EncodeParquet(rows)
		require.NoError(t, err)
		date := cfg.Start.AddDate(0, 0, day).Format(dataset.DateLayout)
		file := fmt.Sprintf("date=%s/part-00000-%s.snappy.parquet", date, suffix)
		_, err = b.Put(ctx, path+"/"+file, data, objstore.PutOptions{IfNoneMatch: true})
		require.NoError(t, err)
		add(map[string]any{"add": map[string]any{"path": file, "partitionValues": map[string]any{"date": date}, "size": len(data),
			"modificationTime": time.Now().UnixMilli(), "dataChange": true}})
	}
	_, err := b.Put(ctx, fmt.Sprintf("%s/_delta_log/%020d.json", path, v), []byte(strings.Join(lines, "\n")+"\n"), objstore.PutOptions{IfNoneMatch: true})
	require.NoError(t, err)
}

// The loop trained from a Delta table on MinIO (its days in the log's partitions, not in the
// files): v1's lineage pins the table's version. A later version adds rows to a day of the
// window; a rerun pinned to the lineage's version reads exactly v1's rows and trains the same
// trees, while a run of the latest version reads the new rows too.
func TestTheLoopTrainsFromADeltaTable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 6*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-delta")
	c := st.Dial(ctx, client.Options{})
	loopProcesses(t, st, stack.BuildDriftline(t))
	const table = "tables/retail_demand"
	commitRetailDays(ctx, t, st.Store, table, 0, 0, 32, "a")
	commitRetailDays(ctx, t, st.Store, table, 1, 32, dataset.DefaultRetail().Days, "a")

	sp, run1, v1 := trainFromTable(ctx, t, c, st, spec.TableSource{Format: "delta", Path: table})
	require.EqualValues(t, 1, v1.Lineage.Table.Version)
	require.Equal(t, st.Store.URI(table), v1.Lineage.Table.URI)
	require.Len(t, v1.Lineage.SnapshotFiles, 28)

	// Version 2 adds a second file to a day of the window.
	commitRetailDays(ctx, t, st.Store, table, 2, 9, 10, "b")
	version := v1.Lineage.Table.Version
	rerunReadsTheSameRows(ctx, t, c, st, sp, spec.TableSource{Format: "delta", Path: table, Version: &version}, run1)
}

// trainFromTable registers the demo's spec on a table and runs the loop on September 1-28:
// v1 is promoted with the table's format in its lineage. It returns the spec, the run and v1.
func trainFromTable(ctx context.Context, t *testing.T, c client.Client, st *stack.Stack, table spec.TableSource) (spec.Spec, string, registry.Version) {
	t.Helper()
	sp := demoSpec(t, st.Root)
	sp.Dataset.Table = &table
	require.NoError(t, RegisterSpec(ctx, st.Store, sp))
	res, run1 := runTo(ctx, t, c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28", RequestedBy: "testsuite"})
	require.Equal(t, pipeline.OutcomePromoted, res.Outcome, res.Reason)
	v1, err := registry.New(st.Store).Version(ctx, "demand", 1)
	require.NoError(t, err)
	require.NotNil(t, v1.Lineage.Table, "the lineage pins the table's version")
	require.Equal(t, table.Format, v1.Lineage.Table.Format)
	return sp, run1, v1
}

// rerunReadsTheSameRows runs the loop again (after the table changed in the window) with the
// spec pinned to v1's table version: it reads run1's rows and trains v1's trees; a run of the
// latest version (sp) reads more rows.
func rerunReadsTheSameRows(ctx context.Context, t *testing.T, c client.Client, st *stack.Stack, sp spec.Spec, pinnedTable spec.TableSource, run1 string) {
	t.Helper()
	reg := registry.New(st.Store)
	pinned := sp
	pinned.Dataset.Table = &pinnedTable
	require.NoError(t, RegisterSpec(ctx, st.Store, pinned))
	_, rerun := runTo(ctx, t, c, pipeline.RunInput{Spec: pinned, From: "2026-09-01", To: "2026-09-28", Force: true, RequestedBy: "testsuite"})
	require.Equal(t, snapshotRows(ctx, t, st.Store, run1), snapshotRows(ctx, t, st.Store, rerun), "the rerun reads v1's rows")
	require.JSONEq(t, treesOf(ctx, t, st.Store, reg, 1, ""), treesOf(ctx, t, st.Store, reg, 0, rerun), "and trains the same trees")

	require.NoError(t, RegisterSpec(ctx, st.Store, sp))
	_, latest := runTo(ctx, t, c, pipeline.RunInput{Spec: sp, From: "2026-09-01", To: "2026-09-28", Force: true, RequestedBy: "testsuite"})
	require.Greater(t, snapshotRows(ctx, t, st.Store, latest), snapshotRows(ctx, t, st.Store, run1), "the latest version has the new rows")
}

// snapshotRows is the rows a run pinned.
func snapshotRows(ctx context.Context, t *testing.T, b objstore.Bucket, runID string) int64 {
	raw, _, err := objstore.ReadAll(ctx, b, dataset.SnapshotKey("retail_demand", runID))
	require.NoError(t, err)
	var s dataset.Snapshot
	require.NoError(t, json.Unmarshal(raw, &s))
	return s.Rows
}

// treesOf is the trees of registered version n, or (n = 0) of a run's candidate, as JSON.
func treesOf(ctx context.Context, t *testing.T, b objstore.Bucket, reg *registry.Registry, n int, runID string) string {
	var m *model.Model
	var err error
	if n > 0 {
		m, err = reg.LoadModel(ctx, "demand", n)
	} else {
		var raw []byte
		raw, _, err = objstore.ReadAll(ctx, b, keys.Report("demand", runID, "candidate/model.json"))
		require.NoError(t, err)
		m, err = model.Unmarshal(raw)
	}
	require.NoError(t, err)
	raw, err := json.Marshal(m.GBDT.Trees)
	require.NoError(t, err)
	return string(raw)
}

// `driftline watch-table` follows the model's Delta table: a new version reaching a later day
// closes the day before it and starts the loop on the window ending that day, with the
// registered spec, requested by tablewatch and saying which version closed which day; a
// version adding rows to an old day starts nothing.
func TestANewTableVersionStartsTheLoop(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	st := stack.New(t, stack.DevServer, "driftline-tablewatch")
	c := st.Dial(ctx, client.Options{})
	const table = "tables/retail_demand"
	commitRetailDays(ctx, t, st.Store, table, 0, 0, 27, "a") // up to 2026-09-27
	sp := demoSpec(t, st.Root)
	sp.Dataset.Table = &spec.TableSource{Format: "delta", Path: table}
	require.NoError(t, RegisterSpec(ctx, st.Store, sp))
	st.Driftline("watch-table", stack.BuildDriftline(t), "watch-table", "--model", "demand", "--interval", "200ms")
	require.Eventually(t, func() bool {
		_, _, err := objstore.ReadAll(ctx, st.Store, "tablewatch/retail_demand/state.json")
		return err == nil
	}, time.Minute, 100*time.Millisecond, "the watcher records the table's version")

	commitRetailDays(ctx, t, st.Store, table, 1, 3, 4, "late") // rows of an old day
	time.Sleep(time.Second)
	_, err := c.DescribeWorkflowExecution(ctx, pipeline.WorkflowID("demand"), "")
	require.Error(t, err, "late rows start nothing")

	commitRetailDays(ctx, t, st.Store, table, 2, 27, 28, "a") // 2026-09-28: 2026-09-27 closes
	var in pipeline.RunInput
	require.Eventually(t, func() bool {
		it := c.GetWorkflowHistory(ctx, pipeline.WorkflowID("demand"), "", false, enumspb.HISTORY_EVENT_FILTER_TYPE_ALL_EVENT)
		if !it.HasNext() {
			return false
		}
		ev, err := it.Next()
		if err != nil {
			return false
		}
		return converter.GetDefaultDataConverter().FromPayloads(ev.GetWorkflowExecutionStartedEventAttributes().GetInput(), &in) == nil
	}, time.Minute, 200*time.Millisecond, "the loop starts")
	require.Equal(t, "2026-09-27", in.To)
	require.Equal(t, time.Date(2026, 9, 27, 0, 0, 0, 0, time.UTC).AddDate(0, 0, 1-sp.Dataset.WindowDays).Format(time.DateOnly), in.From)
	require.Equal(t, "tablewatch", in.RequestedBy)
	require.Equal(t, fmt.Sprintf("table %s version 2 closed day 2026-09-27", st.Store.URI(table)), in.Reason)
	require.Equal(t, 1, in.SpecVersion)
}
