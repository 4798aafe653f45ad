// Package telemetry sets up OpenTelemetry tracing for a Driftline process: spans are exported
// over OTLP/HTTP to the endpoint of the standard variables (OTEL_EXPORTER_OTLP_ENDPOINT or
// OTEL_EXPORTER_OTLP_TRACES_ENDPOINT; none set: spans are not exported), sampled as
// OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG say (default: parent-based, always on), and
// W3C traceparent is the propagation format, from clients and into Temporal.
package telemetry

import (
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"sync"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Enabled says whether an OTLP endpoint is configured.
func Enabled() bool {
	return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
}

// Init installs the global tracer provider and propagator for service (service.name; the
// OTEL_SERVICE_NAME variable overrides it) and returns the function that flushes and stops
// it. Without an endpoint it installs only the propagator: traceparent still flows through,
// nothing is recorded.
func Init(ctx context.Context, service string) (func(context.Context) error, error) {
	otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, propagation.Baggage{}))
	if !Enabled() {
		return func(context.Context) error { return nil }, nil
	}
	exp, err := otlptracehttp.New(ctx)
	if err != nil {
		return nil, fmt.Errorf("OTLP trace exporter: %w", err)
	}
	name := service
	if v := os.Getenv("OTEL_SERVICE_NAME"); v != "" {
		name = v
	}
	res, err := resource.Merge(resource.Default(), resource.NewSchemaless(semconv.ServiceName(name)))
	if err != nil && !errors.Is(err, resource.ErrSchemaURLConflict) {
		return nil, err
	}
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(DropReplayed(sdktrace.NewBatchSpanProcessor(exp))),
		sdktrace.WithResource(res), sdktrace.WithIDGenerator(IDGenerator()))
	otel.SetTracerProvider(tp)
	return tp.Shutdown, nil
}

// A span started with a context from WithSeed gets IDs derived from the seed (its span ID,
// and its trace ID when it has no parent); other spans get random IDs. The workflow span of a
// Temporal run is started again on every replay of the run; with its seed taken from the run,
// each start has the same IDs, so the spans its later steps start are children of one span.
type seedKey struct{}

// WithSeed returns ctx carrying the seed of the next span's IDs.
func WithSeed(ctx context.Context, seed string) context.Context {
	return context.WithValue(ctx, seedKey{}, seed)
}

// IDGenerator is the tracer provider's ID generator (Init installs it; tests that build
// their own provider use it too).
func IDGenerator() sdktrace.IDGenerator { return &idGenerator{} }

type idGenerator struct {
	mu  sync.Mutex
	rnd *rand.Rand
}

func (g *idGenerator) random(b []byte) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.rnd == nil {
		var s [32]byte
		_, _ = crand.Read(s[:])
		g.rnd = rand.New(rand.NewChaCha8(s))
	}
	for i := range b {
		b[i] = byte(g.rnd.Uint32())
	}
}

func seeded(ctx context.Context, what string, b []byte) bool {
	seed, ok := ctx.Value(seedKey{}).(string)
	if !ok {
		return false
	}
	sum := sha256.Sum256([]byte(what + "\x00" + seed))
	copy(b, sum[:])
	return true
}

func (g *idGenerator) NewIDs(ctx context.Context) (trace.TraceID, trace.SpanID) {
	var tid trace.TraceID
	var sid trace.SpanID
	if !seeded(ctx, "trace", tid[:]) {
		g.random(tid[:])
	}
	if !seeded(ctx, "span", sid[:]) {
		g.random(sid[:])
	}
	return tid, sid
}

func (g *idGenerator) NewSpanID(ctx context.Context, _ trace.TraceID) trace.SpanID {
	var sid trace.SpanID
	if !seeded(ctx, "span", sid[:]) {
		g.random(sid[:])
	}
	return sid
}

// ReplayedAttr marks a span started again by a replay of a workflow: DropReplayed drops it
// at its end (the original was, or will be, exported once).
const ReplayedAttr = "driftline.replayed"

// DropReplayed wraps a span processor so that spans marked ReplayedAttr are not exported.
func DropReplayed(next sdktrace.SpanProcessor) sdktrace.SpanProcessor { return dropReplayed{next} }

type dropReplayed struct{ sdktrace.SpanProcessor }

func (d dropReplayed) OnEnd(s sdktrace.ReadOnlySpan) {
	for _, a := range s.Attributes() {
		if string(a.Key) == ReplayedAttr && a.Value.AsBool() {
			return
		}
	}
	d.SpanProcessor.OnEnd(s)
}
