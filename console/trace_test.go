package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// fakeJaeger answers the query API's trace search with the given traces (Jaeger's JSON) and
// records what it was asked.
func fakeJaeger(t *testing.T, body string, asked *string) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		*asked = r.URL.String()
		_, _ = w.Write([]byte(body))
	}))
	t.Cleanup(srv.Close)
	return srv
}

// A span of Jaeger's JSON: id, parent, name, start and duration in microseconds, tags.
func jspan(id, parent, name string, start, dur int64, tags map[string]any) map[string]any {
	var refs []map[string]string
	if parent != "" {
		refs = append(refs, map[string]string{"refType": "CHILD_OF", "spanID": parent})
	}
	var ts []map[string]any
	for k, v := range tags {
		ts = append(ts, map[string]any{"key": k, "value": v})
	}
	return map[string]any{"spanID": id, "operationName": name, "references": refs, "startTime": start, "duration": dur, "processID": "p1", "tags": ts}
}

func traceJSON(t *testing.T, spans ...map[string]any) string {
	b, err := json.Marshal(map[string]any{"data": []map[string]any{{"traceID": "abc123", "spans": spans,
		"processes": map[string]any{"p1": map[string]string{"serviceName": "driftline-worker"}}}}})
	require.NoError(t, err)
	return string(b)
}

// The trace page asks Jaeger for the span tagged with the run's ID and draws the trace
// depth first, children in start order, bars on the trace's time axis, errors marked; a
// trace of another model's run is not shown under this model.
func TestTracePageDrawsTheRunsTrace(t *testing.T) {
	f := seed(t)
	wf := map[string]any{"temporalWorkflowID": "ct/demand", "temporalRunID": "run-2"}
	body := traceJSON(t,
		jspan("a", "", "StartWorkflow:ContinuousTraining", 1_000_000, 20_000_000, nil),
		jspan("b", "a", "RunWorkflow:ContinuousTraining", 1_100_000, 19_000_000, wf),
		jspan("d", "b", "StartActivity:Train", 6_000_000, 12_000_000, wf),
		jspan("c", "b", "StartActivity:Snapshot", 1_200_000, 1_000_000, wf),
		jspan("e", "d", "RunActivity:Train", 6_100_000, 11_000_000, map[string]any{"error": true}),
		jspan("f", "e", "S3 GetObject <x>", 6_200_000, 100_000, nil),
		jspan("g", "c", "S3 HeadObject", 1_300_000, 100_000, nil),
		jspan("h", "c", "S3 HeadObject", 1_900_000, 200_000, nil),
	)
	var asked string
	f.srv.Traces = Jaeger{URL: fakeJaeger(t, body, &asked).URL, Service: "driftline-worker"}
	h := f.srv.Handler()
	w := get(t, h, "alice", "/models/demand/runs/run-2/trace")
	require.Equal(t, http.StatusOK, w.Code, w.Body.String())
	require.Contains(t, asked, "service=driftline-worker")
	require.Contains(t, asked, "tags=%7B%22temporalRunID%22%3A%22run-2%22%7D")
	page := w.Body.String()
	var order []string
	for _, n := range []string{"StartWorkflow:ContinuousTraining", "RunWorkflow:ContinuousTraining", "StartActivity:Snapshot", "S3 HeadObject ×2", "StartActivity:Train", "RunActivity:Train", "S3 GetObject &lt;x&gt;"} {
		i := strings.Index(page, `dy="12">`+n+`<`)
		require.Positive(t, i, n)
		order = append(order, n)
		page = page[i:]
	}
	require.Len(t, order, 7, "depth first, children by start time, a step's S3 calls of one name in one row")
	wf2 := f.srv.Traces.(Jaeger)
	tr, err := wf2.RunTrace(t.Context(), "run-2")
	require.NoError(t, err)
	l := tr.Layout()
	require.Equal(t, "20s", l.Total.String())
	require.InDelta(t, 420, l.Rows[0].BarX, 1e-9, "the first span starts the axis")
	require.InDelta(t, l.Rows[0].BarW, 1180-420-70, 1e-9, "the root spans it")
	var xs []float64
	for _, r := range l.Rows {
		xs = append(xs, r.LabelX)
	}
	require.Equal(t, []float64{4, 18, 32, 46, 32, 46, 60}, xs)
	require.Equal(t, "bad", l.Rows[5].Class, "the failed attempt is marked")
	require.Equal(t, "2 spans, 300ms in all", l.Rows[3].Took)
	require.InDelta(t, 690*0.8/20, l.Rows[3].BarW, 1e-9, "from the first start (1.3 s) to the last end (2.1 s) of a 20 s trace")
	require.Contains(t, get(t, h, "alice", "/models/demand/runs/run-2").Body.String(), `href="/models/demand/runs/run-2/trace"`)

	// The same trace asked for under another model: not that model's run.
	w = get(t, h, "root", "/models/secret/runs/run-2/trace")
	require.Equal(t, http.StatusNotFound, w.Code)
	require.Contains(t, w.Body.String(), "trace abc123 is not of a run of model secret")
	require.Equal(t, http.StatusForbidden, get(t, h, "alice", "/models/secret/runs/run-2/trace").Code)

	// Jaeger without the trace (its 404 "trace not found", or an empty search): a 404 that
	// says why, not a failure of the console.
	for _, answer := range []string{`{"data":null,"errors":[{"code":404,"msg":"trace not found"}]}`, `{"data":[]}`} {
		code := http.StatusNotFound
		if strings.Contains(answer, "[]") {
			code = http.StatusOK
		}
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.WriteHeader(code)
			_, _ = w.Write([]byte(answer))
		}))
		f.srv.Traces = Jaeger{URL: srv.URL, Service: "driftline-worker"}
		w := get(t, h, "alice", "/models/demand/runs/run-2/trace")
		srv.Close()
		require.Equal(t, http.StatusNotFound, w.Code, answer)
		require.Contains(t, w.Body.String(), "no trace of run run-2 in Jaeger (service driftline-worker; sampled out, expired, or tracing off)")
	}
}
