package serving

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/grpc"
	"google.golang.org/grpc/metadata"

	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/predlog"
	"github.com/driftline/driftline/registry"
	"github.com/driftline/driftline/serving/oippb"
)

// recordSpans installs a tracer provider that keeps every span, and W3C propagation, for
// the test (restored after it).
func recordSpans(t *testing.T) *tracetest.SpanRecorder {
	t.Helper()
	sr := tracetest.NewSpanRecorder()
	prevTP, prevProp := otel.GetTracerProvider(), otel.GetTextMapPropagator()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	otel.SetTracerProvider(tp)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	t.Cleanup(func() {
		_ = tp.Shutdown(context.Background())
		otel.SetTracerProvider(prevTP)
		otel.SetTextMapPropagator(prevProp)
	})
	return sr
}

// A client's traceparent makes the request part of its trace: the serving span is its child,
// the enrichment call is a client span under it that carries the trace to the source, the
// answer names the trace in X-Trace-Id, and the logged prediction has the trace id.
func TestRequestIsOneTraceFromTheClient(t *testing.T) {
	sr := recordSpans(t)
	var mu sync.Mutex
	var sourceTraceparent string
	weather := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sourceTraceparent = r.Header.Get("traceparent")
		mu.Unlock()
		fmt.Fprint(w, `{"z": 1}`)
	}))
	defer weather.Close()
	b := objstore.NewMem()
	r := registry.New(b)
	en := &Enricher{Feature: "z", URL: weather.URL + "/v1/weather?region={region}", Timeout: time.Second, Default: 0.5}
	s, err := New(Options{Tracing: true, Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, Enrich: []*Enricher{en}})
	require.NoError(t, err)
	ts := httptest.NewServer(s.Handler())
	defer ts.Close()
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))

	const traceID, parent = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/models/demand:predict",
		strings.NewReader(`{"request_id": "traced-1", "features": {"x": 1}, "attributes": {"region": "north"}}`))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("traceparent", "00-"+traceID+"-"+parent+"-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, traceID, resp.Header.Get("X-Trace-Id"))

	var server, enrich sdktrace.ReadOnlySpan
	for _, sp := range sr.Ended() {
		switch {
		case sp.Name() == "serving POST /v1/models/demand:predict":
			server = sp
		case sp.Name() == "enrich z":
			enrich = sp
		}
	}
	require.NotNil(t, server, "the request's server span")
	require.Equal(t, traceID, server.SpanContext().TraceID().String())
	require.Equal(t, parent, server.Parent().SpanID().String(), "a child of the client's span")
	require.NotNil(t, enrich, "the enrichment call's client span")
	require.Equal(t, server.SpanContext().SpanID(), enrich.Parent().SpanID())
	mu.Lock()
	require.Contains(t, sourceTraceparent, traceID, "the source sees the trace")
	mu.Unlock()

	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, traceID, recs[0].TraceID, "the logged prediction links to its trace")
}

// Without tracing, a request with a traceparent still names its trace (X-Trace-Id, the
// prediction log) and no span is made.
func TestTraceparentNamesTheTraceWithoutTracing(t *testing.T) {
	sr := recordSpans(t)
	b := objstore.NewMem()
	r := registry.New(b)
	s, ts := newServer(t, b)
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	const traceID = "1bf92f3577b34da6a3ce929d0e0e4736"
	req, err := http.NewRequest(http.MethodPost, ts.URL+"/v1/models/demand:predict", strings.NewReader(`{"request_id": "untraced-1", "features": {"x": 1, "z": 0}}`))
	require.NoError(t, err)
	req.Header.Set("traceparent", "00-"+traceID+"-00f067aa0ba902b7-01")
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	require.Equal(t, http.StatusOK, resp.StatusCode)
	require.Equal(t, traceID, resp.Header.Get("X-Trace-Id"))
	require.Empty(t, sr.Ended(), "no span without tracing")
	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, traceID, recs[0].TraceID)
}

// A gRPC call with a traceparent in its metadata is a server span of that trace, and its
// logged prediction carries the trace id.
func TestGRPCCallIsOneTraceFromTheClient(t *testing.T) {
	sr := recordSpans(t)
	b := objstore.NewMem()
	r := registry.New(b)
	s, err := New(Options{Tracing: true, Store: b, Models: []string{"demand"}, Poll: time.Hour, LogFlush: 10 * time.Millisecond, LabelKey: testLabelKey})
	require.NoError(t, err)
	c := grpcClient(t, s)
	deploy(t, r, register(t, r, "r1", 2, true), 0, 0)
	require.NoError(t, s.watchers["demand"].poll(context.Background()))
	const traceID = "0af7651916cd43dd8448eb211c80319c"
	ctx := metadata.AppendToOutgoingContext(context.Background(), "traceparent", "00-"+traceID+"-b7ad6b7169203331-01")
	var header metadata.MD
	_, err = c.ModelInfer(ctx, &oippb.ModelInferRequest{ModelName: "demand", Id: "grpc-traced",
		Inputs: []*oippb.ModelInferRequest_InferInputTensor{fp32("input-0", []int64{1, 2}, 1, 0)}}, grpc.Header(&header))
	require.NoError(t, err)
	require.Equal(t, []string{traceID}, header.Get("x-trace-id"))
	found := false
	for _, sp := range sr.Ended() {
		if sp.Name() == "inference.GRPCInferenceService/ModelInfer" && sp.SpanKind() == trace.SpanKindServer {
			found = true
			require.Equal(t, traceID, sp.SpanContext().TraceID().String())
		}
	}
	require.True(t, found, "the call's server span")
	s.Close()
	recs, err := predlog.Read(context.Background(), b, "demand", time.Now().Add(-time.Minute), time.Now().Add(time.Minute))
	require.NoError(t, err)
	require.Len(t, recs, 1)
	require.Equal(t, traceID, recs[0].TraceID)
}
