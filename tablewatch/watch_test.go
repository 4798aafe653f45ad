package tablewatch

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/spec"
)

// commit writes Delta version v adding a file on each day (only the log: the watcher reads
// no data file).
func commit(t *testing.T, b objstore.Bucket, v int, days ...string) {
	t.Helper()
	var lines []string
	if v == 0 {
		lines = append(lines, `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`,
			`{"metaData":{"id":"t","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"date\",\"type\":\"string\",\"nullable\":true,\"metadata\":{}},{\"name\":\"x\",\"type\":\"double\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":["date"],"configuration":{}}}`)
	}
	for _, d := range days {
		add, _ := json.Marshal(map[string]any{"add": map[string]any{"path": fmt.Sprintf("date=%s/part-%d.parquet", d, v), "partitionValues": map[string]any{"date": d},
			"size": 100, "modificationTime": 1, "dataChange": true}})
		lines = append(lines, string(add))
	}
	_, err := b.Put(context.Background(), fmt.Sprintf("tables/sales/_delta_log/%020d.json", v), []byte(strings.Join(lines, "\n")+"\n"), objstore.PutOptions{IfNoneMatch: true})
	require.NoError(t, err)
}

// A table's new versions close days: the first check records where the table is, a version
// reaching a later day closes the days before it (the trigger fires once, for the newest), a
// version adding rows to an old day closes nothing, and watchers share what they closed: of
// eight racing on a version, one triggers.
func TestNewVersionsCloseDays(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	var mu sync.Mutex
	var fired []Closed
	watcher := func() *Watcher {
		return &Watcher{Store: b, Dataset: "sales", Table: spec.TableSource{Format: "delta", Path: "tables/sales"}, EventTime: "date",
			OnClosed: func(_ context.Context, c Closed) error {
				mu.Lock()
				defer mu.Unlock()
				fired = append(fired, c)
				return nil
			}}
	}
	w := watcher()
	commit(t, b, 0, "2026-03-01", "2026-03-02")
	closed, err := w.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, closed, "the days already in the table are history")
	closed, err = w.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, closed, "no new version")

	commit(t, b, 1, "2026-03-03")
	closed, err = w.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-03-02"}, closed, "a later day closes the newest open one")
	require.Equal(t, []Closed{{Day: "2026-03-02", Version: 1, URI: b.URI("tables/sales")}}, fired)

	commit(t, b, 2, "2026-03-01")
	closed, err = w.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, closed, "late rows of an old day close nothing")

	commit(t, b, 3, "2026-03-04", "2026-03-05", "2026-03-06")
	closed, err = watcher().Check(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-03-03", "2026-03-04", "2026-03-05"}, closed)
	require.Equal(t, Closed{Day: "2026-03-05", Version: 3, URI: b.URI("tables/sales")}, fired[len(fired)-1], "one trigger, for the newest")
	require.Len(t, fired, 2)

	commit(t, b, 4, "2026-03-07")
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() { defer wg.Done(); _, _ = watcher().Check(ctx) }()
	}
	wg.Wait()
	require.Len(t, fired, 3, "eight watchers, one trigger")
	require.Equal(t, "2026-03-06", fired[2].Day)
	_, _, err = objstore.ReadAll(ctx, b, closedKey("sales", "2026-03-06"))
	require.NoError(t, err, "the day's marker")
}

// A table not partitioned by day: a version's days are those between its files' statistics.
func TestVersionsOfATableNotPartitionedByDay(t *testing.T) {
	ctx := context.Background()
	b := objstore.NewMem()
	put := func(v int, lo, hi string) {
		var lines []string
		if v == 0 {
			lines = append(lines, `{"protocol":{"minReaderVersion":1,"minWriterVersion":2}}`,
				`{"metaData":{"id":"t","format":{"provider":"parquet","options":{}},"schemaString":"{\"type\":\"struct\",\"fields\":[{\"name\":\"ts\",\"type\":\"timestamp\",\"nullable\":true,\"metadata\":{}}]}","partitionColumns":[],"configuration":{}}}`)
		}
		add, _ := json.Marshal(map[string]any{"add": map[string]any{"path": fmt.Sprintf("part-%d.parquet", v), "partitionValues": map[string]any{}, "size": 100,
			"modificationTime": 1, "dataChange": true, "stats": fmt.Sprintf(`{"numRecords":10,"minValues":{"ts":%q},"maxValues":{"ts":%q}}`, lo, hi)}})
		lines = append(lines, string(add))
		_, err := b.Put(ctx, fmt.Sprintf("tables/clicks/_delta_log/%020d.json", v), []byte(strings.Join(lines, "\n")+"\n"), objstore.PutOptions{IfNoneMatch: true})
		require.NoError(t, err)
	}
	var fired []Closed
	w := &Watcher{Store: b, Dataset: "clicks", Table: spec.TableSource{Format: "delta", Path: "tables/clicks"}, EventTime: "ts",
		OnClosed: func(_ context.Context, c Closed) error { fired = append(fired, c); return nil }}
	put(0, "2026-03-01T08:00:00.000Z", "2026-03-02T09:00:00.000+01:00")
	closed, err := w.Check(ctx)
	require.NoError(t, err)
	require.Empty(t, closed)
	put(1, "2026-03-02T10:00:00.000Z", "2026-03-04T01:30:00.000+02:00") // 2026-03-03 in UTC
	closed, err = w.Check(ctx)
	require.NoError(t, err)
	require.Equal(t, []string{"2026-03-02"}, closed, "the newest day is 2026-03-03 in UTC: 2026-03-02 closes")
	require.Equal(t, "2026-03-02", fired[0].Day)
}
