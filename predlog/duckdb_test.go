package predlog

import (
	"fmt"
	"math"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/driftline/driftline/internal/duckdbtest"
	"github.com/driftline/driftline/objstore"
)

// The prediction log and the labels as DuckDB reads them (docs/data.md, "Reading Driftline's
// outputs"): every column's type, a missing input as NaN in input_values, the time as epoch
// milliseconds, the day partition as a DATE of hive partitioning, labels joined on request_id.
func TestDuckDBReadsThePredictionLogAndTheLabels(t *testing.T) {
	b := objstore.NewMem()
	w := NewWriter(b, "r1", 100, 50, 10*time.Millisecond)
	lw := NewLabelWriter(b, "r1", 100, 50, 10*time.Millisecond)
	at := time.Date(2026, 12, 6, 10, 30, 0, 123e6, time.UTC)
	for i := range 10 {
		rec := Record{RequestID: fmt.Sprintf("req-%02d", i), TimeUnixMs: at.Add(time.Duration(i) * time.Second).UnixMilli(), Model: "demand",
			Version: 2, Route: "canary", RoutingKey: "store-1", LatencyUs: 150, Prediction: 10.5 + float64(i),
			InputNames: []string{"price", "temperature"}, InputValues: []float64{2.5, float64(i)}, Attributes: `{"region":"north"}`}
		if i == 3 {
			rec.InputValues[1] = math.NaN() // a missing feature
			rec.Route, rec.Fallback = "production", "enrichment: timeout"
		}
		w.Add(rec)
		if i%2 == 0 {
			lw.Add(Label{RequestID: rec.RequestID, TimeUnixMs: rec.TimeUnixMs + 60_000, Model: "demand", Label: 11})
		}
	}
	w.Close()
	lw.Close()
	dir := t.TempDir()
	preds := duckdbtest.Fetch(t, b, "predictions/demand/", filepath.Join(dir, "predictions"))
	labels := duckdbtest.Fetch(t, b, "feedback/demand/", filepath.Join(dir, "feedback"))

	r := duckdbtest.Query(t, fmt.Sprintf(`SELECT *, epoch_ms(time_unix_ms) AS at FROM read_parquet('%s/**/*.parquet', hive_partitioning = true) ORDER BY request_id`, preds))
	require.Len(t, r.Rows, 10)
	types := r.Types()
	for col, want := range map[string]string{"request_id": "VARCHAR", "time_unix_ms": "BIGINT", "model": "VARCHAR", "version": "INTEGER",
		"route": "VARCHAR", "routing_key": "VARCHAR", "latency_us": "BIGINT", "error": "VARCHAR", "prediction": "DOUBLE",
		"input_names": "VARCHAR[]", "input_values": "DOUBLE[]", "attributes": "VARCHAR", "fallback": "VARCHAR", "trace_id": "VARCHAR",
		"dt": "DATE", "at": "TIMESTAMP"} {
		require.Equal(t, want, types[col], "column %s", col)
	}
	require.Equal(t, "2026-12-06 10:30:03.123", r.Get(3, "at"))
	require.Equal(t, "2026-12-06", r.Get(3, "dt"))
	require.Equal(t, []any{2.5, "NaN"}, r.Get(3, "input_values"), "a missing input is NaN")
	require.Equal(t, "enrichment: timeout", r.Get(3, "fallback"))
	require.Equal(t, "", r.Get(0, "error"), "no error is the empty string, not null")
	require.InDelta(t, 10.5, r.Get(0, "prediction"), 0)

	j := duckdbtest.Query(t, fmt.Sprintf(`SELECT p.request_id, p.prediction, l.label, json_extract_string(p.attributes, '$.region') AS region
		FROM read_parquet('%s/**/*.parquet') p JOIN read_parquet('%s/**/*.parquet') l USING (request_id) ORDER BY 1`, preds, labels))
	require.Len(t, j.Rows, 5, "a label for every other request")
	require.Equal(t, "north", j.Get(0, "region"))
	require.Equal(t, "DOUBLE", j.Types()["label"])
}
