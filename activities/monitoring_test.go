package activities

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/stretchr/testify/require"
	"go.temporal.io/sdk/testsuite"

	"github.com/driftline/driftline/dataset"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/pipeline"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
)

// logDays writes the demo's rows of some days as answers of version v to the prediction log
// (prediction = truth +- err) and, when labelled, their labels; it returns the request ids.
func logDays(t *testing.T, store objstore.Bucket, cfg dataset.RetailConfig, days []int, v int, err float64, labelled bool) []string {
	t.Helper()
	w := predlog.NewWriter(store, "test", 100000, 100000, time.Hour)
	lw := predlog.NewLabelWriter(store, "test", 100000, 100000, time.Hour)
	now := time.Now()
	var ids []string
	for _, day := range days {
		for i, r := range cfg.RetailDay(day) {
			if math.IsNaN(r.Temperature) {
				continue
			}
			in, _ := json.Marshal(map[string]float64{"price": r.Price, "promo": float64(r.Promo), "weekday": float64(r.Weekday),
				"temperature": r.Temperature, "item_popularity": r.ItemPopularity})
			attrs, _ := json.Marshal(map[string]string{"region": r.Region})
			id := fmt.Sprintf("req-%d-%d-%d", now.UnixNano(), day, i)
			e := err
			if i%2 == 1 {
				e = -err
			}
			w.Add(predlog.Record{RequestID: id, TimeUnixMs: now.UnixMilli(), Model: "demand", Version: int32(v), Route: string(pipeline.RouteProduction),
				LatencyUs: 2000, Prediction: r.UnitsSold + e, Inputs: string(in), Attributes: string(attrs)})
			if labelled {
				lw.Add(predlog.Label{RequestID: id, TimeUnixMs: now.UnixMilli() + 1000, Model: "demand", Label: r.UnitsSold})
			}
			ids = append(ids, id)
		}
	}
	w.Close()
	lw.Close()
	require.Zero(t, w.Dropped())
	return ids
}

// The monitor's window on MinIO: it processes what was logged after its marks exactly once
// (a retry with the same marks gives the same window, the next window does not count it
// again), joins labels to answers (also to answers of an earlier window), decides drift on the
// holiday-shifted requests, and names a part that does not decode while passing it.
func TestMonitorWindowOnMinIO(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	_, _, _, rr, _ := e.cycle("base", "2026-09-01", "2026-09-28")
	must[pipeline.DeployResult](e, rg.Promote, pipeline.DeployInput{Model: "demand", RunID: "base", Version: rr.Version})
	metrics := NewMonitorMetrics(prometheus.NewRegistry())
	mon := &Monitoring{Store: e.store, Registry: registry.New(e.store), Metrics: metrics}
	var ts testsuite.WorkflowTestSuite
	te := ts.NewTestActivityEnvironment()
	te.RegisterActivity(mon)
	sp := e.spec
	sp.Monitoring.Settle.Duration = 0 // the writers above are closed: every part is complete
	window := func(in pipeline.MonitorWindowInput) pipeline.MonitorWindowResult {
		t.Helper()
		in.Spec, in.Until = sp, time.Now().Add(time.Second)
		v, err := te.ExecuteActivity(mon.MonitorWindow, in)
		require.NoError(t, err)
		var out pipeline.MonitorWindowResult
		require.NoError(t, v.Get(&out))
		return out
	}
	cfg := dataset.DefaultRetail()
	cfg.Stores, cfg.Items = 6, 20

	ids := logDays(t, e.store, cfg, []int{10, 11, 12}, rr.Version, 1.0, true)
	// During a canary serving also logs each request's second scoring (route paired) under
	// the same request id, written after the answer: the labels still join the answers.
	pw := predlog.NewWriter(e.store, "paired", 100000, 100000, time.Hour)
	for _, id := range ids {
		pw.Add(predlog.Record{RequestID: id, TimeUnixMs: time.Now().UnixMilli(), Model: "demand", Version: int32(rr.Version + 1),
			Route: string(pipeline.RoutePaired), Prediction: 1000, Inputs: `{}`})
	}
	pw.Close()
	w1 := window(pipeline.MonitorWindowInput{})
	require.Equal(t, rr.Version, w1.Version)
	require.Equal(t, len(ids), w1.Requests)
	require.Equal(t, len(ids), w1.Labelled)
	require.InDelta(t, 1.0, w1.LiveMAE, 1e-9)
	require.False(t, w1.Drifted, w1.Why)
	require.NotZero(t, w1.Predictions.WrittenNanos)
	require.True(t, strings.HasPrefix(w1.ReportURI, e.store.URI("reports/demand/monitor/")))
	again := window(pipeline.MonitorWindowInput{})
	again.ReportURI = w1.ReportURI
	require.Equal(t, w1, again, "a retry from the same marks is the same window")
	next := window(pipeline.MonitorWindowInput{Predictions: w1.Predictions, Labels: w1.Labels})
	require.Zero(t, next.Requests, "nothing is counted twice")
	require.Zero(t, next.Labelled)

	// Labels that arrive a window later are joined to the answers of the earlier window.
	lw := predlog.NewLabelWriter(e.store, "late", 1000, 1000, time.Hour)
	for _, id := range ids[:10] {
		lw.Add(predlog.Label{RequestID: id, TimeUnixMs: time.Now().UnixMilli(), Model: "demand", Label: 0})
	}
	lw.Add(predlog.Label{RequestID: "nobody", TimeUnixMs: time.Now().UnixMilli(), Model: "demand", Label: 1})
	lw.Close()
	late := window(pipeline.MonitorWindowInput{Predictions: next.Predictions, Labels: next.Labels})
	require.Zero(t, late.Requests)
	require.Equal(t, 10, late.Labelled)
	require.Equal(t, 1, late.Problems, "the unknown label is named")

	// A corrupt part, then the holiday-shifted requests: named, passed, drift decided.
	bad := predlog.Prefix("demand", time.Now()) + fmt.Sprintf("part-%d-bad-000001.parquet", time.Now().UnixNano())
	_, err := e.store.Put(ctx, bad, []byte("not parquet at all"), objstore.PutOptions{})
	require.NoError(t, err)
	shifted := logDays(t, e.store, cfg, []int{cfg.ShiftDay + 1, cfg.ShiftDay + 2, cfg.ShiftDay + 3}, rr.Version, 1.0, false)
	w3 := window(pipeline.MonitorWindowInput{Predictions: late.Predictions, Labels: late.Labels})
	require.Equal(t, len(shifted), w3.Requests)
	require.True(t, w3.Drifted, "the shifted requests drift: %s", w3.Why)
	raw, _, err := objstore.ReadAll(ctx, e.store, strings.TrimPrefix(w3.ReportURI, e.store.URI("")))
	require.NoError(t, err)
	require.Contains(t, string(raw), "bad-000001.parquet", "the report names the part")
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.BadParts.WithLabelValues("demand")))
	require.Equal(t, float64(len(shifted)), testutil.ToFloat64(metrics.Requests.WithLabelValues("demand")))
	require.Equal(t, 1.0, testutil.ToFloat64(metrics.Drifted.WithLabelValues("demand")))
	w4 := window(pipeline.MonitorWindowInput{Predictions: w3.Predictions, Labels: w3.Labels})
	require.Zero(t, w4.Requests)
	require.Zero(t, w4.Problems, "the corrupt part is behind the marks")
	require.Zero(t, testutil.ToFloat64(metrics.BadParts.WithLabelValues("demand")))
}
