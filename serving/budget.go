package serving

import (
	"context"
	"net/http"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"

	"github.com/driftline/driftline/internal/budget"
)

// DefaultBodyBudget is the memory all requests being read, decoded and answered may hold
// together (Options.BodyBudget). The per-request cap alone let 2,000 concurrent 1 MB bodies
// take the process from 173 MB to 1.8 GB (bench/pressure.sh: 53 MiB to 2,799 MiB).
const DefaultBodyBudget = 256 << 20

// Expansion is what a request holds per byte of its body while it is served: the body, its
// decoded rows (a map per row), the rows the model scores, the prediction log's record and the
// answer with a label token per row. bench/pressure.sh measured about 11 bytes of resident
// memory per byte of a batch of 8,600 instances (2026-12-05); a request is charged 12.
const Expansion = 12

// budgeted holds each REST request's share (Expansion times its body) while it is served
// (503 over the budget).
func budgeted(b *budget.Bytes, next http.Handler) http.Handler {
	return b.Wrap(next, MaxBodyBytes, Expansion, func(w http.ResponseWriter, used, max int64) {
		httpError(w, http.StatusServiceUnavailable, "serving holds %d bytes of requests, its budget (serve --body-budget %d): try again", used, max)
	})
}

// grpcBudget holds each gRPC call's share (Expansion times its message) while it is scored (RESOURCE_EXHAUSTED
// over the budget), sharing the budget with REST.
func grpcBudget(b *budget.Bytes) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		m, ok := req.(proto.Message)
		if !ok {
			return handler(ctx, req)
		}
		n := int64(proto.Size(m)) * Expansion
		if !b.Take(n) {
			return nil, status.Errorf(codes.ResourceExhausted, "serving holds %d bytes of requests, its budget (serve --body-budget %d): try again", b.Used(), b.Max())
		}
		defer b.Give(n)
		return handler(ctx, req)
	}
}
