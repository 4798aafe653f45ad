package s3store_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/driftline/driftline/internal/stack"
	"github.com/driftline/driftline/objstore"
	"github.com/driftline/driftline/objstore/objstoretest"
)

func TestMinIOContract(t *testing.T) {
	objstoretest.ContractTest(t, stack.NewMinIOBucket(t))
}

// Every S3 operation is a client span in the caller's trace, named after the operation, an
// error recorded on it.
func TestOperationsAreSpansOfTheCallersTrace(t *testing.T) {
	sr := tracetest.NewSpanRecorder()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
	prev := otel.GetTracerProvider()
	otel.SetTracerProvider(tp)
	t.Cleanup(func() { otel.SetTracerProvider(prev) })
	b := stack.NewMinIOBucket(t)
	ctx, root := tp.Tracer("test").Start(context.Background(), "caller")
	_, err := b.Put(ctx, "traced/a.txt", []byte("a"), objstore.PutOptions{})
	require.NoError(t, err)
	_, err = b.Head(ctx, "traced/missing.txt")
	require.ErrorIs(t, err, objstore.ErrNotFound)
	root.End()
	got := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range sr.Ended() {
		got[s.Name()] = s
	}
	for _, name := range []string{"S3 PutObject", "S3 HeadObject"} {
		s, ok := got[name]
		require.True(t, ok, "%s span (%v)", name, got)
		require.Equal(t, root.SpanContext().SpanID(), s.Parent().SpanID(), name)
		require.Equal(t, trace.SpanKindClient, s.SpanKind())
	}
	require.Equal(t, codes.Error, got["S3 HeadObject"].Status().Code, "the 404 is recorded on its span")
}
